"""Run by the clean deploy venv's Python (`python -I index_app.py PACKAGE_DIR`), never by pytest.

Does what the Python worker does when the host starts it: import function_app from the
package directory, then index the app's functions and their bindings (the same
`get_functions()` the worker's indexer calls, which also validates them). Prints one JSON
document: the functions, the modules that were imported from outside the package (to show
that nothing came from a dev-only install), and what the telemetry exporter would
authenticate with.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(package_dir: str) -> None:
    sys.path.insert(0, package_dir)
    function_app = importlib.import_module("function_app")
    registers = [v for v in vars(function_app).values() if hasattr(v, "get_functions") and hasattr(v, "route")]
    if len(registers) != 1:
        raise SystemExit(f"expected one FunctionApp in function_app.py, found {len(registers)}")
    functions = {}
    for function in registers[0].get_functions():
        functions[function.get_function_name()] = json.loads(function.get_function_json())["bindings"]

    # With PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true the worker calls the Azure Monitor
    # distro's configure_azure_monitor(); its exporter picks the credential from
    # APPLICATIONINSIGHTS_AUTHENTICATION_STRING. Check that the installed versions do (without
    # configuring anything: that would start exporters that send to Azure).
    telemetry: dict[str, object] = {}
    try:
        importlib.import_module("azure.monitor.opentelemetry")
        base = importlib.import_module("azure.monitor.opentelemetry.exporter.export._base")
    except ImportError as exc:
        telemetry["distro"] = False
        telemetry["error"] = str(exc)
    else:
        calls: list[dict[str, object]] = []

        class RecordingCredential:  # stands in for ManagedIdentityCredential: records, no network
            def __init__(self, **kwargs: object) -> None:
                calls.append(kwargs)

        base.ManagedIdentityCredential = RecordingCredential  # type: ignore[attr-defined]  # a test seam
        credential = base._get_authentication_credential()
        telemetry["distro"] = True
        telemetry["managed_identity"] = calls[0] if credential is not None and calls else None
        # The worker calls configure_azure_monitor() itself; an app that also called it at
        # import would set up a second pipeline and export everything twice.
        trace = importlib.import_module("opentelemetry.trace")
        telemetry["configured_by_app"] = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    print(json.dumps({"functions": functions, "telemetry": telemetry, "prefix": sys.prefix}))


if __name__ == "__main__":
    main(sys.argv[1])
