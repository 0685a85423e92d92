# Shared by the set-up scripts (bootstrap.sh, infra-checks.sh, bench-peers-venv.sh); source it, then call
#
#   ensure_venv <venv-dir> <requirements-file> [<file whose changes also mean reinstall>...]
#
# It creates <venv-dir> with Python 3.11 (PYTHON=... to choose another interpreter) when missing, and
# installs <requirements-file> into it when the hash of the listed files differs from the one stamped in
# <venv-dir>/.requirements.sha by the last install. Idempotent: with unchanged files it does nothing.

ensure_venv() {
  local venv=$1 requirements=$2
  local py=${PYTHON:-python3.11}
  command -v "$py" >/dev/null 2>&1 || py=python3
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  local stamp=$venv/.requirements.sha want
  want=$(cat "${@:2}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
  fi
}
