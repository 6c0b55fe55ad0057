"""Timer singleton lock: "a timer runs on one instance", as the Functions host arranges with a blob lease.

Every devhost with the same host id (the ``AzureFunctionsWebHost__hostid`` setting, as on Azure; else the
app module's name) tries to hold a lease on the blob
``azure-webjobs-hosts/locks/<host id>/<function>.Listener`` in the app's storage. Only the holder fires
the timer; the lease (15 s) is renewed every 5 s, so when the holder stops, another process takes over
within about 15 s (at once when the holder stops cleanly and releases it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobLeaseClient, BlobServiceClient, LinearRetry

log = logging.getLogger("devhost.timers")

LOCK_CONTAINER = "azure-webjobs-hosts"
LEASE_SECONDS = 15  # the shortest lease Azure Storage grants
RENEW_EVERY = 5.0


class TimerLock:
    def __init__(self, connection_string: str, host_id: str, function_name: str) -> None:
        service = BlobServiceClient.from_connection_string(
            connection_string, retry_policy=LinearRetry(backoff=1, random_jitter_range=1, retry_total=1)
        )
        self._blob = service.get_blob_client(LOCK_CONTAINER, f"locks/{host_id}/{function_name}.Listener")
        self._lease = BlobLeaseClient(self._blob, lease_id=str(uuid.uuid4()))
        self._container = service.get_container_client(LOCK_CONTAINER)
        self._name = function_name
        self._held_until = 0.0
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"devhost-lock-{function_name}", daemon=True)

    def held(self) -> bool:
        return time.monotonic() < self._held_until

    def start(self) -> None:
        self.try_acquire()  # first attempt in the caller, so run_on_startup knows whether it holds the lock
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        if self.held():
            try:
                self._lease.release()
            except AzureError:
                pass
        self._held_until = 0.0

    def try_acquire(self) -> None:
        started = time.monotonic()
        was_held = self.held()
        try:
            if was_held:
                self._lease.renew()
            else:
                self._ensure_blob()
                self._lease.acquire(lease_duration=LEASE_SECONDS)
                log.info("timer %s: this host holds the timer lock", self._name)
            self._held_until = started + LEASE_SECONDS - 1
            self._failing = False
        except HttpResponseError as exc:
            if exc.status_code == 409:  # another host holds it
                if was_held:
                    log.warning("timer %s: lost the timer lock to another host", self._name)
                self._held_until = 0.0
                self._failing = False
            else:
                self._failed(exc)
        except AzureError as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if not self._failing:  # once per outage, not every few seconds
            log.warning("timer %s: cannot check its lock (%s); retrying", self._name, type(exc).__name__)
            self._failing = True

    def _ensure_blob(self) -> None:
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            if exc.status_code != 412:  # 412: leased by another host, i.e. it exists
                raise

    def _keep(self) -> None:
        while not self._stop.wait(RENEW_EVERY if self.held() else RENEW_EVERY / 2):
            self.try_acquire()
