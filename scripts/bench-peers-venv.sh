#!/usr/bin/env bash
# The peers of bench/peers.py (durabletask, dbos) live in their own venv, .venv-bench, built
# from bench/requirements-peers.txt: they are never dependencies of the app and never mixed
# with its .venv. Idempotent: re-running with an unchanged requirements file does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/venv.sh
ensure_venv .venv-bench bench/requirements-peers.txt
