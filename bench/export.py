"""Export benchmark: one large contacts export through the real pipeline, end to end.

``python -m bench.export`` (defaults = the reference scenario): 10,000 contacts of 2,000 companies
(LinkedIn-or-name identifier, domain for companies, associations on, 8 mapped contact fields) into a
Dataverse emulator that already holds 30% of the contacts and 50% of the companies, stored in variant
forms (LinkedIn URLs and websites as real orgs store them), at 50 ms latency per request and the real
default service protection limits.

Pipeline: ``ExportService.submit`` (validation, blobs, job rows, one queue message per chunk) against an
Azurite the bench starts -> worker *processes* (``--workers``, each a plain process running the queue loop
of :func:`worker_main` with ``--threads`` chunk runs at once, the real ``ExportWorker`` and the shared
``DynamicsBudget``) -> the emulator in its own process. Timing starts at ``submit`` and ends when the last
chunk is done (worker start-up is excluded; it happens before).

Printed: records/s, HTTP requests per record, inner operations per record, 429s, peak RSS (worker
processes, the bench driver and the emulator separately), the workers' RSS timeline by records processed
(one point per tenth of the job, ``worker_rss_by_records_mb``: flat when memory does not grow with the
job, e.g. ``--contacts 100000 --companies 20000``), duplicates created (must be 0), and as the last line
one JSON object with every figure.

Exact reports: every record's reported action is checked against the seed's truth
(``bench/export_truth.py``): created = the new rows, no new contact reported anything but created, no
contact written by two write calls (counted by the workers' client). ``--faults 503=0.05,500=0.02,drop=0.02
--fault-seed 3`` turns the emulator's fault injection on for the timed run (a drop closes the connection
after Dynamics committed the request). The exit status is 1 when a report is not exact.

Over 400 lines on purpose: the bench is one scenario end to end (seed, submit, worker processes, timing,
truth check, report); split, a reader would have to chase one run across files.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import dataclasses
import json
import os
import pstats
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from bench.export_truth import WriteCountingClient, check_outcomes, written_twice
from core.adapters.dataverse.budget import BudgetLimits, DynamicsBudget
from core.adapters.dataverse.client import DataverseClient, RequestEvent
from core.adapters.storage.job_store import JobStore
from core.adapters.storage.tables import blob_retry
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_request import ExportRequest
from core.services.exports.service import EXPORT_NAMES, EXPORT_QUEUE, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage
from devhost.queues import MessageLease
from emulators.dataverse.seed import SeedSpec, build_seed
from emulators.tls import trusting_session
from tests.support.processes import die_with_parent

TOKEN = "static-test-token"
WORKSPACE = "ws-bench-export"
CALLER = Caller(WORKSPACE, "platform-user-bench", Role.ADMIN)

CONFIG: dict[str, Any] = {
    "syncIdentifiers": {
        "contactIdentifier": "linkedin_or_name_company",
        "companyIdentifier": "domain",
        "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
        "associateContactsWithCompanies": True,
    },
    "fieldMapping": {
        "contacts": [
            {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
            {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
            {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
            {
                "kind": "platform_field",
                "platformField": "professionalEmail",
                "dynamicsField": "emailaddress1",
            },
            {"kind": "platform_field", "platformField": "linkedinUrl", "dynamicsField": "new_linkedinurl"},
            {"kind": "platform_field", "platformField": "phoneNumber", "dynamicsField": "telephone1"},
            {"kind": "platform_field", "platformField": "city", "dynamicsField": "address1_city"},
            {
                "kind": "platform_field",
                "platformField": "mobilePhone",
                "dynamicsField": "mobilephone",
                "mode": "fill_if_empty",
            },
        ],
        "companies": [
            {"kind": "platform_field", "platformField": "name", "dynamicsField": "name"},
            {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl"},
        ],
    },
    "campaignMapping": {},
    "userMapping": {},
}


# --- the scenario ----------------------------------------------------------------------------------


@dataclass
class Scenario:
    seed: SeedSpec
    records: list[dict[str, Any]]
    expected_new_contacts: int  # exported contacts with no counterpart in Dynamics
    expected_new_accounts: int  # exported companies (used by a contact) with no counterpart
    existing_contacts: int  # exported contacts that exist in Dynamics (in variant forms)


def build_scenario(
    contacts: int, companies: int, contact_share: float, company_share: float, seed: int = 42
) -> Scenario:
    """Platform records whose existing part mirrors the emulator's seed (clean forms on our side)."""
    spec = SeedSpec(
        accounts=round(companies * company_share),
        contacts=round(contacts * contact_share),
        users=5,
        seed=seed,
    )
    data = build_seed(spec)
    truth = data.truth
    account_rows = {p["accountid"]: p for s, p in data.records if s == "accounts"}
    companies_out: list[dict[str, Any]] = []
    company_of_account: dict[str, dict[str, Any]] = {}
    seen_domains: set[str] = set()
    for account_id in truth.account_ids:
        domain = truth.account_domains.get(account_id)
        if domain is None or domain in seen_domains:
            continue  # no website: a domain rule cannot find it (the platform would not know it either)
        seen_domains.add(domain)
        company = {
            "id": f"co-{account_id[:8]}",
            "name": str(account_rows[account_id]["name"]).strip(),
            "domain": domain,
        }
        company_of_account[account_id] = company
        companies_out.append(company)
    existing_companies = len(companies_out)
    for index in range(max(0, companies - existing_companies)):
        companies_out.append(
            {"id": f"co-new-{index}", "name": f"Newco {index} Labs", "domain": f"newco{index}.example"}
        )

    duplicates = {c for group in truth.duplicate_contact_groups for c in group[1:]}
    contact_rows = {p["contactid"]: p for s, p in data.records if s == "contacts"}
    records: list[dict[str, Any]] = []
    for contact_id in truth.contact_ids:
        if contact_id in duplicates:
            continue
        row = contact_rows[contact_id]
        parent = truth.contact_account.get(contact_id)
        linkedin = truth.contact_linkedin.get(contact_id)
        found = company_of_account.get(parent) if parent else None
        if found is None and (parent is not None or linkedin is None):
            continue  # neither identifier could find it: not part of the "existing" share
        record: dict[str, Any] = {
            "id": f"p-{contact_id[:8]}",
            "firstName": str(row["firstname"]).strip(),
            "lastName": str(row["lastname"]).strip(),
            "jobTitle": "Head of Revenue",
            "professionalEmail": f"bench.{contact_id[:8]}@example.com",
            "phoneNumber": "+1 206 555 0100",
            "city": "Seattle",
            "mobilePhone": "+1 206 555 0199",
        }
        if linkedin:
            record["linkedinUrl"] = linkedin
        if found is not None:
            record["company"] = found
        records.append(record)
    existing_contacts = len(records)
    used_new_companies: set[str] = set()
    index = 0
    while len(records) < contacts:
        company = companies_out[index % len(companies_out)]
        if company["id"].startswith("co-new-"):
            used_new_companies.add(company["id"])
        records.append(
            {
                "id": f"p-new-{index}",
                "firstName": f"Ada{index}",
                "lastName": "Lovelace",
                "jobTitle": "Engineer",
                "professionalEmail": f"ada{index}@example.com",
                "linkedinUrl": f"https://www.linkedin.com/in/ada-{index}",
                "phoneNumber": "+1 206 555 0101",
                "city": "London",
                "mobilePhone": "+44 20 7946 0000",
                "company": company,
            }
        )
        index += 1
    return Scenario(
        spec,
        records[:contacts],
        expected_new_contacts=contacts - existing_contacts,
        expected_new_accounts=len(used_new_companies),
        existing_contacts=existing_contacts,
    )


