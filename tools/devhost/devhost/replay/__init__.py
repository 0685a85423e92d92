"""Replay a recorded orchestration history against the CURRENT code and report the first divergence.

Why: an orchestrator must make the same decisions every time it replays. Changing its code while
instances are in flight (or between a recorded run and a refactor) breaks them in ways that only show
up days later in Azure ("Non-Deterministic workflow detected"). Replaying a recording catches that in a
unit test or from the command line, before deploying.

How: no second replay engine. The recording is fed, episode by episode, through the engine's own pure
step (`process_orchestration`), which drives the real SDK exactly as devhost does when it runs the app.
The recorded completions (activity results, timer firings, external events, entity responses) are
delivered as messages; activities, sub-orchestrations and entities never run. After each episode, what
the current code scheduled is compared with what the recording scheduled.

Recordings come in two formats (`_recording`): the full DTFx history (exact; `history_view.export_instance`)
and the Durable HTTP API's `historyEvents` (what a deployed app gives you). `_full` and `_http` replay them.

Entry points: `replay_history(app, recording) -> ReplayReport`, `assert_replays(app, recording)` for pytest,
`replay_deployed(app, url, key)` for every running instance of a deployed app
(`_remote`), and `devhost replay FILE|DIR|--url` (see `devhost.cli`). Modules starting with `_` are internal.
"""

from ._checker import assert_replays, replay_history
from ._recording import FULL, HTTP, Recording, load_recording
from ._remote import InstanceReport, RemoteError, replay_deployed
from ._report import NondeterminismError, ReplayReport

__all__ = [
    # Checking
    "replay_history",
    "assert_replays",
    "replay_deployed",
    # Recordings
    "load_recording",
    "Recording",
    "FULL",
    "HTTP",
    # Reports
    "ReplayReport",
    "NondeterminismError",
    "InstanceReport",
    "RemoteError",
]
