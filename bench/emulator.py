"""Benchmark of the Dataverse emulator: ``python -m bench.emulator``.

Starts ``python -m emulators.dataverse`` (HTTPS, latency 0, service protection limits off so the figures
measure the server, not the throttle) in its own process and drives it over keep-alive HTTPS connections:

1. ``CreateMultiple`` of 1,000 contacts, repeated until the table holds ``--contacts`` rows (default 100,000):
   wall time per call as seen by the client (an upper bound of the server time);
2. a ``Microsoft.Dynamics.CRM.In`` query with 100 ``emailaddress1`` values over those contacts (the first
   call reported separately: ``emailaddress1`` is indexed as rows arrive, so it should cost no more than the
   next ones), checking that exactly the 100 rows come back;
3. simple GETs (one contact by id, ``$select=fullname``) from ``--threads`` client threads (default 8) for
   ``--seconds`` seconds; the server's own request count (control API ``/_emulator/stats``) is cross-checked;
4. the emulator's resident memory (Linux ``/proc``) once the contacts are loaded and at the end.

Targets: >= 1,500 GETs/s with 8 threads, CreateMultiple of 1,000 < 0.5 s, In of 100 over 100,000
< 20 ms. Prints readable lines; the LAST line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from emulators.tls import ensure_ca

API = "/api/data/v9.2/"
TOKEN = "static-test-token"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/json",
    "OData-Version": "4.0",
    "OData-MaxVersion": "4.0",
    "Content-Type": "application/json; charset=utf-8",
}
TARGETS = {"gets_per_s": 1500.0, "create_multiple_1000_s": 0.5, "in_query_ms": 20.0}


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[str]


@contextmanager
def running_emulator() -> Iterator[Server]:
    """The emulator in a child process (so client and server do not share one interpreter lock)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.dataverse", "--port", "0", "--no-limits", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before printing its URL")
        url = json.loads(line)["url"]
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        yield Server(parts.hostname, parts.port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Client:
    """One keep-alive HTTPS connection trusting the local CA."""

    def __init__(self, server: Server, context: ssl.SSLContext) -> None:
        self.conn = http.client.HTTPSConnection(server.host, server.port, context=context, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=HEADERS)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def close(self) -> None:
        self.conn.close()


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux /proc), or None where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def load_contacts(client: Client, total: int, batch: int) -> list[float]:
    """CreateMultiple calls of ``batch`` contacts until ``total`` exist; returns seconds per call."""
    timings: list[float] = []
    for start in range(0, total, batch):
        targets = [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.contact",
                "firstname": f"Bench{i}",
                "lastname": f"Contact {i % 5000}",
                "emailaddress1": f"c{i}@bench.example",
                "jobtitle": "Engineer",
            }
            for i in range(start, min(total, start + batch))
        ]
        began = time.perf_counter()
        status, _, payload = client.request(
            "POST", f"{API}contacts/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": targets}
        )
        timings.append(time.perf_counter() - began)
        if status != 200 or len(json.loads(payload)["Ids"]) != len(targets):
            raise RuntimeError(f"CreateMultiple failed: {status} {payload[:300]!r}")
    return timings


def in_query(client: Client, emails: list[str]) -> tuple[float, int]:
    values = ",".join(json.dumps(e) for e in emails)
    flt = f"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[{values}])"
    path = f"{API}contacts?$select=contactid,emailaddress1&$filter={quote(flt, safe='')}"
    began = time.perf_counter()
    status, _, payload = client.request("GET", path)
    elapsed = time.perf_counter() - began
    if status != 200:
        raise RuntimeError(f"In query failed: {status} {payload[:300]!r}")
    return elapsed, len(json.loads(payload)["value"])


