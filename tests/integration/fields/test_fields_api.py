"""The fields endpoint and the configuration check end to end: real config API on Azurite, real Dataverse
client against the Dataverse emulator. Only the token provider is a stand-in (it hands out the emulator's
static token for the workspaces this test calls connected).

What an admin notices: the dropdown shows the right icon for each column; a configuration with a red
mapping is refused naming it; yellow mappings are saved and reported; a workspace that is not connected
can still save (with one warning); a column created in Dynamics shows up after "refresh".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from core import bootstrap
from core.adapters.dataverse.client import DataverseClient
from core.domain.caller import Caller, Role
from core.domain.connection import DynamicsConnection, NotConnected, ReconnectRequired
from core.domain.retry import RetryPolicy
from core.entrypoints import config_api, fields_api
from core.services.dynamics.access import DynamicsAccess
from core.services.dynamics.fields import FieldsService
from core.services.dynamics.metadata_cache import MetadataCache
from core.settings import get_settings
from emulators.dataverse import DataverseEmulator
from emulators.dataverse.schema import Column
from emulators.tls import trusting_session
from tests.support import tokens
from tests.support.app import use_app
from tests.support.azurite import Azurite, free_port
from tests.support.dataverse import STATIC_TOKEN, api_session
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator() -> Iterator[DataverseEmulator]:
    instance = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class EmulatorTokens:
    """The connection's token provider, reduced to what the Dataverse client needs (the boundary fake)."""

    def __init__(self, environment_url: str, user_id: str) -> None:
        self.environment_url = environment_url
        self.user_id = user_id
        self.connected: set[str] = set()
        self.revoked: set[str] = set()

    def access_token(self, workspace_id: str, *, force_refresh: bool = False) -> str:
        if workspace_id in self.revoked:
            raise ReconnectRequired(workspace_id, "revoked")
        if workspace_id not in self.connected:
            raise NotConnected(workspace_id)
        return STATIC_TOKEN

    def connection(self, workspace_id: str) -> DynamicsConnection | None:
        if workspace_id not in self.connected:
            return None
        return DynamicsConnection(workspace_id, self.environment_url, "integration@contoso.com", self.user_id)


@dataclass
class App:
    emulator: DataverseEmulator
    tokens: EmulatorTokens
    service: FieldsService
    ws: str

    def connect(self, ws: str | None = None) -> str:
        workspace = ws or self.ws
        self.tokens.connected.add(workspace)
        return workspace

    def fields(self, role: str = "member", ws: str | None = None, **params: str) -> func.HttpResponse:
        headers = tokens.bearer(ws or self.ws, role=role)
        return call(
            fields_api.get_dynamics_fields,
            request("GET", "dynamics/fields", headers=headers, params=params),
        )

    def icons(self, entity: str, platform_field: str) -> dict[str, tuple[str, list[str]]]:
        resp = self.fields(entity=entity, platformField=platform_field)
        assert resp.status_code == 200, resp.get_body()
        return {c["logicalName"]: (c["compatibility"], c["reasons"]) for c in body_json(resp)["columns"]}

    def put(self, doc: dict[str, Any], if_match: str | None = None) -> func.HttpResponse:
        headers = tokens.bearer(self.ws, role="admin")
        if if_match:
            headers["If-Match"] = if_match
        return call(
            config_api.put_dynamics_config,
            request("PUT", "dynamics/config", json_body=doc, headers=headers),
        )

    def validate(self, doc: dict[str, Any]) -> dict[str, Any]:
        resp = call(
            config_api.validate_dynamics_config,
            request("POST", "dynamics/config/validate", json_body=doc, headers=tokens.bearer(self.ws)),
        )
        assert resp.status_code == 200, resp.get_body()
        result: dict[str, Any] = body_json(resp)
        return result


@pytest.fixture()
def app(emulator: DataverseEmulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    emulator.reset()
    configure_app(monkeypatch, azurite.connection_string)
    provider = EmulatorTokens(emulator.url, emulator.default_user_id)
    # The app as production wires it (fields service, live configuration check), on the stand-in tokens.
    use_app(monkeypatch, dynamics_access=DynamicsAccess(provider, session_factory=trusting_session))
    yield App(emulator, provider, bootstrap.app().fields_service, f"ws-{uuid.uuid4().hex[:12]}")
    get_settings.cache_clear()


def config(
    contacts: list[dict[str, Any]], companies: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "companyIdentifier": "domain",
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
        },
        "fieldMapping": {"contacts": contacts, "companies": companies or []},
        "campaignMapping": {"campaignOpens": "new_campaignopens", "senders": "new_senders"},
        "userMapping": {},
    }
    doc.update(extra)
    return doc


def pf(platform_field: str, column: str) -> dict[str, Any]:
    return {"kind": "platform_field", "platformField": platform_field, "dynamicsField": column}


