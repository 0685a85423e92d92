"""One devhost subprocess per test module, on the session's private Azurite and a fresh task hub.

A module can set `DEVHOST_SETTINGS = {...}` to start its host with extra app settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import AppHost, start_app_host


@pytest.fixture(scope="module")
def app_host(
    request: pytest.FixtureRequest, azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppHost]:
    settings: dict[str, str] = getattr(request.module, "DEVHOST_SETTINGS", {})
    host = start_app_host(tmp_path_factory.mktemp("devhost"), azurite_connection_string, **settings)
    try:
        yield host
    finally:
        host.stop()
