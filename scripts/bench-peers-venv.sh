#!/usr/bin/env bash
# The peers of bench/peers.py (durabletask, dbos) live in their own venv, .venv-bench, built
# from bench/requirements-peers.txt: they are never dependencies of the app and never mixed
# with its .venv. Idempotent: re-running with an unchanged requirements file does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv-bench
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp=$VENV/.requirements.sha
want=$(sha256sum bench/requirements-peers.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r bench/requirements-peers.txt
  echo "$want" > "$stamp"
fi
