"""Structured logs: one JSON object per line with the bound ids; tokens and secret values never reach a line;
the correlation id comes from the caller's headers or is new; OpenTelemetry is only configured when its
connection string is set."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from core import observability
from core.observability import (
    ContextFilter,
    JsonFormatter,
    RedactionFilter,
    bind,
    correlation_id_from,
    current_context,
    in_current_context,
    job_context,
    log_context,
    redact,
)
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
JWT = jwt.encode({"sub": "user-1", "workspace_id": "ws-1"}, "k" * 32, algorithm="HS256")
REFRESH = "0.AXoAr7fakeRefreshTokenValue-abcdefghijklmnopqrstuvwxyz0123456789"
CLIENT_SECRET = "Zq8~fake.client-secret_value0123456789"


class Captured:
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(ContextFilter())
        self.handler.addFilter(RedactionFilter(secrets))
        self.handler.setFormatter(JsonFormatter(secrets))
        self.logger = logging.getLogger(f"test.observability.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture()
def captured() -> Iterator[Captured]:
    capture = Captured()
    yield capture
    capture.logger.removeHandler(capture.handler)


def test_each_record_is_one_json_line_with_the_bound_ids(captured: Captured) -> None:
    captured.logger.info("outside")
    with log_context(correlation_id="c-1", workspace_id="ws-1"):
        bind(user_id="u-1")
        captured.logger.info("saved config v%d", 3)
        with job_context("ws-1", "job-9", chunk=4):
            captured.logger.warning("chunk\nretried")
        captured.logger.info("after job")
    captured.logger.info("outside again")

    lines = captured.text().splitlines()
    assert len(lines) == 5  # the newline inside a message stays inside its JSON line
    outside, saved, chunk, after, outside_again = captured.entries()
    assert set(outside) == {"timestamp", "level", "logger", "message"}
    assert outside["timestamp"].endswith("Z") and "T" in outside["timestamp"]
    assert saved["message"] == "saved config v3" and saved["level"] == "INFO"
    assert (saved["correlationId"], saved["workspaceId"], saved["userId"]) == ("c-1", "ws-1", "u-1")
    assert "jobId" not in saved
    assert chunk["jobId"] == "job-9" and chunk["chunk"] == 4 and chunk["message"] == "chunk\nretried"
    assert chunk["correlationId"] not in ("c-1", None)  # a job invocation gets its own correlation id
    assert chunk["userId"] == "u-1"
    assert after["correlationId"] == "c-1" and "jobId" not in after
    assert set(outside_again) == {"timestamp", "level", "logger", "message"}
    assert current_context() == {}


def test_explicit_extra_ids_win_over_the_context(captured: Captured) -> None:
    with log_context(workspace_id="ws-ctx"):
        captured.logger.info("x", extra={"workspaceId": "ws-explicit"})
    assert captured.entries()[0]["workspaceId"] == "ws-explicit"


def test_unknown_context_fields_are_refused() -> None:
    with pytest.raises(TypeError), log_context(email="a@b.c"):  # type: ignore[arg-type]
        pass


def test_context_follows_work_handed_to_a_thread_only_when_asked(captured: Captured) -> None:
    with log_context(workspace_id="ws-t"):
        plain = threading.Thread(target=lambda: captured.logger.info("plain"))
        carried = threading.Thread(target=in_current_context(lambda: captured.logger.info("carried")))
        for thread in (plain, carried):
            thread.start()
            thread.join()
    by_message = {e["message"]: e for e in captured.entries()}
    assert "workspaceId" not in by_message["plain"]
    assert by_message["carried"]["workspaceId"] == "ws-t"


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"Authorization: Bearer {JWT}", JWT, "Authorization: Bearer"),
        (f"caller token {JWT} refused", JWT.split(".")[2], "refused"),
        (f"token response {{'refresh_token': '{REFRESH}', 'expires_in': 3599}}", REFRESH, "expires_in"),
        (f'{{"access_token":"{REFRESH}","token_type":"Bearer"}}', REFRESH, "token_type"),
        (f"POST /token grant_type=refresh_token&refresh_token={REFRESH}&x=1", REFRESH, "grant_type"),
        (f"client_secret={CLIENT_SECRET}&client_id=abc", CLIENT_SECRET, "client_id=abc"),
        (
            "GET /api/dynamics/oauth/callback?code=M.C507_abcdef.0.U.-secretcode&state=s1",
            "secretcode",
            "state=s1",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5Cg==;EndpointSuffix=x",
            "c2VjcmV0a2V5Cg==",
            "AccountName=acct",
        ),
        ("https://acct.blob.core.windows.net/c/b?sv=2024&sig=abc%2Bdef%3D", "abc%2Bdef", "sv=2024"),
    ],
)
def test_redaction_masks_token_shaped_values_and_keeps_the_rest(text: str, secret: str, kept: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert kept in masked
    assert observability.REDACTED in masked


def test_redaction_leaves_ordinary_operational_text_alone() -> None:
    text = (
        "caller sent no bearer token; workspace ws-1: HTTP 412 0x80040333 POST /api/data/v9.2/contacts "
        'error {"code": "0x80060888"} https://org1.crm4.dynamics.com job 3f2a-77 chunk 4'
    )
    assert redact(text) == text


def test_records_are_masked_in_args_tracebacks_and_secret_setting_values() -> None:
    capture = Captured(secrets=(CLIENT_SECRET,))
    try:
        capture.logger.info("redeeming with %s and %s", CLIENT_SECRET, {"refresh_token": REFRESH})
        try:
            raise RuntimeError(f"token endpoint said no to Bearer {JWT}")
        except RuntimeError:
            capture.logger.exception("refresh failed")
    finally:
        capture.logger.removeHandler(capture.handler)
    text = capture.text()
    for secret in (CLIENT_SECRET, REFRESH, JWT, JWT.split(".")[1]):
        assert secret not in text
    failure = capture.entries()[1]
    assert "RuntimeError" in failure["exception"] and "Traceback" in failure["exception"]


def test_the_redaction_filter_protects_handlers_with_other_formatters() -> None:
    """The Functions worker's (or OpenTelemetry's) handler formats on its own: the record itself is masked."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.observability.plain")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"refresh_token={REFRESH}")
        except ValueError:
            logger.error("token %s", JWT, exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert JWT not in stream.getvalue() and REFRESH not in stream.getvalue()
    assert "ValueError" in stream.getvalue()


def test_secret_values_come_from_settings_declared_secret_only() -> None:
    settings = load_settings(
        {
            "DYNAMICS_CLIENT_SECRET": CLIENT_SECRET,
            "DYNAMICS_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",  # the public default: not a secret
        }
    )
    assert observability.secret_values(settings) == (CLIENT_SECRET,)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Correlation-Id": "frontend-req-42"}, "frontend-req-42"),
        ({"x-correlation-id": "abc.DEF_1:2"}, "abc.DEF_1:2"),
        (
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        (
            {
                "X-Correlation-Id": "bad\nid injected",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            },
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
    ],
)
def test_correlation_id_comes_from_the_caller_when_usable(headers: dict[str, str], expected: str) -> None:
    assert correlation_id_from(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Correlation-Id": "x" * 500},
        {"X-Correlation-Id": '{"json":1}'},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": "garbage"},
    ],
)
def test_correlation_id_is_new_otherwise(headers: dict[str, str]) -> None:
    first, second = correlation_id_from(headers), correlation_id_from(headers)
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


