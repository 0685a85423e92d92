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
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from .azurite import AzuriteMissing, start_azurite
from .harness import DurableHarness


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """A private Azurite (free loopback ports, temp data dir) for the whole session; yields its connection string."""
    try:
        azurite = start_azurite()
    except AzuriteMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield azurite.connection_string
    finally:
        azurite.stop()


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
