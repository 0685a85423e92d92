# The two commands: `make run` (the app locally) and `make test` (the whole suite).
.PHONY: run test lint bench bootstrap infra-check

bootstrap:
	@scripts/bootstrap.sh

# The app on http://localhost:7071 (PORT=...) with Azurite from node_modules; Ctrl+C stops both.
run: bootstrap
	@scripts/run-local.sh

test: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m mypy
	cd tools/devhost && ../../.venv/bin/python -m mypy
	scripts/infra-checks.sh
	.venv/bin/python -m pytest -q tools/devhost
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m mypy
	cd tools/devhost && ../../.venv/bin/python -m mypy

# Engine bench (memory hub), then devhost side by side with durabletask and DBOS (bench/README.md).
# The peers are installed into their own venv, .venv-bench, never into the app's .venv.
bench: bootstrap
	scripts/bench-peers-venv.sh
	.venv/bin/python bench/engine_bench.py
	.venv/bin/python bench/peers.py

# checkov security scan of infra/ (Bicep) in its own venv, .venv-infra; part of `make test`.
infra-check:
	@scripts/infra-checks.sh
