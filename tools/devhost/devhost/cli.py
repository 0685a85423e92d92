"""`python -m devhost COMMAND ...`: the command line.

Each command is one `add_*_command(subparsers)` function that registers its parser and sets
`func` (called with the parsed arguments, returns the exit code). To add a command, write
such a function and list it in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .loader import AppLoadError, load_function_app

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2  # bad usage or input, as argparse itself uses


# ----------------------------------------------------------------------------- replay
def add_replay_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a recorded orchestration history against the current code",
        description="Replay a recorded history (a devhost export, a list of DTFx events, or an HTTP API status "
                    "payload with historyEvents) against the current orchestrator code, without running "
                    "activities, and report the first nondeterminism. Exit code 0: replays; 1: diverges.",
    )
    parser.add_argument("file", type=Path, help="the recording (JSON)")
    parser.add_argument("--app", default="function_app", metavar="MODULE[:ATTR]",
                        help="the module defining the app (default: function_app; its one FunctionApp/DFApp, "
                             "whatever its name)")
    parser.add_argument("--script-root", type=Path, default=None, metavar="DIR",
                        help="directory to import the app from (default: the current directory)")
    parser.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from .replay import replay_history

    try:
        recording = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        app = load_function_app(args.script_root, args.app)
    except AppLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        report = replay_history(app, recording)
    except ValueError as exc:  # malformed recording (json.JSONDecodeError is a ValueError too)
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


# ------------------------------------------------------------------------------ start
def serve(script_root: str | Path = ".", *, port: int = 7071, verbose: bool = False) -> int:
    """Run the app in `script_root` as `devhost start` does, until SIGINT/SIGTERM; returns the exit code.

    The Python form of the command, for scripts that start devhost themselves."""
    from .server.main import run_start

    return run_start(argparse.Namespace(script_root=str(script_root), port=port, verbose=verbose))


def add_start(subparsers: Any) -> None:
    from .server.main import add_start_command

    add_start_command(subparsers)


COMMANDS: list[Callable[[Any], None]] = [add_start, add_replay_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devhost", description="devhost: a local Durable Functions host")
    subparsers = parser.add_subparsers(dest="command", required=True, title="commands")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
