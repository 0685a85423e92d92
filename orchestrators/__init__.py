"""Orchestrator blueprints: deterministic generators, no I/O (activities do that)."""
