"""Queue triggers through the devhost against real Azurite: retries with a real dequeue_count, poison
queue after maxDequeueCount (3 in FAST_QUEUES), deletion on success, output bindings, and several devhost
processes sharing one queue without processing a message twice at the same time."""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from tests.support.azurite import Azurite
from tests.support.devhost import (  # noqa: F401 - fixtures
    FAST_QUEUES,
    DevHostFactory,
    RunningDevHost,
    devhost_factory_fixture,
    queue_name_fixture,
    sample_devhost_fixture,
)

pytestmark = pytest.mark.integration


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def queue(azurite: Azurite, name: str) -> QueueClient:
    return QueueClient.from_connection_string(azurite.connection_string, name)


def drain(client: QueueClient) -> list[str]:
    try:
        return [m.content for m in client.receive_messages(max_messages=32, visibility_timeout=30)]
    except ResourceNotFoundError:  # created by the devhost on first use
        return []


def peek(client: QueueClient) -> list[Any]:
    try:
        return list(client.peek_messages(max_messages=5))
    except ResourceNotFoundError:
        return []


def test_failing_message_is_retried_max_dequeue_count_times_then_poisoned(
    sample_devhost: RunningDevHost, azurite: Azurite, queue_name: str
) -> None:
    queue(azurite, queue_name).send_message(b64("fail-please"))
    poison = queue(azurite, f"{queue_name}-poison")
    poisoned = wait_for(lambda: peek(poison), what="the poison queue")
    assert [base64.b64decode(m.content).decode() for m in poisoned] == ["fail-please"]
    attempts = [r for r in sample_devhost.records("queue") if r["body"] == "fail-please"]
    assert [r["dequeue_count"] for r in attempts] == [1, 2, 3]
    assert len({r["id"] for r in attempts}) == 1
    assert all(r["has_pop_receipt"] and r["inserted"] for r in attempts)
    assert queue(azurite, queue_name).peek_messages() == []
    assert "moved to" in sample_devhost.log()


def test_succeeding_message_is_deleted_and_its_output_binding_sent(
    sample_devhost: RunningDevHost, azurite: Azurite, queue_name: str
) -> None:
    queue(azurite, queue_name).send_message(b64("hello ✓"))
    output = queue(azurite, f"{queue_name}-out")
    sent = wait_for(lambda: drain(output), what="the output queue")
    assert [base64.b64decode(content).decode() for content in sent] == ["done:hello ✓"]
    attempts = [r for r in sample_devhost.records("queue") if r["body"] == "hello ✓"]
    assert [r["dequeue_count"] for r in attempts] == [1]
    properties = wait_for(
        lambda: (p := queue(azurite, queue_name).get_queue_properties()).approximate_message_count == 0 and p,
        what="the message to be deleted",
    )
    assert properties.approximate_message_count == 0


def test_message_that_is_not_base64_fails_and_is_poisoned_unchanged(
    sample_devhost: RunningDevHost, azurite: Azurite, queue_name: str
) -> None:
    queue(azurite, queue_name).send_message("not base64 ¡")
    poison = queue(azurite, f"{queue_name}-poison")
    poisoned = wait_for(lambda: peek(poison), what="the poison queue")
    assert [m.content for m in poisoned] == ["not base64 ¡"]
    assert sample_devhost.records("queue") == []  # never reached the function


def test_failed_message_waits_visibility_timeout_before_its_retry(
    devhost_factory: DevHostFactory, azurite: Azurite, queue_name: str
) -> None:
    slow_retry = {
        "extensions": {"queues": {**FAST_QUEUES["extensions"]["queues"], "visibilityTimeout": "00:00:01"}}
    }
    host = devhost_factory(settings={"SAMPLE_QUEUE": queue_name}, host_overrides=slow_retry)
    queue(azurite, queue_name).send_message(b64("fail-slowly"))
    attempts = wait_for(lambda: len(host.records("queue")) >= 2 and host.records("queue"), what="a retry")
    gap = attempts[1]["at"] - attempts[0]["at"]
    assert [a["dequeue_count"] for a in attempts[:2]] == [1, 2]
    # The lower bound is the point (with visibilityTimeout 0 the retry is immediate); the upper is slack
    # for a loaded machine.
    assert 0.9 <= gap < 6.0, f"retry came {gap:.2f}s after the failure, visibilityTimeout is 1 s"


def test_four_devhosts_share_a_queue_and_process_each_message_once(
    devhost_factory: DevHostFactory, azurite: Azurite, queue_name: str
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        hosts = list(pool.map(lambda _: devhost_factory(settings={"SAMPLE_QUEUE": queue_name}), range(4)))
    client = queue(azurite, queue_name)
    bodies = [f"sleep:0.1#{i}" for i in range(24)]
    for body in bodies:
        client.send_message(b64(body))
    records = wait_for(
        lambda: len(hosts[0].records("queue")) >= len(bodies) and hosts[0].records("queue"),
        what="all messages",
    )
    time.sleep(0.5)  # a duplicate delivery, if any, would show up now
    records = hosts[0].records("queue")
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
    assert [base64.b64decode(c).decode() for c in drain(queue(azurite, f"{queue_name}-out"))] == [
        "done:sleep:1.5#graceful"
    ]
    assert queue(azurite, queue_name).get_queue_properties().approximate_message_count == 0
