"""Envelope encryption of token caches: confidentiality, binding to the workspace, tamper detection."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from core.adapters.identity.token_crypto import ForeignKeyEnvelope, TokenCipher, TokenDecryptError
from core.settings import SettingsError, load_settings

SECRET = b'{"RefreshToken": {"x": {"secret": "rt.very-secret"}}}'


def cipher(byte: bytes = b"a") -> TokenCipher:
    return TokenCipher(byte * 32)


def test_round_trip_and_no_plaintext() -> None:
    sealed = cipher().seal(SECRET, "ws-a")
    assert b"rt.very-secret" not in sealed.encode()
    assert "rt.very-secret" not in base64.b64decode(json.loads(sealed)["ct"]).decode("latin-1")
    assert cipher().open(sealed, "ws-a") == SECRET


def test_random_nonce_each_time() -> None:
    assert cipher().seal(SECRET, "ws-a") != cipher().seal(SECRET, "ws-a")


def _nonce(envelope: str) -> bytes:
    return base64.b64decode(json.loads(envelope)["n"])


def test_no_nonce_repeats_under_a_data_key_reused_across_cache_versions() -> None:
    # One data key seals every cache version of a connection; AES-GCM under one key with a repeated
    # nonce leaks the XOR of the two plaintexts and lets the tag be forged (NIST SP 800-38D, 8.3).
    versions = [cipher().seal(SECRET, "ws-a")]
    for n in range(40):
        versions.append(cipher().seal(SECRET + str(n).encode(), "ws-a", previous=versions[-1]))
    assert len({json.loads(v)["wk"] for v in versions}) == 1  # the same data key all along
    assert len({_nonce(v) for v in versions}) == len(versions)
    # what a repeated nonce would give away: equal plaintext prefixes show as equal ciphertext prefixes
    first, second = (base64.b64decode(json.loads(v)["ct"]) for v in versions[:2])
    assert first[:16] != second[:16]
    assert [cipher().open(v, "ws-a") for v in versions[-2:]] == [SECRET + b"38", SECRET + b"39"]


def test_no_nonce_repeats_when_the_key_encryption_key_wraps_data_keys() -> None:
    # The one KEK wraps the data key of every workspace and every reconnect.
    wrapped = [
        base64.b64decode(json.loads(cipher().seal(SECRET, f"ws-{n % 5}"))["wk"])[:12] for n in range(40)
    ]
    assert len(set(wrapped)) == len(wrapped)


def test_bound_to_workspace_and_key() -> None:
    sealed = cipher().seal(SECRET, "ws-a")
    with pytest.raises(TokenDecryptError):
        cipher().open(sealed, "ws-b")
    with pytest.raises(TokenDecryptError):
        cipher(b"b").open(sealed, "ws-a")


def test_tampering_is_detected() -> None:
    data = json.loads(cipher().seal(SECRET, "ws-a"))
    ct = bytearray(base64.b64decode(data["ct"]))
    ct[0] ^= 1
    data["ct"] = base64.b64encode(bytes(ct)).decode()
    with pytest.raises(TokenDecryptError):
        cipher().open(json.dumps(data), "ws-a")
    with pytest.raises(TokenDecryptError):
        cipher().open("not json", "ws-a")


def test_another_kek_is_told_apart_from_damaged_material() -> None:
    # A rotated or mistyped TOKEN_ENCRYPTION_KEY is a configuration fault, not a dead connection.
    sealed = cipher().seal(SECRET, "ws-a")
    with pytest.raises(ForeignKeyEnvelope):
        cipher(b"b").open(sealed, "ws-a")
    with pytest.raises(TokenDecryptError) as wrong_workspace:
        cipher().open(sealed, "ws-b")
    assert not isinstance(wrong_workspace.value, ForeignKeyEnvelope)


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: "[]",
        lambda e: "null",
        lambda e: json.dumps({**e, "v": 2}),
        lambda e: json.dumps({k: v for k, v in e.items() if k != "n"}),
        lambda e: json.dumps({**e, "ct": "!" + e["ct"]}),
        lambda e: json.dumps({**e, "wk": 7}),
    ],
    ids=["list", "null", "unknown version", "no nonce", "not base64", "wrapped key not text"],
)
def test_malformed_envelopes_never_open(damage: Any) -> None:
    envelope = json.loads(cipher().seal(SECRET, "ws-a"))
    with pytest.raises(TokenDecryptError):
        cipher().open(damage(envelope), "ws-a")


def test_data_key_reused_across_versions_but_not_across_workspaces() -> None:
    first = cipher().seal(SECRET, "ws-a")
    second = cipher().seal(b"newer", "ws-a", previous=first)
    assert json.loads(first)["wk"] == json.loads(second)["wk"]
    assert cipher().open(second, "ws-a") == b"newer"
    other = cipher().seal(SECRET, "ws-b")
    assert json.loads(other)["wk"] != json.loads(first)["wk"]


def test_rotated_kek_starts_a_new_data_key() -> None:
    old = cipher(b"a").seal(SECRET, "ws-a")
    new = cipher(b"b").seal(b"x", "ws-a", previous=old)
    assert cipher(b"b").open(new, "ws-a") == b"x"


def test_key_from_settings_is_validated() -> None:
    with pytest.raises(SettingsError):
        TokenCipher.from_settings(load_settings({}))
    with pytest.raises(SettingsError, match="32 bytes"):
        TokenCipher.from_settings(
            load_settings({"TOKEN_ENCRYPTION_KEY": base64.b64encode(b"short").decode()})
        )
    key = TokenCipher.generate_kek()
    with pytest.raises(SettingsError, match="base64"):  # not silently read as another key
        TokenCipher.from_settings(load_settings({"TOKEN_ENCRYPTION_KEY": key[:20] + "!" + key[20:]}))
    assert (
        TokenCipher.from_settings(load_settings({"TOKEN_ENCRYPTION_KEY": key})).open(
            TokenCipher(base64.b64decode(key)).seal(b"z", "w"), "w"
        )
        == b"z"
    )