# --- processes -------------------------------------------------------------------------------------


def start_emulator(spec: SeedSpec, latency_ms: float, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    args = [
        sys.executable,
        "-m",
        "emulators.dataverse",
        "--seed",
        f"--seed-accounts={spec.accounts}",
        f"--seed-contacts={spec.contacts}",
        f"--seed-users={spec.users}",
        f"--seed-value={spec.seed}",
        f"--latency-ms={latency_ms}",
        "--token",
        TOKEN,
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("the Dataverse emulator did not start")
    return proc, str(json.loads(line)["url"])


def emulator_control(url: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    session = trusting_session()
    if body is None:
        response = session.get(f"{url}/_emulator/{name}", timeout=60)
    else:
        response = session.post(f"{url}/_emulator/{name}", json=body, timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@dataclass
class WorkerOptions:
    storage: str
    dataverse_url: str
    threads: int = 4
    budget: bool = True
    limits: BudgetLimits = field(default_factory=BudgetLimits)
    visibility_s: int = 300
    max_attempts: int = 5
    profile: str | None = None  # a folder: each worker writes its merged cProfile stats there


def worker_args(options: WorkerOptions) -> list[str]:
    limits = options.limits
    args = [
        sys.executable,
        "-m",
        "bench.export",
        "worker",
        f"--storage={options.storage}",
        f"--dataverse-url={options.dataverse_url}",
        f"--threads={options.threads}",
        f"--visibility={options.visibility_s}",
        f"--max-attempts={options.max_attempts}",
        f"--limit-requests={limits.max_requests}",
        f"--limit-execution-s={limits.max_execution_s}",
        f"--limit-concurrent={limits.max_concurrent}",
        f"--limit-window-s={limits.window_s}",
        f"--slots={limits.slots}",
    ]
    if not options.budget:
        args.append("--no-budget")
    if options.profile:
        args.append(f"--profile={options.profile}")
    return args


class WorkerProcesses:
    """Worker processes sharing one queue; ``stop()`` ends them gracefully and collects their figures."""

    def __init__(self, options: WorkerOptions, count: int, env: dict[str, str] | None = None) -> None:
        self.procs = [
            subprocess.Popen(
                worker_args(options),
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
                cwd=Path(__file__).resolve().parents[1],
                preexec_fn=die_with_parent,
            )
            for _ in range(count)
        ]
        for proc in self.procs:  # each says "ready" once it polls the queue
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("an export worker process did not start")

    def kill(self, index: int) -> None:
        """Crash one worker (SIGKILL): its messages reappear after their visibility timeout."""
        self.procs[index].kill()
        self.procs[index].wait(10)

    def stop(self) -> list[dict[str, Any]]:
        reports: list[dict[str, Any]] = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            lines = [line for line in (out or "").splitlines() if line.startswith("{")]
            if lines:
                reports.append(json.loads(lines[-1]))
        return reports


RETRY_VISIBILITY_S = 10  # host.json extensions.queues.visibilityTimeout
STALL_S = 15.0  # a chunk attempt running this long prints where it is (stderr)


def _our_frame(exc: BaseException) -> str:
    """The innermost frame of the product's own code in a traceback (``core/...py:123``)."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/core/" in frame.filename:
            where = f"core/{frame.filename.rsplit('/core/', 1)[1]}:{frame.lineno}"
    return where


def worker_main(argv: list[str]) -> int:
    """One export worker process: the queue loop (receive, handle, delete) as the Functions host runs it."""
    parser = argparse.ArgumentParser(prog="python -m bench.export worker")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--dataverse-url", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--visibility", type=int, default=300)
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--no-budget", action="store_true")
    parser.add_argument("--limit-requests", type=int, default=6000)
    parser.add_argument("--limit-execution-s", type=float, default=1200)
    parser.add_argument("--limit-concurrent", type=int, default=52)
    parser.add_argument("--limit-window-s", type=float, default=300)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--profile", help="folder for this worker's cProfile stats (worker-<pid>.prof)")
    parser.add_argument("--grace", type=float, default=15.0, help="seconds in-flight chunks get on stop")
    args = parser.parse_args(argv)

    # SIGTERM / SIGINT (or the driver dying, even by SIGKILL) stop the loop; chunks under way get
    # ``--grace`` seconds, then the process exits anyway: their messages reappear after the visibility
    # timeout, as after a crash. A second signal exits at once.
    stopping = threading.Event()
    parent = os.getppid()

    def on_signal(*_: Any) -> None:
        if stopping.is_set():
            os._exit(1)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tables = TableServiceClient.from_connection_string(args.storage)
    store = JobStore(
        tables,
        BlobServiceClient.from_connection_string(args.storage, retry_policy=blob_retry()),
        QueueServiceClient.from_connection_string(args.storage),
        EXPORT_NAMES,
    )
    budget = None
    if not args.no_budget:
        budget = DynamicsBudget(
            TableServiceClient.from_connection_string(args.storage),
            BudgetLimits(
                max_concurrent=args.limit_concurrent,
                max_requests=args.limit_requests,
                max_execution_s=args.limit_execution_s,
                window_s=args.limit_window_s,
                slots=args.slots,
            ),
        )
    seen: dict[str, int] = {"requests": 0, "throttled": 0, "errors": 0}
    seen_lock = threading.Lock()
    observers: list[Any] = []
    gates: list[Any] = []  # the budget's shared 429 pause, checked before every request

    def before_send() -> None:
        for gate in gates:
            gate()

    slowest: list[tuple[float, str, str, int | None]] = []  # the slowest Dataverse requests

    def observe(event: RequestEvent) -> None:
        with seen_lock:
            seen["requests"] += 1
            slowest.append((round(event.elapsed_s, 2), event.method, event.path, event.status))
            slowest.sort(key=lambda request: request[0], reverse=True)  # status may be None (no answer)
            del slowest[5:]
            if event.status == 429:
                seen["throttled"] += 1
        for observer in observers:
            observer(event)

    client = WriteCountingClient(
        args.dataverse_url,
        lambda _force: TOKEN,
        session=trusting_session(),
        max_concurrency=max(4, args.threads),
        on_request=observe,
        before_send=before_send,
    )
    who = client.who_am_i()
    connections: dict[str, DynamicsConnection] = {}

    def client_for(workspace_id: str) -> tuple[DataverseClient, DynamicsConnection]:
        if budget is not None and workspace_id not in connections:
            observers.append(budget.observer(workspace_id))
            gates.append(budget.gate(workspace_id))
        connection = connections.setdefault(
            workspace_id,
            DynamicsConnection(workspace_id, args.dataverse_url, "integration@contoso.com", who.user_id),
        )
        return client, connection

    worker = ExportWorker(store, client_for, max_attempts=args.max_attempts, budget=budget)
    queue = QueueServiceClient.from_connection_string(args.storage).get_queue_client(EXPORT_QUEUE)
    chunks = {"done": 0, "retried": 0, "redelivered": 0}
    in_flight: set[Future[None]] = set()

    profiles: list[cProfile.Profile] = []
    spans: list[tuple[float, float]] = []  # wall clock (epoch s) of each chunk attempt

    def run(message: Any) -> None:
        if args.profile is None:
            handle(message)
            return
        # Per thread (a profiler sees only the thread that enabled it), timed in CPU, not wall, seconds.
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            handle(message)
        finally:
            profile.disable()
            with seen_lock:
                profiles.append(profile)

    running: dict[int, tuple[int, float]] = {}  # thread -> (chunk, started)

    def watch_stalls() -> None:
        """A chunk running much longer than the others: print where its thread is, once per chunk."""
        reported: set[tuple[int, float]] = set()
        while not stopping.wait(1.0):
            for thread, (index, begun) in list(running.items()):
                frame = sys._current_frames().get(thread)
                if frame is None or time.time() - begun < STALL_S or (index, begun) in reported:
                    continue
                reported.add((index, begun))
                stack = "".join(traceback.format_stack(frame)[-12:])
                print(f"chunk {index} running for {time.time() - begun:.0f} s, at:\n{stack}", file=sys.stderr)

    threading.Thread(target=watch_stalls, daemon=True).start()

    def handle(message: Any) -> None:
        chunk = ChunkMessage.parse(base64.b64decode(message.content))
        if (message.dequeue_count or 1) > 1:
            with seen_lock:
                chunks["redelivered"] += 1
        begun = time.time()
        running[threading.get_ident()] = (chunk.chunk, begun)
        try:
            # Renewed while the chunk runs, as the Functions host renews its messages' visibility: a
            # chunk slower than the lease (a loaded machine) is not redelivered while still running.
            with MessageLease(queue, message, args.visibility):
                worker.handle(chunk, message.dequeue_count or 1)
        except Exception as exc:
            with seen_lock:
                spans.append((begun, time.time()))
            # As the Functions host does: the failed message becomes visible again after host.json's
            # visibilityTimeout (10 s), not after the long lease it was received with.
            where = _our_frame(exc)
            print(
                f"chunk {chunk.chunk} attempt failed at {where}: {type(exc).__name__}: {exc}"[:500],
                file=sys.stderr,
            )
            with contextlib.suppress(Exception):
                queue.update_message(message, visibility_timeout=RETRY_VISIBILITY_S)
            with seen_lock:
                chunks["retried"] += 1
            return
        finally:
            running.pop(threading.get_ident(), None)
        queue.delete_message(message)
        with seen_lock:
            chunks["done"] += 1
            spans.append((begun, time.time()))

    print("ready", flush=True)
    idle = 0.05
    pool = ThreadPoolExecutor(max_workers=args.threads)
    while not stopping.is_set():
        if os.getppid() != parent:  # the driver is gone (killed): nobody will ever stop us
            stopping.set()
            break
        in_flight = {f for f in in_flight if not f.done()}
        free = args.threads - len(in_flight)
        if free <= 0:
            stopping.wait(0.02)
            continue
        try:
            messages = list(
                queue.receive_messages(max_messages=min(32, free), visibility_timeout=args.visibility)
            )
        except Exception:
            messages = []
        if not messages:
            stopping.wait(idle)
            idle = min(0.5, idle * 2)
            continue
        idle = 0.05
        for message in messages:
            in_flight.add(pool.submit(run, message))
    pool.shutdown(wait=False, cancel_futures=True)
    _, unfinished = wait_futures(in_flight, timeout=args.grace)
    if args.profile and profiles:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        with seen_lock:
            pstats.Stats(*profiles).dump_stats(str(Path(args.profile) / f"worker-{os.getpid()}.prof"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "pid": os.getpid(),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "chunks": chunks["done"],
        "retried": chunks["retried"],
        "redelivered": chunks["redelivered"],
        "abandoned": len(unfinished),
        "chunk_spans": [(round(a, 3), round(b, 3)) for a, b in spans],
        "slowest_requests": slowest,
        **seen,
        "budget": {ws: budget.stats(ws) for ws in connections} if budget else None,
        "budget_storage_ops": budget.storage_operations if budget else 0,
        "contact_writes": dict(client.contact_writes),
    }
    with contextlib.suppress(OSError):  # the driver may be gone, and its pipe with it
        print(json.dumps(report), flush=True)
    if unfinished:
        os._exit(0)  # do not wait for abandoned chunks (the interpreter would join their threads)
    return 0


# --- the driver ------------------------------------------------------------------------------------


def export_store(storage: str) -> JobStore:
    return JobStore(
        TableServiceClient.from_connection_string(storage),
        BlobServiceClient.from_connection_string(storage, retry_policy=blob_retry()),
        QueueServiceClient.from_connection_string(storage),
        EXPORT_NAMES,
    )


def wait_for_job(
    service: ExportService, job_id: str, timeout_s: float, sampler: RssSampler | None = None
) -> dict[str, Any]:
    started = deadline = time.monotonic()
    deadline += timeout_s
    next_report = started + 30
    while True:
        found = service.status(WORKSPACE, job_id)
        assert found is not None
        status = dataclasses.asdict(found)
        progress = status["progress"]
        if sampler is not None:
            sampler.mark(int(progress["processed"]), int(progress["records"]))
        if progress["chunks_done"] >= progress["chunks"]:
            return status
        if sampler is not None and time.monotonic() >= next_report:  # progress on stderr
            next_report += 30
            rss = {k: round(v[-1]) for k, v in sampler.samples.items() if v}
            print(
                f"[{time.monotonic() - started:.0f}s] {progress['processed']}/{progress['records']} records, "
                f"RSS MB {rss}",
                file=sys.stderr,
                flush=True,
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"export not finished after {timeout_s:.0f}s: {progress}")
        time.sleep(0.25)


class RssSampler:
    """Samples RSS of processes (by pid) every 0.5 s; keeps the peak of each and the first/last samples."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.samples: dict[str, list[float]] = {name: [] for name in pids}
        # (records processed, the workers' highest RSS since the previous point): one point per tenth
        self.timeline: list[tuple[int, float]] = []
        self._marked: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                try:
                    mb = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak[name], mb)
                self.samples[name].append(mb)
            self._stop.wait(0.5)

    def mark(self, processed: int, total: int) -> None:
        """A timeline point each time another tenth of the records is processed (and at the end):
        memory that grows with the job shows as a rising timeline, a flat one as equal points."""
        step = max(1, total // 10)
        last = self.timeline[-1][0] if self.timeline else 0
        if processed < min(total, (last // step + 1) * step) or (self.timeline and processed == last):
            return
        peak = 0.0
        for name, samples in self.samples.items():
            if name.startswith("worker"):
                recent = samples[self._marked[name] :] or samples[-1:]
                peak = max([peak, *recent])
                self._marked[name] = len(samples)
        self.timeline.append((processed, round(peak, 1)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds each process has used so far (0 for one already gone)."""
    used: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            used[name] = 0.0
            continue
        used[name] = times.user + times.system
    return used


def chunk_figures(reports: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """When chunks ran (seconds after submit began): where the time of a run went."""
    spans = sorted((a - started, b - started) for r in reports for a, b in r.get("chunk_spans", []))
    if not spans:
        return {}
    durations = sorted(b - a for a, b in spans)
    return {
        "chunk_attempts": len(spans),
        "chunk_s_median": round(durations[len(durations) // 2], 2),
        "chunk_s_max": round(durations[-1], 2),
        "first_chunk_start_s": round(spans[0][0], 2),
        "last_chunk_end_s": round(max(b for _, b in spans), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.azurite import run_azurite

    scenario = build_scenario(args.contacts, args.companies, args.existing_contacts, args.existing_companies)
    limits = BudgetLimits()
    with ExitStack() as stack:
        azurite = stack.enter_context(run_azurite())
        storage = azurite.connection_string
        emulator, url = start_emulator(scenario.seed, args.latency_ms, [])
        stack.callback(emulator.kill)
        before = emulator_control(url, "stats")
        store = export_store(storage)
        store.ensure_ready()
        workers = WorkerProcesses(
            WorkerOptions(
                storage,
                url,
                threads=args.threads,
                budget=not args.no_budget,
                limits=limits,
                visibility_s=args.lease,
                profile=args.profile,
            ),
            args.workers,
        )
        stack.callback(workers.stop)
        pids = {"driver": os.getpid(), "emulator": emulator.pid} | {
            f"worker{i}": p.pid for i, p in enumerate(workers.procs)
        }
        sampler = RssSampler(pids)
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("azurite" in part for part in child.cmdline()[:2]):
                    pids["azurite"] = child.pid
        emulator_control(url, "stats", {"reset": True})
        if args.faults:
            # After the workers' start-up: from here on every Dataverse request may fail.
            emulator_control(url, "faults", {**parse_faults(args.faults), "seed": args.fault_seed})
        service = ExportService(
            store, lambda _caller: DynamicsConfig.model_validate(CONFIG), chunk_size=args.chunk_size
        )
        cpu_before = cpu_seconds(pids)
        started_wall = time.time()
        started = time.perf_counter()
        job = service.submit(
            CALLER, ExportRequest.model_validate({"entity": "contacts", "records": scenario.records})
        )
        submitted = time.perf_counter() - started
        records = len(scenario.records)
        status = wait_for_job(service, job.job_id, args.timeout, sampler)
        elapsed = time.perf_counter() - started
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(pids).items()}
        truth = check_outcomes(service, WORKSPACE, job.job_id, scenario.seed)  # per record, after timing
        sampler.stop()
        stats = emulator_control(url, "stats")
        reports = workers.stop()
    counts = status["counts"]
    new_contacts = stats["records"].get("contact", 0) - before["records"].get("contact", 0)
    new_accounts = stats["records"].get("account", 0) - before["records"].get("account", 0)
    # Per record, not net: a false merge must not hide a missed existing contact (bench/export_truth.py).
    duplicates = (
        truth["existing_created"]
        + max(0, new_contacts - counts["created"])
        + max(0, new_accounts - scenario.expected_new_accounts)
    )
    inner = sum(stats["inner_operations"].values())
    twice = written_twice([r.get("contact_writes") or {} for r in reports])
    worker_peaks = [sampler.peak[k] for k in sampler.peak if k.startswith("worker")]
    curve = sampler.samples.get("worker0", [])
    worker_curve = [round(mb) for mb in curve[:: max(1, len(curve) // 8)]]
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
    return {
        "records": records,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "worker_mode": "processes",
        "budget": not args.no_budget,
        "chunk_size": args.chunk_size,
        "latency_ms": args.latency_ms,
        "elapsed_s": round(elapsed, 2),
        "submit_s": round(submitted, 2),
        "records_per_s": round(records / elapsed, 1),
        "http_requests": stats["requests"],
        "http_requests_per_record": round(stats["requests"] / records, 4),
        "requests_by_kind": stats["requests_by_kind"],
        "inner_operations": inner,
        "inner_operations_per_record": round(inner / records, 3),
        "throttled_429": stats["throttled"],
        "job_state": status["state"],
        "counts": counts,
        "existing_contacts_exported": scenario.existing_contacts,
        "expected_new_contacts": scenario.expected_new_contacts,
        "new_contacts": new_contacts,
        "expected_new_accounts": scenario.expected_new_accounts,
        "new_accounts": new_accounts,
        "duplicates": duplicates,
        # ... of which the pipeline wrote twice (more rows than it reported created): must be 0
        "duplicates_pipeline": max(0, new_contacts - counts["created"]),
        # ... of which matching did not find an existing contact (created a second one)
        "existing_not_matched": truth["existing_created"],
        # records matched onto somebody else's Dynamics row (overwrote it): must be 0
        "false_merges": truth["false_merges"],
        # new contacts reported updated / unchanged / failed instead of created: must be 0
        "created_reported_otherwise": truth["created_reported_otherwise"],
        # contacts written by two write calls (a create and then an update of the same record): must be 0
        "contacts_written_twice": twice,
        "faults": {"rates": parse_faults(args.faults), "seed": args.fault_seed} if args.faults else None,
        "injected_faults": {k: v for k, v in stats["simulation"].items() if k.startswith("fault_")},
        "outcomes": truth["outcomes"],
        "outcome_examples": truth["outcome_examples"],
        "peak_rss_mb": round(max(worker_peaks or [0.0]), 1),
        "peak_rss_driver_mb": round(sampler.peak["driver"], 1),
        "peak_rss_emulator_mb": round(sampler.peak["emulator"], 1),
        "worker_rss_curve_mb": worker_curve,
        # [records processed, highest worker RSS (MB) since the previous point]: flat = memory flat
        "worker_rss_by_records_mb": [list(point) for point in sampler.timeline],
        # CPU seconds used during the timed run: what limits records/s on a small machine
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_cpu_ms_per_record": round(1000 * worker_cpu / records, 3),
        "emulator_cpu_s": round(cpu["emulator"], 2),
        "azurite_cpu_s": round(cpu.get("azurite", 0.0), 2),
        "driver_cpu_s": round(cpu["driver"], 2),
        "host_cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews elapsed_s
        **chunk_figures(reports, started_wall),
        "budget_storage_ops": sum(int(r.get("budget_storage_ops", 0)) for r in reports),
        "worker_reports": [{k: v for k, v in r.items() if k != "contact_writes"} for r in reports],
    }


FAULT_NAMES = {"500": "error_rate_500", "503": "error_rate_503", "drop": "drop_rate"}


def parse_faults(spec: str | None) -> dict[str, float]:
    """``503=0.05,500=0.02,drop=0.02`` -> the emulator's fault knobs (``/_emulator/faults``)."""
    rates: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        if name.strip() not in FAULT_NAMES:
            raise argparse.ArgumentTypeError(f"unknown fault {name!r}: use 500, 503 or drop")
        rates[FAULT_NAMES[name.strip()]] = float(value)
    return rates


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--existing-contacts", type=float, default=0.3, help="share already in Dynamics")
    parser.add_argument("--existing-companies", type=float, default=0.5, help="share already in Dynamics")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="chunks each worker runs at once")
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--no-budget", action="store_true", help="workers without the shared budget")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--profile", help="folder: each worker writes its cProfile stats there")
    parser.add_argument(
        "--faults",
        help="the emulator's fault injection during the run, e.g. 503=0.05,500=0.02,drop=0.02 (a drop "
        "closes the connection after Dynamics committed the request)",
    )
    parser.add_argument("--fault-seed", type=int, default=3, help="seed of the fault sequence")
    parser.add_argument(
        "--lease",
        type=int,
        default=300,
        help="seconds a received chunk message stays invisible, renewed at half time while the chunk runs "
        "(a lease shorter than a chunk shows that a slow chunk is not redelivered while running)",
    )
    args = parser.parse_args(argv)
    parse_faults(args.faults)  # a typo fails before anything starts
    figures = run(args)
    print(f"records            {figures['records']} ({figures['counts']})")
    print(
        f"workers            {args.workers} processes x {args.threads} chunk threads, "
        f"budget={not args.no_budget}"
    )
    print(f"elapsed            {figures['elapsed_s']} s (submit {figures['submit_s']} s)")
    print(f"records/s          {figures['records_per_s']}")
    print(f"HTTP requests      {figures['http_requests']} ({figures['http_requests_per_record']} per record)")
    print(
        f"inner operations   {figures['inner_operations']} "
        f"({figures['inner_operations_per_record']} per record)"
    )
    print(f"429s seen          {figures['throttled_429']}")
    print(
        f"CPU                workers {figures['worker_cpu_s']} s "
        f"({figures['worker_cpu_ms_per_record']} ms per record), emulator {figures['emulator_cpu_s']} s, "
        f"azurite {figures['azurite_cpu_s']} s, driver {figures['driver_cpu_s']} s "
        f"on {figures['host_cpus']} CPUs (load average {figures['load_average_1m']})"
    )
    if "chunk_attempts" in figures:
        print(
            f"chunks             {figures['chunk_attempts']} attempts, {figures['chunk_s_median']} s median "
            f"({figures['chunk_s_max']} s max), first started {figures['first_chunk_start_s']} s and last "
            f"ended {figures['last_chunk_end_s']} s after submit began"
        )
    print(
        f"peak RSS           worker {figures['peak_rss_mb']} MB, driver {figures['peak_rss_driver_mb']} MB, "
        f"emulator {figures['peak_rss_emulator_mb']} MB"
    )
    timeline = ", ".join(f"{n}: {mb:.0f}" for n, mb in figures["worker_rss_by_records_mb"])
    print(f"worker RSS (MB) by records processed  {timeline}")
    print(
        f"duplicates created {figures['duplicates']} "
        f"(pipeline wrote twice: {figures['duplicates_pipeline']}; "
        f"existing contacts matching missed: {figures['existing_not_matched']} of "
        f"{figures['existing_contacts_exported']})"
    )
    print(f"false merges       {figures['false_merges']} (outcomes per record: {figures['outcomes']})")
    print(
        f"reported exactly   created {figures['counts']['created']} for {figures['new_contacts']} new rows; "
        f"new contacts reported otherwise {figures['created_reported_otherwise']}; "
        f"contacts written twice {figures['contacts_written_twice']}"
    )
    if figures["faults"]:
        print(f"faults             {figures['faults']} injected {figures['injected_faults']}")
    summary = {k: v for k, v in figures.items() if k != "worker_reports"}
    print(json.dumps(summary, separators=(",", ":")))
    exact = (
        figures["duplicates"] == 0
        and figures["created_reported_otherwise"] == 0
        and figures["contacts_written_twice"] == 0
        and figures["counts"]["created"] == figures["new_contacts"]
    )
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
