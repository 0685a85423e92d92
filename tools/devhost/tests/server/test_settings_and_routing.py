"""host.json / local.settings.json handling and route-template compilation.

Tests internals (not devhost's public API): imports `devhost.server.routing`, `devhost.server.settings`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from devhost.server.routing import RouteError, compile_route
from devhost.server.settings import HostConfig, SettingsError, load_local_settings


def _write(root: Path, name: str, data: object) -> None:
    (root / name).write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")


def test_local_settings_do_not_override_the_environment(tmp_path: Path) -> None:
    _write(tmp_path, "local.settings.json", {"Values": {"A": "file", "B": "file", "N": 5}})
    env = {"A": "shell"}
    values = load_local_settings(tmp_path, env)
    assert env == {"A": "shell", "B": "file", "N": "5"}
    assert values["A"] == "file"
    assert load_local_settings(tmp_path / "missing", {}) == {}


def test_host_json_defaults_and_values(tmp_path: Path) -> None:
    config = HostConfig.load(tmp_path, {})
    assert (config.route_prefix, config.hub_name) == ("api", "TestHubName")
    _write(
        tmp_path,
        "host.json",
        {
            "version": "2.0",
            "logging": {"logLevel": {"default": "Warning"}},
            "extensions": {
                "http": {"routePrefix": ""},
                "durableTask": {
                    "hubName": "%HUB%",
                    "maxConcurrentActivityFunctions": 3,
                    "maxConcurrentOrchestratorFunctions": 2,
                },
            },
        },
    )
    config = HostConfig.load(tmp_path, {"HUB": "MyHub1"})
    assert config.route_prefix == "" and config.hub_name == "MyHub1"
    assert config.dispatcher.max_concurrent_activities == 3
    assert config.dispatcher.max_concurrent_orchestrations == 2
    assert config.log_level == logging.WARNING
    assert config.queues.message_encoding == "base64" and config.queues.max_dequeue_count == 5
    _write(
        tmp_path,
        "host.json",
        {
            "extensions": {
                "queues": {
                    "messageEncoding": "None",
                    "maxDequeueCount": 2,
                    "batchSize": 64,
                    "visibilityTimeout": "00:00:05",
                    "maxPollingInterval": 500,
                }
            }
        },
    )
    queues = HostConfig.load(tmp_path, {}).queues
    assert (queues.message_encoding, queues.max_dequeue_count, queues.batch_size) == ("none", 2, 32)
    assert (queues.visibility_timeout, queues.max_polling_interval) == (5.0, 0.5)


@pytest.mark.parametrize(
    "host",
    [
        "{not json",
        {"extensions": {"durableTask": {"hubName": "%MISSING%"}}},
        {"extensions": {"durableTask": {"hubName": "bad-hub"}}},
        {"extensions": {"durableTask": {"maxConcurrentActivityFunctions": 0}}},
        {"extensions": {"queues": {"messageEncoding": "utf8"}}},
        {"extensions": {"queues": {"visibilityTimeout": "soon"}}},
    ],
)
def test_bad_host_json(tmp_path: Path, host: object) -> None:
    _write(tmp_path, "host.json", host)
    with pytest.raises(SettingsError):
        HostConfig.load(tmp_path, {})


def test_route_templates() -> None:
    t = compile_route("orchestrators/{name}/{id?}")
    assert t.match("orchestrators/a") == {"name": "a"}
    assert t.match("orchestrators/a/b") == {"name": "a", "id": "b"}
    assert t.match("orchestrators/a/b/c") is None
    assert compile_route("items/{id:int}").match("items/12") == {"id": "12"}
    assert compile_route("items/{id:int}").match("items/x") is None
    assert compile_route("items/{id:guid}").match("items/x") is None
    assert compile_route("items/{id:minlength(3)}").match("items/x") == {"id": "x"}  # not enforced
    assert compile_route("files/{*path}").match("files/a/b%20c") == {"path": "a/b c"}
    assert compile_route("v/{page=1}").match("v") == {"page": "1"}
    assert compile_route("/api-ish/").match("API-ISH") == {}
    for bad in ("a/{b", "a/{b}/{b}", "a/{1x}"):
        with pytest.raises(RouteError):
            compile_route(bad)
