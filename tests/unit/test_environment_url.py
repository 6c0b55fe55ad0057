"""The environment URL an admin types is where the workspace's Dynamics bearer token will be sent.

Hostile URLs either raise ``InvalidEnvironmentUrl`` (answered 400 naming ``environmentUrl``) or come back
as a URL that ``requests`` sends to exactly an allowed host on port 443 -- checked with requests' own
parsing (``PreparedRequest``) and its own choice of connection (``HTTPAdapter``'s pool key).
"""

from __future__ import annotations

import fnmatch

import pytest
import requests
import urllib3.util
from hypothesis import example, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from core.domain.connection import (
    DEFAULT_ALLOWED_HOSTS,
    InvalidEnvironmentUrl,
    normalize_environment_url,
    parse_host_patterns,
)

HOSTS = parse_host_patterns(DEFAULT_ALLOWED_HOSTS)


def destination(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) requests connects to for a Dataverse call under ``url``."""
    prepared = requests.Request("GET", url + "/api/data/v9.2/WhoAmI").prepare()
    host_params, _ = HTTPAdapter().build_connection_pool_key_attributes(prepared, True)
    return host_params["scheme"], host_params["host"], host_params["port"]


def test_the_parser_is_the_one_requests_uses() -> None:
    import requests.models

    assert requests.models.parse_url is urllib3.util.parse_url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # requests would send the bearer token to evil.com
        ("https://evil.com\\.crm.dynamics.com", "backslash"),
        ("https://org.crm.dynamics.com:8443", "port other than 443"),
        ("https://org .crm.dynamics.com", "spaces"),
        ("https://org.crm.dynamics.com ", "spaces"),
        ("https://org\x00.crm.dynamics.com", "control characters"),
        ("https://org.crm.dynamics.com\x00", "control characters"),
        ("https://org.crm.dynamics.com\u200b", "control characters"),
        ("https://evil.com＃.crm.dynamics.com", "not a valid URL"),  # a ValueError (500) before
        ("https://ｅｖｉｌ.com.crm.dynamics.com", "not a valid URL"),
        ("https://evil.com%2f.crm.dynamics.com", "DNS name"),
        ("https://user@org.crm.dynamics.com", "user name"),
        ("https://evil.com#.crm.dynamics.com", "root URL"),
        ("https://evil.com?.crm.dynamics.com", "root URL"),
        ("https://[::1].crm.dynamics.com", "not a valid URL"),
        ("https://org.crm.dynamics.com:99999", "not a valid URL"),
        ("https://org.crm.dynamics.com.", "DNS name"),
        ("https://org_1.crm.dynamics.com", "DNS name"),
        ("https://127.0.0.1:8443", "not a Dynamics 365 environment host"),
        ("https:org.crm.dynamics.com", "root URL"),
        ("//org.crm.dynamics.com", "https"),
        ("x" * 301, "at most 300"),
    ],
)
def test_hostile_environment_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(InvalidEnvironmentUrl, match=why):
        normalize_environment_url(url, HOSTS)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://org.crm.dynamics.com:443/", "https://org.crm.dynamics.com"),
        ("HTTPS://ORG.crm4.dynamics.com", "https://org.crm4.dynamics.com"),
        ("https://bücher.crm.dynamics.com", "https://xn--bcher-kva.crm.dynamics.com"),  # IDNA A-label
    ],
)
def test_equivalent_spellings_are_normalised(url: str, expected: str) -> None:
    assert normalize_environment_url(url, HOSTS) == expected


def test_a_port_only_where_a_pattern_names_it() -> None:
    local = ("127.0.0.1:*", *HOSTS)
    assert normalize_environment_url("https://127.0.0.1:4443", local) == "https://127.0.0.1:4443"
    with pytest.raises(InvalidEnvironmentUrl, match="port other than 443"):
        normalize_environment_url("https://org.crm.dynamics.com:4443", local)


# Pieces an attacker combines: allowed suffixes, separators parsers disagree on, look-alikes, ports.
_PIECES = st.sampled_from(
    [
        "org",
        "evil.com",
        ".crm.dynamics.com",
        ".crm4.dynamics.com",
        ".crm.microsoftdynamics.us",
        ".",
        "..",
        "\\",
        "/",
        "@",
        ":",
        ":443",
        ":8443",
        ":0",
        "#",
        "?",
        "%2f",
        "%00",
        "%40",
        " ",
        "\t",
        "\x00",
        "\r\n",
        "＃",
        "／",
        "＠",
        "。",
        "ｏｒｇ",
        "\u200b",
        "\u202e",
        "xn--",
        "-",
        "_",
        "[::1]",
        "127.0.0.1",
        "ü",
        "İ",
        "ß",
    ]
)
_PREFIXES = st.sampled_from(
    ["https://", "HTTPS://", "http://", "https:/", "https:\\\\", "//", "https://u:p@", ""]
)


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(prefix=_PREFIXES, pieces=st.lists(_PIECES, max_size=8), tail=st.text(max_size=6))
@example(prefix="https://", pieces=["evil.com", "\\", ".crm.dynamics.com"], tail="")
@example(prefix="https://", pieces=["evil.com", "＃", ".crm.dynamics.com"], tail="")
@example(prefix="https://", pieces=["org", ".crm.dynamics.com", ":8443"], tail="")
def test_accepted_urls_send_to_exactly_an_allowed_host_on_443(
    prefix: str, pieces: list[str], tail: str
) -> None:
    url = prefix + "".join(pieces) + tail
    try:
        accepted = normalize_environment_url(url, HOSTS)
    except InvalidEnvironmentUrl:
        return  # refused: answered 400 naming environmentUrl (never another exception, never a 500)
    scheme, host, port = destination(accepted)
    assert scheme == "https" and port in (None, 443), (url, accepted)
    assert accepted == f"https://{host}"
    assert any(fnmatch.fnmatchcase(host, pattern) for pattern in HOSTS), (url, host)
    labels = host.split(".")
    assert all(label and label.isascii() and label.replace("-", "").isalnum() for label in labels), host
    assert normalize_environment_url(accepted, HOSTS) == accepted  # stable: the stored form re-validates


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_refused_or_accepted_never_an_error(text: str) -> None:
    for url in (text, "https://" + text, "https://" + text + ".crm.dynamics.com"):
        try:
            accepted = normalize_environment_url(url, HOSTS)
        except InvalidEnvironmentUrl:
            continue
        assert destination(accepted)[1] == accepted.removeprefix("https://")