# ---------------------------------------------------------------------------------------------- setup


@pytest.fixture()
def fresh_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """configure_logging on a root logger of our own making, restored afterwards (the test body empties it:
    pytest adds its capture handlers after the fixtures ran)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_libraries = {n: logging.getLogger(n).level for n in observability.LIBRARY_LOGGERS}
    monkeypatch.setattr(observability, "_logging_configured", False)
    try:
        yield root
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_libraries.items():
            logging.getLogger(name).setLevel(level)


def test_configure_logging_writes_json_lines_once_and_quiets_libraries(fresh_root: logging.Logger) -> None:
    fresh_root.handlers = []
    stream = io.StringIO()
    settings = load_settings({"DYNAMICS_CLIENT_SECRET": CLIENT_SECRET})
    observability.configure_logging(settings, stream=stream)
    observability.configure_logging(settings, stream=io.StringIO())  # second call: no second handler
    assert len(fresh_root.handlers) == 1
    with log_context(workspace_id="ws-9"):
        logging.getLogger("core.services.anything").info("using %s", CLIENT_SECRET)
        logging.getLogger("azure.core.pipeline").info("request headers ...")  # below WARNING: dropped
        logging.getLogger("urllib3.connectionpool").warning("pool full")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["logger"] for e in entries] == ["core.services.anything", "urllib3.connectionpool"]
    assert entries[0]["workspaceId"] == "ws-9"
    assert CLIENT_SECRET not in stream.getvalue()
    for name in ("azure", "urllib3", "msal"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING


def test_configure_logging_reuses_a_host_console_handler(fresh_root: logging.Logger) -> None:
    """The devhost (basicConfig) already logs to stderr: its handler writes JSON from then on."""
    fresh_root.handlers = []
    stream = io.StringIO()
    host_handler = logging.StreamHandler(stream)
    fresh_root.addHandler(host_handler)
    fresh_root.setLevel(logging.INFO)
    observability.configure_logging(load_settings({}))
    assert fresh_root.handlers == [host_handler]
    logging.getLogger("devhost").info("GET /api/health 200 2.0ms")
    assert json.loads(stream.getvalue())["message"] == "GET /api/health 200 2.0ms"


# ---------------------------------------------------------------------------------------------- telemetry

VALID = (
    "InstrumentationKey=00000000-1111-2222-3333-444444444444;"
    "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
)


@pytest.fixture()
def fake_azure_monitor(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("azure.monitor.opentelemetry")
    module.configure_azure_monitor = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", module)
    monkeypatch.setattr(observability, "_telemetry_configured", False)
    return calls


def test_telemetry_is_not_configured_without_a_connection_string(fake_azure_monitor: list[Any]) -> None:
    assert observability.configure_telemetry(load_settings({})) is False
    assert fake_azure_monitor == []


def test_telemetry_is_configured_with_a_valid_connection_string(fake_azure_monitor: list[Any]) -> None:
    settings = load_settings({"APPLICATIONINSIGHTS_CONNECTION_STRING": VALID})
    assert observability.configure_telemetry(settings) is True
    assert observability.configure_telemetry(settings) is True  # once per process
    assert len(fake_azure_monitor) == 1
    assert fake_azure_monitor[0]["connection_string"] == VALID


def test_a_malformed_connection_string_is_not_used(
    fake_azure_monitor: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({"APPLICATIONINSIGHTS_CONNECTION_STRING": "not-a-connection-string"})
    assert observability.configure_telemetry(settings) is False
    assert fake_azure_monitor == []
    assert "malformed" in caplog.text and "not-a-connection-string" not in caplog.text


def test_without_the_setting_the_app_imports_no_opentelemetry() -> None:
    """In a clean interpreter: importing the app and running its setup loads none of the OTel packages."""
    script = (
        "import sys, function_app\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor')))\n"
        "print(loaded)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
