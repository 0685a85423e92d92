"""devhost's own tests (run from the checkout's root: `make test`, or `pytest tools/devhost`).

DEVHOST_ROOT is this distribution's folder; PROJECT_ROOT the checkout that holds it (the
template app, node_modules with Azurite, .artifacts for screenshots).
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEVHOST_ROOT = Path(__file__).resolve().parents[1]
PROJECT_ROOT = DEVHOST_ROOT.parents[1]


def import_file(path: Path, name: str, *, once: bool = False) -> ModuleType:
    """Run `path` as a module called `name`, not through sys.path: the test apps are all `function_app.py`.

    `once`: the module is kept in sys.modules under `name` and later calls return it (an app whose functions
    the SDK may index only once); otherwise every call runs the file afresh (an app a test has just written)."""
    if once and name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if once:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
