"""pytest fixtures for testing orchestrations with devhost's harness.

Enable in your `conftest.py`:

    pytest_plugins = ["devhost.pytest_plugin"]

    @pytest.fixture
    def durable_app():          # optional: defaults to `function_app.app`
        from function_app import app
        return app

Then a test takes `durable`, a fresh `DurableHarness` (memory hub, virtual time):

    def test_expires(durable):
        iid = durable.start("update_rollout", {...})
        assert durable.run(iid).runtime_status == "Completed"

End-to-end tests that need Azure Storage take `azurite_connection_string`: one private
Azurite (free loopback ports, temporary data) for the whole session.

Markers, assigned at collection so nobody has to remember them (select with `-m`):
`azurite` for a test that uses `azurite_connection_string` (directly, through a fixture, or
with `request.getfixturevalue`) or starts its own Azurite (`start_azurite`); `browser` for a
test that drives a browser (its own code or one of its fixtures uses Playwright). So
`pytest -m "not azurite and not browser"` is a fast lane with no Node or Chromium process.
A parametrized fixture that needs Azurite for some params only marks those params itself
(`pytest.param("azure", marks=pytest.mark.azurite)`); a test that reaches Azurite unmarked in
a run that deselects `azurite` fails with a message saying so.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest

from .azurite import AzuriteMissing, start_azurite
from .harness import DurableHarness

MARKERS = {
    "azurite": "needs Azure Storage: uses the session's private Azurite or starts its own (assigned automatically)",
    "browser": "drives a real browser through Playwright (assigned automatically)",
    "devhost_replay": "devhost_replay(*modes): run the test once per replay mode (default: full and incremental)",
}
REPLAY_MODES = ("full", "incremental")
# What a test's (or one of its fixtures') source says when it needs Azurite or a browser. The source is
# read, not just the fixture names, because a fixture may ask for Azurite with `request.getfixturevalue`.
_NEEDS = {
    "azurite": ("azurite_connection_string", "start_azurite"),
    "browser": ("playwright",),
}


def pytest_configure(config: pytest.Config) -> None:
    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    for name, text in MARKERS.items():
        if name not in declared:  # a project that lists them in its own config keeps its wording
            config.addinivalue_line("markers", f"{name}: {text}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.devhost_replay`: the test runs once per replay mode (EngineOptions.replay)."""
    marker = metafunc.definition.get_closest_marker("devhost_replay")
    if marker is None or "devhost_replay" not in metafunc.fixturenames:
        return
    modes = list(marker.args or REPLAY_MODES)
    metafunc.parametrize("devhost_replay", modes, indirect=True, ids=[f"replay-{m}" for m in modes])


@pytest.fixture(autouse=True)
def devhost_replay(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The replay mode harnesses made in this test use: set by `@pytest.mark.devhost_replay`
    (through DEVHOST_REPLAY, which `EngineOptions.replay` defaults to), else the environment's."""
    import os

    mode = getattr(request, "param", None)
    if mode is not None:
        monkeypatch.setenv("DEVHOST_REPLAY", mode)
        return str(mode)
    return os.environ.get("DEVHOST_REPLAY", "full")


@cache
def _source(func: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _needs(item: pytest.Item) -> set[str]:
    """The markers `item` needs, from its fixture closure and the source of its function and fixtures."""
    names = set(getattr(item, "fixturenames", ()))
    found = {"azurite"} if "azurite_connection_string" in names else set()
    funcs: list[Callable[..., Any]] = []
    if (function := getattr(item, "function", None)) is not None:
        funcs.append(function)
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        # A parametrized fixture may reach Azurite for one param only: it marks that one itself,
        # `params=["memory", pytest.param("azure", marks=pytest.mark.azurite)]`.
        funcs.extend(
            d.func
            for d in defs
            if d.params is None and not d.func.__module__.startswith(("_pytest", "pytest_", __name__))
        )
    for func in funcs:
        text = _source(func)
        found |= {marker for marker, needles in _NEEDS.items() if any(n in text for n in needles)}
    return found


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(_needs(item) - {m.name for m in item.iter_markers()}):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def azurite_connection_string(request: pytest.FixtureRequest) -> Iterator[str]:
    """A private Azurite (free loopback ports, temp data dir) for the whole session; yields its connection string."""
    _refuse_outside_azurite_lane(request)
    try:
        azurite = start_azurite()
    except AzuriteMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield azurite.connection_string
    finally:
        azurite.stop()


def _refuse_outside_azurite_lane(request: pytest.FixtureRequest) -> None:
    """With `-m "not azurite ..."`, a test that reaches Azurite anyway was missed by the marking above: say so
    instead of quietly making the fast lane slow."""
    expression = request.config.getoption("markexpr", "") or ""
    item = getattr(request, "_pyfuncitem", None)
    if "not azurite" in expression and item is not None and item.get_closest_marker("azurite") is None:
        pytest.fail(f"{item.nodeid} uses Azurite but is not marked `azurite`: add @pytest.mark.azurite", pytrace=False)


@pytest.fixture
def durable_app() -> Any:
    """The app under test: `function_app.app` unless a conftest overrides this fixture."""
    return importlib.import_module("function_app").app


@pytest.fixture
def durable(durable_app: Any) -> Iterator[DurableHarness]:
    harness = DurableHarness(durable_app)
    try:
        yield harness
    finally:
        harness.close()
