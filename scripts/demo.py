# ruff: noqa: E501  (the demo payloads read best one mapping per line)
"""Drive the whole product through its HTTP API the way the frontend would, and print a readable summary.

    python scripts/demo.py [--base-url URL] [--workspace ws-demo-...] [--json-summary FILE]

Needs the local stack (`bash scripts/demo.sh`, or `python scripts/stack.py start`): the devhost, Azurite
and the Entra / Key Vault / Dataverse stand-ins; their URLs come from the stack's state.json
(STACK_STATE_DIR). Everything the product does goes through the devhost's HTTP API: health, enable
Dynamics, connect (OAuth at the Entra stand-in, back through the callback), the four setup steps, a
field's compatibility icons, an export of 200 contacts with their companies and campaign data (progress
polled from the job status), engagement events logged as activities, and the same export again. Only the
"Dynamics side" (records that already exist, the users to map, reading back what was written) talks to the
Dataverse emulator's Web API directly, as an admin would look at Dynamics.

Caller tokens are HS256 JWTs minted with the local development secret from local.settings.json
(PLATFORM_JWT_* settings); that only works while PLATFORM_JWT_ALLOW_DEV_HS256=true, never in Azure. The
admin's token drives the setup and exports; the engagement events are posted with the platform service's
own token (its audience, PLATFORM_JWT_SERVICE_AUDIENCE), the only caller that may log activities.
Exits non-zero on the first answer that is not what the API promises.

Over 400 lines on purpose: one readable walk through the product, top to bottom.
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
from urllib.parse import parse_qs, urlsplit

import jwt
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_data  # noqa: E402

from emulators.tls import trusting_session  # noqa: E402

DATAVERSE_TOKEN = "static-test-token"  # the Dataverse emulator's built-in token for its own tools
COUNT_KEYS = ("created", "updated", "unchanged", "skipped", "failed", "invalid")
ICONS = {"ok": "[ok] blue check", "warning": "[!]  yellow", "error": "[x]  red"}


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


def stack_state() -> dict[str, Any]:
    """What the stack recorded when it started: the devhost's and the stand-ins' URLs."""
    state_dir = Path(os.environ.get("STACK_STATE_DIR") or REPO_ROOT / ".local" / "stack")
    try:
        state = json.loads((state_dir / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DemoFailed(f"no running stack found in {state_dir} ({exc}); start it first") from None
    if "dataverse" not in (state.get("services") or {}):
        raise DemoFailed("the running stack has no Dataverse stand-in; restart it with scripts/stack.py")
    return dict(state)


def mint_token(settings: dict[str, str], workspace_id: str, user_id: str, role: str) -> str:
    secret = settings.get("PLATFORM_JWT_DEV_HS256_SECRET")
    if not secret or settings.get("PLATFORM_JWT_ALLOW_DEV_HS256", "").lower() != "true":
        raise DemoFailed(
            "the demo needs PLATFORM_JWT_ALLOW_DEV_HS256=true and a dev secret in local.settings.json"
        )
    now = int(time.time())
    service = role == "service"  # the platform backend's token: its own audience, no role claim
    claims = {
        "sub": user_id,
        "workspace_id": workspace_id,
        **({} if service else {"role": role}),
        "aud": settings.get("PLATFORM_JWT_SERVICE_AUDIENCE", "dynamics-integration-service")
        if service
        else settings.get("PLATFORM_JWT_AUDIENCE", "dynamics-integration"),
        "iss": settings.get("PLATFORM_JWT_ISSUER", "https://platform.local"),
        "iat": now,
        "nbf": now,
        "exp": now + 1800,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class Client:
    """The frontend's HTTP client: one caller token, every call printed with its status and time."""

    def __init__(self, base_url: str, token: str | None, quiet: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxies
        self.quiet = quiet
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(
        self,
        method: str,
        path: str,
        expect: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        quiet: bool | None = None,
    ) -> requests.Response:
        started = time.perf_counter()
        response = self.session.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            headers=headers,
            params=params,
            timeout=60,
            allow_redirects=False,
        )
        ms = (time.perf_counter() - started) * 1000
        if not (self.quiet if quiet is None else quiet):
            shown = path.split("?")[0] + ("?..." if "?" in path else "")  # an OAuth code is not printed
            print(f"  {method:<4} {shown:<40} -> {response.status_code}  ({ms:.0f} ms)")
        if response.status_code != expect:
            raise DemoFailed(
                f"{method} {path}: expected {expect}, got {response.status_code}: {response.text[:500]}"
            )
        return response


