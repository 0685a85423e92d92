from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .sources import Unavailable, materialize


@pytest.fixture(scope="session")
def microsoft_app(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`microsoft_app(name)`: a fresh unchanged copy of the app (skips the test when none can be had)."""

    def get(name: str) -> Path:
        try:
            return materialize(name, tmp_path_factory.mktemp("microsoft") / name)
        except Unavailable as exc:
            pytest.skip(str(exc))

    return get
