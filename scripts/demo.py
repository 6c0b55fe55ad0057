# ruff: noqa: E501  (the demo payloads read best one mapping per line)
"""Walk the configuration API the way the frontend's setup window does, printing a short transcript.

    python scripts/demo.py [--base-url http://127.0.0.1:7071] [--workspace ws-demo-...]

Needs a running stack (`python scripts/stack.py start`, or `bash scripts/demo.sh`). Caller tokens are
HS256 JWTs minted with the local development secret from local.settings.json (PLATFORM_JWT_* settings);
that only works while PLATFORM_JWT_ALLOW_DEV_HS256=true, which is never the case in Azure.
Exits non-zero on the first answer that is not what the API promises.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
DYNAMICS_USER = "7f3c2a10-5b1e-4c7a-9d2e-0a1b2c3d4e5f"
DYNAMICS_USER_2 = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"


class DemoFailed(Exception):
    pass


def load_settings() -> dict[str, str]:
    """local.settings.json (or its example) "Values", with the real environment winning, like the devhost."""
    values: dict[str, str] = {}
    for candidate in (REPO_ROOT / "local.settings.json", REPO_ROOT / "local.settings.json.example"):
        if candidate.is_file():
            values = {k: str(v) for k, v in json.loads(candidate.read_text())["Values"].items()}
            break
    return {**values, **{k: v for k, v in os.environ.items() if k.startswith("PLATFORM_JWT_")}}


def mint_token(settings: dict[str, str], workspace_id: str, user_id: str, role: str) -> str:
    secret = settings.get("PLATFORM_JWT_DEV_HS256_SECRET")
    if not secret or settings.get("PLATFORM_JWT_ALLOW_DEV_HS256", "").lower() != "true":
        raise DemoFailed(
            "the demo needs PLATFORM_JWT_ALLOW_DEV_HS256=true and a dev secret in local.settings.json"
        )
    now = int(time.time())
    claims = {
        "sub": user_id,
        "workspace_id": workspace_id,
        "role": role,
        "aud": settings.get("PLATFORM_JWT_AUDIENCE", "dynamics-integration"),
        "iss": settings.get("PLATFORM_JWT_ISSUER", "https://platform.local"),
        "iat": now,
        "nbf": now,
        "exp": now + 900,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class Client:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxies
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(
        self, method: str, path: str, expect: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        started = time.perf_counter()
        response = self.session.request(
            method, f"{self.base_url}{path}", json=body, headers=headers, timeout=15
        )
        ms = (time.perf_counter() - started) * 1000
        etag = response.headers.get("ETag")
        print(
            f"  {method:<4} {path:<40} -> {response.status_code}{f'  ETag {etag}' if etag else ''}  ({ms:.0f} ms)"
        )
        if response.status_code != expect:
            raise DemoFailed(
                f"{method} {path}: expected {expect}, got {response.status_code}: {response.text[:500]}"
            )
        return response


def section(title: str) -> None:
    print(f"\n== {title}")


STEPS: dict[str, Any] = {
    "sync-identifiers": {
        "contactIdentifier": "linkedin_or_name_company",
        "contactRule": None,
        "companyIdentifier": "domain",
        "companyDomainAnyExtension": True,
        "companyRule": None,
        "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl", "companyLinkedinUrl": None},
        "associateContactsWithCompanies": True,
        "associateCompaniesWithContacts": False,
    },
    "field-mapping": {
        "contacts": [
            {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "jobTitle", "mode": "overwrite"},
            {"kind": "fixed_value", "dynamicsField": "new_source", "value": "Platform", "valueType": "text", "mode": "fill_if_empty"},
            {"kind": "manual_export", "dynamicsField": "new_exportedby", "valueType": "text", "mode": "overwrite"},
            {"kind": "engagement", "dynamicsField": "new_engaged", "value": True, "valueType": "boolean", "mode": "overwrite"},
        ],
        "companies": [
            {"kind": "platform_field", "dynamicsField": "numberofemployees", "platformField": "employeeCount", "mode": "fill_if_empty"},
        ],
    },
    "campaign-mapping": {"campaignOpens": "new_opens", "campaignClicks": "new_clicks", "sequenceStatus": "new_sequencestatus"},
    "user-mapping": {
        "identities": [{"identityId": "identity-sales-1", "dynamicsUserId": DYNAMICS_USER}],
        "users": [{"userId": "user-admin", "dynamicsUserId": DYNAMICS_USER_2}],
        "defaultOwnerId": DYNAMICS_USER,
    },
}  # fmt: skip

BAD_MAPPING: dict[str, Any] = {
    "contacts": [
        {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "favouriteColour"},
        {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "jobTitle"},
        {"kind": "manual_export", "dynamicsField": "new_note", "valueType": "text", "value": "not allowed"},
    ],
    "companies": [],
}


def demo(base_url: str, workspace: str) -> None:
    settings = load_settings()
    admin = Client(base_url, mint_token(settings, workspace, "user-admin", "admin"))
    member = Client(base_url, mint_token(settings, workspace, "user-member", "member"))
    anonymous = Client(base_url, None)
    print(f"Configuration API at {base_url}, workspace {workspace} (from the caller's token)")

    section("Health and identity")
    health = anonymous.call("GET", "/api/health", 200).json()
    print(f"  health: {health.get('status')}, storage: {health.get('storage')}")
    problem = anonymous.call("GET", "/api/integrations", 401).json()
    print(f"  without a token: {problem.get('title')} - {problem.get('detail')}")

    section("Integrations: enable Dynamics")
    cards = admin.call("GET", "/api/integrations", 200).json()
    print("  " + ", ".join(f"{c['crm']}={'on' if c['enabled'] else 'off'}" for c in cards["integrations"]))
    member.call("PUT", "/api/integrations/dynamics", 403, {"enabled": True})
    admin.call("PUT", "/api/integrations/dynamics", 200, {"enabled": True})
    conflict = admin.call("PUT", "/api/integrations/hubspot", 409, {"enabled": True}).json()
    print(f"  enabling HubSpot too: {conflict.get('detail')}")

    section("Configuration: defaults, then the four steps")
    response = admin.call("GET", "/api/dynamics/config", 200)
    etag = response.headers["ETag"]
    defaults = response.json()
    print(f"  default contact identifier: {defaults['syncIdentifiers']['contactIdentifier']}")
    for step, body in STEPS.items():
        response = admin.call("PUT", f"/api/dynamics/config/{step}", 200, body, {"If-Match": etag})
        etag = response.headers["ETag"]

    section("Validation: a bad field mapping is refused, every problem listed")
    problem = admin.call(
        "PUT", "/api/dynamics/config/field-mapping", 400, BAD_MAPPING, {"If-Match": etag}
    ).json()
    for error in problem.get("errors", []):
        print(f"  {error['pointer']}: {error['message']}")

    section("Concurrency: a stale ETag loses, nothing is overwritten")
    stale = admin.call("PUT", "/api/dynamics/config/campaign-mapping", 412, {}, {"If-Match": '"v1"'}).json()
    print(f"  {stale.get('detail')}")

    section("History")
    versions = admin.call("GET", "/api/dynamics/config/history", 200).json()["versions"]
    for version in versions:
        changed = ", ".join(c["path"] for c in version["changes"][:3])
        more = " ..." if len(version["changes"]) > 3 or version.get("changesTruncated") else ""
        print(
            f"  v{version['version']} by {version['savedBy']} ({version['step'] or 'whole'}): {changed}{more}"
        )
    final = admin.call("GET", "/api/dynamics/config", 200)
    print(f"\nDone: configuration saved at {final.headers['ETag']} with {len(versions)} versions in history.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("DEVHOST_URL", "http://127.0.0.1:7071"))
    parser.add_argument("--workspace", default=f"ws-demo-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args(argv)
    try:
        demo(args.base_url, args.workspace)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    except requests.ConnectionError:
        print(f"\ndemo FAILED: nothing answers at {args.base_url}; start the stack first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
