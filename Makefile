# The two commands: `make run` (the app locally) and `make test` (the whole suite).
.PHONY: run test lint bench bootstrap

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	.venv/bin/python -m ruff check devhost tests bench
	.venv/bin/python -m mypy
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/python -m ruff check devhost tests bench
	.venv/bin/python -m mypy

bench: bootstrap
	.venv/bin/python bench/engine_bench.py
