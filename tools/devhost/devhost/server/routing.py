"""HTTP-trigger route templates (ASP.NET Core syntax) matched against request paths.

The Functions host routes with ASP.NET templates: `{name}`, optional `{name?}`,
catch-all `{*rest}`, defaults `{name=value}` and constraints `{id:int}`. aiohttp's router
has no optional segments, so templates are compiled to regular expressions here.
Constraints we know are enforced (a request that fails them does not match, as in
Azure); unknown constraints are accepted and ignored rather than failing the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"(?i:\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?)",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"[^/]+",
}
_PARAM = re.compile(r"\{([^{}]+)\}")


class RouteError(ValueError):
    """A route template that cannot be used (reported at startup with the function name)."""


@dataclass
class RouteTemplate:
    """One compiled template; `match` returns the route params or None."""

    template: str
    pattern: re.Pattern[str]
    defaults: dict[str, str] = field(default_factory=dict)
    literal_chars: int = 0
    param_count: int = 0

    def match(self, path: str) -> dict[str, str] | None:
        """Match a decoded-per-segment path (no leading slash, without the route prefix)."""
        m = self.pattern.fullmatch(path)
        if m is None:
            return None
        out = dict(self.defaults)
        for key, value in m.groupdict().items():
            if value is not None:
                out[key] = unquote(value)
        return out

    @property
    def specificity(self) -> tuple[int, int]:
        """Sort key: templates with more literal text win, as ASP.NET prefers literal segments."""
        return (-self.literal_chars, self.param_count)


def _param_regex(spec: str, names: set[str]) -> tuple[str, str, bool, str | None]:
    """`name[:constraint[(arg)]]*[?|=default]` → (name, regex, optional, default)."""
    catch_all = spec.startswith("*")
    spec = spec.lstrip("*")
    optional = spec.endswith("?")
    if optional:
        spec = spec[:-1]
    default: str | None = None
    if "=" in spec:
        spec, default = spec.split("=", 1)
    name, *constraints = spec.split(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteError(f"invalid route parameter name {name!r}")
    if name.lower() in names:
        raise RouteError(f"route parameter {name!r} appears twice")
    names.add(name.lower())
    regex = ".+" if catch_all else "[^/]+"
    for constraint in constraints:
        kind = constraint.split("(", 1)[0].lower()
        if kind in _CONSTRAINTS:
            regex = _CONSTRAINTS[kind]
        elif kind == "regex" and "(" in constraint and constraint.endswith(")"):
            regex = f"(?:{constraint[constraint.index('(') + 1 : -1]})"
        # Others (min, max, length, ...) are accepted but not enforced.
    return name, regex, optional or default is not None, default


def compile_route(template: str) -> RouteTemplate:
    """Compile an ASP.NET-style route template (leading/trailing slashes ignored)."""
    text = template.strip().strip("/")
    segments = text.split("/") if text else []
    names: set[str] = set()
    parts: list[str] = []
    defaults: dict[str, str] = {}
    literal_chars = 0
    params = 0
    for index, segment in enumerate(segments):
        pieces: list[str] = []
        pos = 0
        segment_optional = False
        for m in _PARAM.finditer(segment):
            literal = segment[pos : m.start()]
            literal_chars += len(literal)
            pieces.append(re.escape(literal))
            name, regex, optional, default = _param_regex(m.group(1), names)
            params += 1
            if default is not None:
                defaults[name] = default
            if optional and m.start() == 0 and m.end() == len(segment):
                segment_optional = True
            pieces.append(f"(?P<{name}>{regex})" + ("?" if optional else ""))
            pos = m.end()
        literal = segment[pos:]
        if "{" in literal or "}" in literal:
            raise RouteError(f"unbalanced braces in route template {template!r}")
        literal_chars += len(literal)
        pieces.append(re.escape(literal))
        body = "".join(pieces)
        sep = "/" if index else ""
        if segment_optional:
            parts.append(f"(?:{sep}{body})?")
        else:
            parts.append(sep + body)
    regex = "".join(parts)
    try:
        pattern = re.compile(regex, re.IGNORECASE)
    except re.error as exc:
        raise RouteError(f"route template {template!r}: {exc}") from None
    return RouteTemplate(template, pattern, defaults, literal_chars, params)