class Dynamics:
    """The Dynamics side, as an admin sees it (the Dataverse emulator's Web API, its own static token)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.api = f"{self.url}/api/data/v9.2"
        self.session = trusting_session()
        self.session.trust_env = False
        self.session.headers.update(
            {"Authorization": f"Bearer {DATAVERSE_TOKEN}", "Accept": "application/json"}
        )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = self.session.get(f"{self.api}/{path}", params=params, timeout=30)
        if response.status_code != 200:
            raise DemoFailed(f"Dynamics GET {path}: {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    def create(self, entity_set: str, record: dict[str, Any]) -> None:
        response = self.session.post(f"{self.api}/{entity_set}", json=record, timeout=30)
        if response.status_code not in (201, 204):
            raise DemoFailed(f"Dynamics POST {entity_set}: {response.status_code} {response.text[:300]}")

    def count(self, entity_set: str) -> int:
        response = self.session.get(f"{self.url}/_emulator/stats", timeout=30)
        response.raise_for_status()
        records: dict[str, int] = response.json().get("records", {})
        table = {"contacts": "contact", "accounts": "account"}.get(entity_set, entity_set)
        return int(records.get(table, 0))


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def seconds(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def wait_for_job(
    client: Client, path: str, label: str, unit: str = "records", timeout: float = 240
) -> dict[str, Any]:
    """Poll a job's status like the frontend's progress bar, printing each change."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        status: dict[str, Any] = client.call("GET", path, 200, quiet=True).json()
        progress, counts = status.get("progress", {}), status.get("counts", {})
        line = (
            f"  {label} {status['state']:<9} {progress.get('processed', 0):>4}/{progress.get(unit, 0)} {unit}"
            f"  chunks {progress.get('chunksDone', 0)}/{progress.get('chunks', 0)}  "
            + " ".join(f"{k} {counts.get(k, 0)}" for k in COUNT_KEYS)
        )
        if line != last:
            print(line, flush=True)
            last = line
        if status["state"] not in ("queued", "running"):
            return status
        if time.monotonic() > deadline:
            raise DemoFailed(f"{path} still {status['state']} after {timeout:.0f}s")
        time.sleep(0.25)


