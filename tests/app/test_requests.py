"""Request validation: every problem reported at once, in words a client can act on."""

from __future__ import annotations

import pytest

from update_service.requests import MAX_TARGETS, InvalidRequest, parse_update_request


def problems_of(body) -> list[str]:
    with pytest.raises(InvalidRequest) as info:
        parse_update_request(body)
    return info.value.problems


def test_a_valid_request_with_defaults() -> None:
    req = parse_update_request({"package": "agent", "version": "2.4.1", "targets": ["a", "b"]})
    assert req.targets == ("a", "b") and req.wave_size == 10 and req.max_failure_ratio == 0.2
    assert req.approval.required is False
    assert req.to_json()["approval"] == {"required": False, "timeoutMinutes": 1440}


def test_every_problem_is_listed() -> None:
    problems = problems_of(
        {"version": 7, "targets": ["ok", "ok", "bad id!"], "waveSize": 0, "maxFailureRatio": 2, "extra": True}
    )
    text = "\n".join(problems)
    assert "Unknown field 'extra'" in text
    assert "'package' is required" in text
    assert "'version' is required" in text
    assert "targets[1] 'ok' is a duplicate" in text
    assert "targets[2]" in text
    assert "'waveSize' must be between 1" in text
    assert "'maxFailureRatio'" in text
    assert len(problems) == 7


@pytest.mark.parametrize(
    "body, expected",
    [
        ("not an object", "must be a JSON object"),
        ({"package": "a", "version": "1", "targets": []}, "'targets' is required"),
        ({"package": "a", "version": "1", "targets": "t1"}, "'targets' is required"),
        ({"package": "a", "version": "1", "targets": [f"t{i}" for i in range(MAX_TARGETS + 1)]}, "at most 1000"),
        ({"package": "a", "version": "1", "targets": ["t"], "waveSize": True}, "'waveSize' must be an integer"),
        ({"package": "a", "version": "1", "targets": ["t"], "approval": "yes"}, "'approval' must be an object"),
        ({"package": "a", "version": "1", "targets": ["t"], "approval": {"timeoutMinutes": 0}}, "timeoutMinutes"),
        ({"package": "a", "version": "1", "targets": ["t"], "updateId": "has/slash"}, "'updateId'"),
    ],
)
def test_bad_input(body, expected) -> None:
    assert any(expected in p for p in problems_of(body))
