"""Property-based fuzzing of every operation of ``GET /api/openapi.json`` through the real devhost.

The real ``function_app`` runs in the devhost subprocess against Azurite, with the Entra ID and Key Vault
stand-ins wired in (so ``connect`` builds a real authorization URL; Dynamics itself is not connected, so
fields/exports may legitimately answer 409/503). For each operation hypothesis draws request bodies from
the operation's own JSON schema (``from_schema`` below) or arbitrary JSON, and random path and query
values and odd headers (If-Match, Idempotency-Key, Content-Type, broken Authorization), and sends them with
an admin token, a member token, the platform service's token and no token. Every answer must be:

- below 500 (bad input is never an internal error); 503 only from operations that need Dynamics, Entra or
  Key Vault, and never titled "Internal error";
- an ``application/problem+json`` document with a ``title`` when it is an error;
- for a 400 about a body that parsed as JSON, naming the member(s) at fault in ``errors[].pointer``.

Bounded: a deterministic seed (``derandomize``), a few examples per operation and caller; ~35 s in all
(~15 s of it starting the devhost and stand-ins).
"""

from __future__ import annotations

import atexit
import base64
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from devhost.launcher import DevHostProcess
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca
from tests.support.azurite import Azurite

pytestmark = pytest.mark.e2e

# Hypothesis keeps caches under ./.hypothesis by default: not in the work tree.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)

AUDIENCE = "dynamics-integration"
SERVICE_AUDIENCE = "dynamics-integration-service"
ISSUER = "https://platform.local"
EXAMPLES = {"admin": 12, "member": 6, "service": 6, "none": 4}
CALLERS = tuple(EXAMPLES)
MAX_REF_DEPTH = 3


