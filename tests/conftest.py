"""Session-wide fixtures shared by all test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.azurite import AzuriteMissing, start_azurite


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
