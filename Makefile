# The two commands: `make run` (the app locally) and `make test` (the whole suite).
.PHONY: run test lint bench bootstrap infra-check

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m mypy
	scripts/infra-checks.sh
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/python -m ruff check .
	.venv/bin/python -m mypy

bench: bootstrap
	.venv/bin/python bench/engine_bench.py

# checkov security scan of infra/ (Bicep) in its own venv, .venv-infra; part of `make test`.
infra-check:
	@scripts/infra-checks.sh
