"""The Key Vault stand-in speaks the keys REST API the real ``azure-keyvault-keys`` clients use, and the
app's vault-key wrapper and token cipher work against it.

Pages followed (api-version 7.4+ shapes):
- Create Key  https://learn.microsoft.com/rest/api/keyvault/keys/create-key/create-key
- Get Key     https://learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key
- Wrap Key    https://learn.microsoft.com/rest/api/keyvault/keys/wrap-key/wrap-key
- Unwrap Key  https://learn.microsoft.com/rest/api/keyvault/keys/unwrap-key/unwrap-key
KeyBundle ``{"key": JsonWebKey{kid, kty, key_ops, n, e}, "attributes": {...}}``; KeyOperationResult
``{"kid", "value"}``; byte values base64url; errors ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient, KeyOperation
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

from core.adapters.identity import key_wrapping
from core.adapters.identity.keyvault import SecretStoreUnavailable, StaticTokenCredential
from core.adapters.identity.token_crypto import ForeignKeyEnvelope, TokenCipher, TokenDecryptError
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.identity import local_key_wrapper

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]

API = "api-version=7.6"
DATA_KEY = bytes(range(32))


def kwargs() -> dict[str, Any]:
    return {"verify_challenge_resource": False, "connection_verify": str(ensure_ca().bundle_path)}


def raw(kv: KeyVaultEmulator, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    return trusting_session().request(
        method,
        f"{kv.vault_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token or kv.issue_token()}"},
        timeout=30,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_create_and_get_answer_a_key_bundle_with_the_public_jwk_only(keyvault: KeyVaultEmulator) -> None:
    created = raw(
        keyvault,
        "POST",
        f"/keys/kek/create?{API}",
        {"kty": "RSA", "key_size": 2048, "key_ops": ["wrapKey", "unwrapKey"]},
    )
    assert created.status_code == 200, created.text
    bundle = created.json()
    kid = bundle["key"]["kid"]
    assert re.fullmatch(re.escape(keyvault.vault_url) + r"/keys/kek/[0-9a-f]{32}", kid)
    assert bundle["key"]["kty"] == "RSA" and bundle["key"]["key_ops"] == ["wrapKey", "unwrapKey"]
    assert set(bundle["key"]) == {"kid", "kty", "key_ops", "n", "e"}  # never d, p, q, dp, dq, qi
    assert bundle["key"]["e"] == "AQAB" and "=" not in bundle["key"]["n"]  # base64url, no padding
    assert bundle["attributes"]["enabled"] is True and bundle["attributes"]["exportable"] is False
    # Get Key: latest without a version, that version with it; a second create adds a version
    again = raw(keyvault, "POST", f"/keys/kek/create?{API}", {"kty": "RSA"}).json()["key"]["kid"]
    assert raw(keyvault, "GET", f"/keys/kek?{API}").json()["key"]["kid"] == again
    assert raw(keyvault, "GET", f"/keys/kek/{kid.rsplit('/', 1)[1]}?{API}").json()["key"]["kid"] == kid


def test_wrap_and_unwrap_over_rest(keyvault: KeyVaultEmulator) -> None:
    kid = raw(
        keyvault, "POST", f"/keys/kek/create?{API}", {"kty": "RSA", "key_ops": ["wrapKey", "unwrapKey"]}
    ).json()["key"]["kid"]
    version = kid.rsplit("/", 1)[1]
    wrapped = raw(
        keyvault,
        "POST",
        f"/keys/kek/{version}/wrapkey?{API}",
        {"alg": "RSA-OAEP-256", "value": b64url(DATA_KEY)},
    )
    assert wrapped.status_code == 200 and wrapped.json()["kid"] == kid
    value = wrapped.json()["value"]
    assert len(base64.urlsafe_b64decode(value + "==")) == 256  # one RSA-2048 block
    unwrapped = raw(
        keyvault, "POST", f"/keys/kek/{version}/unwrapkey?{API}", {"alg": "RSA-OAEP-256", "value": value}
    )
    assert unwrapped.status_code == 200 and unwrapped.json() == {"kid": kid, "value": b64url(DATA_KEY)}


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/keys/absent/wrapkey", {"alg": "RSA-OAEP-256", "value": "AA"}, 404, "KeyNotFound"),
        ("/keys/kek/" + "0" * 32, None, 404, "KeyNotFound"),
        ("/keys/kek/wrapkey", {"alg": "A256KW", "value": "AA"}, 400, "BadParameter"),  # oct keys: HSM only
        ("/keys/kek/wrapkey", {"alg": "RSA-OAEP-256"}, 400, "BadParameter"),
        ("/keys/kek/unwrapkey", {"alg": "RSA-OAEP-256", "value": b64url(b"x" * 256)}, 400, "BadParameter"),
        ("/keys/sign-only/wrapkey", {"alg": "RSA-OAEP-256", "value": "AA"}, 403, "Forbidden"),
        ("/keys/bad_name/create", {"kty": "RSA"}, 400, "BadParameter"),
        ("/keys/oct/create", {"kty": "oct"}, 400, "BadParameter"),
    ],
)
def test_errors_have_the_key_vault_shape(
    keyvault: KeyVaultEmulator, path: str, body: Any, status: int, code: str
) -> None:
    keyvault.create_key("kek")
    raw(keyvault, "POST", f"/keys/sign-only/create?{API}", {"kty": "RSA", "key_ops": ["sign", "verify"]})
    answer = raw(keyvault, "POST" if body is not None else "GET", f"{path}?{API}", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_api_version_and_bearer_token_are_required(keyvault: KeyVaultEmulator) -> None:
    keyvault.create_key("kek")
    assert raw(keyvault, "GET", "/keys/kek").status_code == 400
    refused = trusting_session().get(f"{keyvault.vault_url}/keys/kek?{API}", timeout=10)
    assert refused.status_code == 401
    assert 'resource="https://vault.azure.net"' in refused.headers["WWW-Authenticate"]


def test_the_real_sdk_clients_create_read_wrap_and_unwrap(keyvault: KeyVaultEmulator) -> None:
    credential = StaticTokenCredential(keyvault.issue_token())
    keys = KeyClient(keyvault.vault_url, credential, **kwargs())
    key = keys.create_rsa_key(
        "sdk-kek", size=2048, key_operations=[KeyOperation.wrap_key, KeyOperation.unwrap_key]
    )
    assert key.properties.version and key.key.n and key.key.e and not key.key.d
    assert keys.get_key("sdk-kek").id == key.id
    with pytest.raises(ResourceNotFoundError):
        keys.get_key("absent")
    # Wrap locally with the public JWK the vault gave (what the SDK does with RSA), unwrap in the vault:
    # proves n and e are the vault's real key.
    crypto = CryptographyClient(key, credential, **kwargs())
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DATA_KEY)
    assert wrapped.key_id == key.id
    before = keyvault.keys.unwraps
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == DATA_KEY
    assert keyvault.keys.unwraps == before + 1  # the private part is used in the vault only
    with pytest.raises(HttpResponseError) as err:
        crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\0" * 256)
    assert err.value.status_code == 400


# ---------------------------------------------------------------------- the app's wrapper and cipher
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wrapper_for(kv: KeyVaultEmulator, name: str = "token-wrapping-key", clock: Clock | None = None) -> Any:
    key_id = kv.create_key(name)
    return local_key_wrapper(key_id, kv.issue_token(), **({"monotonic": clock} if clock else {}))


def test_a_sealed_cache_holds_only_a_data_key_wrapped_by_the_vault_key(keyvault: KeyVaultEmulator) -> None:
    cipher = TokenCipher(wrapper=wrapper_for(keyvault))
    sealed = cipher.seal(b"refresh-token", "ws-a")
    envelope = json.loads(sealed)
    assert envelope["v"] == 2 and set(envelope) == {"v", "kid", "wk", "n", "ct"}
    assert envelope["kid"].startswith(f"{keyvault.vault_url}/keys/token-wrapping-key/")
    assert TokenCipher(wrapper=wrapper_for(keyvault)).open(sealed, "ws-a") == b"refresh-token"
    with pytest.raises(TokenDecryptError):
        cipher.open(sealed, "ws-b")  # bound to its workspace
    reseal = cipher.seal(b"rotated", "ws-a", previous=sealed)
    assert json.loads(reseal)["wk"] == envelope["wk"]  # the data key is reused: no vault call per refresh


def test_unwraps_are_served_from_memory_per_key_version_for_a_while(keyvault: KeyVaultEmulator) -> None:
    clock = Clock()
    sealed = TokenCipher(wrapper=wrapper_for(keyvault)).seal(b"t", "ws-a")
    reader = TokenCipher(wrapper=wrapper_for(keyvault, clock=clock))  # another instance: cold cache
    before = keyvault.keys.unwraps
    for _ in range(50):
        assert reader.open(sealed, "ws-a") == b"t"
    assert keyvault.keys.unwraps == before + 1
    clock.now += key_wrapping.UNWRAP_TTL_S + 1
    assert reader.open(sealed, "ws-a") == b"t"
    assert keyvault.keys.unwraps == before + 2


def test_a_new_key_version_wraps_new_data_keys_and_old_caches_still_open(keyvault: KeyVaultEmulator) -> None:
    clock = Clock()
    wrapper = wrapper_for(keyvault, clock=clock)
    cipher = TokenCipher(wrapper=wrapper)
    old = cipher.seal(b"old", "ws-a")
    keyvault.create_key("token-wrapping-key")  # az keyvault key rotate
    clock.now += key_wrapping.KEY_REFRESH_S + 1
    new = cipher.seal(b"new", "ws-b")
    assert json.loads(new)["kid"] != json.loads(old)["kid"]
    fresh = TokenCipher(wrapper=wrapper_for(keyvault))  # also adds a version; both older ones open
    assert fresh.open(old, "ws-a") == b"old" and fresh.open(new, "ws-b") == b"new"


def test_wrapping_goes_on_with_the_known_key_version_when_reading_the_key_fails(
    keyvault: KeyVaultEmulator,
) -> None:
    clock = Clock()
    cipher = TokenCipher(wrapper=wrapper_for(keyvault, clock=clock))
    first = json.loads(cipher.seal(b"a", "ws-a"))["kid"]
    clock.now += key_wrapping.KEY_REFRESH_S + 1
    keyvault.fail_with(503, methods=("GET",))
    assert json.loads(cipher.seal(b"b", "ws-b"))["kid"] == first  # wrapped locally with the known version
    keyvault.fail_with(None)


def test_a_cache_under_another_vault_key_is_a_configuration_fault_found_without_a_vault_call(
    keyvault: KeyVaultEmulator,
) -> None:
    sealed = TokenCipher(wrapper=wrapper_for(keyvault, "other-key")).seal(b"t", "ws-a")
    before = keyvault.keys.unwraps
    with pytest.raises(ForeignKeyEnvelope) as err:
        TokenCipher(wrapper=wrapper_for(keyvault)).open(sealed, "ws-a")
    assert err.value.setting == "TOKEN_WRAPPING_KEY_ID" and keyvault.keys.unwraps == before


def test_a_vault_outage_is_not_taken_for_damaged_token_material(keyvault: KeyVaultEmulator) -> None:
    sealed = TokenCipher(wrapper=wrapper_for(keyvault)).seal(b"t", "ws-a")
    reader = TokenCipher(wrapper=wrapper_for(keyvault))
    keyvault.fail_with(503)
    with pytest.raises(SecretStoreUnavailable):
        reader.open(sealed, "ws-a")
    keyvault.fail_with(None)
    assert reader.open(sealed, "ws-a") == b"t"


def test_caches_sealed_under_the_former_secret_key_open_and_are_resealed_under_the_vault_key(
    keyvault: KeyVaultEmulator,
) -> None:
    legacy_kek = os.urandom(32)
    old = TokenCipher(legacy_kek).seal(b"sealed before the upgrade", "ws-a")
    assert json.loads(old)["v"] == 1
    upgraded = TokenCipher(legacy_kek, wrapper=wrapper_for(keyvault))
    assert upgraded.open(old, "ws-a") == b"sealed before the upgrade"  # read old
    resealed = upgraded.seal(b"refreshed", "ws-a", previous=old)  # write new
    assert json.loads(resealed)["v"] == 2
    vault_only = TokenCipher(wrapper=wrapper_for(keyvault))  # the legacy key removed afterwards
    assert vault_only.open(resealed, "ws-a") == b"refreshed"
    with pytest.raises(ForeignKeyEnvelope) as err:  # not resealed yet: names the setting to restore
        vault_only.open(old, "ws-a")
    assert err.value.setting == "TOKEN_ENCRYPTION_KEY"
