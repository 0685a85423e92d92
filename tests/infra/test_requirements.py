"""The pins in requirements.txt (deployed) and requirements-dev.txt (devhost, tests) agree.

requirements-dev.txt includes requirements.txt, so one venv holds both. OpenTelemetry is
needed by both sides: the Azure Monitor distro the Python worker uses in Azure (its
instrumentations fix opentelemetry-api through opentelemetry-semantic-conventions) and
devhost's otel extra. pip cannot install two versions of one package, so the core packages,
which are released together on one version number, must be pinned on one version, and it
must be one devhost's otel extra accepts.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.infra.infra_files import REPO

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$")


def pins(name: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.split("#", 1)[0].strip())
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_pins_parse_from_both_files() -> None:
    # Guards the tests below against silently comparing nothing.
    assert "azure-monitor-opentelemetry" in pins("requirements.txt")
    assert any(name.startswith("opentelemetry-") for name in pins("requirements-dev.txt"))


def test_a_package_pinned_in_both_files_has_one_version() -> None:
    deployed, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    shared = deployed.keys() & dev.keys()
    differing = {name: (deployed[name], dev[name]) for name in shared if deployed[name] != dev[name]}
    assert not differing, f"pinned differently in requirements.txt and requirements-dev.txt: {differing}"


def test_opentelemetry_core_is_on_one_version_devhost_accepts() -> None:
    both = pins("requirements.txt") | pins("requirements-dev.txt")
    # Core packages (api, sdk, exporters, proto) share a 1.x version; the 0.x betas
    # (semantic conventions, instrumentations) follow from them and are not pinned here.
    core = {name: version for name, version in both.items() if name.startswith("opentelemetry-") and "b" not in version}
    assert {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= core.keys()
    assert len(set(core.values())) == 1, f"OpenTelemetry core pinned on several versions: {core}"
    version = next(iter(core.values()))
    project = tomllib.loads((REPO / "tools/devhost/pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in project["optional-dependencies"]["otel"]:
        requirement = Requirement(spec)
        assert requirement.specifier.contains(version), f"devhost[otel] needs {spec}; pinned {version}"
