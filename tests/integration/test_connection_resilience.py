"""What the happy connection cycle does not show: Key Vault failing after Entra rotated the refresh token,
one workspace's failure among many, paging and bounded concurrency of the timer, two callbacks racing for
one state, and a slow identity provider (real msal, real SecretClient, real Azurite)."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from core.adapters.identity.msal_app import MsalAppFactory, MsalConfig
from core.adapters.identity.token_crypto import TokenCipher
from core.bootstrap import build_connection
from core.domain.connection import (
    ConnectionStatus,
    ReconnectRequired,
    RefreshPolicy,
    TransientTokenError,
)
from core.domain.notification import Notification
from core.observability import ContextFilter, log_context
from core.services.connection.refresh import TokenRefresher
from core.services.connection.service import ConnectError
from core.services.connection.tokens import TokenService
from core.settings import load_settings
from tests.integration.test_connection_cycle import refresh_tokens
from tests.support.identity import IdentityStack, caller, key_wrapper_for, local_secret_store

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


def make_due(stack: IdentityStack, workspace_id: str) -> None:
    c = stack.components
    found = c.connections.get(workspace_id)
    assert found is not None
    stale = found.record.last_refresh_at - dt.timedelta(days=8)
    c.connections.replace(found.record.refreshed(stale, found.record.access_token_expires_at), found.etag)


def test_key_vault_failing_to_store_the_rotated_cache_loses_nothing(identity_stack: IdentityStack) -> None:
    """Entra already rotated the refresh token when the write of the new cache fails: the run counts a
    transient failure, the connection stays connected with no notice, and the next run refreshes with the
    refresh token still stored (Entra does not revoke a used one)."""
    stack = identity_stack
    c = stack.components
    stack.connect()
    stored_before = refresh_tokens(stack, "ws-a")
    make_due(stack, "ws-a")
    stack.keyvault.fail_with(503, methods=("PUT",))  # reads work, writes fail
    report = c.refresher.run()
    assert (report.transient, report.refreshed, report.reconnect_required) == (1, 0, 0), report
    assert stack.entra.stats.refresh_token == 1  # Entra did answer with a new refresh token
    assert refresh_tokens(stack, "ws-a") == stored_before  # which could not be stored
    assert c.service.get("ws-a").status is ConnectionStatus.CONNECTED  # type: ignore[union-attr]
    assert c.notifications.list("ws-a") == []
    stack.keyvault.fail_with(None)
    report = c.refresher.run()
    assert report.refreshed == 1, report
    assert refresh_tokens(stack, "ws-a") != stored_before
    assert c.tokens.access_token("ws-a")


def test_one_workspace_failing_never_stops_the_others(
    identity_stack: IdentityStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = identity_stack
    c = stack.components
    users = {}
    for workspace in ("ws-revoked", "ws-bug", "ws-ok-1", "ws-ok-2", "ws-ok-3"):
        users[workspace] = stack.entra.add_user(f"{workspace}@contoso.example")  # signs in next
        stack.connect(workspace)
        make_due(stack, workspace)
    stack.entra.revoke_user(users["ws-revoked"].object_id)  # password change of that workspace's user
    real_acquire = c.tokens.acquire

    def acquire(found: Any, **kwargs: Any) -> Any:
        if found.record.workspace_id == "ws-bug":
            raise RuntimeError("a bug in one workspace's refresh")
        return real_acquire(found, **kwargs)

    monkeypatch.setattr(c.tokens, "acquire", acquire)
    before = {w: c.connections.get(w).record.last_refresh_at for w in users}  # type: ignore[union-attr]
    report = c.refresher.run()
    assert (report.due, report.refreshed, report.reconnect_required, report.failed) == (5, 3, 1, 1), report
    for workspace in ("ws-ok-1", "ws-ok-2", "ws-ok-3"):
        record = c.service.get(workspace)
        assert record is not None and record.status is ConnectionStatus.CONNECTED
        assert record.last_refresh_at > before[workspace]
    assert c.service.get("ws-revoked").reason == "revoked"  # type: ignore[union-attr]
    assert c.service.get("ws-bug").status is ConnectionStatus.CONNECTED  # type: ignore[union-attr]
    assert [n.reason for n in c.notifications.list("ws-revoked")] == ["revoked"]
    assert all(c.notifications.list(w) == [] for w in users if w != "ws-revoked")


def test_timer_pages_through_due_workspaces_with_bounded_concurrency(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    c = stack.components
    due = [f"ws-due-{i}" for i in range(7)]
    for workspace in [*due, "ws-fresh-1", "ws-fresh-2"]:
        stack.connect(workspace)
    for workspace in due:
        make_due(stack, workspace)
    now = dt.datetime.now(dt.UTC)
    expires_before, refreshed_before = RefreshPolicy().due_before(now)
    # the query runs in the table service, two rows per page: continuation tokens are followed
    paged = [r.workspace_id for r in c.connections.iter_due(expires_before, refreshed_before, page_size=2)]
    assert sorted(paged) == sorted(due)

    running, peak, started, lock = [0], [0], [0], threading.Lock()
    first_two = threading.Barrier(2)  # the first two refreshes wait for each other: they run together
    real_acquire = c.tokens.acquire

    def acquire(found: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            started[0] += 1
            peak[0] = max(peak[0], running[0])
            first = started[0] <= 2
        try:
            if first:
                first_two.wait(timeout=30)  # BrokenBarrierError: the refreshes ran one at a time
            return real_acquire(found, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    c.tokens.acquire = acquire  # type: ignore[method-assign]
    refresher = TokenRefresher(
        connections=c.connections, tokens=c.tokens, leases=c.leases, policy=RefreshPolicy(), concurrency=2
    )
    report = refresher.run()
    assert report.due == 7 and report.refreshed == 7, report
    assert peak[0] == 2  # parallel, and never more than the setting
    assert stack.entra.stats.refresh_token == 7


def test_two_callbacks_racing_for_one_state_connect_once(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    service = stack.components.service
    admin = caller("ws-race")
    answer = stack.browser_sign_in(service.start_connect(admin, stack.env.url))

    def race(step: Callable[[], object], success: str) -> list[str]:
        outcomes: list[str] = []
        barrier = threading.Barrier(4)

        def attempt() -> None:
            barrier.wait()
            try:
                outcomes.append(success if step() else "nothing")
            except ConnectError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return outcomes

    handles: list[str] = []
    assert sorted(race(lambda: handles.append(service.receive_callback(answer)) or True, "kept")) == [
        "invalid_state",
        "invalid_state",
        "invalid_state",
        "kept",
    ]
    assert sorted(race(lambda: service.complete_connect(admin, handles[0]), "connected")) == [
        "connected",
        "invalid_handle",
        "invalid_handle",
        "invalid_handle",
    ]
    assert stack.entra.stats.authorization_code == 1  # the code was redeemed by one completion only
    assert len(stack.keyvault.live_names()) == 1


def test_slow_identity_provider_is_transient_and_marks_nothing(identity_stack: IdentityStack) -> None:
    stack = identity_stack
    c = stack.components
    stack.connect()
    settings = load_settings(stack.settings_env)
    store = local_secret_store(stack.keyvault.vault_url, settings.require("KEY_VAULT_LOCAL_TOKEN"))
    impatient = TokenService(
        connections=c.connections,
        secrets=store,
        cipher=TokenCipher.from_settings(settings, wrapper=key_wrapper_for(settings)),
        msal_factory=MsalAppFactory(MsalConfig.from_settings(settings), stack.session, timeout=0.5),
        notifications=c.notifications,
        leases=c.leases,
    )
    stack.entra.set_fault("slow", count=None, delay=1.5)
    with pytest.raises(TransientTokenError):
        impatient.access_token("ws-a", force_refresh=True)
    assert c.service.get("ws-a").status is ConnectionStatus.CONNECTED  # type: ignore[union-attr]
    assert c.notifications.list("ws-a") == []
    stack.entra.clear_faults()
    assert impatient.access_token("ws-a", force_refresh=True)


def test_two_instances_meeting_one_dead_grant_raise_one_notice(identity_stack: IdentityStack) -> None:
    """The timer and an export worker (or two instances) read the row while it was still connected and
    both meet the revoked grant: one reconnect notice for the incident, not two."""
    stack = identity_stack
    c = stack.components
    stack.connect()
    found = c.connections.get("ws-a")  # both read the connected row before either marks it
    assert found is not None
    stack.entra.revoke_user(stack.entra.current_user.object_id)
    reasons = []
    for _ in range(2):
        with pytest.raises(ReconnectRequired) as err:
            c.tokens.acquire(found, force_refresh=True)
        reasons.append(err.value.reason)
    assert reasons == ["revoked", "revoked"]
    assert [n.reason for n in c.notifications.list("ws-a")] == ["revoked"]
    assert c.service.get("ws-a").status is ConnectionStatus.RECONNECT_REQUIRED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("setting", "declared"), [(None, "0 */15 * * * *"), ("0 0 */2 * * *", "%TOKEN_REFRESH_SCHEDULE%")]
)
def test_timer_schedule_comes_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, declared: str
) -> None:
    """Unset: the declared default, every 15 minutes. Set: the binding expression naming the setting."""
    from croniter import croniter

    from core.entrypoints import token_timer

    if setting is None:
        monkeypatch.delenv("TOKEN_REFRESH_SCHEDULE", raising=False)
    else:
        monkeypatch.setenv("TOKEN_REFRESH_SCHEDULE", setting)
    try:
        module = importlib.reload(token_timer)
        assert module.token_refresh_timer.build().get_trigger().schedule == declared
    finally:
        monkeypatch.undo()
        importlib.reload(token_timer)
    if setting is None:
        fires = croniter(declared, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), second_at_beginning=True)
        first, second = fires.get_next(dt.datetime), fires.get_next(dt.datetime)
        assert (second - first) == dt.timedelta(minutes=15) and first.minute % 15 == 0


def test_notification_list_keeps_the_newest_when_limited(identity_stack: IdentityStack) -> None:
    """Rows come back in id order; the newest must survive the limit whatever their ids."""
    notes = identity_stack.components.notifications
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i, note_id in enumerate(["a", "b", "c"]):  # the newest comes last in id order
        notes.raise_once(
            Notification("ws-n", note_id, "k", None, "t", "m", start + dt.timedelta(days=i), None)
        )
    assert [n.id for n in notes.list("ws-n", limit=2)] == ["c", "b"]


def test_due_means_near_expiry_or_no_refresh_for_the_configured_days(identity_stack: IdentityStack) -> None:
    """TOKEN_EXPIRY_MARGIN_MINUTES and TOKEN_PROACTIVE_REFRESH_DAYS decide what a run refreshes."""
    stack = identity_stack
    settings = load_settings({**stack.settings_env, "TOKEN_PROACTIVE_REFRESH_DAYS": "2"})
    store = local_secret_store(stack.keyvault.vault_url, settings.require("KEY_VAULT_LOCAL_TOKEN"))
    c = build_connection(
        settings,
        tables=stack.tables,
        secret_store=store,
        key_wrapper=key_wrapper_for(settings),
        http_session=stack.session,
        table_prefix=stack.prefix,
    )
    stack.entra.access_token_lifetime = 600  # expires in 10 minutes: inside the 20-minute margin
    stack.connect("ws-expiring")
    stack.entra.access_token_lifetime = 3600
    for workspace in ("ws-3-days", "ws-1-day"):
        stack.connect(workspace)
    for workspace, days in (("ws-3-days", 3), ("ws-1-day", 1)):
        found = c.connections.get(workspace)
        assert found is not None
        stale = found.record.last_refresh_at - dt.timedelta(days=days)
        c.connections.replace(found.record.refreshed(stale, found.record.access_token_expires_at), found.etag)
    workspaces = ("ws-expiring", "ws-3-days", "ws-1-day")
    before = {w: c.connections.get(w).record.last_refresh_at for w in workspaces}  # type: ignore[union-attr]
    report = c.refresher.run()
    assert (report.due, report.refreshed) == (2, 2), report
    after = {w: c.connections.get(w).record.last_refresh_at for w in workspaces}  # type: ignore[union-attr]
    assert {w for w in workspaces if after[w] > before[w]} == {"ws-expiring", "ws-3-days"}
    assert stack.components.refresher.run().due == 0  # with the default 7 days, nothing else is due


def test_a_reconnect_while_a_token_is_fetched_uses_the_new_connection(identity_stack: IdentityStack) -> None:
    """An export read the connection row, then the admin reconnected (the old token secret is deleted):
    the export gets a token of the new connection, not 'not connected' (which would fail its chunk)."""
    stack = identity_stack
    c = stack.components
    stack.connect()
    old = c.connections.get("ws-a")
    assert old is not None
    stack.connect()  # reconnect: new connection id and secret, the old secret deleted
    assert old.record.secret_name not in stack.keyvault.live_names()
    token = c.tokens.acquire(old, force_refresh=False)
    assert token.access_token
    assert c.service.get("ws-a").status is ConnectionStatus.CONNECTED  # type: ignore[union-attr]
    assert c.notifications.list("ws-a") == []


def test_a_connection_whose_token_secret_is_gone_asks_for_a_reconnect(identity_stack: IdentityStack) -> None:
    """Tokens lost from Key Vault (deleted by hand, restored vault): exports pause and the admin is told to
    reconnect, instead of every chunk failing as 'not connected' and the timer retrying silently."""
    stack = identity_stack
    c = stack.components
    stack.connect()
    record = c.service.get("ws-a")
    assert record is not None
    token = stack.settings_env["KEY_VAULT_LOCAL_TOKEN"]
    deleted = stack.session.delete(
        f"{stack.keyvault.vault_url}/secrets/{record.secret_name}?api-version=7.6",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert deleted.status_code == 200
    with pytest.raises(ReconnectRequired) as err:
        c.tokens.access_token("ws-a", force_refresh=True)
    assert err.value.reason == "revoked"
    assert c.service.get("ws-a").status is ConnectionStatus.RECONNECT_REQUIRED  # type: ignore[union-attr]
    assert [n.reason for n in c.notifications.list("ws-a")] == ["revoked"]


def test_timer_lines_about_a_workspace_carry_its_id_and_the_runs_correlation_id(
    identity_stack: IdentityStack,
) -> None:
    """Operators filter the timer's logs by workspace and by run: the pool threads keep both."""
    stack = identity_stack
    stack.connect()
    make_due(stack, "ws-a")
    stack.entra.revoke_user(stack.entra.current_user.object_id)  # the run finds a dead grant
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.INFO)
    handler.addFilter(ContextFilter())
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("core").addHandler(handler)
    try:
        with log_context(correlation_id="timer-run-1"):
            report = stack.components.refresher.run()
    finally:
        logging.getLogger("core").removeHandler(handler)
    assert report.reconnect_required == 1
    about = [r for r in records if getattr(r, "workspaceId", None) == "ws-a"]
    assert about, [r.getMessage() for r in records]
    assert all(getattr(r, "correlationId", None) == "timer-run-1" for r in about)
    assert any("reconnect" in r.getMessage() for r in about)
