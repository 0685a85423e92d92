"""devhost's own tests (run from the checkout's root: `make test`, or `pytest tools/devhost`).

DEVHOST_ROOT is this distribution's folder; PROJECT_ROOT the checkout that holds it (the
template app, node_modules with Azurite, .artifacts for screenshots).
"""

from pathlib import Path

DEVHOST_ROOT = Path(__file__).resolve().parents[1]
PROJECT_ROOT = DEVHOST_ROOT.parents[1]