def pointers(problems: list[dict[str, str]]) -> set[str]:
    return {p["pointer"] for p in problems}


# --- the fields endpoint ------------------------------------------------------------------------------


def test_every_icon_class_against_live_metadata(app: App) -> None:
    app.connect()
    text = app.icons("contact", "jobTitle")
    assert text["jobtitle"][0] == "ok"
    assert text["new_seniority"][0] == "warning"  # text -> choice: must equal a label
    assert text["fullname"][0] == "error" and "read-only" in " ".join(text["fullname"][1])
    assert text["parentcustomerid"][0] == "error"  # a lookup is set by associations
    assert text["numberofchildren"][0] == "warning"  # text that is not a number fails
    choices = app.icons("contact", "languages")
    assert choices["new_languages"][0] == "ok"  # multi-select recognised
    assert choices["new_seniority"][0] == "warning"  # only one label fits
    dates = app.icons("contact", "createdAt")
    assert dates["birthdate"][0] == "warning" and "date only" in " ".join(dates["birthdate"][1])
    company = app.icons("contact", "company.employeeCount")
    assert company["numberofchildren"][0] == "ok"
    account = app.icons("account", "industry")
    assert account["industrycode"][0] == "ok" and account["primarycontactid"][0] == "error"


def test_listing_without_platform_field_describes_columns(app: App) -> None:
    app.connect()
    resp = app.fields(entity="contact")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    body = body_json(resp)
    fields_api.FieldsPage.model_validate(body)
    assert body["environmentUrl"] == app.emulator.url
    columns = {c["logicalName"]: c for c in body["columns"]}
    assert "compatibility" not in columns["jobtitle"]
    assert columns["jobtitle"]["type"] == "String" and columns["jobtitle"]["maxLength"] == 100
    assert columns["lastname"]["requiredLevel"] == "ApplicationRequired"
    assert columns["fullname"]["writable"] == {"create": False, "update": False}
    assert columns["new_languages"]["type"] == "MultiSelectPicklist"
    assert {"value": 100000001, "label": "Senior"} in columns["new_seniority"]["options"]
    assert columns["statecode"]["writable"] == {"create": False, "update": True}


def test_bad_queries_are_400_and_never_reach_dynamics(app: App) -> None:
    app.connect()
    before = app.emulator.stats()["requests"]
    for params, pointer in (
        ({}, "/entity"),
        ({"entity": "lead"}, "/entity"),
        ({"entity": "account", "platformField": "company.name"}, "/platformField"),
        ({"entity": "contact", "platformField": "noSuchField"}, "/platformField"),
        ({"entity": "contact", "refresh": "maybe"}, "/refresh"),
    ):
        resp = app.fields(**params)
        assert resp.status_code == 400, (params, resp.get_body())
        assert resp.mimetype == "application/problem+json"
        assert body_json(resp)["errors"][0]["pointer"] == pointer
    assert app.emulator.stats()["requests"] == before


def test_not_connected_is_409_with_a_code(app: App) -> None:
    resp = app.fields(entity="contact", platformField="jobTitle")
    assert resp.status_code == 409
    body = body_json(resp)
    assert body["code"] == "not_connected" and body["status"] == 409


def test_a_dead_grant_is_409_reconnect_and_only_a_warning_on_save(app: App) -> None:
    app.connect()
    app.tokens.revoked.add(app.ws)
    resp = app.fields(entity="account")
    assert resp.status_code == 409
    assert body_json(resp)["code"] == "reconnect_required" and body_json(resp)["reason"] == "revoked"
    report = app.validate(config([pf("fullName", "fullname")]))
    assert report["errors"] == []
    assert [w["message"] for w in report["warnings"]] == [
        "not verified against Dynamics: the Dynamics connection must be reconnected (revoked)"
    ]


def test_unreachable_dynamics_is_503_without_the_token(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"https://127.0.0.1:{free_port()}"  # nothing listens: every connect is refused
    client = DataverseClient(
        closed,
        lambda _force: STATIC_TOKEN,
        session=trusting_session(),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02),
    )
    connection = DynamicsConnection(app.ws, closed, None, None)
    service = FieldsService(lambda _ws: (client, connection), MetadataCache())
    use_app(monkeypatch, fields_service=service)
    resp = app.fields(entity="contact", platformField="jobTitle")
    assert resp.status_code == 503, resp.get_body()
    assert body_json(resp)["code"] == "dynamics_unavailable"
    assert STATIC_TOKEN not in (resp.get_body() or b"").decode()


