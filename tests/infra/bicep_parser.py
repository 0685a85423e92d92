"""A small Bicep reader for the infra tests (no Bicep CLI on this machine).

It reads the declaration level of the language, which is what the tests assert on:
`targetScope`, `param`, `var`, `resource` (type@apiVersion, `existing`, `if (...)`),
`module`, `output`, decorators, and object/array literals down to their leaves.
Leaves that are literals become Python values (str, int, bool, None); anything else
(function calls, references, interpolated strings, ternaries) stays an `Expr` holding
the exact source text. Nothing is evaluated.

Constructs it does not understand (nested `resource` declarations, `import`, `type`,
`func`, ...) raise `BicepSyntaxError` instead of being skipped, so a test can never pass
on a file it silently misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"-?\d+")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}


class BicepSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Expr:
    """A Bicep expression kept as source text (it is never evaluated)."""

    text: str


@dataclass(frozen=True)
class ForLoop:
    """`[for <target> in <source>: <body>]`."""

    target: str
    source: Expr
    body: Any


@dataclass
class Param:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    decorators: list[str] = field(default_factory=list)


@dataclass
class Resource:
    symbol: str
    type: str
    api_version: str
    body: Any
    existing: bool = False
    condition: str | None = None
    line: int = 0


@dataclass
class Module:
    symbol: str
    path: str
    body: Any
    condition: str | None = None


@dataclass
class Output:
    name: str
    type: str
    value: Any
    decorators: list[str] = field(default_factory=list)


@dataclass
class BicepFile:
    path: Path
    target_scope: str = "resourceGroup"
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)

    def resources_of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type.lower() == resource_type.lower()]


def parse_file(path: Path) -> BicepFile:
    return parse(path.read_text(encoding="utf-8"), path)


def parse(text: str, path: Path | None = None) -> BicepFile:
    return _Parser(text, path or Path("<string>")).parse_file()


def string_value(value: Any) -> str | None:
    """The text of a plain string literal, or None for anything else."""
    return value if isinstance(value, str) else None


class _Parser:
    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path
        self.pos = 0

    # ---- errors and low-level scanning ------------------------------------------------

    def error(self, message: str) -> BicepSyntaxError:
        line = self.text.count("\n", 0, self.pos) + 1
        return BicepSyntaxError(f"{self.path}:{line}: {message}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self, newlines: bool) -> None:
        """Skip blanks and comments; newlines too when `newlines` (they separate members)."""
        while not self.at_end():
            ch = self.peek()
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif self.peek(2) == "//":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif self.peek(2) == "/*":
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated block comment")
                self.pos = end + 2
            else:
                return

    def expect(self, token: str) -> None:
        self.skip_space(newlines=False)
        if not self.text.startswith(token, self.pos):
            raise self.error(f"expected {token!r}, found {self.text[self.pos : self.pos + 20]!r}")
        self.pos += len(token)

    def ident(self) -> str:
        self.skip_space(newlines=False)
        match = _IDENT.match(self.text, self.pos)
        if not match:
            raise self.error(f"expected an identifier, found {self.text[self.pos : self.pos + 20]!r}")
        self.pos = match.end()
        return match.group()

    def skip_string(self) -> None:
        """Move past one string literal (with nested `${...}` interpolations)."""
        if self.peek(3) == "'''":
            end = self.text.find("'''", self.pos + 3)
            if end < 0:
                raise self.error("unterminated multi-line string")
            self.pos = end + 3
            return
        self.pos += 1
        while not self.at_end():
            ch = self.peek()
            if ch == "\\":
                self.pos += 2
            elif ch == "'":
                self.pos += 1
                return
            elif self.peek(2) == "${":
                self.pos += 2
                self.skip_balanced_until("}")
                self.pos += 1
            elif ch == "\n":
                raise self.error("newline in string literal")
            else:
                self.pos += 1
        raise self.error("unterminated string")

    def skip_balanced_until(self, closer: str) -> None:
        """Advance to the `closer` that ends the current bracket (not past it)."""
        depth = 0
        while not self.at_end():
            ch = self.peek()
            if ch == "'":
                self.skip_string()
                continue
            if self.peek(2) in ("//", "/*"):
                self.skip_space(newlines=True)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    if ch != closer:
                        raise self.error(f"expected {closer!r}, found {ch!r}")
                    return
                depth -= 1
            self.pos += 1
        raise self.error(f"missing {closer!r}")

    def raw_expression(self) -> str:
        """Source text of one expression: up to a newline, ',' or closing bracket at depth 0."""
        start = self.pos
        depth = 0
        while not self.at_end():
            ch = self.peek()
            if ch == "'":
                self.skip_string()
                continue
            if self.peek(2) in ("//", "/*") and depth == 0:
                break
            if self.peek(2) in ("//", "/*"):
                self.skip_space(newlines=True)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch in "\n,":
                break
            self.pos += 1
        text = self.text[start : self.pos].strip()
        if not text:
            raise self.error("expected an expression")
        return text

    # ---- values ---------------------------------------------------------------------

    def value(self) -> Any:
        self.skip_space(newlines=False)
        ch = self.peek()
        if ch == "{":
            return self.object_literal()
        if ch == "[":
            return self.array_literal()
        return _literal(self.raw_expression())

    def object_literal(self) -> dict[str, Any]:
        self.expect("{")
        members: dict[str, Any] = {}
        while True:
            self.skip_space(newlines=True)
            if self.peek() == "}":
                self.pos += 1
                return members
            if self.peek() == "'":
                start = self.pos
                self.skip_string()
                literal_key = _literal(self.text[start : self.pos])
                # An interpolated key ('${identity.id}') is kept as its source text, quotes included.
                key = literal_key if isinstance(literal_key, str) else literal_key.text
            else:
                key = self.ident()
                if key == "resource":
                    raise self.error("nested resource declarations are not supported; use `parent:`")
            self.expect(":")
            if key in members:
                raise self.error(f"duplicate property {key!r}")
            members[key] = self.value()
            self.skip_space(newlines=False)
            if self.peek() == ",":
                self.pos += 1

    def array_literal(self) -> list[Any] | ForLoop:
        self.expect("[")
        self.skip_space(newlines=True)
        if re.match(r"for\b", self.text[self.pos :]):
            self.pos += 3
            self.skip_space(newlines=False)
            if self.peek() == "(":  # [for (item, index) in ...]
                start = self.pos
                self.pos += 1
                self.skip_balanced_until(")")
                self.pos += 1
                target = self.text[start : self.pos]
            else:
                target = self.ident()
            self.expect("in")
            start = self.pos
            depth = 0
            while not self.at_end() and not (self.peek() == ":" and depth == 0):
                if self.peek() == "'":
                    self.skip_string()
                    continue
                if self.peek() in "([{":
                    depth += 1
                elif self.peek() in ")]}":
                    depth -= 1
                self.pos += 1
            source = Expr(self.text[start : self.pos].strip())
            self.expect(":")
            body = self.value()
            self.skip_space(newlines=True)
            self.expect("]")
            return ForLoop(target, source, body)
        items: list[Any] = []
        while True:
            self.skip_space(newlines=True)
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.value())
            self.skip_space(newlines=False)
            if self.peek() == ",":
                self.pos += 1

    # ---- declarations ---------------------------------------------------------------

    def decorator(self) -> str:
        start = self.pos
        self.expect("@")
        self.ident()
        if self.peek() == "(":
            self.pos += 1
            self.skip_balanced_until(")")
            self.pos += 1
        return self.text[start : self.pos]

    def type_string(self) -> tuple[str, str]:
        """A quoted 'type@apiVersion' (resources) or path (modules)."""
        self.skip_space(newlines=False)
        if self.peek() != "'":
            raise self.error("expected a quoted type or path")
        start = self.pos
        self.skip_string()
        literal = _literal(self.text[start : self.pos])
        if not isinstance(literal, str):
            raise self.error("type strings cannot be interpolated")
        type_name, _, api_version = literal.partition("@")
        return type_name, api_version

    def condition_and_value(self) -> tuple[str | None, Any]:
        self.expect("=")
        self.skip_space(newlines=False)
        condition = None
        if re.match(r"if\s*\(", self.text[self.pos :]):
            self.pos += 2
            self.expect("(")
            start = self.pos
            self.skip_balanced_until(")")
            condition = self.text[start : self.pos].strip()
            self.pos += 1
        return condition, self.value()

    def parse_file(self) -> BicepFile:
        result = BicepFile(self.path)
        decorators: list[str] = []
        while True:
            self.skip_space(newlines=True)
            if self.at_end():
                break
            if self.peek() == "@":
                decorators.append(self.decorator())
                continue
            line = self.text.count("\n", 0, self.pos) + 1
            keyword = self.ident()
            if keyword == "targetScope":
                self.expect("=")
                scope = self.value()
                if not isinstance(scope, str):
                    raise self.error("targetScope must be a string literal")
                result.target_scope = scope
            elif keyword == "param":
                name = self.ident()
                param = Param(name, self.raw_type(), decorators=decorators)
                self.skip_space(newlines=False)
                if self.peek() == "=":
                    self.pos += 1
                    param.default, param.has_default = self.value(), True
                result.params[name] = param
            elif keyword == "var":
                name = self.ident()
                self.expect("=")
                result.variables[name] = self.value()
            elif keyword == "resource":
                symbol = self.ident()
                type_name, api_version = self.type_string()
                self.skip_space(newlines=False)
                existing = self.text.startswith("existing", self.pos)
                if existing:
                    self.pos += len("existing")
                condition, body = self.condition_and_value()
                result.resources[symbol] = Resource(symbol, type_name, api_version, body, existing, condition, line)
            elif keyword == "module":
                symbol = self.ident()
                module_path, _ = self.type_string()
                condition, body = self.condition_and_value()
                result.modules[symbol] = Module(symbol, module_path, body, condition)
            elif keyword == "output":
                name = self.ident()
                output_type = self.raw_type()
                self.expect("=")
                result.outputs[name] = Output(name, output_type, self.value(), decorators)
            else:
                raise self.error(f"unsupported statement {keyword!r}")
            decorators = []
        if decorators:
            raise self.error("decorator without a declaration")
        return result

    def raw_type(self) -> str:
        self.skip_space(newlines=False)
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(\[\])?\??").match(self.text, self.pos)
        if not match:
            raise self.error("expected a type")
        self.pos = match.end()
        return match.group()


def _literal(text: str) -> Any:
    """Turn literal source text into a Python value; anything else is an Expr."""
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "null":
        return None
    if _INT.fullmatch(text):
        return int(text)
    if text.startswith("'''") and text.endswith("'''") and len(text) >= 6:
        return text[3:-3]
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        body = text[1:-1]
        chars: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                escaped = _ESCAPES.get(body[i + 1])
                if escaped is None:
                    return Expr(text)
                chars.append(escaped)
                i += 2
                continue
            if ch == "'" or body.startswith("${", i):
                return Expr(text)  # interpolated, or two strings joined by an operator
            chars.append(ch)
            i += 1
        return "".join(chars)
    return Expr(text)
