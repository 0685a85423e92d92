"""The Bicep reader the infra tests rely on, checked on small snippets."""

from __future__ import annotations

import pytest

from tests.infra.bicep_parser import BicepSyntaxError, Expr, ForLoop, parse


def test_declarations_literals_and_expressions() -> None:
    parsed = parse(
        """
targetScope = 'subscription' // trailing comment
@description('Line one\\'s text')
@allowed([
  'a'
  'b'
])
param kind string = 'a'
param count int
var settings = {
  'quoted-key': true
  plain: 42, other: null
  interpolated: 'x-${kind}'
  joined: 'a' == kind
  call: union({ a: 1 }, {
    b: 2
  })
}
/* block
   comment */
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st${uniqueString(kind)}'
}
resource ra 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(kind)) {
  name: guid(st.id, 'x')
}
module m 'modules/m.bicep' = {
  name: 'm'
  params: {
    list: [
      'one'
      2
    ]
  }
}
output url string = 'https://${m.outputs.host}'
"""
    )
    assert parsed.target_scope == "subscription"
    assert parsed.params["kind"].default == "a" and parsed.params["kind"].has_default
    assert parsed.params["kind"].decorators[0] == "@description('Line one\\'s text')"
    assert parsed.params["count"].has_default is False
    settings = parsed.variables["settings"]
    assert settings["quoted-key"] is True and settings["plain"] == 42 and settings["other"] is None
    assert settings["interpolated"] == Expr("'x-${kind}'")
    assert settings["joined"] == Expr("'a' == kind")
    assert settings["call"].text.startswith("union(") and settings["call"].text.endswith("})")
    storage = parsed.resources["st"]
    assert (storage.type, storage.api_version, storage.existing) == (
        "Microsoft.Storage/storageAccounts",
        "2023-05-01",
        True,
    )
    assert parsed.resources["ra"].condition == "!empty(kind)"
    assert parsed.modules["m"].path == "modules/m.bicep"
    assert parsed.modules["m"].body["params"]["list"] == ["one", 2]
    assert parsed.outputs["url"].value == Expr("'https://${m.outputs.host}'")


def test_for_loop_is_kept_with_its_body() -> None:
    parsed = parse("var names = [for (item, i) in items: {\n  name: item\n}]\n")
    loop = parsed.variables["names"]
    assert isinstance(loop, ForLoop)
    assert loop.target == "(item, i)" and loop.source == Expr("items") and loop.body == {"name": Expr("item")}


@pytest.mark.parametrize(
    "source",
    [
        "resource a 'T@1' = {\n  resource b 'c' = {}\n}\n",  # nested resources are not read
        "import * as x from 'y.bicep'\n",
        "var s = 'unterminated\n",
        "var o = {\n  a: 1\n  a: 2\n}\n",
    ],
)
def test_unsupported_or_broken_input_is_an_error(source: str) -> None:
    with pytest.raises(BicepSyntaxError):
        parse(source)
