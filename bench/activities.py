"""Benchmark: engagement events logged as Dynamics activities through the real service and queue worker.

``python -m bench.activities [--events 10000] [--contacts 2000] [--latency-ms 50] [--workers 2]
[--missing-fraction 0] [--faults 503=0.05,500=0.02,drop=0.02 --fault-seed 3]``

Real pieces: Azurite (tables, blobs, queues), the Dataverse emulator in its own process (HTTPS, the given
latency on every request, default service protection limits), the real ``ActivityService`` (submit, staging,
chunk messages) and ``ActivityWorker`` (``--workers`` threads draining the queue). Seeding (not measured):
the contacts exist in Dynamics — half exported by the platform (found by their deterministic ids), half
created by others (matched with the LinkedIn-or-name+company identifier) —, five identities map to five
Dynamics users, the configuration maps an engagement field and four campaign properties.
``--missing-fraction F`` leaves that share of the contacts out of Dynamics and turns on
``exportMissingContacts`` (with first name, last name and LinkedIn URL mapped): those contacts are exported
first; ``contact_duplicates`` counts contacts beyond one per missing contact with an activity to log.

Measured: the wall time from submit to the last chunk done (``events_per_s``), the HTTP requests the
emulator answered for it (``http_requests_per_event``), then the whole event list is delivered AGAIN
(platform retry) and every activity in Dynamics is counted: ``duplicates`` = activities beyond one per
loggable event. ``--faults`` turns the emulator's fault injection on for both deliveries (a chunk that
raises comes back, as the host retries it); ``open_activities`` counts activities created but never closed
and ``reported_created`` the events reported created, to compare with the activities there. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from bench.export import parse_faults
from core.adapters.dataverse.client import DataverseClient, RequestEvent
from core.adapters.storage.job_store import JobStore
from core.domain.activities import SIGNAL_KINDS, ActivitiesRequest, EventKind
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.jobs import ExportEntity, deterministic_dynamics_id
from core.services.activities.service import ACTIVITY_NAMES, ACTIVITY_QUEUE, ActivityService
from core.services.activities.worker import ActivityWorker
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.contacts_for_jobs import ContactExport
from core.services.jobs.messages import ChunkMessage
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import run_azurite

REPO = Path(__file__).resolve().parent.parent
TOKEN = "static-test-token"
WS = "ws-bench-activities"
CALLER = Caller(WS, "bench-user", Role.SERVICE)
IDENTITIES = 5
# A campaign's mix: many e-mails and signals, fewer LinkedIn steps, calls and tasks.
KINDS = (
    [EventKind.EMAIL_SENT] * 8
    + [EventKind.EMAIL_OPENED] * 3
    + [EventKind.EMAIL_CLICKED]
    + [EventKind.EMAIL_REPLIED]
    + [EventKind.LINKEDIN_MESSAGE] * 3
    + [EventKind.LINKEDIN_CONNECTION]
    + [EventKind.CALL] * 2
    + [EventKind.TASK]
)
ACTIVITY_SETS = ("emails", "new_linkedinactivities", "phonecalls", "tasks")


def _start_emulator(latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.dataverse", "--port", "0", "--latency-ms", str(latency_ms)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the Dataverse emulator did not start")
    return proc, str(json.loads(line)["url"])


def _config(user_ids: list[str], *, export_missing: bool = False) -> DynamicsConfig:
    mapped = [
        {"kind": "platform_field", "platformField": field, "dynamicsField": column}
        for field, column in (
            ("firstName", "firstname"),
            ("lastName", "lastname"),
            ("linkedinUrl", "new_linkedinurl"),
        )
    ]
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {
                "contactIdentifier": "linkedin_or_name_company",
                "columns": {"contactLinkedinUrl": "new_linkedinurl"},
                "exportMissingContacts": export_missing,
            },
            "fieldMapping": {
                "contacts": (mapped if export_missing else [])
                + [
                    {
                        "kind": "engagement",
                        "dynamicsField": "new_engagement",
                        "value": "Engaged",
                        "valueType": "text",
                    }
                ],
                "companies": [],
            },
            "campaignMapping": {
                "campaignOpens": "new_campaignopens",
                "campaigns": "new_campaigns",
                "campaignEngagementStatus": "new_campaignstatus",
                "activities": "new_activities",
            },
            "userMapping": {
                "identities": [
                    {"identityId": f"id-{i}", "dynamicsUserId": user_ids[i]} for i in range(IDENTITIES)
                ],
            },
        }
    )


def _contact(i: int) -> dict[str, Any]:
    return {
        "id": f"p-{i}",
        "firstName": f"First{i}",
        "lastName": f"Last{i}",
        "linkedinUrl": f"https://www.linkedin.com/in/bench-{i}",
        "campaigns": [
            {
                "id": "c1",
                "name": "Bench campaign",
                "sequenceStatus": "active",
                "engagementStatus": "contacted",
                "steps": [{"index": 1, "channel": "email", "status": "sent", "opens": i % 4}],
            }
        ],
        "activities": [
            {"id": f"a-{i}", "type": "email_sent", "at": "2026-11-20T10:00:00Z", "summary": "Intro"}
        ],
    }


def _events(count: int, contacts: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ev-{n}",
            "contactId": f"p-{n % contacts}",
            "kind": KINDS[n % len(KINDS)].value,
            "at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
            "identityId": f"id-{n % IDENTITIES}",
            "subject": f"Step {n % 7}",
            "body": "Hello from the bench",
            "campaignId": "c1",
        }
        for n in range(count)
    ]


def _drain(queues: QueueServiceClient, worker: ActivityWorker, threads: int, *, retry: bool = False) -> int:
    """Deliver every chunk (``threads`` at a time). A chunk that raises stops the bench, or with ``retry``
    comes back at once with the next dequeue count, as the host retries it. Returns the retried attempts."""
    queue = queues.get_queue_client(ACTIVITY_QUEUE)
    lock = threading.Lock()
    failures: list[BaseException] = []
    retried: list[int] = []

    def loop() -> None:
        while True:
            with lock:
                messages = list(queue.receive_messages(max_messages=1, visibility_timeout=600))
            if not messages:
                return
            for message in messages:
                try:
                    worker.handle(
                        ChunkMessage.parse(base64.b64decode(message.content)), message.dequeue_count or 1
                    )
                except Exception as exc:  # a chunk that raises would be retried by the host: say so
                    if retry:
                        retried.append(1)
                        queue.update_message(message, visibility_timeout=0)
                        continue
                    failures.append(exc)
                    return
                queue.delete_message(message)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        # Figures from a half-processed job would read as duplicates < 0: stop instead.
        raise RuntimeError(f"{len(failures)} chunk run(s) raised; first: {failures[0]!r}") from failures[0]
    return len(retried)


def _stats(control: requests.Session, url: str) -> dict[str, Any]:
    response = control.get(url + "/_emulator/stats", timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _count(client: DataverseClient, entity_set: str) -> int:
    return sum(len(page) for page in client.query_pages(entity_set, select=["activityid"]))


def run(args: argparse.Namespace, storage: str, url: str) -> dict[str, Any]:
    control = trusting_session()
    session = trusting_session()
    dataverse_s: dict[str, float] = {}
    lock = threading.Lock()

    def on_request(event: RequestEvent) -> None:
        kind = event.path.rsplit("/", 1)[-1].split(".")[-1] if "Multiple" in event.path else event.method
        kind = "$batch" if event.path.endswith("$batch") else kind
        with lock:
            dataverse_s[kind] = dataverse_s.get(kind, 0.0) + event.elapsed_s

    client = DataverseClient(
        url, lambda _force: TOKEN, session=session, max_concurrency=16, on_request=on_request
    )
    user_ids = []
    for i in range(IDENTITIES):
        response = control.post(
            url + "/_emulator/users", json={"firstname": "Rep", "lastname": str(i)}, timeout=30
        )
        response.raise_for_status()
        user_ids.append(str(response.json()["systemuserid"]))
    contacts = [_contact(i) for i in range(args.contacts)]
    exported = int(args.contacts * args.exported_fraction)
    missing = int(args.contacts * args.missing_fraction)  # the last ones: not in Dynamics at all
    rows = [
        {"firstname": c["firstName"], "lastname": c["lastName"], "new_linkedinurl": c["linkedinUrl"]}
        | (
            {"contactid": deterministic_dynamics_id(WS, ExportEntity.CONTACTS, c["id"])}
            if i < exported
            else {}
        )
        for i, c in enumerate(contacts)
        if i < args.contacts - missing
    ]
    for start in range(0, len(rows), 500):
        client.create_multiple("contact", rows[start : start + 500])
    config = _config(user_ids, export_missing=missing > 0)
    store = JobStore(
        TableServiceClient.from_connection_string(storage),
        BlobServiceClient.from_connection_string(storage),
        QueueServiceClient.from_connection_string(storage),
        ACTIVITY_NAMES,
    )
    store.ensure_ready()
    queues = QueueServiceClient.from_connection_string(storage)
    connection = DynamicsConnection(WS, url, "integration@contoso.com", client.who_am_i().user_id)
    metadata = MetadataCache()
    worker = ActivityWorker(
        store,
        lambda _ws: (client, connection),
        export_contacts=ContactExport(store, metadata),
        metadata=metadata,
    )
    service = ActivityService(store, lambda _caller: config)
    events = _events(args.events, args.contacts)
    body = ActivitiesRequest.model_validate({"events": events, "contacts": contacts})

    dataverse_s.clear()
    if args.faults:
        # From here on every Dataverse request may fail (a drop comes after Dynamics committed it).
        faults = {**parse_faults(args.faults), "seed": args.fault_seed}
        control.post(url + "/_emulator/faults", json=faults, timeout=30).raise_for_status()
    before = _stats(control, url)["requests"]
    started = time.perf_counter()
    job = service.submit(CALLER, body)
    retried = _drain(queues, worker, args.workers, retry=bool(args.faults))
    elapsed = time.perf_counter() - started
    requests_made = _stats(control, url)["requests"] - before - 1  # minus the stats call itself
    found = service.status(WS, job.job_id)
    status = dataclasses.asdict(found) if found is not None else {}
    waited = {k: round(v, 2) for k, v in sorted(dataverse_s.items())}

    again = service.submit(CALLER, body)  # the platform delivers every event a second time
    retried += _drain(queues, worker, args.workers, retry=bool(args.faults))
    found_again = service.status(WS, again.job_id)
    second = dataclasses.asdict(found_again) if found_again is not None else {}
    injected = _stats(control, url)["simulation"]
    if args.faults:
        control.post(url + "/_emulator/faults", json={k: 0 for k in parse_faults(args.faults)}, timeout=30)
    opened = sum(
        len(page)
        for s in ACTIVITY_SETS
        for page in client.query_pages(s, select=["activityid"], filter="statecode eq 0")
    )

    loggable = sum(1 for e in events if EventKind(e["kind"]) not in SIGNAL_KINDS)
    activities = sum(_count(client, s) for s in ACTIVITY_SETS)
    missing_ids = {c["id"] for c in contacts[args.contacts - missing :]} if missing else set()
    to_create = {
        e["contactId"]
        for e in events
        if e["contactId"] in missing_ids and EventKind(e["kind"]) not in SIGNAL_KINDS
    }
    created = sum(len(page) for page in client.query_pages("contacts", select=["contactid"])) - len(rows)
    return {
        "events": args.events,
        "contacts": args.contacts,
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "exported_fraction": args.exported_fraction,
        "seconds": round(elapsed, 2),
        "events_per_s": round(args.events / elapsed, 1),
        "http_requests": requests_made,
        "http_requests_per_event": round(requests_made / args.events, 4),
        "dataverse_wait_s": waited,  # summed over worker threads, by request kind
        "first_run": status.get("counts"),
        "first_state": status.get("state"),
        "redelivery": second.get("counts"),
        "activities_in_dynamics": activities,
        "loggable_events": loggable,
        "duplicates": activities - loggable,
        # a logged event's activity is closed: an open one was created and then lost (must be 0)
        "open_activities": opened,
        # events reported created on the first run vs activities there: exact when equal
        "reported_created": (status.get("counts") or {}).get("created"),
        "faults": {"rates": parse_faults(args.faults), "seed": args.fault_seed} if args.faults else None,
        "injected_faults": {k: v for k, v in injected.items() if k.startswith("fault_")},
        "chunk_attempts_retried": retried,
        "missing_contacts": missing,
        "contacts_created": created,
        "contact_duplicates": created - len(to_create),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--exported-fraction",
        type=float,
        default=0.5,
        help="contacts the platform exported (found by id); the others exist in Dynamics already and are "
        "matched by LinkedIn URL",
    )
    parser.add_argument(
        "--missing-fraction",
        type=float,
        default=0.0,
        help="contacts not in Dynamics at all; > 0 turns on exportMissingContacts (they are exported first)",
    )
    parser.add_argument("--faults", help="the emulator's fault injection, e.g. 503=0.05,500=0.02,drop=0.02")
    parser.add_argument("--fault-seed", type=int, default=3, help="seed of the fault sequence")
    args = parser.parse_args()
    parse_faults(args.faults)  # a typo fails before anything starts
    ensure_ca()
    proc, url = _start_emulator(args.latency_ms)
    try:
        with run_azurite() as azurite:
            result = run(args, azurite.connection_string, url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
