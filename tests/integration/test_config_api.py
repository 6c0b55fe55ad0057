# ruff: noqa: E501  (the rule table below reads best one rule per line)
"""The configuration API against real Azurite, called as the Functions host calls it."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from core.domain.config import IntegrationUser
from core.entrypoints import config_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.app import use_app
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request, without_warnings
from tests.unit.test_config_validation import GUID, GUID2, valid_doc

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def get(
    ws: str, route: str = "dynamics/config", fn: Any = None, role: str = "admin", **kw: Any
) -> func.HttpResponse:
    step = route.split("dynamics/config/", 1)[1] if route.startswith("dynamics/config/") else None
    if fn is None:
        fn = config_api.get_dynamics_config_step if step else config_api.get_dynamics_config
    headers = tokens.bearer(ws, role=role)
    return call(
        fn, request("GET", route, headers=headers, route_params={"step": step} if step else None, **kw)
    )


def put(
    ws: str,
    doc: Any,
    if_match: str | None = None,
    step: str | None = None,
    role: str = "admin",
    user: str = "user-1",
) -> func.HttpResponse:
    headers = tokens.bearer(ws, role=role, user_id=user)
    if if_match is not None:
        headers["If-Match"] = if_match
    route = "dynamics/config" if step is None else f"dynamics/config/{step}"
    fn = config_api.put_dynamics_config if step is None else config_api.put_dynamics_config_step
    req = request(
        "PUT", route, json_body=doc, headers=headers, route_params=None if step is None else {"step": step}
    )
    return call(fn, req)


def test_defaults_before_first_save(ws: str) -> None:
    resp = get(ws)
    assert resp.status_code == 200 and resp.headers["ETag"] == '"v0"'
    cfg = body_json(resp)
    assert cfg["syncIdentifiers"]["contactIdentifier"] == "name_company"
    assert cfg["syncIdentifiers"]["columns"]["companyDomain"] == "websiteurl"
    assert cfg["fieldMapping"] == {"contacts": [], "companies": []}
    assert len(cfg["campaignMapping"]) == 13 and set(cfg["campaignMapping"].values()) == {None}


def test_save_read_and_etag_rules(ws: str) -> None:
    doc = valid_doc()
    first = put(ws, doc)
    assert first.status_code == 200, first.get_body()
    assert first.headers["ETag"] == '"v1"'
    assert body_json(first)["warnings"] == []
    assert without_warnings(body_json(get(ws))) == without_warnings(body_json(first))
    assert body_json(first)["fieldMapping"] == doc["fieldMapping"] | {
        "contacts": [
            dict(m, **({"mode": m.get("mode", "overwrite")})) for m in doc["fieldMapping"]["contacts"]
        ]
    }

    doc["syncIdentifiers"]["associateCompaniesWithContacts"] = False
    missing = put(ws, doc)
    assert missing.status_code == 428 and body_json(missing)["currentVersion"] == 1
    stale = put(ws, doc, if_match='"v0"')
    assert stale.status_code == 412
    assert body_json(stale)["currentETag"] == '"v1"' and "version is 1" in body_json(stale)["detail"]
    ok = put(ws, doc, if_match='W/"v1"')
    assert ok.status_code == 200 and ok.headers["ETag"] == '"v2"'
    assert body_json(get(ws))["syncIdentifiers"]["associateCompaniesWithContacts"] is False
    assert put(ws, doc, if_match="*").status_code == 200


def test_if_match_on_nothing_saved(ws: str) -> None:
    assert put(ws, valid_doc(), if_match="*").status_code == 412
    assert put(ws, valid_doc(), if_match='"v0"').status_code == 200


def test_step_endpoints_change_only_their_step(ws: str) -> None:
    assert put(ws, valid_doc()).status_code == 200
    mapping = {
        "contacts": [
            {"kind": "platform_field", "dynamicsField": "mobilephone", "platformField": "mobilePhone"}
        ]
    }
    assert put(ws, mapping, step="field-mapping").status_code == 428
    resp = put(ws, mapping, if_match='"v1"', step="field-mapping")
    assert resp.status_code == 200, resp.get_body()
    assert body_json(resp)["contacts"][0]["mode"] == "overwrite" and body_json(resp)["companies"] == []
    whole = body_json(get(ws))
    assert whole["fieldMapping"] == without_warnings(body_json(resp))
    assert whole["userMapping"] == without_warnings(body_json(get(ws, "dynamics/config/user-mapping")))
    assert whole["userMapping"]["defaultOwnerId"] == GUID
    step = get(ws, "dynamics/config/field-mapping")
    assert step.headers["ETag"] == '"v2"' and without_warnings(body_json(step)) == whole["fieldMapping"]


def test_step_errors_point_into_the_whole_document(ws: str) -> None:
    bad = {
        "contacts": [
            {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "nope"},
            {"kind": "x"},
        ]
    }
    resp = put(ws, bad, step="field-mapping")
    assert resp.status_code == 400
    assert [e["pointer"] for e in body_json(resp)["errors"]] == ["/fieldMapping/contacts/1/kind"]
    del bad["contacts"][1]
    resp = put(ws, bad, step="field-mapping")
    assert [e["pointer"] for e in body_json(resp)["errors"]] == ["/fieldMapping/contacts/0/platformField"]


@pytest.mark.parametrize("step", ["nope", "history2", "ünïcødé", "../config", ""])
def test_unknown_step_is_404(ws: str, step: str) -> None:
    resp = call(
        config_api.get_dynamics_config_step,
        request("GET", "x", headers=tokens.bearer(ws), route_params={"step": step}),
    )
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert put(ws, {}, step=step).status_code == 404


def _mutations() -> list[tuple[str, Any, str]]:
    """(rule, mutation of a valid document, pointer of the one problem)."""

    def m(fn: Any) -> Any:
        return fn

    return [
        ("unknown platform field", m(lambda d: d["fieldMapping"]["contacts"][0].update(platformField="shoe")),
         "/fieldMapping/contacts/0/platformField"),
        ("two engagement mappings", m(lambda d: d["fieldMapping"]["companies"].append(
            {"kind": "engagement", "dynamicsField": "new_x", "value": "a", "valueType": "text"})),
         "/fieldMapping/companies/2/kind"),
        ("column twice in a tab", m(lambda d: d["fieldMapping"]["contacts"].append(
            {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "city"})),
         "/fieldMapping/contacts/4/dynamicsField"),
        ("company field in contacts, its column mapped differently in companies", m(
            lambda d: d["fieldMapping"]["contacts"].append(
                {"kind": "platform_field", "dynamicsField": "numberofemployees", "platformField": "company.industry"})),
         "/fieldMapping/contacts/4/platformField"),
        ("contact field in companies, its column mapped differently in contacts", m(
            lambda d: d["fieldMapping"]["companies"].append(
                {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "firstName"})),
         "/fieldMapping/companies/2/platformField"),
        ("fixed value of wrong type", m(lambda d: d["fieldMapping"]["contacts"][1].update(value="x", valueType="integer")),
         "/fieldMapping/contacts/1/value"),
        ("manual export with value", m(lambda d: d["fieldMapping"]["contacts"][2].update(value="x")),
         "/fieldMapping/contacts/2/value"),
        ("empty custom rule", m(lambda d: d["syncIdentifiers"].update(contactRule={"operator": "and", "conditions": []})),
         "/syncIdentifiers/contactRule/conditions"),
        ("custom without rule", m(lambda d: d["syncIdentifiers"].update(contactRule=None)),
         "/syncIdentifiers/contactRule"),
        ("rule too deep", m(lambda d: d["syncIdentifiers"].update(contactRule=_deep(5))),
         "/syncIdentifiers/contactRule" + "/conditions/0" * 4),
        ("rule too many conditions", m(lambda d: d["syncIdentifiers"].update(contactRule={
            "operator": "or", "conditions": [{"platformField": "city", "dynamicsField": "address1_city"}] * 21})),
         "/syncIdentifiers/contactRule/conditions/20"),
        ("rule with unknown field", m(lambda d: d["syncIdentifiers"]["contactRule"]["conditions"][1].update(
            platformField="🦄")), "/syncIdentifiers/contactRule/conditions/1/platformField"),
        ("campaign column twice", m(lambda d: d["campaignMapping"].update(senders="new_opens")),
         "/campaignMapping/senders"),
        ("identity mapped twice", m(lambda d: d["userMapping"]["identities"].append(
            {"identityId": "idt-1", "dynamicsUserId": GUID2})), "/userMapping/identities/1/identityId"),
        ("unknown campaign property", m(lambda d: d["campaignMapping"].update(campaignBounces="new_b")),
         "/campaignMapping/campaignBounces"),
        ("column not a logical name", m(lambda d: d["fieldMapping"]["contacts"][0].update(dynamicsField="Job Title")),
         "/fieldMapping/contacts/0/dynamicsField"),
        ("owner not a guid", m(lambda d: d["userMapping"].update(defaultOwnerId="bob")),
         "/userMapping/defaultOwnerId"),
        ("bad mode", m(lambda d: d["fieldMapping"]["contacts"][0].update(mode="sometimes")),
         "/fieldMapping/contacts/0/mode"),
        ("missing step", m(lambda d: d.pop("userMapping")), "/userMapping"),
    ]  # fmt: skip


def _deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"platformField": "city", "dynamicsField": "address1_city"}
    for _ in range(depth):
        node = {"operator": "and", "conditions": [node]}
    return node


@pytest.mark.parametrize(("rule", "mutate", "pointer"), _mutations(), ids=[m[0] for m in _mutations()])
def test_every_rule_refuses_the_save_and_validate_reports_it(
    ws: str, rule: str, mutate: Any, pointer: str
) -> None:
    doc = valid_doc()
    mutate(doc)
    resp = put(ws, doc)
    assert resp.status_code == 400, rule
    problem = body_json(resp)
    assert problem["title"] == "Invalid configuration" and resp.mimetype == "application/problem+json"
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert get(ws).headers["ETag"] == '"v0"'  # nothing saved
    report = call(
        config_api.validate_dynamics_config,
        request("POST", "dynamics/config/validate", json_body=doc, headers=tokens.bearer(ws, role="member")),
    )
    assert report.status_code == 200
    assert body_json(report)["valid"] is False
    assert [e["pointer"] for e in body_json(report)["errors"]] == [pointer]


def test_validate_reports_all_problems_and_saves_nothing(ws: str) -> None:
    doc = valid_doc()
    for _, mutate, _ in _mutations()[:6]:
        mutate(doc)
    resp = call(
        config_api.validate_dynamics_config,
        request("POST", "dynamics/config/validate", json_body=doc, headers=tokens.bearer(ws)),
    )
    assert resp.status_code == 200 and len(body_json(resp)["errors"]) == 6
    ok = call(
        config_api.validate_dynamics_config,
        request("POST", "dynamics/config/validate", json_body=valid_doc(), headers=tokens.bearer(ws)),
    )
    assert body_json(ok) == {"valid": True, "errors": [], "warnings": [], "drift": []}
    assert get(ws).headers["ETag"] == '"v0"'


def test_history_says_who_when_and_what(ws: str) -> None:
    assert put(ws, valid_doc(), user="alice").status_code == 200
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][0]["mode"] = "fill_if_empty"
    doc["campaignMapping"]["senders"] = "new_senders"
    assert put(ws, doc, if_match='"v1"', user="bob").status_code == 200
    hist = get(ws, "dynamics/config/history", fn=config_api.get_dynamics_config_history)
    versions = body_json(hist)["versions"]
    assert [(v["version"], v["savedBy"]) for v in versions] == [(2, "bob"), (1, "alice")]
    assert {c["path"] for c in versions[0]["changes"]} == {
        "/fieldMapping/contacts/0/mode",
        "/campaignMapping/senders",
    }
    assert versions[0]["savedAt"].endswith("+00:00")
    limited = get(
        ws, "dynamics/config/history", fn=config_api.get_dynamics_config_history, params={"limit": "1"}
    )
    assert len(body_json(limited)["versions"]) == 1
    bad = get(ws, "dynamics/config/history", fn=config_api.get_dynamics_config_history, params={"limit": "x"})
    assert bad.status_code == 400
    via_step_route = get(ws, "dynamics/config/history")
    assert body_json(via_step_route) == body_json(hist)


def test_concurrent_writers_with_the_same_etag_one_wins(ws: str) -> None:
    assert put(ws, valid_doc()).status_code == 200
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        doc = valid_doc()
        doc["campaignMapping"]["senders"] = f"new_senders_{i}"
        barrier.wait()
        resp = put(ws, doc, if_match='"v1"', user=f"writer-{i}")
        results.append((resp.status_code, i))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] + [412] * 7
    winner = next(i for s, i in results if s == 200)
    final = get(ws)
    assert final.headers["ETag"] == '"v2"'
    assert body_json(final)["campaignMapping"]["senders"] == f"new_senders_{winner}"
    hist = body_json(get(ws, "dynamics/config/history", fn=config_api.get_dynamics_config_history))
    assert [v["savedBy"] for v in hist["versions"]] == [f"writer-{winner}", "user-1"]


def test_integration_user_is_read_only(ws: str) -> None:
    doc = valid_doc()
    doc["syncIdentifiers"]["integrationUser"] = {"email": "mallory@example.com", "dynamicsUserId": GUID}
    resp = put(ws, doc)
    assert resp.status_code == 200
    assert body_json(get(ws))["syncIdentifiers"]["integrationUser"] is None


def _big_doc(total_chars: int) -> dict[str, Any]:
    doc = valid_doc()
    per = 90_000
    for i in range(total_chars // per):
        doc["fieldMapping"]["companies"].append(
            {"kind": "fixed_value", "dynamicsField": f"new_big_{i}", "value": f"{i}-ñ€😀-" + "x" * per,
             "valueType": "text"}
        )  # fmt: skip
    return doc


@pytest.mark.parametrize("size", [200_000, 2_000_000])
def test_big_configurations_round_trip(ws: str, size: int) -> None:
    doc = _big_doc(size)
    assert len(json.dumps(doc, ensure_ascii=False)) > size * 0.9
    first = put(ws, doc)
    assert first.status_code == 200, first.get_body()[:500]
    assert body_json(get(ws))["fieldMapping"]["companies"] == body_json(first)["fieldMapping"]["companies"]
    smaller = copy.deepcopy(doc)
    smaller["fieldMapping"]["companies"] = smaller["fieldMapping"]["companies"][:3]
    assert put(ws, smaller, if_match='"v1"').status_code == 200
    assert len(body_json(get(ws))["fieldMapping"]["companies"]) == 3


def test_ten_megabytes_is_413(ws: str) -> None:
    body = json.dumps({"syncIdentifiers": {"x": "a" * (10 * 1024 * 1024)}}).encode()
    req = request(
        "PUT", "dynamics/config", body=body, headers={**tokens.bearer(ws), "Content-Type": "application/json"}
    )
    resp = call(config_api.put_dynamics_config, req)
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "ctype", "put_status", "validate_status"),
    [
        (b'{"syncIdentifiers": ', "application/json", 400, 400),
        (b"\xc3\x28", "application/json", 400, 400),
        (b"syncIdentifiers=1", "application/x-www-form-urlencoded", 415, 415),
        (b"{}", "text/plain; charset=utf-8", 415, 415),
        (b"", "application/json", 400, 400),
        (b'{"a": NaN}', "application/json", 400, 400),
        (b'{"syncIdentifiers": {"contactIdentifier": "\\ud83d"}}', "application/json", 400, 400),
        # well-formed JSON of the wrong shape: PUT refuses it, validate reports it
        (b"[]", "application/json", 400, 200),
        (b"null", "application/json", 400, 200),
        ('"\u2603"'.encode(), "application/json", 400, 200),
        ('{"syncIdentifiers": {"contactIdentifier": "nömbre"}}'.encode(), "application/json", 400, 200),
    ],
)
def test_bad_bodies_are_clear_4xx(
    ws: str, body: bytes, ctype: str, put_status: int, validate_status: int
) -> None:
    headers = {**tokens.bearer(ws), "Content-Type": ctype}
    resp = call(config_api.put_dynamics_config, request("PUT", "dynamics/config", body=body, headers=headers))
    assert resp.status_code == put_status, resp.get_body()
    assert resp.mimetype == "application/problem+json" and body_json(resp)["detail"]
    report = call(
        config_api.validate_dynamics_config,
        request("POST", "dynamics/config/validate", body=body, headers=headers),
    )
    assert report.status_code == validate_status, report.get_body()
    if validate_status == 200:
        assert body_json(report)["valid"] is False and body_json(report)["errors"]


def test_unicode_everywhere_saves_or_is_refused_clearly(ws: str) -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][1]["value"] = "Énginy 🚀 データ \u200b"
    doc["userMapping"]["identities"][0]["identityId"] = "idént-😀"
    doc["userMapping"]["users"][0]["userId"] = "用户-1"
    resp = put(ws, doc)
    assert resp.status_code == 200
    saved = body_json(get(ws))
    assert saved["fieldMapping"]["contacts"][1]["value"] == "Énginy 🚀 データ \u200b"
    assert saved["userMapping"]["users"][0]["userId"] == "用户-1"
    doc["fieldMapping"]["contacts"][0]["dynamicsField"] = "jöbtitle"
    doc["fieldMapping"]["contacts"][0]["platformField"] = "jöbTitle"
    doc["campaignMapping"]["ünknown"] = "x"
    bad = put(ws, doc, if_match='"v1"')
    assert bad.status_code == 400
    assert {e["pointer"] for e in body_json(bad)["errors"]} == {
        "/fieldMapping/contacts/0/dynamicsField",
        "/campaignMapping/ünknown",
    }


def test_metadata_checks_plug_in_errors_refuse_warnings_allow(
    ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.domain.config_validation import Problem, Severity

    seen: list[str] = []

    def live_check(workspace_id: str, config: Any) -> list[Problem]:
        seen.append(workspace_id)
        problems = [
            Problem("/fieldMapping/contacts/0/dynamicsField", "may be incompatible", Severity.WARNING)
        ]
        if config.campaign_mapping.senders == "new_readonly":
            problems.append(Problem("/campaignMapping/senders", "column is read-only in Dynamics"))
        return problems

    use_app(
        monkeypatch,
        metadata_checks=[live_check],
        integration_user=lambda w: IntegrationUser(email=f"sync@{w}.example"),
    )
    doc = valid_doc()
    doc["campaignMapping"]["senders"] = "new_readonly"
    refused = put(ws, doc)
    assert refused.status_code == 400
    assert [e["pointer"] for e in body_json(refused)["errors"]] == ["/campaignMapping/senders"]
    doc["campaignMapping"]["senders"] = "new_senders"
    report = call(
        config_api.validate_dynamics_config,
        request("POST", "x", json_body=doc, headers=tokens.bearer(ws)),
    )
    assert body_json(report)["valid"] is True
    assert body_json(report)["warnings"] == [
        {"pointer": "/fieldMapping/contacts/0/dynamicsField", "message": "may be incompatible"}
    ]
    saved = put(ws, doc)
    assert saved.status_code == 200 and saved.headers["X-Config-Warning-Count"] == "1"
    assert set(seen) == {ws}
    assert body_json(get(ws))["syncIdentifiers"]["integrationUser"]["email"] == f"sync@{ws}.example"


def test_concurrent_first_saves_one_wins(ws: str) -> None:
    results: list[int] = []
    barrier = threading.Barrier(6)

    def writer(i: int) -> None:
        barrier.wait()
        results.append(put(ws, valid_doc(), user=f"first-{i}").status_code)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Losers that read before the winner saved are told 412; those that read after it see a saved
    # configuration and, sending no If-Match, are told 428. None saves over the winner.
    assert results.count(200) == 1 and all(s in (200, 412, 428) for s in results), results
    assert get(ws).headers["ETag"] == '"v1"'
    assert put(ws, valid_doc(), if_match="").status_code == 428  # an empty If-Match is no precondition


def test_two_hosts_never_overwrite_each_other(ws: str) -> None:
    """Each Function host keeps its own memo of the last version; a stale memo must still end in 412."""
    from core.adapters.storage.config_repository import ConfigRepository
    from core.domain.caller import Caller, Role
    from core.services.config.service import ConfigService, PreconditionFailed
    from tests.support.app import storage

    caller = Caller(ws, "user-1", Role.ADMIN)
    host1 = ConfigService(ConfigRepository(storage()))
    host2 = ConfigService(ConfigRepository(storage()))
    assert host1.save(caller, valid_doc(), None).version == 1
    assert host2.get(caller).version == 1
    doc = valid_doc()
    doc["campaignMapping"]["senders"] = "new_from_host2"
    assert host2.save(caller, doc, '"v1"').version == 2
    with pytest.raises(PreconditionFailed) as info:
        host1.save(caller, valid_doc(), '"v1"')  # host1 still remembers v1
    assert info.value.current_version == 2
    assert host1.get(caller).config.campaign_mapping.senders == "new_from_host2"
    assert host1.save(caller, valid_doc(), '"v2"').version == 3


def _validate(ws: str, body: Any, **params: str) -> func.HttpResponse:
    return call(
        config_api.validate_dynamics_config,
        request("POST", "dynamics/config/validate", json_body=body, params=params, headers=tokens.bearer(ws)),
    )


def test_a_company_field_in_the_contacts_tab_saves_with_the_warning_in_the_body(
    ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def live_check(workspace_id: str, config: Any) -> list[Any]:
        seen.append(workspace_id)
        return []

    use_app(monkeypatch, metadata_checks=[live_check])
    doc = valid_doc()
    # The company's name kept as text on the contact: the setup guide warns, the save goes ahead.
    doc["fieldMapping"]["contacts"].append(
        {"kind": "platform_field", "dynamicsField": "new_companyname", "platformField": "company.name"}
    )
    saved = put(ws, doc)
    assert saved.status_code == 200, saved.get_body()
    [warning] = body_json(saved)["warnings"]
    assert warning["pointer"] == "/fieldMapping/contacts/4/platformField"
    assert "company field" in warning["message"] and saved.headers["X-Config-Warning-Count"] == "1"
    assert seen == [ws]  # a warning does not skip the live Dynamics check
    assert body_json(get(ws))["fieldMapping"]["contacts"][4]["platformField"] == "company.name"
    # What the save answered can be sent back as it is: the warnings are read-only.
    again = put(ws, body_json(saved), if_match=saved.headers["ETag"])
    assert again.status_code == 200 and body_json(again)["warnings"] == [warning]
    step = put(ws, body_json(again)["fieldMapping"], if_match=again.headers["ETag"], step="field-mapping")
    assert step.status_code == 200 and body_json(step)["warnings"] == [warning]

    # The same column mapped differently in the companies tab is still refused.
    doc["fieldMapping"]["companies"].append(
        {"kind": "platform_field", "dynamicsField": "new_companyname", "platformField": "industry"}
    )
    refused = put(ws, doc, if_match=step.headers["ETag"])
    assert refused.status_code == 400
    assert [e["pointer"] for e in body_json(refused)["errors"]] == ["/fieldMapping/contacts/4/platformField"]


def test_validate_checks_one_step_inside_the_saved_configuration(ws: str) -> None:
    assert put(ws, valid_doc()).status_code == 200
    mapping = valid_doc()["fieldMapping"]
    mapping["contacts"].append(
        {"kind": "platform_field", "dynamicsField": "new_companyname", "platformField": "company.name"}
    )
    report = body_json(_validate(ws, mapping, step="field-mapping"))
    assert report["valid"] is True and report["errors"] == []
    assert [w["pointer"] for w in report["warnings"]] == ["/fieldMapping/contacts/4/platformField"]
    mapping["contacts"][0]["platformField"] = "shoe"
    report = body_json(_validate(ws, mapping, step="field-mapping"))
    assert report["valid"] is False
    assert [e["pointer"] for e in report["errors"]] == ["/fieldMapping/contacts/0/platformField"]
    # a step's section against the whole document's shape: pointers say what is missing
    whole = body_json(_validate(ws, mapping))
    assert whole["valid"] is False and "/syncIdentifiers" in {e["pointer"] for e in whole["errors"]}
    bad = _validate(ws, mapping, step="fieldMapping")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert body_json(bad)["errors"][0]["pointer"] == "/step"
    assert get(ws).headers["ETag"] == '"v1"'  # nothing saved
