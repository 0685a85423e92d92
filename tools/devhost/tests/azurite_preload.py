"""An Azurite whose tables are filled before it starts, through Azurite's own persistence layer.

For fixtures that need thousands of rows (the 10,000-instance hub of dashboard/test_scale.py): Azurite
answers each insert over HTTP with a scan of every row sharing the new row's RowKey (all Instances rows
have RowKey ''), so such a table costs minutes to fill through any client, and entity-group transactions
cannot help (each instance is its own partition). azurite_preload.js writes the rows into Azurite's
database file with Azurite's own code (the pinned version in package-lock.json); Azurite then starts on
that folder as it would after a restart. The rows come from devhost's own row codec, as the store writes them.

Tests internals (not devhost's public API): imports `devhost.azurite`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azure.data.tables._serialize import _add_entity_properties  # the SDK's own wire form (with @odata.type)

from devhost.azurite import ACCOUNT, Azurite, azurite_bin, start_azurite

SCRIPT = Path(__file__).with_name("azurite_preload.js")


def start_azurite_with_tables(location: Path, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> Azurite:
    """Write `tables` (name -> entities, as azure-data-tables takes them) into `location`, then start Azurite
    there on free ports. The caller stops it (the folder is the caller's)."""
    binary, node = azurite_bin(), shutil.which("node")
    assert binary is not None and binary.exists() and node, "Azurite (node_modules) and node are needed"
    package = binary.resolve().parents[2]  # node_modules/azurite/dist/src/azurite.js -> node_modules/azurite
    payload = {
        "account": ACCOUNT,
        "tables": {name: [_add_entity_properties(dict(e)) for e in entities] for name, entities in tables.items()},
    }
    done = subprocess.run(
        [node, str(SCRIPT), str(package), str(location)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"preloading Azurite's tables failed (Azurite's internals changed?):\n{done.stderr}"
    return start_azurite(location=location)
