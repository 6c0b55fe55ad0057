"""Alerts of jobs that ended badly: which events there are, what an in-app notification and a webhook
body say, the webhook URL rule, the signature and the retry schedule (pure).

Events: a job that ends ``failed`` or ``partially_failed``, or a job paused until Dynamics is reconnected.
Each (job, event) has one deterministic id (``alert_id``): the notification row and the webhook delivery
row are inserted under it, so redeliveries and chunks finishing at the same moment raise it once.

The webhook body is signed like Stripe's and Svix's: ``HMAC-SHA256(secret, f"{timestamp}.{body}")`` in hex,
sent as ``X-Dynamics-Signature: v1=<hex>`` with ``X-Dynamics-Timestamp: <unix seconds>``; a receiver
recomputes it over the raw body and refuses old timestamps (README "Alerts").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from core.domain.jobs import ChunkState, ChunkStatus, JobState, JobSummary

# A chunk paused for a dead Dynamics grant says so in its error; a pause for the deployment's own token
# trouble (sign-in or Key Vault down) does not: that one is not the admins' to fix and raises no alert.
RECONNECT_PAUSE_PREFIX = "reconnect: "

SIGNATURE_HEADER = "X-Dynamics-Signature"
TIMESTAMP_HEADER = "X-Dynamics-Timestamp"
EVENT_ID_HEADER = "X-Dynamics-Event-Id"
EVENT_HEADER = "X-Dynamics-Event"
SIGNATURE_VERSION = "v1"

MAX_WEBHOOK_URL = 2048
MAX_RETRY_DELAY_S = 3600  # one hour between the last attempts at most


class JobEvent(StrEnum):
    FAILED = "job.failed"
    PARTIALLY_FAILED = "job.partially_failed"
    PAUSED_RECONNECT = "job.paused_reconnect"


TEST_EVENT = "webhook.test"

NOTIFICATION_KINDS: Mapping[JobEvent, str] = {
    JobEvent.FAILED: "dynamics_job_failed",
    JobEvent.PARTIALLY_FAILED: "dynamics_job_partially_failed",
    JobEvent.PAUSED_RECONNECT: "dynamics_job_paused_reconnect",
}

_JOB_PATHS = {"export": "/api/dynamics/exports/", "activity": "/api/dynamics/activities/"}
_WHAT = {"export": "export", "activity": "activity log"}


def job_event(summary: JobSummary, chunks: Iterable[ChunkStatus]) -> JobEvent | None:
    """The event a job's current state raises, if any."""
    if summary.state is JobState.FAILED:
        return JobEvent.FAILED
    if summary.state is JobState.PARTIALLY_FAILED:
        return JobEvent.PARTIALLY_FAILED
    if summary.state is JobState.PAUSED_RECONNECT and any(
        c.state is ChunkState.PAUSED_RECONNECT and (c.error or "").startswith(RECONNECT_PAUSE_PREFIX)
        for c in chunks
    ):
        return JobEvent.PAUSED_RECONNECT
    return None


def alert_id(job_kind: str, job_id: str, event: JobEvent) -> str:
    """One id per job and event: the notification's and the webhook delivery's row key."""
    return f"job-{job_kind}-{event.value.removeprefix('job.').replace('_', '-')}-{job_id}"


def job_link(job_kind: str, job_id: str) -> str:
    """Where the job's status is read (the API path; the records are under ``/records``)."""
    return _JOB_PATHS.get(job_kind, "/api/dynamics/exports/") + job_id


