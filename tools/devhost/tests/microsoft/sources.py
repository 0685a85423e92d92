"""Where Microsoft's apps come from: each is run byte for byte as published, never edited.

This repository does not carry their code (the workplace's rule for public code read through
its search tool: it stays out of commits). Each test session copies every app into a temporary
folder from the first local source that has it:

1. `$DEVHOST_MICROSOFT_APPS/<name>/` (default `<checkout>/.artifacts/microsoft-apps/apps/<name>/`,
   git-ignored, else `~/.cache/devhost/microsoft-apps/apps/<name>/`): an unchanged copy of
   `repo`/`path` at `commit`, for apps published nowhere else this machine can reach (the
   extension's BasicPython, two samples-v2 apps);
2. the `azure-functions-durable` 1.7.0 sdist from PyPI (it ships `samples-v2/`), fetched once
   with pip into `<checkout>/.artifacts/microsoft-apps/` and checked against its sha256;
3. a git snapshot of `repo` under `$DEVHOST_SOURCE_MIRRORS` (default `/work/.mirror`), at `commit`.

An app found nowhere is skipped with a reason naming what to copy where. All are MIT-licensed;
the copy gets a SOURCE file naming repository, path, commit or release, and licence.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests import PROJECT_ROOT

CACHE = PROJECT_ROOT / ".artifacts" / "microsoft-apps"
SDIST = "azure_functions_durable-1.7.0.tar.gz"
SDIST_REQUIREMENT = "azure-functions-durable==1.7.0"
SDIST_SHA256 = "8ba754a44fa57fbb2c314d48fea38a3cf4b43919ff2f6df42ef42b7c8f4a8d52"
DURABLE_PYTHON = "Azure/azure-functions-durable-python"
EXTENSION = "Azure/azure-functions-durable-extension"
QUICKSTART = "Azure-Samples/durable-functions-quickstart-python-azd"


@dataclass(frozen=True)
class App:
    name: str
    repo: str
    path: str
    commit: str | None = None  # the copy we run; None: the one in the sdist
    in_sdist: bool = False


APPS = {
    app.name: app
    for app in (
        App("function_chaining", DURABLE_PYTHON, "samples-v2/function_chaining", in_sdist=True),
        App("fan_in_fan_out", DURABLE_PYTHON, "samples-v2/fan_in_fan_out", in_sdist=True),
        App("blueprint", DURABLE_PYTHON, "samples-v2/blueprint", in_sdist=True),
        App("orchestration_versioning", DURABLE_PYTHON, "samples-v2/orchestration_versioning", in_sdist=True),
        App("openai_agents", DURABLE_PYTHON, "samples-v2/openai_agents", in_sdist=True),
        App(
            "serialize_arguments",
            DURABLE_PYTHON,
            "samples-v2/serialize_arguments",
            "6410ea92ea08721190e8b05e351df39c752552fb",
        ),
        App(
            "simple_sub_orchestration",
            DURABLE_PYTHON,
            "samples-v2/simple_sub_orchestration",
            "6410ea92ea08721190e8b05e351df39c752552fb",
        ),
        App("durable_quickstart", QUICKSTART, "src", "d402727361bbbd24ea31151164cccf7000069849"),
        App("BasicPython", EXTENSION, "test/e2e/Apps/BasicPython", "db49377ca307f9799fd465b5836d050d137e9c81"),
    )
}


class Unavailable(Exception):
    """No local source has the app; the message says how to provide it."""


# A machine-wide copy outlives any one checkout (a clean clone for CI finds it too).
USER_CACHE = Path.home() / ".cache" / "devhost" / "microsoft-apps" / "apps"


def _local_copies() -> Path:
    if configured := os.environ.get("DEVHOST_MICROSOFT_APPS"):
        return Path(configured)
    checkout = CACHE / "apps"
    return checkout if checkout.is_dir() or not USER_CACHE.is_dir() else USER_CACHE


def _sdist() -> Path | None:
    """The sdist, downloaded once with pip (PyPI) and checked; None when it cannot be had."""
    path = CACHE / SDIST
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    SDIST_REQUIREMENT,
                    "-d",
                    str(CACHE),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (subprocess.SubprocessError, OSError):
            return None
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != SDIST_SHA256:
        return None
    return path


def _from_sdist(app: App, dest: Path) -> str | None:
    sdist = _sdist()
    if sdist is None:
        return None
    root = SDIST.removesuffix(".tar.gz")
    prefix = f"{root}/{app.path}/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        if not members:
            return None
        for member in members:
            target = dest / member.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
        license_file = tar.extractfile(f"{root}/LICENSE")
        assert license_file is not None
        (dest / "LICENSE").write_bytes(license_file.read())
    return f"PyPI {SDIST_REQUIREMENT} sdist (sha256 {SDIST_SHA256}), {app.path}"


def _from_mirror(app: App, dest: Path) -> str | None:
    mirrors = Path(os.environ.get("DEVHOST_SOURCE_MIRRORS") or "/work/.mirror")
    git_dir = mirrors / app.repo.replace("/", "+") / "repo"
    if app.commit is None or not (git_dir / "HEAD").is_file():
        return None
    try:
        archive = subprocess.run(
            ["git", f"--git-dir={git_dir}", "archive", "--format=tar", app.commit, app.path],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        licence = next(
            (
                subprocess.run(
                    ["git", f"--git-dir={git_dir}", "show", f"{app.commit}:{name}"], capture_output=True, timeout=60
                ).stdout
                for name in ("LICENSE", "LICENSE.md", "LICENSE.txt")
                if subprocess.run(
                    ["git", f"--git-dir={git_dir}", "cat-file", "-e", f"{app.commit}:{name}"], capture_output=True
                ).returncode
                == 0
            ),
            b"",
        )
    except (subprocess.SubprocessError, OSError):
        return None
    prefix = app.path.rstrip("/") + "/"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix):
                target = dest / member.name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    if licence:
        (dest / "LICENSE").write_bytes(licence)
    return f"{app.repo} at {app.commit}, {app.path} (local git snapshot)"


def _from_copies(app: App, dest: Path) -> str | None:
    copy = _local_copies() / app.name
    if not (copy / "function_app.py").is_file():
        return None
    shutil.copytree(copy, dest, dirs_exist_ok=True)
    return f"{app.repo} at {app.commit or 'the sdist'}, {app.path} (copy in {copy})"


def materialize(name: str, dest: Path) -> Path:
    """Copy app `name` unchanged into `dest` (created) and return it; Unavailable if no source has it."""
    app = APPS[name]
    for take in (_from_copies, _from_sdist if app.in_sdist else None, _from_mirror):
        if take is None:
            continue
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        origin = take(app, dest)
        if origin is not None:
            (dest / "SOURCE").write_text(f"{app.repo}: {app.path}\nfrom: {origin}\nlicence: MIT\n")
            return dest
    where = f"{app.repo} at {app.commit}" if app.commit else f"the {SDIST_REQUIREMENT} sdist"
    raise Unavailable(
        f"{name}: no local copy of {app.path} from {where}; put an unchanged copy in "
        f"{_local_copies() / name} (or set DEVHOST_MICROSOFT_APPS)"
    )
