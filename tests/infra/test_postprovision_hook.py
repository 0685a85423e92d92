"""azd's postprovision hook puts the targets' API key into Key Vault (or says how to).

The hook runs against a stand-in `az` on PATH that records each call (and the content of
a `--file` it is given) and answers as Key Vault would, so every branch runs here without
Azure: key given, key absent with and without an existing secret, and a role assignment
that needs a retry to apply.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.infra.infra_files import REPO
from tests.infra.test_main_wiring import _simple_yaml

HOOK = REPO / "infra" / "hooks" / "postprovision.sh"
VAULT, SECRET = "kv-abc123", "target-api-key"

FAKE_AZ = r"""#!/bin/sh
# Records argv (one call a line) and, for --file, the file's content.
echo "$*" >>"$AZ_LOG"
prev=""
for arg in "$@"; do
  if [ "$prev" = "--file" ]; then cat "$arg" >"$AZ_LOG.value"; fi
  prev="$arg"
done
case "$1 $2 $3" in
  "keyvault secret show") [ "${AZ_SECRET_EXISTS:-0}" = 1 ] && exit 0; echo "SecretNotFound" >&2; exit 3 ;;
  "keyvault secret set")
    n=$(grep -c "secret set" "$AZ_LOG")
    if [ "$n" -le "${AZ_SET_FAILURES:-0}" ]; then echo "Forbidden" >&2; exit 1; fi
    exit 0 ;;
esac
echo "unexpected az call: $*" >&2
exit 2
"""


def _run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(FAKE_AZ, encoding="utf-8")
    az.chmod(0o755)
    log = tmp_path / "az.log"
    base = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "AZ_LOG": str(log),
        "AZURE_KEY_VAULT_NAME": VAULT,
        "TARGET_API_KEY_SECRET_NAME": SECRET,
        "POSTPROVISION_RETRY_SECONDS": "0",
    }
    result = subprocess.run(
        ["sh", str(HOOK)], env={**base, **env}, capture_output=True, text=True, timeout=30, check=False
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return result, calls


def test_azure_yaml_runs_the_hook_after_provisioning() -> None:
    config = _simple_yaml((REPO / "azure.yaml").read_text(encoding="utf-8"))
    hooks = config["hooks"]
    assert isinstance(hooks, dict)
    posix = hooks["postprovision"]["posix"]  # type: ignore[index]
    assert posix["shell"] == "sh" and (REPO / posix["run"]).resolve() == HOOK
    assert posix["interactive"] == "false"
    assert os.access(HOOK, os.X_OK)
    # The hook reads these main.bicep outputs (azd passes outputs to hooks as variables).
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    for output in ("AZURE_KEY_VAULT_NAME", "TARGET_API_KEY_SECRET_NAME"):
        assert f"output {output} string" in main


def test_sets_the_secret_from_the_environment_without_putting_it_on_a_command_line(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, TARGET_API_KEY="s3cr3t value")
    assert result.returncode == 0, result.stderr
    (call,) = calls
    assert call.startswith(f"keyvault secret set --vault-name {VAULT} --name {SECRET} --file ")
    assert "s3cr3t" not in call
    assert (tmp_path / "az.log.value").read_text(encoding="utf-8") == "s3cr3t value"  # no trailing newline
    assert f"set secret '{SECRET}' in Key Vault {VAULT}" in result.stdout


def test_retries_while_a_new_role_assignment_applies(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, TARGET_API_KEY="k", AZ_SET_FAILURES="2")
    assert result.returncode == 0, result.stderr
    assert len(calls) == 3


def test_gives_up_with_the_role_it_needs(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, TARGET_API_KEY="k", AZ_SET_FAILURES="9", POSTPROVISION_RETRIES="3")
    assert result.returncode == 1
    assert len(calls) == 3
    assert "Key Vault Secrets Officer" in result.stdout


def test_without_a_key_it_prints_the_exact_command_and_does_not_fail(tmp_path: Path) -> None:
    result, calls = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c.split(" --")[0] for c in calls] == ["keyvault secret show"]
    assert f"az keyvault secret set --vault-name {VAULT} --name {SECRET} --value" in result.stdout


def test_without_a_key_an_existing_secret_is_kept(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, AZ_SECRET_EXISTS="1")
    assert result.returncode == 0, result.stderr
    assert not any("secret set" in c for c in calls)
    assert "left as it is" in result.stdout


def test_outside_azd_it_says_what_is_missing(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, TARGET_API_KEY="k", AZURE_KEY_VAULT_NAME="")
    assert result.returncode != 0
    assert "AZURE_KEY_VAULT_NAME" in result.stderr
    assert calls == []
