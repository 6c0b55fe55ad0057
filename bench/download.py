"""Download of an export's per-record results: rows/s and peak RSS of building the CSV file at 10,000 and
100,000 records (default), against an Azurite the bench starts.

The jobs' results are written straight into the job store first (not measured). Each build then runs in
a fresh process (``python -m bench.download build ...``), as a function invocation would, so its peak RSS
(``ru_maxrss``) is the build's alone: flat memory means the same peak at 10,000 and 100,000 records. The
driver then follows the link as a client does, streaming the file, and checks every row is there.

Prints readable lines and, last, one JSON object of its figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.storage.job_store import JobStore
from core.adapters.storage.result_files import ResultFiles
from core.domain.jobs import FieldError, RecordAction, RecordOutcome
from core.domain.result_files import ResultFormat
from core.services.exports.service import EXPORT_NAMES
from core.services.jobs.downloads import ResultsDownloads


def _store(connection_string: str) -> JobStore:
    return JobStore(
        TableServiceClient.from_connection_string(connection_string),
        BlobServiceClient.from_connection_string(connection_string),
        QueueServiceClient.from_connection_string(connection_string),
        EXPORT_NAMES,
    )


def _outcome(seq: int) -> RecordOutcome:
    """A realistic mix: mostly creates and updates with a few changed columns, some failures."""
    if seq % 10 == 0:
        return RecordOutcome(
            seq,
            f"p-{seq}",
            RecordAction.FAILED,
            errors=[FieldError("emailaddress1", "Invalid e-mail", "0x1")],
        )
    changes = {
        "firstname": {"before": f"Ada {seq}", "after": f"Ada-{seq}"},
        "jobtitle": {"before": None, "after": "Head of engineering"},
    }
    action = RecordAction.UPDATED if seq % 2 else RecordAction.CREATED
    match = {"status": "matched" if seq % 2 else "no_match", "rule": "email"}
    return RecordOutcome(seq, f"p-{seq}", action, str(uuid.UUID(int=seq + 1)), match=match, changes=changes)


def build(args: argparse.Namespace) -> int:
    """One build in this process; prints its figures as JSON."""
    store = _store(args.storage)
    downloads = ResultsDownloads(
        store, ResultFiles(store._blobs, EXPORT_NAMES.container), kind="export", page_size=1000
    )
    started = time.perf_counter()
    link = downloads.link(args.workspace, args.job, ResultFormat.CSV, sees_crm_values=True)
    seconds = time.perf_counter() - started
    assert link is not None and link.built
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "bytes": link.size,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "url": link.url,
            }
        )
    )
    return 0


def run(sizes: list[int]) -> dict[str, Any]:
    from tests.support.azurite import run_azurite
    from tests.support.results import seed_job

    figures: dict[str, Any] = {"builds": []}
    with run_azurite() as azurite:
        storage = azurite.connection_string
        store = _store(storage)
        workspace = f"ws-bench-{uuid.uuid4().hex[:8]}"
        for records in sizes:
            seeded = time.perf_counter()
            job_id = seed_job(store, workspace, records, outcome=_outcome)
            print(f"seeded {records:,} results in {time.perf_counter() - seeded:.1f} s", flush=True)
            command = ["-m", "bench.download", "build", "--storage", storage, "--workspace", workspace]
            answer = subprocess.run(
                [sys.executable, *command, "--job", job_id],
                capture_output=True,
                text=True,
                check=True,
            )
            built = json.loads(answer.stdout.strip().splitlines()[-1])
            fetched = time.perf_counter()
            rows = 0
            with requests.get(built["url"], stream=True, timeout=60) as file:
                file.raise_for_status()
                lines = (line.decode("utf-8-sig") for line in file.iter_lines())
                for row in csv.reader(lines):  # no cell of these records holds a line break
                    rows += bool(row)  # a CR LF split between two network reads is an empty line
            rows -= 1  # the header
            assert rows == records, (rows, records)
            point = {
                "records": records,
                "build_s": built["seconds"],
                "rows_per_s": round(records / built["seconds"]),
                "build_peak_rss_mb": built["peak_rss_mb"],
                "file_mb": round(built["bytes"] / 2**20, 1),
                "fetch_s": round(time.perf_counter() - fetched, 2),
            }
            figures["builds"].append(point)
            print(
                f"{records:>7,} records: built in {point['build_s']} s ({point['rows_per_s']:,} rows/s), "
                f"peak RSS {point['build_peak_rss_mb']} MB, file {point['file_mb']} MB, "
                f"fetched and checked in {point['fetch_s']} s",
                flush=True,
            )
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"]:
        parser = argparse.ArgumentParser(prog="python -m bench.download build")
        parser.add_argument("--storage", required=True)
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--job", required=True)
        return build(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m bench.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    figures = run(args.records)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