def test_refresh_shows_a_column_created_in_dynamics(app: App) -> None:
    app.connect()
    first = {c["logicalName"] for c in body_json(app.fields(entity="contact"))["columns"]}
    assert "new_intentscore" not in first
    columns = app.emulator.schema.tables["contact"].columns
    columns["new_intentscore"] = Column("new_intentscore", "Decimal", metadata_id=str(uuid.uuid4()))
    try:
        requests_before = app.emulator.stats()["requests"]
        cached = app.icons("contact", "company.growthPercent")
        assert set(cached) == first  # served from the cache: Dynamics was not asked
        assert app.emulator.stats()["requests"] == requests_before
        resp = app.fields(entity="contact", platformField="company.growthPercent", refresh="true")
        assert resp.status_code == 200
        icons = {c["logicalName"]: c["compatibility"] for c in body_json(resp)["columns"]}
        assert icons["new_intentscore"] == "ok"  # decimal -> decimal
        assert app.emulator.stats()["requests"] > requests_before
    finally:
        del columns["new_intentscore"]


# --- the configuration check --------------------------------------------------------------------------


def test_a_save_with_a_red_mapping_is_refused_naming_it(app: App) -> None:
    app.connect()
    doc = config(
        [
            pf("jobTitle", "jobtitle"),
            pf("fullName", "fullname"),  # read-only
            {"kind": "fixed_value", "dynamicsField": "new_seniority", "value": "Intern", "valueType": "text"},
        ]
    )
    resp = app.put(doc)
    assert resp.status_code == 400, resp.get_body()
    errors = body_json(resp)["errors"]
    assert pointers(errors) == {"/fieldMapping/contacts/1/dynamicsField", "/fieldMapping/contacts/2/value"}
    assert any("read-only" in e["message"] for e in errors)
    assert any("'Intern' is not an option" in e["message"] for e in errors)
    assert app.put(config([pf("jobTitle", "jobtitle")])).headers["ETag"] == '"v1"'  # nothing was saved


def test_yellow_mappings_are_saved_and_reported(app: App) -> None:
    app.connect()
    doc = config(
        [pf("jobTitle", "jobtitle"), pf("seniority", "new_seniority"), pf("jobTitle", "new_engagement")]
    )
    doc["fieldMapping"]["contacts"][2] = pf("createdAt", "birthdate")
    report = app.validate(doc)
    assert report["valid"] is True and report["errors"] == []
    assert pointers(report["warnings"]) == {"/fieldMapping/contacts/2/dynamicsField"}
    resp = app.put(doc)
    assert resp.status_code == 200, resp.get_body()
    assert resp.headers["X-Config-Warning-Count"] == "1"  # the PUT says how many; validate lists them
    # The service hands the warnings back with the saved configuration.
    caller = Caller(app.ws, "user-1", Role.ADMIN)
    view = bootstrap.app().config_service.save(caller, doc, if_match=resp.headers["ETag"])
    assert view.version == 2
    assert [w.pointer for w in view.warnings] == ["/fieldMapping/contacts/2/dynamicsField"]


def test_users_must_exist_and_be_enabled(app: App) -> None:
    app.connect()
    active = app.emulator.add_user(firstname="Ann", lastname="Owner")
    disabled = app.emulator.add_user(firstname="Old", lastname="Owner", disabled=True)
    doc = config(
        [pf("jobTitle", "jobtitle")],
        userMapping={
            "users": [
                {"userId": "u-1", "dynamicsUserId": active},
                {"userId": "u-2", "dynamicsUserId": disabled},
            ],
            "identities": [{"identityId": "li-1", "dynamicsUserId": str(uuid.uuid4())}],
            "defaultOwnerId": active,
        },
    )
    resp = app.put(doc)
    assert resp.status_code == 400
    assert pointers(body_json(resp)["errors"]) == {
        "/userMapping/users/1/dynamicsUserId",
        "/userMapping/identities/0/dynamicsUserId",
    }
    doc["userMapping"]["users"].pop()
    doc["userMapping"]["identities"][0]["dynamicsUserId"] = active
    assert app.put(doc).status_code == 200


def test_identifier_and_campaign_columns_are_checked(app: App) -> None:
    app.connect()
    doc = config([pf("jobTitle", "jobtitle")])
    doc["syncIdentifiers"]["columns"]["contactLinkedinUrl"] = "new_linkedin"
    doc["campaignMapping"]["campaigns"] = "numberofchildren"
    report = app.validate(doc)
    assert pointers(report["errors"]) == {
        "/syncIdentifiers/columns/contactLinkedinUrl",
        "/campaignMapping/campaigns",
    }
    assert "did you mean 'new_linkedinurl'" in report["errors"][0]["message"]