def get_throughput(
    server: Server, context: ssl.SSLContext, path: str, threads: int, seconds: float
) -> dict[str, Any]:
    counts = [0] * threads
    errors = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    deadline = [0.0]

    def worker(n: int) -> None:
        client = Client(server, context)
        try:
            client.request("GET", path)  # connect + TLS handshake outside the measured window
            ready.wait()
            go.wait()
            while True:
                began = time.perf_counter()
                if began >= deadline[0]:
                    break
                status, _, _ = client.request("GET", path)
                latencies[n].append(time.perf_counter() - began)
                if status == 200:
                    counts[n] += 1
                else:
                    errors[n] += 1
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    ready.wait()
    began = time.perf_counter()
    deadline[0] = began + seconds
    go.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [x for per in latencies for x in per]
    return {
        "ok": sum(counts),
        "errors": sum(errors),
        "elapsed_s": elapsed,
        "per_s": sum(counts) / elapsed,
        "p50_ms": percentile(flat, 0.5) * 1000 if flat else 0.0,
        "p95_ms": percentile(flat, 0.95) * 1000 if flat else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts to load (default 100,000)")
    parser.add_argument("--batch", type=int, default=1000, help="targets per CreateMultiple call")
    parser.add_argument("--in-values", type=int, default=100, help="values in the In query")
    parser.add_argument("--repeats", type=int, default=20, help="timed In queries after the first")
    parser.add_argument("--threads", type=int, default=8, help="client threads for the GET benchmark")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the GET benchmark")
    args = parser.parse_args(argv)

    context = ssl.create_default_context(cafile=str(ensure_ca().cert_path))
    figures: dict[str, Any] = {}
    with running_emulator() as server:
        client = Client(server, context)
        try:
            print(f"emulator at https://{server.host}:{server.port} (latency 0, limits off)", flush=True)

            status, headers, _ = client.request(
                "POST", f"{API}contacts", {"firstname": "Ada", "lastname": "Get"}
            )
            if status != 204:
                raise RuntimeError(f"create failed: {status}")
            entity = headers["odata-entityid"]
            contact_id = entity[entity.rindex("(") + 1 : -1]

            timings = load_contacts(client, args.contacts, args.batch)
            full = timings
            figures["contacts"] = args.contacts + 1
            figures["create_multiple_targets"] = args.batch
            figures["create_multiple_calls"] = len(full)
            figures["create_multiple_s_p50"] = round(statistics.median(full), 4)
            figures["create_multiple_s_p95"] = round(percentile(full, 0.95), 4)
            figures["create_multiple_s_max"] = round(max(full), 4)
            print(
                f"CreateMultiple of {args.batch} contacts: p50 {figures['create_multiple_s_p50']:.3f} s, "
                f"p95 {figures['create_multiple_s_p95']:.3f} s, max {figures['create_multiple_s_max']:.3f} s "
                f"over {len(full)} calls (client wall time; table grew to {figures['contacts']:,} rows)",
                flush=True,
            )

            rss_loaded = process_rss_mb(server.process.pid)
            if rss_loaded is not None:
                figures["emulator_rss_mb_loaded"] = rss_loaded
                print(
                    f"Emulator resident memory with {figures['contacts']:,} contacts: {rss_loaded} MB",
                    flush=True,
                )

            rng = random.Random(7)
            samples = [
                [f"c{i}@bench.example" for i in rng.sample(range(args.contacts), args.in_values)]
                for _ in range(args.repeats + 1)
            ]
            cold, rows = in_query(client, samples[0])
            if rows != args.in_values:
                raise RuntimeError(f"In query returned {rows} rows, expected {args.in_values}")
            warm: list[float] = []
            for sample in samples[1:]:
                elapsed, rows = in_query(client, sample)
                if rows != args.in_values:
                    raise RuntimeError(f"In query returned {rows} rows, expected {args.in_values}")
                warm.append(elapsed)
            figures["in_query_values"] = args.in_values
            figures["in_query_ms_first"] = round(cold * 1000, 2)
            figures["in_query_ms_p50"] = round(statistics.median(warm) * 1000, 2)
            figures["in_query_ms_p95"] = round(percentile(warm, 0.95) * 1000, 2)
            print(
                f"In query, {args.in_values} values over {figures['contacts']:,} contacts: "
                f"p50 {figures['in_query_ms_p50']:.1f} ms, p95 {figures['in_query_ms_p95']:.1f} ms "
                f"(first call: {figures['in_query_ms_first']:.1f} ms); "
                f"{args.in_values} rows each time",
                flush=True,
            )

            _, _, before_raw = client.request("GET", "/_emulator/stats")
            path = f"{API}contacts({contact_id})?$select=fullname"
            server_cpu_before = process_cpu_s(server.process.pid)
            client_cpu_before = time.process_time()
            gets = get_throughput(server, context, path, args.threads, args.seconds)
            client_cpu = time.process_time() - client_cpu_before
            server_cpu_after = process_cpu_s(server.process.pid)
            _, _, after_raw = client.request("GET", "/_emulator/stats")
            before = json.loads(before_raw)["requests_by_kind"].get("read", 0)
            after = json.loads(after_raw)["requests_by_kind"].get("read", 0)
            server_counted = after - before
            figures["gets_per_s"] = round(gets["per_s"], 1)
            figures["gets_threads"] = args.threads
            figures["gets_p50_ms"] = round(gets["p50_ms"], 2)
            figures["gets_p95_ms"] = round(gets["p95_ms"], 2)
            figures["gets_errors"] = gets["errors"]
            figures["gets_server_counted"] = server_counted
            # CPU per request, less sensitive than wall-clock throughput to other load on the machine.
            figures["gets_client_cpu_us"] = round(client_cpu / max(1, gets["ok"]) * 1e6, 1)
            if server_cpu_before is not None and server_cpu_after is not None:
                server_cpu = server_cpu_after - server_cpu_before
                figures["gets_server_cpu_us"] = round(server_cpu / max(1, gets["ok"]) * 1e6, 1)
            print(
                f"Simple GETs with {args.threads} threads: {gets['per_s']:.0f}/s "
                f"(p50 {gets['p50_ms']:.2f} ms, p95 {gets['p95_ms']:.2f} ms, "
                f"{gets['ok']} ok, {gets['errors']} errors; "
                f"server counted {server_counted} reads incl. {args.threads} warm-ups)",
                flush=True,
            )
            print(
                f"CPU per GET: server {figures.get('gets_server_cpu_us', 'n/a')} us, "
                f"client {figures['gets_client_cpu_us']} us (load average {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} CPUs)",
                flush=True,
            )
            figures["load_average_1m"] = round(os.getloadavg()[0], 2)
            rss_end = process_rss_mb(server.process.pid)
            if rss_end is not None:
                figures["emulator_rss_mb_end"] = rss_end
                print(f"Emulator resident memory at the end: {rss_end} MB", flush=True)
        finally:
            client.close()

    figures["targets_met"] = {
        "gets_per_s": figures["gets_per_s"] >= TARGETS["gets_per_s"],
        "create_multiple_1000_s": figures["create_multiple_s_p50"] < TARGETS["create_multiple_1000_s"],
        "in_query_ms": figures["in_query_ms_p50"] < TARGETS["in_query_ms"],
    }
    print(json.dumps(figures, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
