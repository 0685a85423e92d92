"""Import the user's function app the way the Python worker does.

The worker imports `function_app.py` from the script root and takes the one top-level
`azure.functions.FunctionRegister` instance (a `func.FunctionApp`, a `df.DFApp`, ...) whatever
its variable name; none or more than one is an indexing error
(azure-functions-python-worker `azure_functions_worker/loader.py` 242-262, `index_function_app`,
at 7e6acf3). Everything a user can get wrong here is an `AppLoadError` whose message is one line.

The Durable SDK also runs checks on host.json when it is first imported
(`azure/durable_functions/__init__.py`: `validate_extension_bundles`, `validate_v1_programming_model`),
reading host.json from the *current directory*. Under the worker that directory is the script
root. devhost imports the SDK itself before it knows the script root, so `import_sdk` imports it
from a neutral directory and `load_function_app` runs the SDK's checks once the script root is the
current directory, turning a failure into one line instead of the SDK's traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_MODULE = "function_app"
_SDK = "azure.durable_functions"


class AppLoadError(Exception):
    """The app could not be imported, or it does not define exactly one function app."""


def import_sdk() -> None:
    """Import the Durable SDK without its import-time host.json check reading the caller's directory.

    Idempotent; called when devhost itself is imported."""
    if _SDK in sys.modules:
        return
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the current folder was deleted: the SDK's check would crash on Path.cwd(); nothing to restore
        cwd = None
    os.chdir(Path(__file__).parent)  # no host.json here
    try:
        importlib.import_module(_SDK)
    except Exception:  # noqa: BLE001 - the app's own import reports it with the user's file
        pass
    finally:
        if cwd is not None:
            os.chdir(cwd)


def run_sdk_host_json_checks(script_root: Path) -> None:
    """The SDK's import-time host.json checks, as they run under the worker (cwd = script root)."""
    try:
        sdk = importlib.import_module(_SDK)
    except Exception as exc:  # noqa: BLE001 - a broken SDK install: say so in one line
        raise AppLoadError(f"cannot import {_SDK}: {type(exc).__name__}: {exc}") from None
    cwd = os.getcwd()
    os.chdir(script_root)
    try:
        for check in ("validate_extension_bundles", "validate_v1_programming_model"):
            func = getattr(sdk, check, None)
            if callable(func):
                func()
    except Exception as exc:  # noqa: BLE001 - JSONDecodeError, OSError, ...
        raise AppLoadError(f"host.json: azure-functions-durable cannot read it ({type(exc).__name__}: {exc})") from None
    finally:
        os.chdir(cwd)


def _import_error_line(exc: BaseException, path: Path) -> str:
    """`function_app.py failed to import: NameError: ... (orchestrators/x.py:12)`: where in the user's code."""
    root = str(path.parent)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({os.path.relpath(exc.filename, root)}:{exc.lineno})"
        return f"{path.name} failed to import: SyntaxError: {exc.msg}{where}"
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f for f in frames if f.filename.startswith(root + os.sep) and f"{os.sep}site-packages{os.sep}" not in f.filename
    ]
    where = f" ({os.path.relpath(user[-1].filename, root)}:{user[-1].lineno})" if user else ""
    return f"{path.name} failed to import: {type(exc).__name__}: {exc}{where}"


def find_function_app(module: ModuleType, file_name: str = "function_app.py") -> Any:
    """The one top-level FunctionRegister instance of `module`, as the worker's `index_function_app` finds it.

    Like the worker, every name in the module counts (imported ones too), and the same instance
    under two names is two instances."""
    from azure.functions import FunctionRegister

    found = [
        (name, value) for name in module.__dir__() if isinstance(value := getattr(module, name, None), FunctionRegister)
    ]
    if not found:
        raise AppLoadError(
            f"{file_name} defines no function app: the worker needs one top-level "
            "func.FunctionApp / df.DFApp instance (any variable name)"
        )
    if len(found) > 1:
        names = ", ".join(f"{name} ({type(value).__name__})" for name, value in found)
        raise AppLoadError(
            f"{file_name} defines more than one function app: {names}; the worker accepts "
            "exactly one top-level FunctionRegister instance (register the others as Blueprints)"
        )
    return found[0][1]


def _import(module_name: str, root: Path) -> tuple[ModuleType, str]:
    """Import `module_name` with `root` first on sys.path; a top-level `<root>/<name>.py` is executed afresh."""
    path = root / f"{module_name}.py"
    if "." not in module_name and path.is_file():
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise AppLoadError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(module_name, None)
            raise AppLoadError(_import_error_line(exc, path)) from None
        return module, path.name
    if module_name == DEFAULT_MODULE:
        raise AppLoadError(f"no {DEFAULT_MODULE}.py in {root} (use --script-root)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import '{module_name}' from {root}: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise AppLoadError(f"{module_name} failed to import: {type(exc).__name__}: {exc}") from None
    return module, f"{module_name}.py"


def load_function_app(script_root: str | Path | None = None, spec: str = DEFAULT_MODULE) -> Any:
    """Import the app from `script_root` (default: the current directory) and return its function app.

    `spec` is `module` (default `function_app`; the one FunctionRegister instance is taken, as the
    worker does) or `module:attribute` (that attribute, for tools pointed at a second app). The
    script root goes first on `sys.path` so the app's own imports resolve as under the host.
    """
    module_name, _, attribute = spec.partition(":")
    root = Path(script_root or ".").resolve()
    if not root.is_dir():
        raise AppLoadError(f"script root {root} is not a folder")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    run_sdk_host_json_checks(root)
    module, file_name = _import(module_name or DEFAULT_MODULE, root)
    if not attribute:
        return find_function_app(module, file_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module '{module_name}' has no attribute '{attribute}'") from None
