"""Queue triggers through the devhost against real Azurite: retries with a real dequeue_count, poison
queue after maxDequeueCount (3 in FAST_QUEUES), deletion on success, output bindings, and several devhost
processes sharing one queue without processing a message twice at the same time."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost.config import QueueOptions
from devhost.index import QueueFunction
from devhost.invoke import Invoker
from devhost.queues import QueueListener
from tests.support.azurite import Azurite
from tests.support.clock import ManualClock
from tests.support.devhost import (  # noqa: F401 - fixtures
    FAST_QUEUES,
    DevHostFactory,
    RunningDevHost,
    devhost_factory_fixture,
    queue_name_fixture,
    sample_devhost_fixture,
    shared_devhost_factory_fixture,
    shared_sample_devhost_fixture,
)
from tests.support.fake_queue import FakeQueueClients

pytestmark = pytest.mark.integration


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def queue(azurite: Azurite, name: str) -> QueueClient:
    """A client for the queue, created if missing: the devhost answers HTTP before its listeners have
    created their queues, so a test must not depend on which comes first."""
    client = QueueClient.from_connection_string(azurite.connection_string, name)
    try:
        client.create_queue()
    except ResourceExistsError:
        pass
    return client


def contents(client: QueueClient, *, encoded: bool = True) -> list[str]:
    """Every message in the queue, without taking them (the poison queue is shared within the module)."""
    found = peek_all(client)
    return [base64.b64decode(c).decode() if encoded else c for c in found]


def peek_all(client: QueueClient) -> list[str]:
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


# The next three tests share one devhost (and its queue); each sends a message only it uses.


def test_failing_message_is_retried_max_dequeue_count_times_then_poisoned(
    shared_sample_devhost: RunningDevHost, azurite: Azurite
) -> None:
    host, name = shared_sample_devhost, shared_sample_devhost.settings["SAMPLE_QUEUE"]
    body = f"fail-{uuid.uuid4().hex[:8]}"
    queue(azurite, name).send_message(b64(body))
    wait_for(lambda: body in contents(queue(azurite, f"{name}-poison")), what="the poison queue")
    attempts = [r for r in host.records("queue") if r["body"] == body]
    assert [r["dequeue_count"] for r in attempts] == [1, 2, 3]  # maxDequeueCount 3
    assert len({r["id"] for r in attempts}) == 1
    assert all(r["has_pop_receipt"] and r["inserted"] for r in attempts)
    assert body not in contents(queue(azurite, name))
    assert "moved to" in host.log()


def test_succeeding_message_is_deleted_and_its_output_binding_sent(
    shared_sample_devhost: RunningDevHost, azurite: Azurite
) -> None:
    host, name = shared_sample_devhost, shared_sample_devhost.settings["SAMPLE_QUEUE"]
    body = f"hello ✓ {uuid.uuid4().hex[:8]}"
    queue(azurite, name).send_message(b64(body))
    wait_for(lambda: f"done:{body}" in contents(queue(azurite, f"{name}-out")), what="the output queue")
    attempts = [r for r in host.records("queue") if r["body"] == body]
    assert [r["dequeue_count"] for r in attempts] == [1]
    wait_for(
        lambda: queue(azurite, name).get_queue_properties().approximate_message_count == 0,
        what="the message to be deleted",
    )
    assert body not in contents(queue(azurite, f"{name}-poison"))


def test_message_that_is_not_base64_fails_and_is_poisoned_unchanged(
    shared_sample_devhost: RunningDevHost, azurite: Azurite
) -> None:
    host, name = shared_sample_devhost, shared_sample_devhost.settings["SAMPLE_QUEUE"]
    before = len(host.records("queue"))
    raw = f"not base64 ¡ {uuid.uuid4().hex[:8]}"
    queue(azurite, name).send_message(raw)
    wait_for(
        lambda: raw in contents(queue(azurite, f"{name}-poison"), encoded=False), what="the poison queue"
    )
    assert len(host.records("queue")) == before  # never reached the function


def test_four_devhosts_share_a_queue_and_process_each_message_once(
    devhost_factory: DevHostFactory, azurite: Azurite, queue_name: str
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        hosts = list(pool.map(lambda _: devhost_factory(settings={"SAMPLE_QUEUE": queue_name}), range(4)))
    client = queue(azurite, queue_name)
    bodies = [f"sleep:0.1#{i}" for i in range(24)]
    for body in bodies:
        client.send_message(b64(body))
    # Done means the queue is empty: its count includes invisible (received, not yet deleted) messages,
    # and a message is deleted only after its last invocation returned, so no delivery is still to come.
    records = wait_for(
        lambda: (
            client.get_queue_properties().approximate_message_count == 0
            and len(hosts[0].records("queue")) >= len(bodies)
            and hosts[0].records("queue")
        ),
        what="all messages handled and deleted",
    )
    counts = Counter(r["body"] for r in records)
    assert set(counts) == set(bodies)
    assert all(n == 1 for n in counts.values()), "a message was processed twice"
    assert len({r["pid"] for r in records}) >= 2, "only one devhost did all the work"


def test_worker_pool_is_bounded_by_batch_size_plus_threshold(
    sample_devhost: RunningDevHost, azurite: Azurite, queue_name: str
) -> None:
    client = queue(azurite, queue_name)
    for i in range(12):
        client.send_message(b64(f"sleep:0.5#{i}"))
    records = wait_for(lambda: len(sample_devhost.records("queue")) >= 12 and sample_devhost.records("queue"))
    most_at_once = max(r["running"] for r in records)
    assert 2 <= most_at_once <= 4 + 2, f"{most_at_once} at once; batchSize 4 + newBatchThreshold 2 allow 6"


def test_sigterm_lets_an_in_flight_message_finish_and_be_deleted(
    sample_devhost: RunningDevHost, azurite: Azurite, queue_name: str
) -> None:
    queue(azurite, queue_name).send_message(b64("sleep:1.5#graceful"))
    wait_for(lambda: sample_devhost.records("queue"), what="the message to start")
    assert sample_devhost.stop() == 0
    assert contents(queue(azurite, f"{queue_name}-out")) == ["done:sleep:1.5#graceful"]
    assert queue(azurite, queue_name).get_queue_properties().approximate_message_count == 0


# Visibility and leases on a manual clock: an in-memory queue whose visibility timeouts run on the
# clock, and the listener waiting on the same clock; each step moves time to the next moment a thread
# waits for, once nothing is in flight.


def listen(
    clock: ManualClock, function: Callable[[func.QueueMessage], None], *, lease: int = 600, **options: Any
) -> tuple[QueueListener, FakeQueueClients]:
    clients = FakeQueueClients(clock)
    queue_options = QueueOptions(batch_size=2, max_polling_interval=0.5, **options)
    info = QueueFunction("work", function, "message", False, queue_name="work")
    listener = QueueListener(info, clients, queue_options, Invoker(), processing_lease=lease, clock=clock)  # type: ignore[arg-type]
    return listener, clients


def test_failed_message_waits_visibility_timeout_before_its_retry() -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    deliveries: list[tuple[int, dt.datetime]] = []

    def failing(message: func.QueueMessage) -> None:
        deliveries.append((message.dequeue_count or 0, clock.now()))
        raise RuntimeError("failing on purpose")

    listener, clients = listen(clock, failing, visibility_timeout=2.0, max_dequeue_count=3)
    clients.get(None, "work").send_message(b64("x"))
    listener.start()
    try:
        while "eA==" not in clients.get(None, "work-poison").contents():
            clock.blocked(1)
            wait_for(lambda: listener.in_flight == 0, what="the delivery to be settled")
            clock.advance_to_next()
    finally:
        listener.stop()
    assert [n for n, _ in deliveries] == [1, 2, 3]  # maxDequeueCount 3, then the poison queue
    for (_, failed), (_, retried) in itertools.pairwise(deliveries):
        # invisible for visibilityTimeout after each failure, received by the next poll after that
        assert dt.timedelta(seconds=2.0) <= retried - failed <= dt.timedelta(seconds=2.5)
    assert clients.get(None, "work").contents() == []


def test_a_run_longer_than_the_lease_keeps_its_message() -> None:
    # As the Functions host: the message's visibility is renewed while its function runs, so a run longer
    # than the lease is not handed out again meanwhile (a second run at once, counted toward poison).
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    deliveries: list[int] = []

    def slow(message: func.QueueMessage) -> None:
        deliveries.append(message.dequeue_count or 0)
        for step in range(1, 21):  # a run of 100 s against a lease of 10 s: renewed every 5 s meanwhile
            clock.blocked(2)  # the poller and the lease keeper
            clock.advance(5)
            wait_for(lambda n=step: listener.lease_renewals >= n, what="the renewal due")  # type: ignore[misc]
            assert clients.get(None, "work").receive_messages(max_messages=1) == []  # never visible

    listener, clients = listen(clock, slow, lease=10)
    clients.get(None, "work").send_message(b64("slow"))
    listener.start()
    try:
        wait_for(lambda: deliveries and listener.in_flight == 0, what="the run to end")
    finally:
        listener.stop()
    assert deliveries == [1]
    assert clients.get(None, "work").contents() == []  # deleted with the receipt of its last renewal
