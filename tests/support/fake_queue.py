"""An in-memory Storage queue whose visibility timeouts run on a ``ManualClock``: the devhost's queue
listener (``devhost.queues``) against it shows when a message becomes visible again, to the clock's
exact moment, without waiting for real seconds. Pop receipts change on every receive and update, and a
stale one is refused as Azure Storage refuses it (404)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from tests.support.clock import ManualClock


@dataclass
class FakeMessage:
    id: str
    content: str
    inserted_on: dt.datetime
    next_visible_on: dt.datetime
    dequeue_count: int = 0
    pop_receipt: str | None = None
    expires_on: dt.datetime | None = None
    receipts: list[str] = field(default_factory=list)


class FakeQueue:
    def __init__(self, clock: ManualClock, name: str) -> None:
        self.clock = clock
        self.queue_name = name
        self._messages: dict[str, FakeMessage] = {}
        self._lock = threading.Lock()

    def create_queue(self, **_: Any) -> None:
        return None

    def send_message(self, content: str, **_: Any) -> None:
        now = self.clock.now()
        message = FakeMessage(uuid.uuid4().hex, content, now, now)
        with self._lock:
            self._messages[message.id] = message

    def receive_messages(self, *, max_messages: int = 1, visibility_timeout: int = 30, **_: Any) -> list[Any]:
        now = self.clock.now()
        with self._lock:
            visible = [m for m in self._messages.values() if m.next_visible_on <= now][:max_messages]
            for message in visible:
                message.dequeue_count += 1
                message.pop_receipt = uuid.uuid4().hex
                message.next_visible_on = now + dt.timedelta(seconds=visibility_timeout)
            return [FakeMessage(**{**vars(m), "receipts": []}) for m in visible]

    def update_message(self, message_id: str, pop_receipt: str, *, visibility_timeout: int, **_: Any) -> Any:
        with self._lock:
            message = self._held(message_id, pop_receipt)
            message.pop_receipt = uuid.uuid4().hex
            message.next_visible_on = self.clock.now() + dt.timedelta(seconds=visibility_timeout)
            return FakeMessage(**{**vars(message), "receipts": []})

    def delete_message(self, message_id: str, pop_receipt: str, **_: Any) -> None:
        with self._lock:
            self._held(message_id, pop_receipt)
            del self._messages[message_id]

    def contents(self) -> list[str]:
        with self._lock:
            return [m.content for m in self._messages.values()]

    def next_visible(self) -> dict[str, dt.datetime]:
        with self._lock:
            return {m.content: m.next_visible_on for m in self._messages.values()}

    def _held(self, message_id: str, pop_receipt: str) -> FakeMessage:
        message = self._messages.get(message_id)
        if message is None or message.pop_receipt != pop_receipt:
            raise ResourceNotFoundError("the message is gone or its pop receipt is stale")
        return message


class FakeQueueClients:
    """``devhost.queues.QueueClients`` over fake queues, one per name."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.queues: dict[str, FakeQueue] = {}

    def get(self, connection: str | None, queue_name: str) -> FakeQueue:
        return self.queues.setdefault(queue_name, FakeQueue(self.clock, queue_name))

    def ensure(self, client: FakeQueue, *, quick: bool = False) -> FakeQueue:
        return client
