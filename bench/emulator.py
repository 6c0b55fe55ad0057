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

Targets: >= 1,500 GETs/s with 8 threads, CreateMultiple of 1,000 < 0.5 s, In of 100 over 100,000 < 20 ms.

``--rows 10000 200000`` measures instead how the emulator's cost grows with table size: for each size a fresh
emulator gets that many contacts AND accounts (values unique per row, as real LinkedIn slugs, e-mails and
domains are), then each operation below is repeated until the emulator process has spent about
``--cpu-budget`` seconds of CPU; printed is the emulator's CPU per operation (user + system time of its
process, Linux ``/proc``), at each size and the ratio between the sizes (target: within 25%):

- ``get``: a contact by id with ``$select``;
- ``in100``: ``Microsoft.Dynamics.CRM.In`` over 100 e-mails;
- ``create1000`` / ``update1000``: ``CreateMultiple`` / ``UpdateMultiple`` of 1,000 contacts;
- the lookups the export worker sends (core/domain/lookup_plan.py): ``contains_linkedin`` (100
  ``contains(new_linkedinurl,'/in/<slug>')`` OR-ed), ``contains_names`` (50 ``(contains(lastname,..) and
  contains(firstname,..))`` OR-ed), ``contains_domains`` (100 ``contains(websiteurl,'<domain>')`` on
  accounts), ``eq_names`` (50 ``(lastname eq .. and firstname eq ..)`` OR-ed) and ``batch_gets`` (a ``$batch``
  of 20 GETs, each an ``In`` of 50 e-mails).

Prints readable lines; the LAST line is one JSON object with the figures.
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

from emulators.dataverse.seed import SeedSpec, generate_seed
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
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        help="table sizes for the per-operation CPU comparison (e.g. --rows 10000 200000)",
    )
    parser.add_argument(
        "--cpu-budget", type=float, default=2.0, help="emulator CPU seconds spent per operation and size"
    )
    args = parser.parse_args(argv)

    context = ssl.create_default_context(cafile=str(ensure_ca().cert_path))
    if args.rows:
        return per_operation_cpu(context, args.rows, args.cpu_budget)
    figures: dict[str, Any] = {}
    started = time.process_time()
    generate_seed(SeedSpec())
    figures["default_seed_cpu_s"] = round(time.process_time() - started, 3)
    print(f"Default seed generated in {figures['default_seed_cpu_s']} s of CPU", flush=True)
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


# --- per-operation CPU by table size -----------------------------------------------------------------

FIRST = ["ada", "grace", "alan", "edsger", "barbara", "donald", "margaret", "linus", "frances", "ken"]


def _contact(i: int) -> dict[str, Any]:
    first = FIRST[i % len(FIRST)]
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.contact",
        "firstname": f"{first}{i}",
        "lastname": f"surname{i:07d}",
        "emailaddress1": f"{first}.{i}@bench.example",
        "new_linkedinurl": f"https://www.linkedin.com/in/{first}-surname-{i:07x}/",
        "jobtitle": "Engineer",
    }


def _account(i: int) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.account",
        "name": f"Company {i:07d}",
        "websiteurl": f"https://www.company{i:07d}.example/about",
        "emailaddress1": f"info@company{i:07d}.example",
    }


def _load(client: Client, entity_set: str, make: Any, start: int, count: int, batch: int = 1000) -> list[str]:
    ids: list[str] = []
    for first in range(start, start + count, batch):
        targets = [make(i) for i in range(first, min(start + count, first + batch))]
        status, _, payload = client.request(
            "POST", f"{API}{entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": targets}
        )
        if status != 200:
            raise RuntimeError(f"CreateMultiple failed: {status} {payload[:300]!r}")
        ids.extend(json.loads(payload)["Ids"])
    return ids


def _query(entity_set: str, select: str, flt: str) -> str:
    return f"{API}{entity_set}?$select={select}&$filter={quote(flt, safe='')}"


def _batch_body(paths: list[str]) -> tuple[bytes, str]:
    boundary = "batch_bench"
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET {path} HTTP/1.1\r\nAccept: application/json\r\n\r\n"
        for path in paths
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/mixed; boundary={boundary}"


