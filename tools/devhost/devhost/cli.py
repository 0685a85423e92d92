"""`python -m devhost COMMAND ...`: the command line.

Each command is one `add_*_command(subparsers)` function that registers its parser and sets
`func` (called with the parsed arguments, returns the exit code). To add a command, write
such a function and list it in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
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
        help="replay recorded or deployed orchestration histories against the current code",
        description="Replay orchestration histories against the current orchestrator code, without running "
        "activities, and report the first nondeterminism of each. SOURCE is a recording (a devhost "
        "export, a list of DTFx events, or an HTTP API status payload with historyEvents) or a "
        "folder of them; --url checks every running instance of a deployed app instead (before "
        "a deploy). Exit code 0: all replay; 1: one or more diverge; 2: bad input or unreachable.",
    )
    parser.add_argument("source", type=Path, nargs="?", help="a recording (JSON) or a folder of recordings")
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the deployed app's Durable HTTP API base, e.g. "
        "https://APP.azurewebsites.net/runtime/webhooks/durabletask",
    )
    parser.add_argument(
        "--code",
        metavar="KEY",
        default=os.environ.get("DURABLETASK_EXTENSION_KEY"),
        help="the app's durabletask_extension system key (default: $DURABLETASK_EXTENSION_KEY)",
    )
    parser.add_argument("--task-hub", metavar="NAME", help="the task hub, when it is not the app's default")
    parser.add_argument("--page-size", type=int, default=100, metavar="N", help="instances per list request")
    parser.add_argument(
        "--version",
        metavar="V",
        help="the orchestration version to replay HTTP histories under (context.version; the "
        "HTTP API does not show it): the deployed defaultVersion, if the code branches on it",
    )
    parser.add_argument(
        "--app",
        default="function_app",
        metavar="MODULE[:ATTR]",
        help="the module defining the app (default: function_app; its one FunctionApp/DFApp, whatever its name)",
    )
    parser.add_argument(
        "--script-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory to import the app from (default: the current directory)",
    )
    parser.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.url is None):
        print("error: give a recording, a folder of recordings, or --url (one of them)", file=sys.stderr)
        return EXIT_ERROR
    if args.page_size < 1:
        print("error: --page-size must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    try:
        app = load_function_app(args.script_root, args.app)
    except AppLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.url is not None:
        return _replay_deployed(app, args)
    if args.source.is_dir():
        return _replay_folder(app, args.source, args.version)
    return _replay_file(app, args.source, args.version)


def _replay_file(app: Any, path: Path, version: str | None) -> int:
    from .replay import replay_history

    try:
        recording = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        report = replay_history(app, recording, version=version)
    except ValueError as exc:  # malformed recording (json.JSONDecodeError is a ValueError too)
        print(f"error: {path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def _replay_folder(app: Any, folder: Path, version: str | None) -> int:
    """Every *.json in the folder (exported histories): one line each, the worst exit code."""
    from .replay import replay_history

    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"error: {folder} holds no *.json recordings", file=sys.stderr)
        return EXIT_ERROR
    diverged = errors = 0
    for path in files:
        try:
            report = replay_history(app, path.read_text(encoding="utf-8"), version=version)
        except (OSError, ValueError) as exc:
            errors += 1
            print(f"{path.name}: error: {exc}")
            continue
        diverged += not report.ok
        print(f"{path.name}: {report.summary()}")
        for note in report.notes:
            print(f"{path.name}: note: {note}", file=sys.stderr)
    print(f"{len(files)} recording(s): {diverged} diverge, {errors} unreadable")
    return EXIT_ERROR if errors else EXIT_FAILED if diverged else EXIT_OK


def _replay_deployed(app: Any, args: argparse.Namespace) -> int:
    """Every running instance of the deployed app: one line each; exit 1 if any diverges."""
    from .replay._remote import RemoteError, replay_deployed

    checked = diverged = errors = 0
    try:
        for item in replay_deployed(
            app, args.url, args.code, task_hub=args.task_hub, page_size=args.page_size, version=args.version
        ):
            checked += 1
            errors += item.report is None
            diverged += item.report is not None and not item.report.ok
            print(f"{item.instance_id} ({item.name}, {item.runtime_status}): {item.summary()}")
            for note in item.report.notes if item.report is not None else []:
                print(f"{item.instance_id}: note: {note}", file=sys.stderr)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    unreadable = f", {errors} not replayable" if errors else ""
    print(f"{checked} running instance(s) checked: {diverged} diverge{unreadable}")
    return EXIT_ERROR if errors else EXIT_FAILED if diverged else EXIT_OK


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
