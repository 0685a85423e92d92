#!/usr/bin/env bash
# `make run`: the app on http://localhost:${PORT:-7071}, as `func start` would run it, with
# its storage (task hub, report blobs) in Azurite.
#
# - Azurite comes from node_modules (scripts/bootstrap.sh) with its data in .azurite/, on
#   the default ports 10000-10002 (AZURITE_BLOB_PORT / _QUEUE_PORT / _TABLE_PORT to move it,
#   AZURITE_LOCATION for another data folder).
#   If something already listens on the blob port, that Azurite is used and left running.
# - devhost serves the app (`python -m devhost start`) until Ctrl+C or SIGTERM; then the
#   Azurite started here is stopped too. The exit code is devhost's.
#
# Settings come from local.settings.json; variables already set in the environment win.
# With non-default ports the Azurite connection string and the simulator's URL follow them
# (unless AzureWebJobsStorage / TARGETS_BASE_URL are set).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-7071}
BLOB_PORT=${AZURITE_BLOB_PORT:-10000}
QUEUE_PORT=${AZURITE_QUEUE_PORT:-10001}
TABLE_PORT=${AZURITE_TABLE_PORT:-10002}
AZURITE_LOCATION=${AZURITE_LOCATION:-.azurite}
AZURITE=node_modules/.bin/azurite
PYTHON=.venv/bin/python
# Azurite's well-known development account key (public, documented by Microsoft).
DEV_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

say() { echo "run-local: $*" >&2; }

listening() {  # true when something accepts TCP connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

[ -x "$PYTHON" ] || { say "$PYTHON is missing; run scripts/bootstrap.sh (or make run)"; exit 1; }

azurite_pid=""
devhost_pid=""

stop_azurite() {
  if [ -n "$azurite_pid" ] && kill -0 "$azurite_pid" 2>/dev/null; then
    kill -TERM "$azurite_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$azurite_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
    say "Azurite stopped."
  fi
}
on_signal() {  # forward the signal to devhost (it drains, then exits); Azurite is stopped on EXIT
  if [ -n "$devhost_pid" ]; then
    kill -"$1" "$devhost_pid" 2>/dev/null || true
  else
    exit 130
  fi
}
trap stop_azurite EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM HUP  # HUP: the terminal was closed

if listening "$BLOB_PORT"; then
  say "something already listens on port $BLOB_PORT; using that Azurite."
else
  [ -x "$AZURITE" ] || { say "$AZURITE is missing; run scripts/bootstrap.sh (or make run)"; exit 1; }
  mkdir -p "$AZURITE_LOCATION"
  set -m  # own process group, so Ctrl+C reaches this script, which stops Azurite after devhost
  AZURITE_ACCEPT_EULA=true "$AZURITE" --location "$AZURITE_LOCATION" --silent --skipApiVersionCheck \
    --disableTelemetry --blobHost 127.0.0.1 --blobPort "$BLOB_PORT" --queueHost 127.0.0.1 \
    --queuePort "$QUEUE_PORT" --tableHost 127.0.0.1 --tablePort "$TABLE_PORT" \
    </dev/null >"$AZURITE_LOCATION/azurite.log" 2>&1 &
  azurite_pid=$!
  set +m
  say "starting Azurite (pid $azurite_pid, ports $BLOB_PORT-$TABLE_PORT, data in $AZURITE_LOCATION/)..."
  for _ in $(seq 300); do
    if ! kill -0 "$azurite_pid" 2>/dev/null; then
      say "Azurite exited; its log ($AZURITE_LOCATION/azurite.log):"
      tail -20 "$AZURITE_LOCATION/azurite.log" >&2 || true
      azurite_pid=""
      exit 1
    fi
    if listening "$BLOB_PORT" && listening "$QUEUE_PORT" && listening "$TABLE_PORT"; then
      break
    fi
    sleep 0.1
  done
  listening "$TABLE_PORT" || { say "Azurite did not answer within 30 s (see $AZURITE_LOCATION/azurite.log)"; exit 1; }
fi

if [ "$BLOB_PORT:$QUEUE_PORT:$TABLE_PORT" != "10000:10001:10002" ] && [ -z "${AzureWebJobsStorage:-}" ]; then
  export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$DEV_KEY;\
BlobEndpoint=http://127.0.0.1:$BLOB_PORT/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$QUEUE_PORT/devstoreaccount1;\
TableEndpoint=http://127.0.0.1:$TABLE_PORT/devstoreaccount1;"
fi
if [ "$PORT" != 7071 ] && [ -z "${TARGETS_BASE_URL:-}" ]; then
  export TARGETS_BASE_URL="http://127.0.0.1:$PORT/api/simulator"
fi

set -m  # own process group: exactly one SIGINT (ours) reaches devhost, so it drains instead of force-exiting
"$PYTHON" -m devhost start --port "$PORT" --script-root . &
devhost_pid=$!
set +m
while kill -0 "$devhost_pid" 2>/dev/null; do
  wait "$devhost_pid" || true  # returns early when a trapped signal arrives; devhost is still draining
done
wait "$devhost_pid" && status=0 || status=$?  # its exit code (bash keeps it for finished jobs)
exit "$status"
