"""The deployment package and a clean Python environment for it, built as Azure builds them.

`func azure functionapp publish` (and `azd deploy`) zip the project directory minus the
paths `.funcignore` matches (gitignore syntax), and the Flex Consumption remote build runs
`pip install -r requirements.txt` for it. `build_package` does the first; `clean_venv`
does the second into a venv that holds nothing else, cached by the hash of
requirements.txt (and the Python version) under .artifacts/, so only a change of
requirements pays for the install. pip's own cache makes even that mostly offline.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_ROOT = REPO / ".artifacts" / "deploy-venv"


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    regex: re.Pattern[str]
    dir_only: bool
    anchored: bool

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return bool(self.regex.fullmatch(relative))
        return bool(self.regex.fullmatch(relative.rsplit("/", 1)[-1]))


def _glob_regex(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def parse_ignore_file(text: str) -> list[IgnoreRule]:
    """gitignore rules: `#` comments, trailing `/` = directories only, a `/` inside = anchored."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise ValueError(f".funcignore negation ({line!r}) is not supported by this builder")
        dir_only = line.endswith("/")
        body = line.rstrip("/")
        anchored = "/" in body
        rules.append(IgnoreRule(line, _glob_regex(body.lstrip("/")), dir_only, anchored))
    return rules


def is_ignored(rules: list[IgnoreRule], relative: str, is_dir: bool) -> bool:
    return any(rule.matches(relative, is_dir) for rule in rules)


def package_files(root: Path = REPO) -> list[str]:
    """Relative paths (posix) of every file the deployment package would contain."""
    rules = parse_ignore_file((root / ".funcignore").read_text(encoding="utf-8"))
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(rules, prefix + d, is_dir=True))
        files.extend(prefix + f for f in sorted(filenames) if not is_ignored(rules, prefix + f, is_dir=False))
    return files


def build_package(destination: Path, root: Path = REPO) -> list[str]:
    files = package_files(root)
    for relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    return files


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def clean_venv(requirements: Path = REPO / "requirements.txt") -> Path:
    """A venv with exactly requirements.txt installed (and `pip check` clean); cached by hash."""
    digest = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = VENV_ROOT / digest
    if (venv / ".complete").is_file():
        return venv
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    staging = VENV_ROOT / f"{digest}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
    pip = [str(_venv_python(staging)), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-r", str(requirements)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*pip, "check"], check=True)
    (staging / ".complete").write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    for old in VENV_ROOT.iterdir():  # keep one finished venv: the one for the current requirements
        if old.is_dir() and ".tmp-" not in old.name and old.name != digest:
            shutil.rmtree(old, ignore_errors=True)
    try:
        staging.rename(venv)
    except OSError:  # a concurrent run finished first; use its venv
        shutil.rmtree(staging, ignore_errors=True)
    return venv


def venv_python(requirements: Path = REPO / "requirements.txt") -> Path:
    return _venv_python(clean_venv(requirements))
