"""devhost's memoisations of SDK work change nothing the app can see.

The codec's strict-typing switch (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING) is read once per episode
instead of once per value (devhost/sdk_speedups.py). Strict and loose mode decode a custom object
differently (azure/functions/_durable_functions.py `df_loads`: loose reconstructs it, strict
refuses an envelope without an expected type), so a switch that stuck across episodes, or was
read at import, would show here.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import pytest

from devhost.harness import DurableHarness

STRICT = "AZURE_FUNCTIONS_DURABLE_STRICT_TYPING"


class Parcel:
    def __init__(self, weight: int) -> None:
        self.weight = weight

    @staticmethod
    def to_json(obj: Parcel) -> dict[str, Any]:
        return {"weight": obj.weight}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Parcel:
        return Parcel(data["weight"])


app = df.DFApp()


@app.orchestration_trigger(context_name="ctx")
def weigh(ctx: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    parcel = yield ctx.call_activity("pack", 3)
    return parcel.weight * 2  # needs the object back, which only loose mode gives without a type


@app.activity_trigger(input_name="weight")
def pack(weight: int) -> Parcel:
    return Parcel(weight)


@pytest.mark.filterwarnings("ignore:azure.functions Durable JSON codec:DeprecationWarning")
def test_strict_typing_is_read_per_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT, raising=False)
    with DurableHarness(app) as loose:
        assert loose.run_to_completion("weigh").output == 6
    monkeypatch.setenv(STRICT, "1")
    with DurableHarness(app) as strict:
        status = strict.run_to_completion("weigh")
        assert status.runtime_status.value == "Failed"
        assert "strict mode requires expected_type" in str(status.output)
    monkeypatch.delenv(STRICT)
    with DurableHarness(app) as loose_again:
        assert loose_again.run_to_completion("weigh").output == 6
