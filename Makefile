# The two commands: `make run` (the app locally) and `make test` (the whole suite).
# `make unit` is the fast lane while editing: every test that needs no Azurite, browser or long wait.
.PHONY: run test unit lint bench bootstrap infra-check

PYTEST = .venv/bin/python -m pytest -q -p no:cacheprovider
# make test: two workers (pytest-xdist), a whole module per worker so module fixtures (a devhost process,
# a browser, a preloaded Azurite) are built once; each worker starts its own Azurite. The ten slowest are
# listed so a test that grows slow is seen.
PARALLEL = -n 2 --dist loadscope --durations=10
# Markers are assigned by devhost's pytest plugin (azurite, browser) and by hand (slow); see pyproject.toml.
UNIT_TESTS = -m "not azurite and not browser and not slow"

bootstrap:
	@scripts/bootstrap.sh

# The app on http://localhost:7071 (PORT=...) with Azurite from node_modules; Ctrl+C stops both.
run: bootstrap
	@scripts/run-local.sh

test: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m ruff format --check .
	.venv/bin/python -m mypy
	cd tools/devhost && ../../.venv/bin/python -m mypy
	scripts/infra-checks.sh
	$(PYTEST) $(PARALLEL) tools/devhost
	$(PYTEST) $(PARALLEL)

# devhost's fast lane is ~15 s of CPU: two workers halve its wall time; the app's is a few seconds.
unit: bootstrap
	$(PYTEST) -n 2 $(UNIT_TESTS) tools/devhost
	$(PYTEST) $(UNIT_TESTS)

lint: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m ruff format --check .
	.venv/bin/python -m mypy
	cd tools/devhost && ../../.venv/bin/python -m mypy

# Engine bench (memory hub), then devhost side by side with durabletask and DBOS (bench/README.md).
# The peers are installed into their own venv, .venv-bench, never into the app's .venv.
bench: bootstrap
	scripts/bench-peers-venv.sh
	.venv/bin/python bench/engine_bench.py --replay full,incremental --growth 500,1000,2000
	.venv/bin/python bench/peers.py

# checkov security scan of infra/ (Bicep) in its own venv, .venv-infra; part of `make test`.
infra-check:
	@scripts/infra-checks.sh
