"""Health endpoints against real services: Azurite, the Key Vault and Entra stand-ins, the Dataverse emulator.

``GET /api/health`` answers within its one-second budget whatever is down: storage down is 503 (the Health
body the OpenAPI document describes), Key Vault down, refusing or silent is ``degraded`` (200); each probe's
result is reused for a few seconds, so a flood of health requests makes one vault request per window.
``GET /api/health/dynamics`` tells the caller's workspace
whether Dynamics answers (WhoAmI, with its latency) or why not: not connected, reconnect required,
unreachable.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core import openapi
from core.entrypoints import connection_api, meta_api
from core.services.health import service as health_service
from core.services.health.service import HealthService
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.app import enable_dynamics, use_app
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, request
from tests.support.identity import REDIRECT_URI, identity_settings
from tests.support.tokens import bearer, configured

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


def health(headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = call(meta_api.get_health, request("GET", "health", headers=headers))
    return response.status_code, body_json(response), dict(response.headers)


class Clock:
    """The health service's monotonic clock under the test's control: the probe cache's window passes
    when told."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    use_app(monkeypatch, monotonic=fake)
    return fake


def past_the_cache(clock: Clock) -> None:
    clock.advance(health_service.PROBE_CACHE_S + 0.1)


@pytest.fixture()
def settings_for(monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> Iterator[Any]:
    """Apply app settings for the test (storage = the test Azurite unless overridden)."""
    stack: list[Any] = []

    def apply(**values: str) -> None:
        for name in ("KEY_VAULT_URL", "KEY_VAULT_LOCAL_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        cm = configured(
            monkeypatch,
            extra={
                "AzureWebJobsStorage": azurite.connection_string,
                "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
                **values,
            },
        )
        cm.__enter__()
        stack.append(cm)

    yield apply
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def test_all_reachable_is_ok(settings_for: Any, keyvault: KeyVaultEmulator, clock: Clock) -> None:
    settings_for(KEY_VAULT_URL=keyvault.vault_url, KEY_VAULT_LOCAL_TOKEN=keyvault.issue_token())
    health()  # first call builds the clients
    past_the_cache(clock)  # so the next call probes again
    vault_before = keyvault.requests
    status, body, headers = health({"X-Correlation-Id": "probe-1"})
    assert status == 200, body
    assert body["status"] == "ok" and body["storage"] == "ok"
    assert body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["keyVault"]["status"] == "ok"
    assert body["checks"]["keyVault"]["latencyMs"] >= 0
    assert keyvault.requests == vault_before + 1  # one read, answered
    assert headers["X-Correlation-Id"] == "probe-1"
    assert keyvault.live_names() == []  # the probe wrote nothing


def test_key_vault_not_configured_is_said_and_not_a_failure(settings_for: Any) -> None:
    settings_for()
    status, body, _ = health()
    assert status == 200 and body["status"] == "ok"
    assert body["checks"]["keyVault"]["status"] == "not_configured"


def test_key_vault_errors_degrade_without_500(
    settings_for: Any, keyvault: KeyVaultEmulator, clock: Clock
) -> None:
    settings_for(KEY_VAULT_URL=keyvault.vault_url, KEY_VAULT_LOCAL_TOKEN=keyvault.issue_token())
    keyvault.fail_with(503)
    vault_before = keyvault.requests
    status, body, _ = health()
    assert status == 200 and body["status"] == "degraded", body
    assert body["checks"]["keyVault"]["status"] == "unreachable"
    assert "503" in body["checks"]["keyVault"]["detail"]
    assert body["checks"]["storage"]["status"] == "ok"
    assert keyvault.requests == vault_before + 1  # answered at once: a health probe never retries
    keyvault.fail_with(None)
    assert health()[1]["status"] == "degraded"  # the last answer stands for the cache window
    past_the_cache(clock)
    assert health()[1]["status"] == "ok"


def test_calls_within_the_window_share_one_probe_and_answer_fast(
    settings_for: Any, keyvault: KeyVaultEmulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An anonymous flood must not become a flood of Key Vault (or storage) requests: N calls within
    PROBE_CACHE_S make one vault request and one storage probe; the first call after it probes again."""
    settings_for(KEY_VAULT_URL=keyvault.vault_url, KEY_VAULT_LOCAL_TOKEN=keyvault.issue_token())
    storage_probes: list[float] = []
    real_check_storage = HealthService.check_storage

    def counted_check_storage(service: HealthService) -> Any:
        storage_probes.append(clock())
        return real_check_storage(service)

    monkeypatch.setattr(HealthService, "check_storage", counted_check_storage)
    health()  # builds the clients (the vault's auth challenge)
    past_the_cache(clock)
    vault_before, probes_before = keyvault.requests, len(storage_probes)

    with ThreadPoolExecutor(max_workers=8) as callers:  # a concurrent burst shares the in-flight probe
        burst = list(callers.map(lambda _: health(), range(8)))
    sequential = []
    for _ in range(20):  # then one call every 0.2 s (of the test's clock) up to the end of the window
        clock.advance((health_service.PROBE_CACHE_S - 0.5) / 20)
        sequential.append(health())
    for status, body, _ in burst + sequential:
        assert status == 200 and body["status"] == "ok", body
    assert keyvault.requests - vault_before == 1
    assert len(storage_probes) - probes_before == 1

    clock.advance(0.6)  # now past the window: the next call asks the vault again
    status, body, _ = health()
    assert status == 200 and body["status"] == "ok"
    assert keyvault.requests - vault_before == 2
    assert len(storage_probes) - probes_before == 2


def test_key_vault_refusing_our_identity_degrades(settings_for: Any, keyvault: KeyVaultEmulator) -> None:
    settings_for(KEY_VAULT_URL=keyvault.vault_url, KEY_VAULT_LOCAL_TOKEN="not-a-token-the-vault-issued")
    status, body, _ = health()
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["keyVault"]["status"] == "unreachable"
    assert "not-a-token" not in json.dumps(body)


@contextmanager
def listener(*, hold: bool) -> Iterator[tuple[int, list[socket.socket]]]:
    """A local port that accepts connections and either holds them without a word (a black hole) or
    closes them at once (a service dying); the accepted connections are listed, so a test counts them."""
    accepted: list[socket.socket] = []
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        server.settimeout(0.05)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                accepted.append(conn)
                if not hold:
                    conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1], accepted
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()


def test_silent_key_vault_is_cut_off_by_the_health_budget(
    settings_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault that accepts connections and never answers: the answer comes when the budget is spent,
    not when the vault call gives up (a budget below the probe's own timeout shows which one ended it)."""
    monkeypatch.setattr(health_service, "HEALTH_BUDGET_S", 0.2)
    assert health_service.HEALTH_BUDGET_S < health_service.PROBE_TIMEOUT_S
    with listener(hold=True) as (port, _):
        settings_for(KEY_VAULT_URL=f"https://127.0.0.1:{port}", KEY_VAULT_LOCAL_TOKEN="local-token-123")
        status, body, _ = health()
    assert status == 200 and body["status"] == "degraded", body
    assert body["checks"]["keyVault"]["status"] == "timeout", body
    assert body["checks"]["keyVault"]["detail"] == "no answer within 0.2 s"


def test_many_checks_during_a_vault_hang_share_one_probe_and_keep_storage_ok(settings_for: Any) -> None:
    """Each dependency holds one probe thread however many health requests arrive while it hangs, so a
    hanging vault never starves the storage check (which would turn into a false 503)."""
    with listener(hold=True) as (port, connections):
        settings_for(KEY_VAULT_URL=f"https://127.0.0.1:{port}", KEY_VAULT_LOCAL_TOKEN="local-token-123")
        with ThreadPoolExecutor(max_workers=12) as callers:
            results = list(callers.map(lambda _: health(), range(12)))
        vault_connections = len(connections)
    for status, body, _ in results:
        assert status == 200 and body["checks"]["storage"]["status"] == "ok", body
        assert body["checks"]["keyVault"]["status"] in ("timeout", "unreachable")
    assert vault_connections == 1


def test_storage_down_is_503_after_one_attempt(
    settings_for: Any, azurite: Azurite, keyvault: KeyVaultEmulator
) -> None:
    with listener(hold=False) as (port, connections):
        down = azurite.connection_string
        for dead in {azurite.table_port, azurite.queue_port, azurite.blob_port}:
            down = down.replace(f":{dead}/", f":{port}/")
        settings_for(
            AzureWebJobsStorage=down,
            KEY_VAULT_URL=keyvault.vault_url,
            KEY_VAULT_LOCAL_TOKEN=keyvault.issue_token(),
        )
        response = call(meta_api.get_health, request("GET", "health"))
        storage_connections = len(connections)
    body = body_json(response)
    assert response.status_code == 503, body
    assert body["status"] == "down" and body["storage"] == "unreachable"
    assert body["checks"]["keyVault"]["status"] == "ok"  # still reported
    assert storage_connections == 1  # a health probe never retries: the answer is not held up

    # What the OpenAPI document says a 503 is, is what the endpoint answered: the media type, and a body
    # the documented schema's model accepts, with exactly the documented properties.
    documented = openapi.document()["paths"]["/api/health"]["get"]["responses"]["503"]["content"]
    assert list(documented) == [response.mimetype] == ["application/json"]
    name = documented["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = openapi.document()["components"]["schemas"][name]
    assert set(body) == set(schema["properties"]) and set(schema["required"]) <= set(body)
    (model, _) = next(op for op in openapi.operations() if op.path == "/api/health").alternatives[503]
    assert isinstance(model, type) and model.__name__ == name
    model.model_validate(body)


# ---------------------------------------------------------------------------------------------- Dynamics


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=())
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def dynamics(
    settings_for: Any, entra: EntraEmulator, keyvault: KeyVaultEmulator, azurite: Azurite
) -> EntraEmulator:
    settings_for(**identity_settings(entra, keyvault, azurite, keyvault.issue_token()))
    return entra


def connect(workspace: str, environment_url: str) -> None:
    """What the admin does in the UI: enable Dynamics, connect, sign in at Microsoft, come back through the
    callback, confirm."""
    enable_dynamics(workspace)
    started = call(
        connection_api.dynamics_connect,
        request(
            "POST",
            "dynamics/connect",
            json_body={"environmentUrl": environment_url},
            headers=bearer(workspace),
        ),
    )
    assert started.status_code == 200, started.get_body()
    answer = trusting_session().get(body_json(started)["authorizationUrl"], allow_redirects=False, timeout=10)
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    params = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
    back = call(
        connection_api.dynamics_oauth_callback, request("GET", "dynamics/oauth/callback", params=params)
    )
    returned = parse_qs(urlsplit(back.headers["Location"]).query)
    assert returned["dynamics"] == ["confirm"], back.headers["Location"]
    done = call(
        connection_api.dynamics_oauth_complete,
        request(
            "POST",
            "dynamics/oauth/complete",
            json_body={"handle": returned["handle"][0]},
            headers=bearer(workspace),
        ),
    )
    assert done.status_code == 200, done.get_body()


def dynamics_health(workspace: str, role: str = "member") -> dict[str, Any]:
    response = call(
        meta_api.get_dynamics_health, request("GET", "health/dynamics", headers=bearer(workspace, role=role))
    )
    assert response.status_code == 200, response.get_body()
    return body_json(response)  # type: ignore[no-any-return]


def test_dynamics_health_needs_a_caller(dynamics: EntraEmulator) -> None:
    response = call(meta_api.get_dynamics_health, request("GET", "health/dynamics"))
    assert response.status_code == 401


def test_not_connected_is_said_plainly(dynamics: EntraEmulator) -> None:
    body = dynamics_health(f"ws-{uuid.uuid4().hex[:10]}")
    assert body["status"] == "not_connected" and body["whoAmI"] is None


def test_connected_workspace_answers_whoami_with_latency(
    dynamics: EntraEmulator, dataverse: DataverseEmulator
) -> None:
    workspace = f"ws-{uuid.uuid4().hex[:10]}"
    user = dynamics.current_user
    systemuserid = dataverse.add_user(object_id=user.object_id, domainname=user.email)
    connect(workspace, dataverse.url)
    body = dynamics_health(workspace)
    assert body["status"] == "connected", body
    assert body["whoAmI"]["userId"] == systemuserid and body["userMatches"] is True
    assert body["dynamicsUserId"] == systemuserid
    assert body["environmentUrl"] == dataverse.url
    assert 0 <= body["whoAmI"]["latencyMs"] <= body["elapsedMs"]
    assert user.email not in json.dumps(body)  # ids only

    # Never cached: each check is a new WhoAmI round trip.
    requests_before = dataverse.stats()["requests"]
    for _ in range(2):
        assert dynamics_health(workspace)["status"] == "connected"
    assert dataverse.stats()["requests"] >= requests_before + 2

    # Another workspace is not this one: its own (absent) connection is reported.
    assert dynamics_health(f"ws-{uuid.uuid4().hex[:10]}")["status"] == "not_connected"


def test_dynamics_errors_and_outage_are_unreachable_not_500(
    dynamics: EntraEmulator, dataverse: DataverseEmulator
) -> None:
    workspace = f"ws-{uuid.uuid4().hex[:10]}"
    dataverse.add_user(object_id=dynamics.current_user.object_id, domainname=dynamics.current_user.email)
    connect(workspace, dataverse.url)
    dataverse.simulator.update(error_rate_503=1.0)
    failing = dynamics_health(workspace)
    assert failing["status"] == "unreachable" and "503" in failing["detail"]
    dataverse.stop()
    down = dynamics_health(workspace)
    assert down["status"] == "unreachable" and "no response" in down["detail"]


def test_dead_grant_is_reconnect_required(dynamics: EntraEmulator, dataverse: DataverseEmulator) -> None:
    workspace = f"ws-{uuid.uuid4().hex[:10]}"
    user = dynamics.current_user
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    connect(workspace, dataverse.url)
    # The user changed their password (grant revoked) and, two hours on, Dynamics no longer takes the
    # cached access token: the check must redeem the refresh token, and Microsoft refuses it.
    dynamics.revoke_user(user.object_id)
    dataverse.clock.advance(2 * 3600)
    body = dynamics_health(workspace)
    assert body["status"] == "reconnect_required", body
    assert body["reason"] == "revoked"
    # The connection now says so too, and the next check answers without asking Dynamics.
    requests_before = dataverse.stats()["requests"]
    again = dynamics_health(workspace)
    assert again["status"] == "reconnect_required" and again["reason"] == "revoked"
    assert dataverse.stats()["requests"] == requests_before


@pytest.fixture()
def connected(
    settings_for: Any,
    entra: EntraEmulator,
    keyvault: KeyVaultEmulator,
    azurite: Azurite,
    dataverse: DataverseEmulator,
) -> tuple[dict[str, str], str]:
    """A workspace connected to the Dataverse stand-in; the app settings it was connected with."""
    env = identity_settings(entra, keyvault, azurite, keyvault.issue_token())
    settings_for(**env)
    workspace = f"ws-{uuid.uuid4().hex[:10]}"
    dataverse.add_user(object_id=entra.current_user.object_id, domainname=entra.current_user.email)
    connect(workspace, dataverse.url)
    return env, workspace


def test_a_changed_encryption_key_is_not_configured_naming_the_setting_not_a_dead_grant(
    settings_for: Any, connected: tuple[dict[str, str], str], keyvault: KeyVaultEmulator
) -> None:
    env, workspace = connected
    # An operator points TOKEN_WRAPPING_KEY_ID at another vault key: this instance cannot open the caches.
    settings_for(**{**env, "TOKEN_WRAPPING_KEY_ID": keyvault.create_key("another-key")})
    body = dynamics_health(workspace)
    assert body["status"] == "not_configured", body
    assert "TOKEN_WRAPPING_KEY_ID" in body["detail"]
    # Nothing was marked: with the right key back, the same connection answers.
    settings_for(**env)
    assert dynamics_health(workspace)["status"] == "connected"


def test_a_hung_key_vault_cannot_hold_the_dynamics_check_past_its_deadline(
    settings_for: Any, connected: tuple[dict[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, workspace = connected
    monkeypatch.setattr(health_service, "DYNAMICS_DEADLINE_S", 1.5)
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:  # accepts, never answers
        settings_for(**{**env, "KEY_VAULT_URL": f"https://127.0.0.1:{silent.getsockname()[1]}"})
        body = dynamics_health(workspace)
    assert body["status"] == "unreachable" and "no answer within 1.5 s" in body["detail"], body