def all_records(client: Client, path: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    params = {"limit": "1000"}
    while True:
        page = client.call("GET", path, 200, params=params, quiet=True).json()
        records.extend(page["records"])
        if not page.get("nextCursor"):
            return records
        params = {"limit": "1000", "cursor": page["nextCursor"]}


# --- the Dynamics side before the export --------------------------------------------------------------


def enabled_users(admin: Client) -> list[dict[str, Any]]:
    """The Dynamics users step 4's dropdowns offer, as the frontend gets them (people, enabled, by name)."""
    users: list[dict[str, Any]] = []
    params = {"limit": "200"}
    while True:
        page = admin.call("GET", "/api/dynamics/users", 200, params=params, quiet=True).json()
        users.extend(u for u in page["users"] if u["fullName"] != "Integration User")
        if not page["nextCursor"]:
            return users
        params = {"limit": "200", "cursor": page["nextCursor"]}


def seed_existing_records(dynamics: Dynamics, contacts: list[dict[str, Any]], tag: str) -> dict[str, int]:
    """Records the sales team already has in Dynamics, written the way people type them."""
    account_ids: dict[int, str] = {}
    for index in range(demo_data.EXISTING_COMPANIES):
        company = demo_data.company(index, tag)
        account_ids[index] = str(uuid.uuid4())
        dynamics.create(
            "accounts",
            {
                "accountid": account_ids[index],
                "name": company["name"].upper().replace(" LTD", " Ltd."),
                "websiteurl": f"https://www.{company['domain']}/",
            },
        )
    by_id = {c["id"]: c for c in contacts}
    seeded = 0
    for index in range(demo_data.LINKEDIN_MATCHES + demo_data.NAME_MATCHES + demo_data.UNCHANGED):
        contact = by_id[f"ct-{index:03d}"]
        company_index = int(contact["company"]["id"].removeprefix("co-"))
        record: dict[str, Any] = {
            "firstname": contact["firstName"],
            "lastname": contact["lastName"],
            "jobtitle": "Previous title",
        }
        if company_index in account_ids:
            record["parentcustomerid_account@odata.bind"] = f"/accounts({account_ids[company_index]})"
        if demo_data.is_linkedin_match(index):
            slug = contact["linkedinUrl"].rsplit("/", 1)[1].lower()
            record["new_linkedinurl"] = f"https://www.linkedin.com/in/{slug}/"
        elif demo_data.is_name_match(index):
            record["firstname"] = contact["firstName"].upper()
            record["lastname"] = contact["lastName"].upper()
        else:  # unchanged: every mapped value already there
            record.update(demo_data.dynamics_values(contact))
        dynamics.create("contacts", record)
        seeded += 1
    # A shared inbox someone filed as a contact: its address is taken (contact e-mails are unique here).
    dynamics.create(
        "contacts", {"firstname": "Front", "lastname": "Desk", "emailaddress1": demo_data.shared_email(tag)}
    )
    seeded += 1
    return {"accounts": len(account_ids), "contacts": seeded}


# --- configuration ------------------------------------------------------------------------------------


def steps(users: list[dict[str, Any]]) -> dict[str, Any]:
    alex, sam, owner = (u["id"] for u in users[:3])
    return {
        "sync-identifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "contactRule": None,
            "companyIdentifier": "domain",
            "companyDomainAnyExtension": False,
            "companyRule": None,
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl", "companyLinkedinUrl": None},
            "associateContactsWithCompanies": True,
            "associateCompaniesWithContacts": False,
        },
        "field-mapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname", "mode": "overwrite"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname", "mode": "overwrite"},
                {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle", "mode": "overwrite"},
                {"kind": "platform_field", "platformField": "professionalEmail", "dynamicsField": "emailaddress1", "mode": "overwrite"},
                {"kind": "platform_field", "platformField": "phoneNumber", "dynamicsField": "telephone1", "mode": "fill_if_empty"},
                {"kind": "platform_field", "platformField": "linkedinUrl", "dynamicsField": "new_linkedinurl", "mode": "fill_if_empty"},
                {"kind": "platform_field", "platformField": "seniority", "dynamicsField": "new_seniority", "mode": "overwrite"},
                {"kind": "fixed_value", "dynamicsField": "description", "value": "Sourced by the sales-engagement platform", "valueType": "text", "mode": "fill_if_empty"},
            ],
            "companies": [
                {"kind": "platform_field", "platformField": "name", "dynamicsField": "name", "mode": "fill_if_empty"},
                {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl", "mode": "fill_if_empty"},
                {"kind": "platform_field", "platformField": "employeeCount", "dynamicsField": "numberofemployees", "mode": "overwrite"},
                {"kind": "platform_field", "platformField": "city", "dynamicsField": "address1_city", "mode": "fill_if_empty"},
            ],
        },
        "campaign-mapping": {
            "campaigns": "new_campaigns",
            "campaignEngagementStatus": "new_campaignstatus",
            "sequenceStatus": "new_sequencestatus",
            "campaignOpens": "new_campaignopens",
            "campaignClicks": "new_campaignclicks",
            "activities": "new_activities",
        },
        "user-mapping": {
            "identities": [{"identityId": "identity-alex-linkedin", "dynamicsUserId": alex}],
            "users": [{"userId": "user-sam", "dynamicsUserId": sam}, {"userId": "user-admin", "dynamicsUserId": owner}],
            "defaultOwnerId": owner,
        },
    }  # fmt: skip


