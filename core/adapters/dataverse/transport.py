"""Sending one Dataverse Web API request until it has an answer: the only place that retries.

``requests`` with JSON bodies and the OData 4.0 headers. Each attempt goes through these steps:

1. **token** -- a bearer token from the token source (force-refreshed after a 401);
2. **slot** -- a slot of the :class:`AdaptiveLimiter` (waits out a 429's pause shared by every thread),
   then the ``before_send`` hook (the shared budget's pause: a 429 another instance was given);
3. **send** -- one HTTP exchange, timed; a ``requests`` exception is a failure kind, not an exception yet;
4. **decide** -- the one retry policy (:mod:`core.domain.retry`): 429 waits ``Retry-After``; 5xx and
   broken connections are repeated only for a request that is safe to repeat (``idempotent``), a failed
   connect always; a 401 once with a fresh token;
5. **settle** -- the slot is released (a 429 halves the parallelism and pauses the client), the
   ``x-ms-dop-hint`` header caps it, and a :class:`RequestEvent` goes to ``on_request`` (the budget's
   ledger counts every attempt, retries and 429s included);
6. then the answer is returned, the typed error raised (:mod:`core.adapters.dataverse.errors`, with
   ``maybe_applied_earlier`` when an earlier attempt may have run), or the next attempt waits.

Which operations are idempotent and why: :mod:`core.adapters.dataverse.client`.

The bearer token is only ever placed in the ``Authorization`` header of the outgoing request: it is not
logged, not put in exceptions or events, and not sent to a URL outside the environment (a
``@odata.nextLink`` elsewhere is refused). Exceptions raised by the token source itself (e.g.
``ReconnectRequired``) propagate unchanged, and never leave a limiter slot taken.

Over 400 lines on purpose: the steps above are one loop (:meth:`Transport.send`) and read in order here;
the request, attempt and failure-history records they pass between them sit next to them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from core.adapters.dataverse.errors import DataverseError, TransientError, error_for_status, parse_error_body
from core.adapters.dataverse.limiter import AdaptiveLimiter, Ticket
from core.adapters.dataverse.odata import encode_query
from core.domain.connection import TokenProvider
from core.domain.retry import FailureKind, RetryDecision, RetryPolicy, classify_status, parse_retry_after
from core.domain.values import ascii_whole_number

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "dynamics-integration-backend/0.1"

TokenSource = Callable[[bool], str]
"""``token_source(force_refresh)`` returns a bearer token for the environment."""


def token_source_for(provider: TokenProvider, workspace_id: str) -> TokenSource:
    """Adapt the connection's token provider to a client's ``token_source`` for one workspace.

    ``ReconnectRequired`` raised by the provider reaches the caller of the client unchanged.
    """

    def source(force_refresh: bool) -> str:
        return provider.access_token(workspace_id, force_refresh=force_refresh)

    return source


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP attempt, reported to ``on_request`` (request ledgers, metrics). Holds no token, no query."""

    method: str
    path: str
    attempt: int
    status: int | None
    elapsed_s: float
    failure: FailureKind | None
    retry_after: float | None
    will_retry: bool
    delay_s: float
    concurrency_limit: int
    request_id: str | None
    # What Dynamics says is left of the user's window (x-ms-ratelimit-burst-remaining-xrm-requests and
    # x-ms-ratelimit-time-remaining-xrm-requests; service protection limits page), when it said so.
    requests_remaining: int | None = None
    execution_remaining_s: float | None = None


@dataclass(frozen=True)
class _Request:
    """A request ready to send, except for its token."""

    method: str
    url: str
    log_path: str  # the URL's path only: query strings carry personal data ($filter values)
    headers: Mapping[str, str]
    body: bytes | None
    idempotent: bool
    accept: Callable[[requests.Response], bool] | None


@dataclass
class _Attempt:
    """What one attempt got: an answer (``response``) or a ``requests`` exception, and its failure kind."""

    number: int
    ticket: Ticket
    elapsed_s: float
    response: requests.Response | None
    network_error: requests.RequestException | None
    failure: FailureKind | None
    retry_after: float | None = None

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def throttled(self) -> bool:
        return self.failure is FailureKind.THROTTLED


