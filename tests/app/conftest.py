from __future__ import annotations

import pytest
from devhost import DurableHarness

from tests.app.fake_targets import FakeTargets


@pytest.fixture
def rollout():
    """A harness on the real function_app with fake target activities."""
    import function_app

    harness = DurableHarness(function_app.app)
    fakes = FakeTargets()
    fakes.install(harness)
    harness.targets = fakes  # type: ignore[attr-defined]
    yield harness
    harness.close()
