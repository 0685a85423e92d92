"""`python -m devhost ...` (commands live in devhost/cli.py)."""

from .cli import main

raise SystemExit(main())