class _Operations:
    """The measured operations over ``rows`` contacts and accounts (each call varies its values)."""

    def __init__(self, client: Client, rows: int, contact_ids: list[str]) -> None:
        self.client = client
        self.rows = rows
        self.contact_ids = contact_ids
        self.rng = random.Random(rows)
        self.next_new = rows

    def _sample(self, count: int) -> list[int]:
        return self.rng.sample(range(self.rows), count)

    def _get(self, path: str, expect_rows: int | None = None) -> None:
        status, _, payload = self.client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET failed: {status} {payload[:300]!r}")
        if expect_rows is not None and len(json.loads(payload)["value"]) != expect_rows:
            raise RuntimeError(f"expected {expect_rows} rows from {path[:200]}")

    def get(self) -> None:
        contact_id = self.contact_ids[self.rng.randrange(len(self.contact_ids))]
        self._get(f"{API}contacts({contact_id})?$select=fullname,emailaddress1")

    def in100(self) -> None:
        values = ",".join(json.dumps(_contact(i)["emailaddress1"]) for i in self._sample(100))
        flt = f"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[{values}])"
        self._get(_query("contacts", "contactid", flt), 100)

    def create1000(self) -> None:
        _load(self.client, "contacts", _contact, self.next_new, 1000)
        self.next_new += 1000

    def update1000(self) -> None:
        start = self.rng.randrange(len(self.contact_ids) - 1000)
        targets = [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": cid, "jobtitle": f"Role {start}"}
            for cid in self.contact_ids[start : start + 1000]
        ]
        status, _, payload = self.client.request(
            "POST", f"{API}contacts/Microsoft.Dynamics.CRM.UpdateMultiple", {"Targets": targets}
        )
        if status != 204:
            raise RuntimeError(f"UpdateMultiple failed: {status} {payload[:300]!r}")

    def contains_linkedin(self) -> None:
        clauses = []
        for i in self._sample(100):
            slug = _contact(i)["new_linkedinurl"].split("/in/")[1].rstrip("/")
            clauses.append(f"contains(new_linkedinurl,'/in/{slug}')")
        self._get(_query("contacts", "contactid,new_linkedinurl", " or ".join(clauses)), 100)

    def contains_names(self) -> None:
        clauses = []
        for i in self._sample(50):
            last, first = _contact(i)["lastname"], _contact(i)["firstname"]
            clauses.append(f"(contains(lastname,'{last}') and contains(firstname,'{first}'))")
        self._get(_query("contacts", "contactid,firstname,lastname", " or ".join(clauses)), 50)

    def contains_domains(self) -> None:
        clauses = [f"contains(websiteurl,'company{i:07d}.example')" for i in self._sample(100)]
        self._get(_query("accounts", "accountid,websiteurl", " or ".join(clauses)), 100)

    def eq_names(self) -> None:
        clauses = []
        for i in self._sample(50):
            contact = _contact(i)
            clauses.append(f"(lastname eq '{contact['lastname']}' and firstname eq '{contact['firstname']}')")
        self._get(_query("contacts", "contactid", " or ".join(clauses)), 50)

    def batch_gets(self) -> None:
        paths = []
        for _ in range(20):
            values = ",".join(json.dumps(_contact(i)["emailaddress1"]) for i in self._sample(50))
            flt = f"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[{values}])"
            paths.append(_query("contacts", "contactid", flt))
        body, content_type = _batch_body(paths)
        self.client.conn.request(
            "POST", f"{API}$batch", body=body, headers={**HEADERS, "Content-Type": content_type}
        )
        response = self.client.conn.getresponse()
        payload = response.read()
        if response.status != 200 or payload.count(b"HTTP/1.1 200") != 20:
            raise RuntimeError(f"$batch failed: {response.status} {payload[:300]!r}")


OPERATIONS = (
    "get",
    "in100",
    "create1000",
    "update1000",
    "contains_linkedin",
    "contains_names",
    "contains_domains",
    "eq_names",
    "batch_gets",
)


def _measure(pid: int, run: Any, budget_s: float, max_calls: int = 5000) -> tuple[float, int]:
    """Emulator CPU seconds per call of ``run``, repeated until about ``budget_s`` CPU was spent."""
    run()  # warm-up: a lazily built index or first-call cost is not what a steady export sees
    before = process_cpu_s(pid)
    assert before is not None
    calls = 0
    spent = 0.0
    while calls < max_calls and spent < budget_s:
        run()
        calls += 1
        spent = (process_cpu_s(pid) or before) - before
    return spent / calls, calls


def per_operation_cpu(context: ssl.SSLContext, sizes: list[int], budget_s: float) -> int:
    figures: dict[str, Any] = {"rows": sizes, "cpu_ms": {}, "calls": {}, "rss_mb": {}}
    for rows in sizes:
        with running_emulator() as server:
            client = Client(server, context)
            try:
                began = time.perf_counter()
                contact_ids = _load(client, "contacts", _contact, 0, rows)
                _load(client, "accounts", _account, 0, rows)
                print(
                    f"{rows:,} contacts and {rows:,} accounts loaded in {time.perf_counter() - began:.0f} s",
                    flush=True,
                )
                operations = _Operations(client, rows, contact_ids)
                cpu: dict[str, float] = {}
                calls: dict[str, int] = {}
                for name in OPERATIONS:
                    per_call, count = _measure(server.process.pid, getattr(operations, name), budget_s)
                    cpu[name] = round(per_call * 1000, 3)
                    calls[name] = count
                    print(
                        f"  {name:18} {cpu[name]:9.3f} ms emulator CPU per call ({count} calls)", flush=True
                    )
                figures["cpu_ms"][str(rows)] = cpu
                figures["calls"][str(rows)] = calls
                figures["rss_mb"][str(rows)] = process_rss_mb(server.process.pid)
            finally:
                client.close()
    if len(sizes) >= 2:
        small, large = str(sizes[0]), str(sizes[-1])
        ratios = {
            name: round(figures["cpu_ms"][large][name] / figures["cpu_ms"][small][name], 2)
            for name in OPERATIONS
        }
        figures["ratio_largest_to_smallest"] = ratios
        figures["within_25_percent"] = {name: ratio <= 1.25 for name, ratio in ratios.items()}
        print(f"CPU per call, {sizes[-1]:,} rows / {sizes[0]:,} rows:", flush=True)
        for name in OPERATIONS:
            print(f"  {name:18} x{ratios[name]:.2f}", flush=True)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
