"""The replay checker's entry points: `replay_history` (a report) and `assert_replays` (for pytest)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from ..index import AppIndex
from ..orchestration import EngineOptions
from ._base import Replayer
from ._full import FullReplayer
from ._http import HttpReplayer
from ._recording import FULL, Recording, load_recording
from ._report import Diverged, NondeterminismError, ReplayReport


def replay_history(
    app: Any, recording: Any, *, options: EngineOptions | None = None, version: str | None = None
) -> ReplayReport:
    """Replay `recording` against `app` (a DFApp/FunctionApp or an AppIndex) and report the first divergence.

    `recording` is anything `load_recording` accepts (or a `Recording`). `options` may carry non-default
    timer settings; its `new_id` is replaced by a deterministic one so that two replays of one recording are
    identical. `version` is the orchestration version to replay an HTTP recording under (`context.version`;
    the HTTP view does not show it); full recordings carry their own. Malformed recordings raise ValueError;
    divergences never raise, they are in the report.
    """
    index = app if isinstance(app, AppIndex) else AppIndex.from_app(app)
    rec = recording if isinstance(recording, Recording) else load_recording(recording)
    if version is not None:
        rec = replace(rec, version=version)
    counter = itertools.count(1)
    opts = replace(options or EngineOptions(), new_id=lambda: f"{next(counter):032x}")
    replayer: Replayer = FullReplayer(index, opts, rec) if rec.format == FULL else HttpReplayer(index, opts, rec)
    try:
        replayer.run()
    except Diverged as exc:
        return ReplayReport(
            False, str(exc) + replayer.hint(), replayer.episodes, rec.format, replayer.notes, replayer.warnings
        )
    return ReplayReport(True, None, replayer.episodes, rec.format, replayer.notes, replayer.warnings)


def assert_replays(app: Any, recording: Any, *, options: EngineOptions | None = None) -> ReplayReport:
    """pytest-friendly: replay and raise `NondeterminismError` (an AssertionError) with the divergence text."""
    report = replay_history(app, recording, options=options)
    if not report.ok:
        raise NondeterminismError(report)
    return report
