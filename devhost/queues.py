"""Queue triggers against Azure Storage queues (Azurite locally), with the Functions host's semantics.

Per queue-triggered function one poller thread and a bounded pool of ``batchSize + newBatchThreshold``
workers. The poller fetches up to ``batchSize`` messages whenever the number in flight has dropped to
``newBatchThreshold``; received messages stay invisible to other consumers for a processing lease, so several
devhost processes on the same queue never process one message at the same time; the lease is renewed
every half lease while the function runs (``MessageLease``), as the Functions host does, so a function
that runs longer than the lease is not handed to another consumer meanwhile. Success deletes the
message; a failure makes it visible again after ``visibilityTimeout``; the ``maxDequeueCount``-th failure
moves it to ``<queue>-poison``. An empty queue is polled with randomized exponential back-off up to
``maxPollingInterval``. Message bodies are base64-decoded when ``messageEncoding`` is base64 (the default).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions.queue as func_queue
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import LinearRetry, QueueClient, QueueServiceClient

from devhost.clock import SYSTEM_CLOCK, Clock
from devhost.config import HostConfigError, QueueOptions, resolve_setting_refs
from devhost.index import QueueFunction
from devhost.invoke import Invoker

log = logging.getLogger("devhost.queues")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
MIN_POLLING_INTERVAL = 0.1
# How long a received message stays invisible to other consumers while this host processes it. The host
# keeps it for the function timeout (10 minutes by default); a crashed devhost's messages reappear after it.
DEFAULT_PROCESSING_LEASE = 600


def connection_string(name: str | None, settings: Mapping[str, str]) -> str:
    """The connection string named by a binding, as the host resolves it (``AzureWebJobs<name>`` first)."""
    name = name or DEFAULT_CONNECTION
    for candidate in (f"AzureWebJobs{name}", name):
        value = settings.get(candidate)
        if value:
            return value
    raise HostConfigError(f"queue connection setting {name!r} is not set (AzureWebJobsStorage by default)")


def encode_body(body: str, encoding: str) -> str:
    return base64.b64encode(body.encode("utf-8")).decode("ascii") if encoding == "base64" else body


def decode_body(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except binascii.Error as exc:
            raise ValueError(
                "queue message is not valid base64 (host.json messageEncoding is base64)"
            ) from exc
    return content.encode("utf-8")


class MessageLease:
    """Keeps a received message invisible to other consumers while it is processed: every ``lease / 2``
    seconds its visibility is extended to ``lease`` again. The Functions host does the same (it receives
    with a 10-minute visibility and renews it at half time while the function runs,
    https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger:
    "the queue trigger automatically prevents a function from processing a queue message multiple times
    simultaneously"). Without it, a run that outlasts the lease is redelivered while still running: two
    runs of one message at once, and each redelivery counts toward ``maxDequeueCount`` and the poison
    queue. Each renewal changes the pop receipt; ``message.pop_receipt`` is kept current, so the
    delete or release after the run uses the latest one."""

    def __init__(
        self,
        queue: QueueClient,
        message: Any,
        lease: float,
        on_renew: Callable[[], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.queue = queue
        self.message = message
        self.lease = lease
        self._on_renew = on_renew
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="devhost-lease", daemon=True)

    def __enter__(self) -> MessageLease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self.clock.wait(self._done, self.lease / 2):
            try:
                updated = self.queue.update_message(
                    self.message.id, self.message.pop_receipt, visibility_timeout=math.ceil(self.lease)
                )
            except ResourceNotFoundError:
                log.warning("queue %s: lease of message %s was lost", self.queue.queue_name, self.message.id)
                return
            except AzureError as exc:  # storage hiccup: try again at the next half lease
                log.warning("queue %s: cannot renew a lease (%s)", self.queue.queue_name, type(exc).__name__)
                continue
            self.message.pop_receipt = updated.pop_receipt
            self.message.next_visible_on = updated.next_visible_on
            if self._on_renew is not None:
                self._on_renew()


class QueueClients:
    """Queue clients per (connection string, queue), creating each queue once if missing."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._settings = settings
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._created: set[int] = set()
        self._lock = threading.Lock()

    def get(self, connection: str | None, queue_name: str) -> QueueClient:
        """A client for the queue (no I/O: the queue is created by ``ensure``)."""
        conn = connection_string(connection, self._settings)
        name = resolve_setting_refs(queue_name, self._settings).lower()
        with self._lock:
            client = self._queues.get((conn, name))
            if client is not None:
                return client
            service = self._services.get(conn)
            if service is None:
                service = self._services[conn] = QueueServiceClient.from_connection_string(
                    conn, retry_policy=LinearRetry(backoff=1, random_jitter_range=1, retry_total=3)
                )
            client = self._queues[(conn, name)] = service.get_queue_client(name)
            return client

    def ensure(self, client: QueueClient, *, quick: bool = False) -> QueueClient:
        """Create the queue if missing (once per client); ``quick``: one attempt, no retries."""
        key = id(client)
        if key in self._created:
            return client
        try:
            if quick:
                client.create_queue(timeout=5, retry_total=0)
            else:
                client.create_queue()
        except ResourceExistsError:
            pass
        self._created.add(key)
        return client

    def send(self, connection: str | None, queue_name: str, bodies: list[str], encoding: str) -> None:
        client = self.ensure(self.get(connection, queue_name))
        for body in bodies:
            client.send_message(encode_body(body, encoding))


class QueueListener:
    def __init__(
        self,
        function: QueueFunction,
        clients: QueueClients,
        options: QueueOptions,
        invoker: Invoker,
        processing_lease: int = DEFAULT_PROCESSING_LEASE,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.function = function
        self.options = options
        self.invoker = invoker
        self.lease = processing_lease
        self.clients = clients
        self.queue = clients.get(function.connection, function.queue_name)
        self.poison = clients.get(function.connection, self.queue.queue_name + "-poison")
        self._failing = False
        self._stop = threading.Event()
        self.lease_renewals = 0  # leases renewed while functions ran (MessageLease)
        self._in_flight = 0
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(
            max_workers=options.batch_size + options.effective_new_batch_threshold,
            thread_name_prefix=f"devhost-queue-{function.name}",
        )
        self._thread = threading.Thread(target=self._poll, name=f"devhost-poll-{function.name}", daemon=True)

    def start(self) -> None:
        """Create the queue now if storage answers (so a ready host has its queues); else the poller will."""
        try:
            self.clients.ensure(self.queue, quick=True)
        except AzureError as exc:
            log.warning("queue %s: cannot create it yet (%s)", self.queue.queue_name, type(exc).__name__)
        self._thread.start()

    def stop(self) -> None:
        """Stop fetching, let in-flight messages finish."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.ident is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)

    def _poll(self) -> None:
        delay = 0.0
        threshold = self.options.effective_new_batch_threshold
        while not self._stop.is_set():
            with self._changed:
                while self._in_flight > threshold and not self._stop.is_set():
                    self._changed.wait()
            if self._stop.is_set():
                return
            try:
                messages = list(
                    self.clients.ensure(self.queue).receive_messages(
                        messages_per_page=self.options.batch_size,
                        max_messages=self.options.batch_size,
                        visibility_timeout=self.lease,
                    )
                )
                if self._failing:
                    log.info("queue %s: reachable again", self.queue.queue_name)
                    self._failing = False
            except AzureError as exc:
                if not self._failing:  # once per outage, not once per poll
                    log.warning(
                        "queue %s: cannot receive (%s); retrying every %.1f s at most",
                        self.queue.queue_name,
                        type(exc).__name__,
                        self.options.max_polling_interval,
                    )
                    self._failing = True
                messages = []
            if messages:
                delay = 0.0
                for message in messages:
                    with self._changed:
                        self._in_flight += 1
                    self._pool.submit(self._process, message)
                continue
            # Empty queue: randomized exponential back-off, capped at maxPollingInterval.
            ceiling = self.options.max_polling_interval
            delay = min(ceiling, max(MIN_POLLING_INTERVAL, delay * 2))
            self.clock.wait(
                self._stop,
                random.uniform(MIN_POLLING_INTERVAL, delay) if delay > MIN_POLLING_INTERVAL else delay,
            )

    def _process(self, message: Any) -> None:
        try:
            self._handle(message)
        except Exception:
            log.exception("queue %s: unexpected error handling message %s", self.queue.queue_name, message.id)
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _handle(self, message: Any) -> None:
        limit = self.options.max_dequeue_count
        if message.dequeue_count > limit:
            # Already failed maxDequeueCount times (e.g. a host died mid-way): straight to poison.
            self._move_to_poison(message)
            return
        try:
            body = decode_body(message.content or "", self.options.message_encoding)
            trigger = func_queue.QueueMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                pop_receipt=message.pop_receipt,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
            )
            with MessageLease(self.queue, message, self.lease, on_renew=self._renewed, clock=self.clock):
                self.invoker.invoke(self.function, trigger)
        except Exception:
            log.exception(
                "function %s failed on message %s (attempt %d of %d)",
                self.function.name,
                message.id,
                message.dequeue_count,
                limit,
            )
            if message.dequeue_count >= limit:
                self._move_to_poison(message)
            else:
                self._release(message, math.ceil(self.options.visibility_timeout))
            return
        try:
            self.queue.delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:
            log.warning("queue %s: message %s was gone before delete", self.queue.queue_name, message.id)

    @property
    def in_flight(self) -> int:
        """Messages received and not yet deleted, released or poisoned."""
        with self._changed:
            return self._in_flight

    def _renewed(self) -> None:
        with self._changed:
            self.lease_renewals += 1

    def _release(self, message: Any, delay: int) -> None:
        try:
            self.queue.update_message(message.id, message.pop_receipt, visibility_timeout=delay)
        except ResourceNotFoundError:
            log.warning("queue %s: lease of message %s was lost", self.queue.queue_name, message.id)

    def _move_to_poison(self, message: Any) -> None:
        self.clients.ensure(self.poison).send_message(message.content)
        try:
            self.queue.delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:
            log.warning("queue %s: message %s was gone before delete", self.queue.queue_name, message.id)
        log.warning(
            "queue %s: message %s moved to %s after %d attempts",
            self.queue.queue_name,
            message.id,
            self.poison.queue_name,
            message.dequeue_count,
        )