def test_not_connected_saves_with_one_warning(app: App) -> None:
    doc = config([pf("fullName", "fullname")])  # red once verified; unknown while not connected
    report = app.validate(doc)
    assert report == {
        "valid": True,
        "errors": [],
        "warnings": [{"pointer": "", "message": "not verified against Dynamics: not connected"}],
        "drift": [],
    }
    saved = app.put(doc)
    assert saved.status_code == 200 and saved.headers["X-Config-Warning-Count"] == "1"
    app.connect()
    # Verified once connected: the saved red mapping is drift of the stored step (it does not stop other
    # steps from saving), and an edit of that step must fix it.
    assert pointers(app.validate(doc)["drift"]) == {"/fieldMapping/contacts/0/dynamicsField"}
    doc["fieldMapping"]["contacts"].append(pf("jobTitle", "jobtitle"))
    assert pointers(app.validate(doc)["errors"]) == {"/fieldMapping/contacts/0/dynamicsField"}


# --- drift: Dynamics changes under a saved configuration ---------------------------------------------


def test_drift_is_listed_per_step_and_never_refuses_saving_another_step(app: App) -> None:
    app.connect()
    owner = app.emulator.add_user(firstname="Ann", lastname="Owner")
    doc = config(
        [pf("firstName", "firstname"), pf("jobTitle", "new_replyanalysis")],
        userMapping={"users": [], "identities": [], "defaultOwnerId": owner},
    )
    saved = app.put(doc)
    assert saved.status_code == 200, saved.get_body()
    assert body_json(saved)["drift"] == {
        "syncIdentifiers": [],
        "fieldMapping": [],
        "campaignMapping": [],
        "userMapping": [],
    }

    # In Dynamics, an admin deletes the mapped column and disables the default owner.
    dynamics = api_session(app.emulator)
    gone = dynamics.delete(
        app.emulator.api_url
        + "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_replyanalysis')"
    )
    assert gone.status_code == 204
    disabled = dynamics.patch(f"{app.emulator.api_url}systemusers({owner})", json={"isdisabled": True})
    assert disabled.status_code == 204
    assert app.fields(entity="contact", refresh="true").status_code == 200  # the metadata read again

    current = get_config(app)
    drift = body_json(current)["drift"]
    assert pointers(drift["fieldMapping"]) == {"/fieldMapping/contacts/1/dynamicsField"}
    assert "new_replyanalysis" in drift["fieldMapping"][0]["message"]
    assert pointers(drift["userMapping"]) == {"/userMapping/defaultOwnerId"}
    assert "disabled" in drift["userMapping"][0]["message"]
    assert drift["syncIdentifiers"] == drift["campaignMapping"] == []
    step = get_config(app, "field-mapping")
    assert pointers(body_json(step)["drift"]) == {"/fieldMapping/contacts/1/dynamicsField"}

    # Another step saves, and says what still drifts elsewhere.
    etag = current.headers["ETag"]
    campaigns = {"campaignOpens": "new_campaignopens", "sequenceStatus": "new_sequencestatus"}
    other = put_step(app, "campaign-mapping", campaigns, etag)
    assert other.status_code == 200, other.get_body()
    assert body_json(other)["drift"] == []  # the saved step's own drift: none
    # The whole document sent back unchanged saves too (its drifted steps are as they were).
    whole = body_json(get_config(app))
    resaved = app.put(whole, if_match=other.headers["ETag"])
    assert resaved.status_code == 200, resaved.get_body()
    assert pointers(body_json(resaved)["drift"]["userMapping"]) == {"/userMapping/defaultOwnerId"}

    # Saving the drifted step itself must fix it: refused, naming the pointer; fixed, it saves.
    mapping = whole["fieldMapping"]
    refused = put_step(app, "field-mapping", mapping, resaved.headers["ETag"])
    assert refused.status_code == 400
    assert pointers(body_json(refused)["errors"]) == {"/fieldMapping/contacts/1/dynamicsField"}
    mapping["contacts"][1]["dynamicsField"] = "jobtitle"
    fixed = put_step(app, "field-mapping", mapping, resaved.headers["ETag"])
    assert fixed.status_code == 200, fixed.get_body()
    assert body_json(get_config(app))["drift"]["fieldMapping"] == []


def get_config(app: App, step: str | None = None) -> func.HttpResponse:
    headers = tokens.bearer(app.ws)
    if step is None:
        return call(config_api.get_dynamics_config, request("GET", "dynamics/config", headers=headers))
    return call(
        config_api.get_dynamics_config_step,
        request("GET", f"dynamics/config/{step}", headers=headers, route_params={"step": step}),
    )


def put_step(app: App, step: str, body: dict[str, Any], if_match: str) -> func.HttpResponse:
    headers = {**tokens.bearer(app.ws, role="admin"), "If-Match": if_match}
    return call(
        config_api.put_dynamics_config_step,
        request(
            "PUT", f"dynamics/config/{step}", json_body=body, headers=headers, route_params={"step": step}
        ),
    )
