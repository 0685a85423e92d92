"""`devhost start`: load settings, import function_app.py, open the task hub, serve.

The command is registered by `devhost.cli` (the one entry point: `devhost start`, `python -m devhost start`).

Failures a user can fix (no function_app.py, an import error in it, bad host.json,
unreachable storage, port in use) print one line and exit 1 instead of a traceback:
the traceback of an import error is about the user's file, so only its last frame in
that file is shown. SIGINT/SIGTERM stop accepting requests and drain the dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .. import logfilter
from ..index import AppIndex
from ..loader import AppLoadError, load_function_app
from ..store.base import Store
from .app import DevHost, HostStartupError
from .settings import HostConfig, SettingsError, load_local_settings, storage_provider_notice

log = logging.getLogger("devhost")


class StartError(Exception):
    """A problem reported as one line (`devhost: error: ...`) with exit code 1."""


class _CoreToolsFormatter(logging.Formatter):
    """`[2026-11-27T18:40:00.123Z] message`, as Core Tools prints its console log."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"[{stamp}] {text}"


def configure_logging(level: int, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_CoreToolsFormatter())
    logfilter.install(handler)  # orchestrator log lines once, not once per replay
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("devhost").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("aiohttp.access", "azure.core.pipeline.policies.http_logging_policy", "azure"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_start_command(subparsers: Any) -> None:
    """Register `start` on an argparse subparsers object; the parser's `func` is run_start."""
    parser = subparsers.add_parser(
        "start",
        help="run function_app.py locally (HTTP functions, Durable HTTP API, timers)",
        description="Run a Python Azure Functions app with Durable Functions locally, like `func start`.",
    )
    parser.add_argument("--port", type=int, default=7071, help="port to listen on (default 7071)")
    parser.add_argument("--script-root", default=".", help="folder holding function_app.py and host.json")
    parser.add_argument("--verbose", action="store_true", help="log every activity and engine step")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host (or a state-changing request's Origin) names NAME; "
        "repeatable; DEVHOST_ALLOWED_HOSTS=name1,name2 does the same (default: loopback only)",
    )
    parser.add_argument(
        "--replay",
        choices=("full", "incremental"),
        default=None,
        help="full: every episode replays the whole history, as Azure does (default); incremental: "
        "a running orchestration's SDK executor is fed only new events, with a full replay when "
        "its history has doubled and at its end (faster on long histories; DEVHOST_REPLAY)",
    )
    parser.set_defaults(func=run_start)


def run_start(args: argparse.Namespace) -> int:
    """Entry point for `devhost start`; returns the process exit code."""
    if getattr(args, "replay", None):
        os.environ["DEVHOST_REPLAY"] = args.replay  # read by EngineOptions.replay
    try:
        return asyncio.run(_serve(args))
    except StartError as exc:
        print(f"devhost: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were installed (e.g. during import)
        return 130


def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment (e.g. DEVHOST_VISIBILITY_SECONDS=5 for crash tests)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 7 * 24 * 3600:
        raise StartError(f"{name} must be a positive number of seconds, not {text!r}")
    return value


def _lease_option() -> dict[str, int]:
    """DEVHOST_LEASE_SECONDS (15-60): how long the hub stays locked after a devhost dies without
    releasing it (default 30 s); crash tests use 15 to restart sooner."""
    text = os.environ.get("DEVHOST_LEASE_SECONDS", "").strip()
    if not text:
        return {}
    if not text.isdigit() or not 15 <= int(text) <= 60:
        raise StartError(f"DEVHOST_LEASE_SECONDS must be a whole number of seconds from 15 to 60, not {text!r}")
    return {"lease_seconds": int(text)}


def _memory_store() -> bool:
    return os.environ.get("DEVHOST_STORE", "azure").strip().lower() == "memory"


async def open_task_hub_store(hub: str) -> Store:
    """The store selected by DEVHOST_STORE, with its hub lease taken (release it with
    `store.release_hub_lease()`).

    `memory` keeps everything in this process; anything else is the Azure Storage store
    (Azurite or a real account via AzureWebJobsStorage), imported only when used."""
    if _memory_store():
        from ..store.memory import MemoryStore

        return MemoryStore()
    try:
        from ..store import azure as azure_store
    except ImportError as exc:
        raise StartError(
            f"the Azure Storage store is not available ({exc}); set DEVHOST_STORE=memory "
            "to run with an in-memory task hub"
        ) from None
    unavailable = azure_store.StorageUnavailable
    lease_option = _lease_option()
    store: Store
    try:
        store = await azure_store.open_store(os.environ, hub)
    except unavailable as exc:
        raise StartError(f"storage is unreachable: {exc}") from None
    except (KeyError, ValueError) as exc:
        raise StartError(f"cannot open the task hub '{hub}': {exc}") from None
    try:
        await store.acquire_hub_lease(**lease_option)
    except unavailable as exc:
        await store.close()
        raise StartError(f"storage is unreachable: {exc}") from None
    except Exception as exc:  # HubInUse and friends: their message says what to do
        await store.close()
        raise StartError(str(exc) or f"cannot take the task hub '{hub}': {type(exc).__name__}") from None
    return store


async def _serve(args: argparse.Namespace) -> int:
    script_root = Path(args.script_root).resolve()
    if not script_root.is_dir():
        raise StartError(f"script root {script_root} is not a folder")
    try:
        load_local_settings(script_root)
        config = HostConfig.load(script_root)
    except SettingsError as exc:
        raise StartError(str(exc)) from None
    config.dispatcher.visibility_seconds = _env_seconds(
        "DEVHOST_VISIBILITY_SECONDS", config.dispatcher.visibility_seconds
    )
    configure_logging(config.log_level, getattr(args, "verbose", False))
    notice = storage_provider_notice(
        config.storage_provider,
        "memory (DEVHOST_STORE=memory)" if _memory_store() else "Azure Storage (AzureWebJobsStorage, e.g. Azurite)",
    )
    if notice:
        log.warning("devhost: %s", notice)
    os.chdir(script_root)  # the worker runs with the script root as working directory
    try:
        app = load_function_app(script_root)
    except AppLoadError as exc:
        raise StartError(str(exc)) from None
    try:
        index = AppIndex.from_app(app)
    except Exception as exc:
        raise StartError(f"cannot index the functions of function_app.py: {type(exc).__name__}: {exc}") from None
    store = await open_task_hub_store(config.hub_name)
    host: DevHost | None = None
    try:
        try:
            # Queue triggers poll real queues only with the Azure Storage hub: memory mode touches no storage.
            host = DevHost(
                index,
                store,
                hub=config.hub_name,
                route_prefix=config.route_prefix,
                dispatcher_options=config.dispatcher,
                script_root=str(script_root),
                queue_triggers=not _memory_store(),
                queue_options=config.queues,
                allowed_hosts=getattr(args, "allow_host", None) or (),
                versioning=config.versioning,
            )
            await host.start(args.port)
        except HostStartupError as exc:
            raise StartError(str(exc)) from None
        print(host.banner(), flush=True)
        log.info("Host started (task hub %s, store %s). Press Ctrl+C to stop.", config.hub_name, type(store).__name__)
        await _wait_for_signal()
        log.info("Stopping: finishing in-flight work...")
        await host.stop()
        log.info("devhost stopped.")
        return 0
    finally:
        try:
            await store.release_hub_lease()
        except Exception as exc:
            log.warning("devhost: releasing the task hub lease failed: %s", exc)
        await store.close()


async def _wait_for_signal() -> None:
    """Return on the first SIGINT/SIGTERM; a second one exits at once (a stuck drain)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) > 1:
            print("devhost: forced exit", file=sys.stderr, flush=True)
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    await stop.wait()
