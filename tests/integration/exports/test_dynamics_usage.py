"""The Dynamics API budget view counts what Dynamics really served: exports run by the real worker inside
the shared budget (Azurite), against a Dataverse emulator whose limits are low enough to answer 429s, then
the view's requests, 429s and busiest job are compared with the emulator's own statistics."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from azure.data.tables import TableServiceClient

from core.adapters.dataverse.budget import BudgetLimits, DynamicsBudget
from core.adapters.dataverse.client import DataverseClient
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.services.dynamics.usage import DynamicsUsage
from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session
from tests.integration.exports.conftest import ExportHarness
from tests.integration.exports.test_export_worker import CONFIG
from tests.support.dataverse import STATIC_TOKEN


def _contacts(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{i}", "firstName": f"Ada{i}", "lastName": f"{prefix}{i}"} for i in range(count)]


def test_usage_matches_the_requests_dynamics_served(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
    emulator: DataverseEmulator,
    storage_connection_string: str,
) -> None:
    harness = harness_for(CONFIG)
    ws = f"ws-usage-{uuid.uuid4().hex[:8]}"
    caller = Caller(ws, "platform-user-1", Role.ADMIN)
    budget = DynamicsBudget(
        TableServiceClient.from_connection_string(storage_connection_string), BudgetLimits()
    )
    client = DataverseClient(
        emulator.url,
        lambda _force: STATIC_TOKEN,
        session=trusting_session(),
        on_request=budget.observer(ws),
        before_send=budget.gate(ws),
    )
    connection = DynamicsConnection(ws, emulator.url, "integration@contoso.com", harness.integration_user_id)
    harness.worker = harness.worker_for(lambda _ws: (client, connection), budget=budget)
    # Dynamics allows this user 6 requests per 2 s: the exports below are answered some 429s.
    emulator.limits.configure(window_s=2.0, max_requests=6)
    emulator.limits.reset()

    big = harness.run({"entity": "contacts", "records": _contacts("big", 20)}, caller=caller, chunk_size=5)
    small = harness.run({"entity": "contacts", "records": _contacts("small", 2)}, caller=caller)
    assert big["status"].counts["created"] == 20 and small["status"].counts["created"] == 2
    client.who_am_i()  # a request of no job (a setup screen's), still unmerged when the view is read

    served = emulator.limits.stats()
    view = DynamicsUsage(budget, BudgetLimits()).view(ws)
    assert view.recorded
    assert served["throttled"] > 0  # the limits really were hit
    today = view.days[0].spent
    assert today.requests == served["admitted"]
    assert today.throttled == served["throttled"]
    assert view.window.requests == served["admitted"] and view.window.throttled == served["throttled"]
    assert view.window.execution_s > 0

    jobs = harness.store.list_jobs(ws)
    assert len(jobs) == 2
    big_job = next(j.job_id for j in jobs if j.total_records == 20)
    busiest = view.window.busiest_job
    assert busiest is not None and busiest.kind == "export"
    assert busiest.job_id == big_job
    per_job = budget.usage_report(ws).window.jobs
    # every attempt is some job's, except the who-am-I above
    assert sum(requests for requests, _ in per_job.values()) + 1 == served["admitted"] + served["throttled"]

    assert view.reported is not None and view.reported.requests_remaining is not None
    assert 0 <= view.reported.requests_remaining <= 6


def test_day_rows_older_than_the_view_are_deleted(storage_connection_string: str) -> None:
    tables = TableServiceClient.from_connection_string(storage_connection_string)
    budget = DynamicsBudget(tables, BudgetLimits())
    ws = f"ws-usage-{uuid.uuid4().hex[:8]}"
    budget.record(ws, 3, 120.0, job="export:job-1")
    budget.release(ws)  # merged now
    table = tables.get_table_client("DynamicsBudget")
    old = {"PartitionKey": f"{ws}~usage", "RowKey": "day-20000101", "Requests": 9}
    table.upsert_entity(old)
    assert [d for d in budget.usage_report(ws, days=40_000).days] == [
        "2000-01-01",
        dt.datetime.now(dt.UTC).date().isoformat(),
    ]
    assert budget.purge_usage_days(dt.date(2000, 1, 2), limit=100_000) >= 1
    assert list(budget.usage_report(ws, days=40_000).days) == [dt.datetime.now(dt.UTC).date().isoformat()]