# --- the run ------------------------------------------------------------------------------------------


def demo(base_url: str, workspace: str, services: dict[str, dict[str, str]]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started_all = time.perf_counter()
    settings = load_settings()
    admin = Client(base_url, mint_token(settings, workspace, "user-admin", "admin"))
    anonymous = Client(base_url, None)
    platform_service = Client(base_url, mint_token(settings, workspace, "platform-backend", "service"))
    browser = trusting_session()  # the admin's browser: trusts the local CA like a real one trusts Microsoft
    browser.trust_env = False
    dynamics = Dynamics(services["dataverse"]["url"])
    tag = workspace.rsplit("-", 1)[-1][:8].lower()  # in every identifying value: re-runs start afresh
    contacts = demo_data.contacts(tag)
    print(f"Product API at {base_url}, workspace {workspace}; Dynamics (stand-in) at {dynamics.url}")

    section("1. Health")
    t = time.perf_counter()
    health = anonymous.call("GET", "/api/health", 200).json()
    checks = ", ".join(
        f"{name} {check['status']} ({check.get('latencyMs')} ms)" for name, check in health["checks"].items()
    )
    print(f"  status {health['status']}: {checks}; answered in {health['elapsedMs']} ms")

    section("2. Integrations: enable Dynamics")
    admin.call("PUT", "/api/integrations/dynamics", 200, {"enabled": True})
    cards = admin.call("GET", "/api/integrations", 200).json()
    print("  " + ", ".join(f"{c['crm']}={'on' if c['enabled'] else 'off'}" for c in cards["integrations"]))

    section("3. Connect Dynamics (OAuth 2.0 auth code + PKCE at the Entra ID stand-in)")
    start = admin.call("POST", "/api/dynamics/connect", 200, {"environmentUrl": dynamics.url}).json()
    authorize = urlsplit(start["authorizationUrl"])
    print(f"  browser -> {authorize.scheme}://{authorize.netloc}{authorize.path}")
    signed_in = browser.get(start["authorizationUrl"], allow_redirects=False, timeout=30)
    location = signed_in.headers.get("Location", "")
    if signed_in.status_code != 302 or "code=" not in location:
        raise DemoFailed(f"the Entra stand-in answered {signed_in.status_code}: {signed_in.text[:300]}")
    print(f"  Entra ID -> 302 back to {location.split('?')[0]} with code and state")
    callback = anonymous.call("GET", f"/api/dynamics/oauth/callback?{urlsplit(location).query}", 302)
    frontend = urlsplit(callback.headers["Location"])
    returned = parse_qs(frontend.query)
    if returned.get("dynamics") != ["confirm"] or not returned.get("handle"):
        raise DemoFailed(f"the callback did not keep the sign-in: ?{frontend.query}")
    print(
        f"  callback -> 302 to the frontend {frontend.scheme}://{frontend.netloc}{frontend.path}"
        "?dynamics=confirm&handle=... (nothing connected yet)"
    )
    completed = admin.call("POST", "/api/dynamics/oauth/complete", 200, {"handle": returned["handle"][0]})
    account = completed.json()
    print(
        f"  the admin who started completes -> signed in as {account['signedInAs']} "
        f"(tenant {account['tenantId']}) to {account['environmentUrl']}"
    )
    connection = admin.call("GET", "/api/dynamics/connection", 200).json()
    integration_user = connection["integrationUser"]
    print(
        f"  connection: {connection['status']} to {connection['environmentUrl']} as "
        f"{integration_user['email']} (Dynamics user {integration_user['dynamicsUserId']})"
    )
    dynamics_health = admin.call("GET", "/api/health/dynamics", 200).json()
    who = dynamics_health.get("whoAmI") or {}
    print(
        f"  on-demand Dynamics check: {dynamics_health['status']} (WhoAmI user {who.get('userId')}, "
        f"same as connected: {dynamics_health.get('userMatches')}, {who.get('latencyMs')} ms)"
    )
    if dynamics_health["status"] != "connected":
        raise DemoFailed(f"GET /api/health/dynamics after connecting: {dynamics_health}")
    timings["set-up: health, enable, connect"] = seconds(t)

    section("4. Meanwhile in Dynamics: records the sales team already has, and its users")
    t = time.perf_counter()
    seeded = seed_existing_records(dynamics, contacts, tag)
    users = enabled_users(admin)
    if len(users) < 3:
        raise DemoFailed("the Dataverse stand-in has fewer than 3 enabled users to map")
    names = {u["id"]: u["fullName"] for u in users}
    names[integration_user["dynamicsUserId"]] = f"{integration_user['email']} (integration user)"
    print(
        f"  added {seeded['accounts']} accounts (website https://www.<domain>/, upper-case names) and "
        f"{seeded['contacts']} contacts (LinkedIn URLs written another way, accented / upper-case names)"
    )
    print(f"  Dynamics now holds {dynamics.count('contacts')} contacts, {dynamics.count('accounts')} accounts; "
          f"{len(users)} enabled users (GET /api/dynamics/users), e.g. " + ", ".join(u["fullName"] for u in users[:3]))  # fmt: skip
    timings["Dynamics seed"] = seconds(t)

    section("5. Configuration: the four steps")
    t = time.perf_counter()
    config = steps(users)
    response = admin.call("GET", "/api/dynamics/config", 200)
    etag = response.headers["ETag"]
    for step, body in config.items():
        response = admin.call("PUT", f"/api/dynamics/config/{step}", 200, body, {"If-Match": etag})
        etag = response.headers["ETag"]
    mapping = config["user-mapping"]
    print(
        "  contacts by LinkedIn (new_linkedinurl) or name + company; companies by domain (websiteurl); "
        "contacts linked to their companies"
    )
    print(f"  8 contact and 4 company field mappings (a fixed value, fill-if-empty ones), "
          f"{len(config['campaign-mapping'])} campaign properties")  # fmt: skip
    print(
        f"  identity-alex-linkedin -> {names[mapping['identities'][0]['dynamicsUserId']]}; "
        f"user-sam -> {names[mapping['users'][0]['dynamicsUserId']]}; "
        f"default owner {names[mapping['defaultOwnerId']]}"
    )
    timings["configuration"] = seconds(t)

    section("6. Field mapping: compatibility icons for the platform field 'seniority'")
    fields = admin.call(
        "GET", "/api/dynamics/fields", 200, params={"entity": "contact", "platformField": "seniority"}
    ).json()
    by_name = {c["logicalName"]: c for c in fields["columns"]}
    for column in ("new_seniority", "jobtitle", "numberofchildren", "contactid"):
        if column in by_name:
            c = by_name[column]
            print(
                f"  {ICONS.get(c['compatibility'], c['compatibility']):<16} {column:<18} ({c['type']}): {'; '.join(c['reasons'])}"
            )

    section(f"7. Export {len(contacts)} contacts with their companies and campaign data")
    accounts_before = dynamics.count("accounts")
    first = run_export(admin, contacts, "export", timings, "export #1")
    records = all_records(admin, f"/api/dynamics/exports/{first['jobId']}/records")
    created_companies = {
        r["note"].split("company created in Dynamics (", 1)[1].split(")", 1)[0]
        for r in records
        if "company created in Dynamics (" in (r.get("note") or "")
    }
    companies = {
        "inList": len({c["company"]["id"] for c in contacts}),
        "created": len(created_companies),
        "accountsBefore": accounts_before,
        "accountsAfter": dynamics.count("accounts"),
    }

    section("8. Engagement events -> Dynamics activities")
    t = time.perf_counter()
    events = demo_data.events(contacts)
    accepted = platform_service.call(
        "POST",
        "/api/dynamics/activities",
        202,
        {"events": events, "contacts": [c for c in contacts if c["id"] in {e["contactId"] for e in events}],
         "identities": demo_data.IDENTITIES},
    ).json()  # fmt: skip
    activity_status = wait_for_job(admin, accepted["statusUrl"], "activities", "events")
    activities = all_records(admin, f"{accepted['statusUrl']}/records")
    timings["activities"] = seconds(t)

    section("9. The same export again")
    second = run_export(admin, contacts, "export", timings, "export #2")

    summary = summarize(first, records, second, activity_status, activities, dynamics, names, events)
    print(
        f"\n  Companies embedded in the list: {companies['inList']}; {companies['created']} created in Dynamics "
        f"(named in their contacts' notes), the others already there, matched by domain and linked; "
        f"Dynamics accounts {companies['accountsBefore']} -> {companies['accountsAfter']}"
    )
    summary["companies"] = companies
    timings["total (after the stack started)"] = seconds(started_all)
    section("Timings")
    for name, value in timings.items():
        print(f"  {name:<34} {value:>6.2f} s")
    summary["timings"] = timings
    if summary["countsDiffering"]:
        raise DemoFailed(
            "the exports did not end as the sample list is built to: " + "; ".join(summary["countsDiffering"])
        )
    return summary


def run_export(
    admin: Client, contacts: list[dict[str, Any]], _kind: str, timings: dict[str, float], label: str
) -> dict[str, Any]:
    t = time.perf_counter()
    accepted = admin.call(
        "POST", "/api/dynamics/exports", 202, {"entity": "contacts", "records": contacts}
    ).json()
    print(f"  job {accepted['jobId']}: {accepted['accepted']} accepted, {accepted['invalid']} invalid")
    status = wait_for_job(admin, accepted["statusUrl"], "export")
    timings[label] = seconds(t)
    return {**status, "jobId": accepted["jobId"]}


def _table(counts: dict[str, int], second: dict[str, int]) -> tuple[list[str], list[str]]:
    """The outcome table, each row checked against what the sample list is built for; and the rows that
    differ (the demo then fails: a newcomer must not have to judge the numbers)."""
    expected_first, expected_second = demo_data.expected_counts()
    lines = [
        f"  {'outcome':<10} {'export #1':>9} {'export #2':>9}  as built?",
        f"  {'-' * 10} {'-' * 9} {'-' * 9}  {'-' * 9}",
    ]
    wrong: list[str] = []
    for key in COUNT_KEYS:
        got = (counts.get(key, 0), second.get(key, 0))
        want = (expected_first[key], expected_second[key])
        verdict = "yes" if got == want else f"NO, expected {want[0]} / {want[1]}"
        if got != want:
            wrong.append(f"{key}: {got[0]} / {got[1]}, expected {want[0]} / {want[1]}")
        lines.append(f"  {key:<10} {got[0]:>9} {got[1]:>9}  {verdict}")
    lines.append(
        f"  {'total':<10} {sum(counts.get(k, 0) for k in COUNT_KEYS):>9} {sum(second.get(k, 0) for k in COUNT_KEYS):>9}"
    )
    return lines, wrong


def _explain(record: dict[str, Any]) -> str:
    match = record.get("match") or {}
    held = ", ".join(
        f"{c['platformField']} ~ {c['dynamicsField']} = {c['value']!r}" for c in match.get("conditions", [])
    )
    return f"{record['platformId']}: {record['action']} by rule '{match.get('rule')}' ({held})"


def summarize(
    first: dict[str, Any],
    records: list[dict[str, Any]],
    second: dict[str, Any],
    activity_status: dict[str, Any],
    activities: list[dict[str, Any]],
    dynamics: Dynamics,
    names: dict[str, str],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    section("Summary")
    print(f"  export #1 {first['state']}, export #2 {second['state']} (the same list, nothing new to write)")
    table, wrong = _table(first["counts"], second["counts"])
    for line in table:
        print(line)

    print("\n  How records matched (rule + the normalised values both sides share):")
    examples: list[str] = []
    for rule in ("linkedin", "name_company"):
        found = next(
            (r for r in records if (r.get("match") or {}).get("rule") == rule and r["action"] == "updated"),
            None,
        )
        if found:
            examples.append(_explain(found))
    unchanged = next((r for r in records if r["action"] == "unchanged"), None)
    if unchanged:
        examples.append(_explain(unchanged))
    for line in examples:
        print(f"    {line}")
    skipped = next((r for r in records if r["action"] == "skipped"), None)
    if skipped:
        print(f"    {skipped['platformId']}: skipped - {skipped.get('note') or skipped.get('errors')}")

    failed = [r for r in records if r["action"] == "failed"]
    print("\n  Refused by Dynamics:" if failed else "\n  Refused by Dynamics: none")
    for record in failed:
        for error in record.get("errors", []):
            field = repr(error["field"]) if error["field"] else "(none named)"
            print(
                f"    {record['platformId']}: field {field}, Dynamics code {error.get('code')}: {error['message']}"
            )
    invalid = [r for r in records if r["action"] == "invalid"]
    print("\n  Invalid before sending (nothing sent to Dynamics):" if invalid else "\n  Invalid: none")
    for record in invalid:
        for error in record.get("errors", []):
            print(f"    {record['platformId']}: {error['field']}: {error['message']}")

    print(
        f"\n  Activities ({activity_status['state']}; "
        + ", ".join(f"{k} {v}" for k, v in activity_status["counts"].items() if v)
        + "):"
    )
    kinds = {e["id"]: e["kind"] for e in events}
    by_actor: dict[tuple[str, str, str], int] = {}
    for record in activities:
        activity = record.get("activity") or {}
        actor = activity.get("actor") or {}
        key = (
            f"{kinds.get(record['platformId'], '?')} -> {activity.get('table', '-')}",
            names.get(actor.get("dynamicsUserId", ""), actor.get("dynamicsUserId", "-")),
            f"{actor.get('source', '-')}{', impersonated' if actor.get('impersonated') else ''}",
        )
        by_actor[key] = by_actor.get(key, 0) + 1
    for (what, who, how), n in sorted(by_actor.items()):
        print(f"    {n:>2} x {what:<28} by {who} ({how})")

    print("\n  Campaign properties written for one contact:")
    campaign_contact = next(
        (r for r in records if r["action"] in ("created", "updated") and r["platformId"] == "ct-030"), None
    )
    written: dict[str, Any] = {}
    if campaign_contact and campaign_contact.get("dynamicsId"):
        columns = "fullname,new_campaigns,new_campaignstatus,new_sequencestatus,new_campaignopens,new_campaignclicks,new_activities"
        written = dynamics.get(f"contacts({campaign_contact['dynamicsId']})", **{"$select": columns})
        for column in columns.split(","):
            print(f"    {column:<20} {written.get(column)!r}")
    return {
        "export1": {"state": first["state"], "counts": first["counts"]},
        "export2": {"state": second["state"], "counts": second["counts"]},
        "activities": {"state": activity_status["state"], "counts": activity_status["counts"], "byActor": [
            {"what": w, "who": who, "how": how, "count": n} for (w, who, how), n in by_actor.items()]},
        "matchExamples": examples,
        "failed": failed,
        "campaignProperties": {k: v for k, v in written.items() if not k.startswith("@")},
        "countsAsBuilt": not wrong,
        "countsDiffering": wrong,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-url", help="the devhost (default: DEVHOST_URL, else the running stack's)")
    parser.add_argument("--workspace", default=f"ws-demo-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--json-summary", help="also write the summary as JSON to this file")
    parser.add_argument(
        "--print-token", action="store_true", help="print an admin caller token for --workspace and exit"
    )
    args = parser.parse_args(argv)
    if args.print_token:  # for exploring a kept-running stack with curl
        print(mint_token(load_settings(), args.workspace, "user-admin", "admin"))
        return 0
    try:
        state = stack_state()
        base_url = args.base_url or os.environ.get("DEVHOST_URL") or str(state["devhost_url"])
        summary = demo(base_url, args.workspace, state["services"])
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    except requests.ConnectionError as exc:
        print(
            f"\ndemo FAILED: a service did not answer ({exc.__class__.__name__}); is the stack running?",
            file=sys.stderr,
        )
        return 1
    if args.json_summary:
        Path(args.json_summary).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
