"""Benchmark: the size of ``GET /api/dynamics/fields/icons`` (every icon of a table at once).

``python -m bench.icons [--columns 400]``

Real pieces: the Dataverse emulator (HTTPS) and the real Dataverse client read the contact and account
metadata; the answer is rendered exactly as the endpoint renders it (``IconMatrixPage``). A synthetic
table of ``--columns`` columns (the contact columns repeated under new names, as a customised
environment has) shows how the answer grows. Printed: columns, targets, distinct outcomes, bytes of
the JSON body and of its gzip, the time to build the matrix. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import time

from core.adapters.dataverse.client import DataverseClient
from core.domain.catalog import Entity
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.icon_matrix import icon_matrix, targets
from core.entrypoints.icons_api import IconMatrixPage
from core.services.dynamics.fields import IconListing
from core.services.dynamics.metadata_cache import MetadataCache
from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

TOKEN = "bench-token"


def _measure(label: str, entity: str, columns: dict[str, DynamicsColumn]) -> dict[str, object]:
    wanted = targets(Entity.CONTACT if entity == "contact" else Entity.COMPANY)
    started = time.perf_counter()
    matrix = icon_matrix(columns, wanted)
    build_ms = (time.perf_counter() - started) * 1000
    page = IconMatrixPage.of(IconListing(entity, "https://example.crm.dynamics.com", "v", matrix))
    body = json.dumps(page.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")).encode()
    return {
        "table": label,
        "columns": len(columns),
        "targets": len(wanted),
        "outcomes": len(matrix.outcomes),
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body)),
        "build_ms": round(build_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=400)
    args = parser.parse_args()
    emulator = DataverseEmulator(accepted_tokens=(TOKEN,))
    emulator.start()
    try:
        client = DataverseClient(emulator.url, lambda _force: TOKEN, session=trusting_session())
        cache = MetadataCache()
        contact = cache.columns(client, "contact")
        account = cache.columns(client, "account")
    finally:
        emulator.stop()
    synthetic: dict[str, DynamicsColumn] = {}
    base = list(contact.values())
    n = 0
    while len(synthetic) < args.columns:
        column = base[n % len(base)]
        name = f"{column.logical_name}_{n // len(base)}" if n >= len(base) else column.logical_name
        synthetic[name] = dataclasses.replace(column, logical_name=name)
        n += 1
    results = [
        _measure("contact", "contact", contact),
        _measure("account", "account", account),
        _measure(f"contact x{args.columns}", "contact", synthetic),
    ]
    for r in results:
        print(
            f"{r['table']:>16}: {r['columns']} columns x {r['targets']} targets, {r['outcomes']} outcomes, "
            f"{r['bytes']} bytes ({r['gzip_bytes']} gzip), built in {r['build_ms']} ms"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