@dataclass
class Target:
    base_url: str
    secret: str
    session: requests.Session = field(default_factory=requests.Session)

    def token(self, workspace: str, role: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": "fuzz-user", "workspace_id": workspace}
        claims |= {"aud": SERVICE_AUDIENCE} if role == "service" else {"role": role, "aud": AUDIENCE}
        claims |= {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600}
        return jwt.encode(claims, self.secret, algorithm="HS256")


@pytest.fixture(scope="module")
def target(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    entra = EntraEmulator(access_token_lifetime=3600)
    entra.start()
    keyvault = KeyVaultEmulator(authority=entra.authority)
    keyvault.start()
    secret = secrets.token_urlsafe(32)
    settings_env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "DYNAMICS_CLIENT_ID": entra.client_id,
        "DYNAMICS_CLIENT_SECRET": entra.client_secret,
        "DYNAMICS_AUTHORITY": entra.authority,
        "DYNAMICS_REDIRECT_URI": "https://app.local/api/dynamics/oauth/callback",
        "DYNAMICS_ALLOWED_HOST_PATTERNS": "*.crm.dynamics.com,127.0.0.1:*",
        "FRONTEND_URL": "https://app.local/settings/dynamics",
        "KEY_VAULT_URL": keyvault.vault_url,
        "KEY_VAULT_LOCAL_TOKEN": keyvault.issue_token(),
        "TOKEN_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
        "TOKEN_REFRESH_SCHEDULE": "0 0 0 1 1 *",
    }
    log_path = tmp_path_factory.mktemp("fuzz") / "devhost.log"
    host = DevHostProcess("function_app", settings_env, log_path=log_path)
    host.start(timeout=60)
    target = Target(host.base_url, secret)
    target.session.trust_env = False
    try:
        yield target
    finally:
        host.stop()
        keyvault.stop()
        entra.stop()


# --- schemas -> strategies ----------------------------------------------------------------------------


def inline_refs(schema: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """The schema with every ``$ref`` replaced by its definition; recursion (Rule) is cut at a depth."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if depth >= MAX_REF_DEPTH:
                return {"type": "object"}
            name = ref.rsplit("/", 1)[-1]
            return inline_refs(components[name], components, depth + 1)
        return {k: inline_refs(v, components, depth) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline_refs(v, components, depth) for v in schema]
    return schema


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
PATH_VALUES = st.one_of(
    st.uuids().map(str),
    st.text(min_size=1, max_size=70),
    st.sampled_from(["sync-identifiers", "field-mapping", "campaign-mapping", "user-mapping", "dynamics"]),
    st.sampled_from(["hubspot", "salesforce", "..", "%2e%2e", "a" * 65, "0" * 300]),
)
QUERY_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["contact", "account", "true", "false", "-1", "0", "1001", "created", "firstName"]),
)


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Documents that (mostly) fit a JSON schema of the pydantic kind: objects with their required members
    and some optional ones, arrays, enums/consts, strings with their length bounds, numbers, unions."""
    if not isinstance(schema, dict) or not schema:
        return ANY_JSON
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return st.one_of([from_schema(s) for s in schema[union]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        optional = [k for k in props if k not in required]
        return st.fixed_dictionaries(
            {k: from_schema(props[k]) for k in required},
            optional={k: from_schema(props[k]) for k in optional},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {})),
            min_size=int(schema.get("minItems", 0)),
            max_size=min(int(schema.get("maxItems", 3)), 3),
        )
    if kind == "string":
        low = int(schema.get("minLength", 0))
        high = max(low, min(int(schema.get("maxLength", 40)), 40))
        return st.text(min_size=low, max_size=high) | st.uuids().map(str)
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return ANY_JSON


def body_strategy(schema: dict[str, Any] | None) -> st.SearchStrategy[tuple[str, Any]]:
    """("json", document) drawn from the schema or anything, or ("raw", bytes) that is not JSON."""
    raw = st.tuples(st.just("raw"), st.binary(max_size=60) | st.sampled_from([b"", b"{", b"NaN", b"[1,]"]))
    anything = st.tuples(st.just("json"), ANY_JSON)
    if schema is None:
        return anything | raw
    return st.tuples(st.just("json"), from_schema(schema)) | anything | raw


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: list[str]
    query: list[str]
    body: dict[str, Any] | None
    anonymous: bool


def operations(doc: dict[str, Any]) -> list[Operation]:
    components = doc["components"]["schemas"]
    found = []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            params = op.get("parameters", [])
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            found.append(
                Operation(
                    method.upper(),
                    path,
                    [p["name"] for p in params if p["in"] == "path"],
                    [p["name"] for p in params if p["in"] == "query"],
                    inline_refs(body, components) if body is not None else None,
                    op.get("security") == [],
                )
            )
    return found


# --- the properties ---------------------------------------------------------------------------------


# Operations that need Dynamics, Entra or Key Vault: they may answer 503 (a problem naming the dependency).
NEEDS_DYNAMICS = (
    "/api/dynamics/fields",
    "/api/dynamics/users",
    "/api/dynamics/exports",
    "/api/dynamics/activities",
    "/api/dynamics/connect",
    "/api/dynamics/connection",
    "/api/dynamics/oauth",
    "/api/health/dynamics",
    "/api/notifications",
)
# 400s that are not about the members of a parsed JSON body (nothing to point at inside it).
NOT_ABOUT_MEMBERS = {"Malformed JSON", "Invalid query", "Invalid header"}


def check_response(op: Operation, sent: tuple[str, Any] | None, response: requests.Response) -> bool:
    """Assert the properties; True when the answer was a 400 about the body's members (pointers checked)."""
    where = f"{op.method} {op.path} -> {response.status_code}: {response.text[:400]}"
    dependency_down = response.status_code == 503 and op.path.startswith(NEEDS_DYNAMICS)
    assert response.status_code < 500 or dependency_down, where
    if response.status_code >= 400:
        assert response.headers.get("Content-Type", "").startswith("application/problem+json"), where
        problem = response.json()
        assert isinstance(problem.get("title"), str) and problem["title"], where
        assert problem.get("status") == response.status_code, where
        assert problem["title"] != "Internal error", where
    if response.status_code == 400 and sent is not None and sent[0] == "json":
        problem = response.json()
        if problem.get("title") not in NOT_ABOUT_MEMBERS:
            errors = problem.get("errors")
            assert isinstance(errors, list) and errors, where
            for entry in errors:
                assert isinstance(entry.get("pointer"), str) and isinstance(entry.get("message"), str), where
                assert entry["pointer"] == "" or entry["pointer"].startswith("/"), where
            return True
    return False


HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
HEADER_VALUES: dict[str, st.SearchStrategy[str]] = {
    "If-Match": HEADER_TEXT
    | st.sampled_from(['"v0"', '"v1"', "*", '"v99999999999999999999"', '"v-1"', 'W/"v1"']),
    "Idempotency-Key": HEADER_TEXT | st.just("k" * 201),
    "Content-Type": st.sampled_from(
        ["application/merge-patch+json", "application/json; charset=latin-1", "text/plain", "application/xml"]
    ),
    "X-Correlation-Id": HEADER_TEXT,
}
# Replaces the caller's Authorization (for "none": the only one) with something that is not a valid token.
BAD_AUTHORIZATION = st.sampled_from(
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."]
) | HEADER_TEXT.map(lambda t: "Bearer " + t)


def request_strategy(op: Operation, known_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    path_values = PATH_VALUES | st.sampled_from(known_ids) if known_ids else PATH_VALUES
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries({name: path_values for name in op.path_params}),
            "query": st.dictionaries(st.sampled_from(op.query), QUERY_VALUES, max_size=len(op.query))
            if op.query
            else st.just({}),
            "body": body_strategy(op.body)
            if op.body is not None or op.method in ("PUT", "POST")
            else st.none(),
            "headers": st.dictionaries(
                st.sampled_from(list(HEADER_VALUES)), st.just(None), max_size=2
            ).flatmap(lambda chosen: st.fixed_dictionaries({name: HEADER_VALUES[name] for name in chosen})),
        }
    )


def fuzz_operation(
    target: Target,
    op: Operation,
    role: str,
    workspace: str,
    seen: dict[str, set[int]],
    known_ids: list[str],
    pointed: list[int],
) -> None:
    headers = {} if role == "none" else {"Authorization": f"Bearer {target.token(workspace, role)}"}

    @settings(
        max_examples=EXAMPLES[role],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request_strategy(op, known_ids), st.none() | BAD_AUTHORIZATION)
    def run(drawn: dict[str, Any], bad_authorization: str | None) -> None:
        drawn["bad_authorization"] = bad_authorization
        path = op.path
        for name, value in drawn["path"].items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        kwargs: dict[str, Any] = {"params": drawn["query"], "headers": dict(headers), "timeout": 30}
        kwargs["allow_redirects"] = False
        body = drawn["body"]
        if body is not None:
            kind, value = body
            kwargs["data"] = json.dumps(value).encode() if kind == "json" else value
            kwargs["headers"]["Content-Type"] = "application/json"
        kwargs["headers"].update(drawn["headers"])
        if role == "none" and drawn["bad_authorization"] is not None:
            kwargs["headers"]["Authorization"] = drawn["bad_authorization"]
        response = target.session.request(op.method, f"{target.base_url}{path}", **kwargs)
        seen.setdefault(f"{op.method} {op.path}", set()).add(response.status_code)
        if check_response(op, body, response):
            pointed.append(1)

    run()


def seed_jobs(target: Target, workspace: str) -> list[str]:
    """Real job ids of the fuzzed workspace, so the job routes are fuzzed past their 404."""
    auth = {"Authorization": f"Bearer {target.token(workspace, 'admin')}"}
    # Exports and activities need Dynamics enabled on the Integrations page.
    enabled = target.session.put(
        f"{target.base_url}/api/integrations/dynamics", json={"enabled": True}, headers=auth, timeout=30
    )
    assert enabled.status_code == 200, enabled.text
    # Exports need a field mapping first (an export that maps nothing is refused).
    current = target.session.get(f"{target.base_url}/api/dynamics/config", headers=auth, timeout=30)
    config = current.json()
    config["fieldMapping"]["contacts"] = [
        {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
        {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
    ]
    saved = target.session.put(
        f"{target.base_url}/api/dynamics/config",
        json=config,
        headers={**auth, "If-Match": current.headers["ETag"]},
        timeout=30,
    )
    assert saved.status_code == 200, saved.text
    contacts = [{"id": "p-1", "firstName": "Ada", "lastName": "Lovelace", "company": {"name": "Acme"}}]
    exported = target.session.post(
        f"{target.base_url}/api/dynamics/exports",
        json={"entity": "contacts", "records": contacts},
        headers=auth,
        timeout=30,
    )
    assert exported.status_code == 202, exported.text
    event = {"id": "e-1", "contactId": "p-1", "kind": "task", "at": "2026-11-20T10:00:00Z"}
    logged = target.session.post(
        f"{target.base_url}/api/dynamics/activities",
        json={"events": [event], "contacts": contacts},
        headers={"Authorization": f"Bearer {target.token(workspace, 'service')}"},
        timeout=30,
    )
    assert logged.status_code == 202, logged.text
    return [exported.json()["jobId"], logged.json()["jobId"]]


def test_every_operation_survives_fuzzed_requests(target: Target) -> None:
    doc = target.session.get(f"{target.base_url}/api/openapi.json", timeout=30).json()
    ops = operations(doc)
    assert len(ops) >= 20, [f"{o.method} {o.path}" for o in ops]
    started = time.monotonic()
    failures: list[str] = []
    workspace = f"ws-fuzz-{secrets.token_hex(4)}"
    seen: dict[str, set[int]] = {}
    pointed: list[int] = []
    known_ids = seed_jobs(target, workspace)
    for op in ops:
        for role in CALLERS:
            try:
                fuzz_operation(target, op, role, workspace, seen, known_ids, pointed)
            except AssertionError as exc:  # keep going: one report naming every operation that failed
                failures.append(f"[{role}] {op.method} {op.path}: {str(exc)[:600]}")
    elapsed = time.monotonic() - started
    fivexx = sum(1 for statuses in seen.values() for s in statuses if s >= 500)
    print(
        f"fuzzed {len(ops)} operations x {len(CALLERS)} callers in {elapsed:.1f}s; "
        f"{len(pointed)} 400s with pointers; {fivexx} distinct 5xx statuses seen"
    )
    for name, statuses in sorted(seen.items()):
        print(f"  {name}: {sorted(statuses)}")
    assert not failures, "\n".join(failures)
    assert len(pointed) >= 8, f"only {len(pointed)} invalid bodies reached the validators"


def test_the_fuzzer_notices_a_bad_answer() -> None:
    """The property itself fails on what it must catch (a 500, an error that is not problem+json)."""
    op = Operation("GET", "/api/x", [], [], None, False)
    internal = requests.Response()
    internal.status_code = 500
    internal.headers["Content-Type"] = "application/problem+json"
    internal._content = b'{"title": "Internal error", "status": 500}'
    with pytest.raises(AssertionError):
        check_response(op, None, internal)
    plain = requests.Response()
    plain.status_code = 404
    plain.headers["Content-Type"] = "text/plain"
    plain._content = b"not found"
    with pytest.raises(AssertionError):
        check_response(op, None, plain)
    unnamed = requests.Response()
    unnamed.status_code = 400
    unnamed.headers["Content-Type"] = "application/problem+json"
    unnamed._content = b'{"title": "Invalid request body", "status": 400}'
    with pytest.raises(AssertionError):
        check_response(op, ("json", {"a": 1}), unnamed)
