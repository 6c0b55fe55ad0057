"""What admins and webhook receivers rely on in alerts: which URLs may receive webhooks, the signature a
receiver recomputes, the retry schedule, and one id per job and event."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.domain.alerts import (
    MAX_RETRY_DELAY_S,
    InvalidWebhookUrl,
    JobEvent,
    alert_id,
    is_public_address,
    retry_delay_s,
    sign,
    validate_webhook_url,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/dynamics",
        "https://hooks.example.com:8443/a?b=c",
        "https://93.184.216.34/hook",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert validate_webhook_url(url, allow_local=False) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "user information"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://127.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://10.0.0.8/", "private"),
        ("https://[::1]/", "private"),
        ("https://localhost/", "public host name"),
        ("https://intranet/", "public host name"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https:///nohost", "host"),
        ("https://e.com/" + "a" * 2100, "2048"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match=why):
        validate_webhook_url(url, allow_local=False)


def test_local_development_admits_127_0_0_1_only() -> None:
    assert validate_webhook_url("http://127.0.0.1:8080/h", allow_local=True)
    assert validate_webhook_url("https://127.0.0.1:8443/h", allow_local=True)
    for url in ("http://localhost:8080/h", "http://10.0.0.1/h", "http://127.0.0.2/h"):
        with pytest.raises(InvalidWebhookUrl):
            validate_webhook_url(url, allow_local=True)
    with pytest.raises(InvalidWebhookUrl):
        validate_webhook_url("http://127.0.0.1:8080/h", allow_local=False)


def test_resolved_addresses_must_be_public() -> None:
    assert is_public_address("93.184.216.34")
    assert not any(
        map(is_public_address, ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1%eth0", "x"])
    )


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"e-1"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1700000000, body) == f"v1={expected}"
    assert sign("whsec_k", 1700000001, body) != sign("whsec_k", 1700000000, body)
    assert sign("whsec_other", 1700000000, body) != sign("whsec_k", 1700000000, body)


def test_retries_back_off_exponentially_up_to_an_hour() -> None:
    assert [retry_delay_s(n, 30) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert retry_delay_s(20, 30) == MAX_RETRY_DELAY_S
    assert retry_delay_s(3, 0) == 0


def test_one_id_per_job_and_event() -> None:
    ids = {
        alert_id(kind, job, event)
        for kind in ("export", "activity")
        for job in ("j1", "j2")
        for event in JobEvent
    }
    assert len(ids) == 12
    assert alert_id("export", "j1", JobEvent.FAILED) == alert_id("export", "j1", JobEvent.FAILED)
    assert not any(c in i for i in ids for c in "/\\#?")