@dataclass
class _History:
    """Failures so far of one request, by the counter the retry policy bounds them with."""

    throttles: int = 0
    unauthorized: int = 0
    transients: int = 0
    maybe_applied: bool = False  # an earlier attempt failed after the server may have run it
    force_refresh: bool = False
    attempts: int = 0

    def count(self, failure: FailureKind) -> int:
        """Count ``failure`` and return how many of its kind the request has had."""
        if failure is FailureKind.THROTTLED:
            self.throttles += 1
            return self.throttles
        if failure is FailureKind.UNAUTHORIZED:
            self.unauthorized += 1
            return self.unauthorized
        self.transients += 1
        return self.transients


class Transport:
    """Sends requests to one environment's Web API with the retry policy (thread-safe)."""

    def __init__(
        self,
        environment_url: str,
        token_source: TokenSource,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        max_concurrency: int = 16,
        on_request: Callable[[RequestEvent], None] | None = None,
        before_send: Callable[[], None] | None = None,
        suppress_duplicate_detection: bool | None = None,
        honor_dop_hint: bool = True,
        timeout: tuple[float, float] = (10.0, 120.0),
        api_version: str = "v9.2",
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        parts = urlsplit(environment_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("environment_url must be an absolute https URL")
        self.environment_url = f"{parts.scheme}://{parts.netloc}"
        self.api_path = f"/api/data/{api_version}/"
        self.api_url = self.environment_url + self.api_path
        self.limiter = AdaptiveLimiter(max_concurrency, clock=clock, sleep=sleep)
        self._token_source = token_source
        self._retry = retry or RetryPolicy()
        self._user_agent = user_agent
        self._on_request = on_request
        self._before_send = before_send
        self._suppress_duplicate_detection = suppress_duplicate_detection
        self._honor_dop_hint = honor_dop_hint
        self._timeout = timeout
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self._now = now
        self._session = session or requests.Session()
        # Our own retry policy decides; urllib3 must not retry behind it. Pool sized to the parallelism.
        self._session.mount(
            self.environment_url + "/",
            HTTPAdapter(pool_connections=1, pool_maxsize=max(10, max_concurrency), max_retries=0),
        )

    # ------------------------------------------------------------------ the request

    def send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        prefer: Sequence[str] = (),
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send until answered: the response, or the typed :class:`DataverseError` once retrying stops.

        ``path`` is relative to the Web API root or an absolute link inside the environment; ``accept``
        says which non-2xx answers are answers (e.g. a ``$batch`` 400 with its multipart body).
        """
        request = self._prepare(
            method,
            path,
            idempotent=idempotent,
            params=params,
            json_body=json_body,
            data=data,
            content_type=content_type,
            prefer=prefer,
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
            headers=headers,
            accept=accept,
        )
        history = _History()
        while True:
            attempt = self._attempt(request, history)
            decision = self._decide(request, attempt, history)
            self._settle(request, attempt, decision)
            if attempt.failure is None:
                assert attempt.response is not None
                return attempt.response
            assert decision is not None
            if not decision.retry:
                raise self._error(request, attempt, decision, history) from attempt.network_error
            self._before_retry(request, attempt, decision, history)

    def _prepare(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Sequence[tuple[str, str]],
        json_body: Any,
        data: bytes | None,
        content_type: str | None,
        prefer: Sequence[str],
        caller_object_id: str | None,
        suppress_duplicate_detection: bool | None,
        headers: Mapping[str, str] | None,
        accept: Callable[[requests.Response], bool] | None,
    ) -> _Request:
        url = self.url(path, params)
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        request_headers = self._headers(
            prefer=prefer,
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
            extra=headers,
        )
        if content_type:
            request_headers["Content-Type"] = content_type
        return _Request(method, url, urlsplit(url).path, request_headers, data, idempotent, accept)

    def _attempt(self, request: _Request, history: _History) -> _Attempt:
        """Steps 1-3: token, limiter slot, one HTTP exchange. The slot stays taken for :meth:`_settle`."""
        history.attempts += 1
        headers = dict(request.headers)
        headers["Authorization"] = "Bearer " + self._token_source(history.force_refresh)
        history.force_refresh = False
        ticket = self.limiter.acquire()
        started = time.perf_counter()
        try:
            if self._before_send is not None:
                # Last, right before the exchange: e.g. the shared budget waits out a Retry-After another
                # instance was given meanwhile (the limiter only knows this process's 429s).
                self._before_send()
                started = time.perf_counter()
            response = self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            elapsed = time.perf_counter() - started
            return _Attempt(history.attempts, ticket, elapsed, None, exc, _classify_network_error(exc))
        except BaseException:
            self.limiter.release(ticket, succeeded=False)
            raise
        elapsed = time.perf_counter() - started
        accepted = request.accept is not None and request.accept(response)
        attempt = _Attempt(
            history.attempts,
            ticket,
            elapsed,
            response,
            None,
            None if accepted else classify_status(response.status_code),
        )
        if response.status_code == 429:
            attempt.retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now())
        return attempt

    def _decide(self, request: _Request, attempt: _Attempt, history: _History) -> RetryDecision | None:
        """Step 4: whether (and after how long) to try again; ``None`` for an answer."""
        if attempt.failure is None:
            return None
        count = history.count(attempt.failure)
        with self._rng_lock:
            return self._retry.decide(
                attempt.failure,
                count,
                idempotent=request.idempotent,
                rng=self._rng,
                retry_after=attempt.retry_after,
            )

    def _settle(self, request: _Request, attempt: _Attempt, decision: RetryDecision | None) -> None:
        """Step 5: release the slot (a retried 429 pauses the client for its delay), honour the
        ``x-ms-dop-hint`` of an answer, report the attempt."""
        retrying = decision is not None and decision.retry
        self.limiter.release(
            attempt.ticket,
            throttled=attempt.throttled,
            succeeded=attempt.failure is None,
            pause=decision.delay if (attempt.throttled and decision is not None and retrying) else None,
        )
        if attempt.response is not None and attempt.failure is None and self._honor_dop_hint:
            self._apply_dop_hint(attempt.response)
        self._emit(
            RequestEvent(
                method=request.method,
                path=request.log_path,
                attempt=attempt.number,
                status=attempt.status,
                elapsed_s=attempt.elapsed_s,
                failure=attempt.failure,
                retry_after=attempt.retry_after,
                will_retry=retrying,
                delay_s=decision.delay if decision is not None and retrying else 0.0,
                concurrency_limit=self.limiter.limit,
                request_id=_request_id(attempt.response),
                **_ratelimit_remaining(attempt.response),
            )
        )

    def _error(
        self, request: _Request, attempt: _Attempt, decision: RetryDecision, history: _History
    ) -> DataverseError:
        """Step 6, giving up: the typed error (status, code, message, attempts; never the token)."""
        context: dict[str, Any] = {
            "method": request.method,
            "path": request.log_path,
            "attempts": attempt.number,
            "request_id": _request_id(attempt.response),
            "maybe_applied_earlier": history.maybe_applied,
        }
        if attempt.response is None:
            # TLS / invalid URL problems are not transient: retrying cannot fix them
            kind = DataverseError if attempt.failure is FailureKind.CLIENT else TransientError
            return kind(f"{type(attempt.network_error).__name__}: no response ({decision.reason})", **context)
        code, message = parse_error_body(attempt.response.content)
        return error_for_status(
            attempt.response.status_code, code, message, retry_after=attempt.retry_after, **context
        )

    def _before_retry(
        self, request: _Request, attempt: _Attempt, decision: RetryDecision, history: _History
    ) -> None:
        """Step 6, retrying: remember what the failure means for the next attempt, then wait."""
        logger.warning(
            "Dataverse %s %s: %s; retry %d in %.2fs (%s)",
            request.method,
            request.log_path,
            attempt.status if attempt.status is not None else type(attempt.network_error).__name__,
            attempt.number,
            decision.delay,
            decision.reason,
        )
        if attempt.failure in (FailureKind.SERVER, FailureKind.NETWORK):
            history.maybe_applied = True
        if decision.refresh_token:
            history.force_refresh = True
        elif not attempt.throttled:  # a throttle waits inside the limiter, together with every other thread
            self._sleep(decision.delay)

    # ------------------------------------------------------------------ request parts

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        """The absolute URL of ``path`` (relative to the Web API root, or a link inside the environment)."""
        if path.startswith(("https://", "http://")):
            if not (path + "/").lower().startswith(self.environment_url.lower() + "/"):
                raise DataverseError("refusing to follow a link outside the environment URL")
            url = path
        else:
            url = self.api_url + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        return url

    def _headers(
        self,
        *,
        prefer: Sequence[str],
        caller_object_id: str | None,
        suppress_duplicate_detection: bool | None,
        extra: Mapping[str, str] | None,
    ) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "User-Agent": self._user_agent,
        }
        if prefer:
            headers["Prefer"] = ",".join(prefer)
        if caller_object_id:
            headers["CallerObjectId"] = caller_object_id
        suppress = (
            suppress_duplicate_detection
            if suppress_duplicate_detection is not None
            else self._suppress_duplicate_detection
        )
        if suppress is not None:
            headers["MSCRM.SuppressDuplicateDetection"] = "true" if suppress else "false"
        if extra:
            headers.update(extra)
        return headers

    def _apply_dop_hint(self, response: requests.Response) -> None:
        hint = response.headers.get("x-ms-dop-hint")
        degree = ascii_whole_number(hint, max_digits=4) if hint else None
        if degree:
            self.limiter.cap(degree)

    def _emit(self, event: RequestEvent) -> None:
        logger.debug(
            "Dataverse %s %s -> %s in %.3fs (attempt %d)",
            event.method,
            event.path,
            event.status if event.status is not None else event.failure,
            event.elapsed_s,
            event.attempt,
        )
        if self._on_request is not None:
            self._on_request(event)


def read_json(response: requests.Response) -> Any:
    """The JSON body of an answer (``None`` when empty); an unreadable body is a :class:`DataverseError`."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise DataverseError(
            "response is not valid JSON",
            status=response.status_code,
            path=urlsplit(response.url).path,
        ) from exc


def _classify_network_error(error: requests.RequestException) -> FailureKind:
    """CONNECT when the request surely never reached the server, else NETWORK (it may have run)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return FailureKind.CONNECT
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        text = f"{type(reason).__name__} {reason}" if reason is not None else ""
        if "NewConnectionError" in text or "NameResolutionError" in text:
            return FailureKind.CONNECT
        if isinstance(error, requests.exceptions.SSLError):
            return FailureKind.CLIENT  # a certificate problem does not go away by retrying
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.InvalidHeader):
        return FailureKind.CLIENT
    return FailureKind.NETWORK


def _ratelimit_remaining(response: requests.Response | None) -> dict[str, Any]:
    """The x-ms-ratelimit-* headers of an answer: requests left (an integer) and execution seconds left
    (written with thousands separators, e.g. ``1,199.46``); absent or unreadable ones are None.
    https://learn.microsoft.com/power-apps/developer/data-platform/api-limits"""
    if response is None:
        return {}
    found: dict[str, Any] = {}
    burst = response.headers.get("x-ms-ratelimit-burst-remaining-xrm-requests")
    time_left = response.headers.get("x-ms-ratelimit-time-remaining-xrm-requests")
    try:
        if burst is not None and len(burst) < 20:
            found["requests_remaining"] = int(burst.strip())
    except ValueError:
        pass
    try:
        if time_left is not None and len(time_left) < 30:
            found["execution_remaining_s"] = float(time_left.strip().replace(",", ""))
    except ValueError:
        pass
    return found


def _request_id(response: requests.Response | None) -> str | None:
    if response is None:
        return None
    return response.headers.get("x-ms-service-request-id") or response.headers.get("REQ_ID")
