#!/usr/bin/env bash
# Static security scan of infra/ (Bicep) with checkov. checkov brings ~100 packages, so
# it lives in its own venv, .venv-infra, built from infra/requirements-checks.txt and
# never mixed with the app's .venv. Fails on any failed check, and also when checkov
# could not parse a Bicep file (it would otherwise report "0 failed" for a file it
# never read). Skips are `// checkov:skip=<id>: <reason>` comments in the Bicep.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/venv.sh
VENV=.venv-infra
ensure_venv "$VENV" infra/requirements-checks.txt

mkdir -p .artifacts/checkov
report=.artifacts/checkov/results_json.json
rm -f "$report"
# --skip-download: use only the checks shipped in the pinned package; no Prisma Cloud calls.
set +e
"$VENV/bin/checkov" --framework bicep -d infra --skip-download --compact \
  -o json --output-file-path .artifacts/checkov >/dev/null 2>.artifacts/checkov/checkov.log
status=$?
set -e
if [ ! -s "$report" ]; then
  echo "checkov produced no report (exit $status); see .artifacts/checkov/checkov.log" >&2
  exit 1
fi

"$VENV/bin/python" - "$report" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
report = report[0] if isinstance(report, list) else report
summary, results = report["summary"], report["results"]
print(
    f"checkov bicep: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped, "
    f"{summary['parsing_errors']} parsing errors, {summary['resource_count']} resources"
)
for check in results.get("failed_checks", []):
    lines = "-".join(map(str, check["file_line_range"]))
    print(f"  FAILED  {check['check_id']} {check['resource']} ({check['file_path']}:{lines}) {check['check_name']}")
for check in results.get("skipped_checks", []):
    print(f"  skipped {check['check_id']} {check['resource']}: {check['check_result'].get('suppress_comment', '').strip()}")
ok = summary["failed"] == 0 and summary["parsing_errors"] == 0 and summary["resource_count"] > 0
if not ok:
    sys.exit("checkov: failed checks or unparsed Bicep files")
PY

# The pytest infra tests read the Bicep with tests/infra/bicep_parser.py; make sure
# checkov's own parser (pycep) reads every declaration the same way.
"$VENV/bin/python" -m tests.infra.pycep_crosscheck
