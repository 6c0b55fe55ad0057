"""Every icon of a table at once, against the Dataverse emulator's live metadata, cell by cell.

What an admin notices: the window draws every dropdown's icons from one answer, and each icon is the one
the per-field listing shows and the one a save reports; read-only columns are red whatever is mapped;
fixed, manual-export and engagement values and campaign properties get icons too; the answer is reused
until Dynamics' metadata changes.
"""

from __future__ import annotations

import uuid
from typing import Any

import azure.functions as func

from core.domain.catalog import CAMPAIGN_PROPERTIES, FieldType
from core.domain.compatibility import MATRIX, campaign_compatibility, check_compatibility, matrix_cell
from core.domain.dynamics_metadata import AttributeType
from core.entrypoints import icons_api
from emulators.dataverse.schema import Column
from tests.integration.fields.test_fields_api import App, app, emulator  # noqa: F401  (fixtures)
from tests.support import tokens
from tests.support.http import body_json, call, request


def _icons(env: App, entity: str, headers: dict[str, str] | None = None, **params: str) -> func.HttpResponse:
    return call(
        icons_api.get_dynamics_field_icons,
        request(
            "GET",
            "dynamics/fields/icons",
            headers={**tokens.bearer(env.ws, role="member"), **(headers or {})},
            params={"entity": entity, **params},
        ),
    )


def _cells(body: dict[str, Any]) -> dict[tuple[str, str], tuple[str, list[str]]]:
    out: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for column, row in zip(body["columns"], body["cells"], strict=True):
        assert len(row) == len(body["targets"])
        for target, index in zip(body["targets"], row, strict=True):
            outcome = body["outcomes"][index]
            reasons = [body["reasons"][r] for r in outcome["reasons"]]
            out[(column["logicalName"], target["key"])] = (outcome["level"], reasons)
    return out


def test_every_cell_is_the_per_field_icon_and_the_domain_decision(app: App) -> None:  # noqa: F811
    app.connect()
    for entity, table in (("contact", "contact"), ("account", "account")):
        resp = _icons(app, entity)
        assert resp.status_code == 200, resp.get_body()
        body = body_json(resp)
        icons_api.IconMatrixPage.model_validate(body)
        cells = _cells(body)
        _, columns = app.service.columns(app.ws, table)
        assert [c["logicalName"] for c in body["columns"]] == sorted(columns)
        targets = {t["key"]: t for t in body["targets"]}
        platform = [k for k, t in targets.items() if t["kind"] == "platform_field"]
        # Platform fields: exactly what the per-field listing shows, column by column.
        for key in platform:
            assert app.icons(entity, key) == {c: cells[(c, key)] for c in columns}, key
        # Value kinds by type and campaign properties: the domain's decision on the live column.
        for key, target in targets.items():
            for name, column in columns.items():
                if target["kind"] == "campaign_property":
                    expected = campaign_compatibility(key.removeprefix("campaign:"), column)
                else:
                    expected = check_compatibility(FieldType(target["valueType"]), column)
                assert cells[(name, key)] == (expected.level.value, list(expected.reasons)), (name, key)
        kinds = {t["kind"] for t in body["targets"]}
        value_kinds = {"fixed_value", "manual_export", "engagement"}
        assert value_kinds <= kinds
        for kind in value_kinds:
            assert {t["valueType"] for t in body["targets"] if t["kind"] == kind} == set(FieldType)
        campaign = {
            k.removeprefix("campaign:") for k, t in targets.items() if t["kind"] == "campaign_property"
        }
        if entity == "contact":
            assert campaign == set(CAMPAIGN_PROPERTIES) and "company.name" in targets
        else:
            assert campaign == set() and "company.name" not in targets and "name" in targets


def test_read_only_columns_are_red_for_every_target(app: App) -> None:  # noqa: F811
    app.connect()
    body = body_json(_icons(app, "contact"))
    cells = _cells(body)
    read_only = [
        c["logicalName"] for c in body["columns"] if c["writable"] == {"create": False, "update": False}
    ]
    assert "fullname" in read_only
    for name in read_only:
        for target in body["targets"]:
            assert cells[(name, target["key"])][0] == "error", (name, target["key"])
    assert any("read-only" in r for r in cells[("fullname", "fixed_value:text")][1])
    # And a few icons a user knows: text fits a text column, a date is yellow on a date-only column,
    # the opens count is red on a yes/no column.
    assert cells[("jobtitle", "jobTitle")][0] == "ok"
    assert cells[("birthdate", "manual_export:datetime")][0] == "warning"
    assert cells[("donotemail", "campaign:campaignOpens")][0] == "error"
    assert cells[("jobtitle", "engagement:text")][0] == "ok"


def test_the_answer_is_reused_until_the_metadata_changes(app: App) -> None:  # noqa: F811
    app.connect()
    first = _icons(app, "contact")
    etag = first.headers["ETag"]
    # The metadata's version, and the environment the body names.
    assert etag.startswith(f'"{body_json(first)["version"]}-')
    requests_before = app.emulator.stats()["requests"]
    same = _icons(app, "contact", headers={"If-None-Match": etag})
    assert same.status_code == 304 and not same.get_body() and same.headers["ETag"] == etag
    # If-None-Match compares weakly (a proxy that compressed the answer marks the tag W/), and * matches.
    for asked in (f"W/{etag}", f'"other", {etag}', "*"):
        assert _icons(app, "contact", headers={"If-None-Match": asked}).status_code == 304, asked
    assert _icons(app, "contact", headers={"If-None-Match": '"other"'}).status_code == 200
    assert app.emulator.stats()["requests"] == requests_before  # metadata came from the cache
    columns = app.emulator.schema.tables["contact"].columns
    columns["new_intentscore"] = Column("new_intentscore", "Decimal", metadata_id=str(uuid.uuid4()))
    try:
        changed = _icons(app, "contact", headers={"If-None-Match": etag}, refresh="true")
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        cells = _cells(body_json(changed))
        assert cells[("new_intentscore", "company.growthPercent")][0] == "ok"
    finally:
        del columns["new_intentscore"]


def test_bad_queries_and_no_connection(app: App) -> None:  # noqa: F811
    for params, status in (({"entity": ""}, 400), ({"entity": "lead"}, 400), ({"entity": "contact"}, 409)):
        resp = _icons(app, **params)
        assert resp.status_code == status, (params, resp.get_body())
        assert resp.mimetype == "application/problem+json"
    app.connect()
    assert _icons(app, "contact", refresh="maybe").status_code == 400


def test_the_compatibility_rules_are_served_as_data(app: App) -> None:  # noqa: F811
    resp = call(
        icons_api.get_dynamics_compatibility,
        request("GET", "dynamics/compatibility", headers=tokens.bearer(app.ws, role="member")),
    )
    assert resp.status_code == 200
    body = body_json(resp)
    pairs = {(p["valueType"], p["attributeType"]): (p["level"], p["reason"]) for p in body["pairs"]}
    assert len(pairs) == len(MATRIX) == len(FieldType) * len(AttributeType)
    for (field_type, attribute_type), (level, reason) in pairs.items():
        expected = matrix_cell(FieldType(field_type), AttributeType(attribute_type))
        assert (level, reason) == (expected[0].value, expected[1])
    assert pairs[("datetime", "String")][0] == "warning"
    assert {r["key"]: r["level"] for r in body["columnRules"]}["read_only"] == "error"
    assert [lv["key"] for lv in body["levels"]] == ["ok", "warning", "error"]