@dataclass(frozen=True)
class JobAlert:
    """What is said about one job event, in the app and to the webhook."""

    workspace_id: str
    job_kind: str  # "export" / "activity"
    job_id: str
    event: JobEvent
    entity: str
    trigger: str
    total_records: int
    counts: Mapping[str, int]
    top_error_codes: list[tuple[str, int]]
    # The one reason a job failed as a whole for (e.g. its mapping no longer fits Dynamics), if it did.
    reason: str | None = None

    @property
    def id(self) -> str:
        return alert_id(self.job_kind, self.job_id, self.event)

    @property
    def link(self) -> str:
        return job_link(self.job_kind, self.job_id)

    @property
    def notification_kind(self) -> str:
        return NOTIFICATION_KINDS[self.event]

    @property
    def title(self) -> str:
        what = _WHAT.get(self.job_kind, self.job_kind).capitalize()
        return {
            JobEvent.FAILED: f"Dynamics {what} failed",
            JobEvent.PARTIALLY_FAILED: f"Dynamics {what} partly failed",
            JobEvent.PAUSED_RECONNECT: f"Dynamics {what} paused: reconnect Dynamics",
        }[self.event]

    @property
    def message(self) -> str:
        what = f"The {_WHAT.get(self.job_kind, self.job_kind)} of {self.total_records} {self.entity}"
        if self.event is JobEvent.PAUSED_RECONNECT:
            return (
                f"{what} is paused until an admin reconnects Dynamics 365; it continues by itself "
                "after the reconnection."
            )
        c = self.counts
        written = c.get("created", 0) + c.get("updated", 0)
        bad = c.get("failed", 0) + c.get("invalid", 0)
        text = (
            f"{what} ended {'failed' if self.event is JobEvent.FAILED else 'partly failed'}: "
            f"{written} written ({c.get('created', 0)} created, {c.get('updated', 0)} updated), "
            f"{c.get('unchanged', 0)} unchanged, {c.get('skipped', 0)} skipped, {bad} failed or invalid."
        )
        if self.top_error_codes:
            text += " Most frequent errors: " + ", ".join(f"{code} ({n})" for code, n in self.top_error_codes)
            text += "."
        if self.reason:
            text += f" Reason: {self.reason}"
        return text

    def detail(self) -> dict[str, Any]:
        """The job part of the notification and of the webhook body."""
        return {
            "kind": self.job_kind,
            "jobId": self.job_id,
            "entity": self.entity,
            "trigger": self.trigger,
            "state": _STATE_OF[self.event],
            "records": self.total_records,
            "counts": dict(self.counts),
            "topErrorCodes": [{"code": code, "count": n} for code, n in self.top_error_codes],
            "link": self.link,
        }

    def payload(self, occurred_at: str) -> dict[str, Any]:
        """The webhook body (no secret, no record values: counts and codes only)."""
        return {
            "id": self.id,
            "type": self.event.value,
            "occurredAt": occurred_at,
            "workspaceId": self.workspace_id,
            "title": self.title,
            "message": self.message,
            "job": self.detail(),
        }


_STATE_OF = {
    JobEvent.FAILED: JobState.FAILED.value,
    JobEvent.PARTIALLY_FAILED: JobState.PARTIALLY_FAILED.value,
    JobEvent.PAUSED_RECONNECT: JobState.PAUSED_RECONNECT.value,
}


# --- webhooks ---------------------------------------------------------------------------------------


class InvalidWebhookUrl(ValueError):
    """The URL may not receive webhooks; the message says why (never echoes more than the scheme/host)."""


LOCAL_HOST = "127.0.0.1"


def validate_webhook_url(url: str, *, allow_local: bool) -> str:
    """The webhook URL as it will be called, or ``InvalidWebhookUrl``.

    ``https://`` to a DNS name or a public IP address, no user info or fragment, at most
    ``MAX_WEBHOOK_URL`` characters. ``allow_local`` (local development only) also admits ``127.0.0.1``, over
    http or https. Names that resolve to private or loopback addresses are refused again when a delivery
    is sent (``core.adapters.webhook_http``): validation cannot know what a name will resolve to.
    """
    if len(url) > MAX_WEBHOOK_URL:
        raise InvalidWebhookUrl(f"at most {MAX_WEBHOOK_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        raise InvalidWebhookUrl("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl("is not a valid URL") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookUrl("needs a host: https://host/path")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("must not contain user information")
    if parts.fragment:
        raise InvalidWebhookUrl("must not contain a fragment (#...)")
    if port == 0:
        raise InvalidWebhookUrl("port 0 is not a port")
    local = allow_local and host == LOCAL_HOST
    if scheme != "https" and not (local and scheme == "http"):
        raise InvalidWebhookUrl("must start with https://")
    if not local:
        _require_public_host(host)
    return url


def _require_public_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            raise InvalidWebhookUrl("must not point to a private, loopback or link-local address")
        return
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        raise InvalidWebhookUrl("needs a public host name (with a domain)")
    try:
        host.encode("idna")
    except UnicodeError:
        raise InvalidWebhookUrl("the host name is not a valid DNS name") from None


def is_public_address(address: str) -> bool:
    """Whether a resolved address may receive a webhook (not private, loopback, link-local, reserved)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret's UTF-8 bytes>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def retry_delay_s(attempt: int, base_s: int) -> int:
    """Seconds before attempt ``attempt + 1`` after attempt ``attempt`` failed: ``base_s`` doubled per
    attempt, at most ``MAX_RETRY_DELAY_S`` (whole seconds: a queue message's visibility delay)."""
    if base_s <= 0:
        return 0
    return int(min(MAX_RETRY_DELAY_S, math.ceil(base_s * 2 ** max(0, attempt - 1))))


class DeliveryState(StrEnum):
    PENDING = "pending"  # queued, never tried
    SENDING = "sending"  # an attempt holds it (until its lease ends)
    RETRYING = "retrying"  # an attempt failed; the next one is queued with a delay
    DELIVERED = "delivered"
    DEAD = "dead"  # every attempt failed, or the webhook was removed


FINISHED_DELIVERIES = frozenset({DeliveryState.DELIVERED, DeliveryState.DEAD})
