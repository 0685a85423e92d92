"""Session-wide fixtures shared by all test packages: devhost's pytest plugin gives `durable`
(a harness on function_app.app) and `azurite_connection_string` (a private Azurite)."""

pytest_plugins = ["devhost.pytest_plugin"]
