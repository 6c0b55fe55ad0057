"""The fields listing below HTTP, with Dynamics replaced by canned metadata rows (no I/O).

Checks what the mapping dropdown shows (types, writability, options, the icon per column), that the cache
is used and ``refresh`` bypasses it, that bad input is refused before Dynamics is asked, and how failures
to reach Dynamics are reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.dataverse.errors import Throttled, TransientError
from core.domain.connection import DynamicsConnection, NotConnected, ReconnectRequired, TransientTokenError
from core.entrypoints.fields_api import FieldsPage
from core.services.dynamics.fields import (
    DynamicsUnavailable,
    FieldsService,
    UnknownEntity,
    UnknownPlatformField,
)
from core.services.dynamics.metadata_cache import MetadataCache

ENV = "https://contoso.crm4.dynamics.com"


def rendered(listing: Any) -> dict[str, Any]:
    """The listing as ``GET /api/dynamics/fields`` answers it (through the OpenAPI model)."""
    from core.entrypoints.fields_api import FieldsPage

    return FieldsPage.of(listing).model_dump(mode="json", exclude_unset=True)


def _label(text: str) -> dict[str, Any]:
    return {"UserLocalizedLabel": {"Label": text}, "LocalizedLabels": [{"Label": text}]}


ROWS: dict[str, list[dict[str, Any]]] = {
    "contact": [
        {
            "LogicalName": "jobtitle",
            "AttributeType": "String",
            "DisplayName": _label("Job Title"),
            "MaxLength": 100,
            "RequiredLevel": {"Value": "None"},
        },
        {
            "LogicalName": "fullname",
            "AttributeType": "String",
            "MaxLength": 160,
            "IsValidForCreate": False,
            "IsValidForUpdate": False,
        },
        {
            "LogicalName": "lastname",
            "AttributeType": "String",
            "MaxLength": 50,
            "RequiredLevel": {"Value": "ApplicationRequired"},
        },
        {
            "LogicalName": "new_languages",
            "AttributeType": "Virtual",
            "AttributeTypeName": {"Value": "MultiSelectPicklistType"},
            "OptionSet": {"Options": [{"Value": 1, "Label": _label("English")}]},
        },
        {
            "LogicalName": "statuscode",
            "AttributeType": "Status",
            "OptionSet": {"Options": [{"Value": 1, "Label": _label("Active"), "State": 0}]},
        },
        {"LogicalName": "parentcustomerid", "AttributeType": "Customer", "Targets": ["account", "contact"]},
    ],
    "account": [{"LogicalName": "name", "AttributeType": "String", "MaxLength": 160}],
}


class StubClient:
    environment_url = ENV

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.reads: list[str] = []

    def attribute_rows(self, table: str) -> list[dict[str, Any]]:
        self.reads.append(table)
        if self.fail is not None:
            raise self.fail
        return [dict(r) for r in ROWS[table]]


def service(client: StubClient | None, **kw: Any) -> FieldsService:
    def client_for(workspace_id: str) -> Any:
        if client is None:
            raise NotConnected(workspace_id)
        return client, DynamicsConnection(workspace_id, ENV, "int@contoso.com", None)

    return FieldsService(client_for, MetadataCache(), **kw)


def test_columns_describe_what_the_dropdown_needs() -> None:
    listing = rendered(service(StubClient()).list_fields("ws", "contact"))
    FieldsPage.model_validate(listing)  # the documented response shape
    columns = {c["logicalName"]: c for c in listing["columns"]}
    assert [c["logicalName"] for c in listing["columns"]] == sorted(columns)
    assert listing["environmentUrl"] == ENV and "platformField" not in listing
    assert columns["jobtitle"] == {
        "logicalName": "jobtitle",
        "displayName": "Job Title",
        "type": "String",
        "requiredLevel": "None",
        "writable": {"create": True, "update": True},
        "maxLength": 100,
        "format": None,
        "options": [],
    }
    assert columns["fullname"]["writable"] == {"create": False, "update": False}
    assert columns["lastname"]["requiredLevel"] == "ApplicationRequired"
    assert columns["new_languages"]["type"] == "MultiSelectPicklist"
    assert columns["new_languages"]["options"] == [{"value": 1, "label": "English"}]
    assert columns["statuscode"]["options"] == [{"value": 1, "label": "Active", "state": 0}]
    assert columns["parentcustomerid"]["targets"] == ["account", "contact"]


def test_a_platform_field_gives_every_column_its_icon() -> None:
    listing = rendered(service(StubClient()).list_fields("ws", "contact", platform_field="jobTitle"))
    FieldsPage.model_validate(listing)
    icons = {c["logicalName"]: c["compatibility"] for c in listing["columns"]}
    assert icons == {
        "jobtitle": "ok",
        "lastname": "ok",
        "fullname": "error",  # read-only
        "new_languages": "warning",  # text -> multi-select
        "statuscode": "warning",  # text -> status label
        "parentcustomerid": "error",  # lookup
    }
    reasons = {c["logicalName"]: c["reasons"] for c in listing["columns"]}
    assert any("read-only" in r for r in reasons["fullname"])
    assert listing["platformField"] == {"name": "jobTitle", "type": "text", "custom": False}
    assert listing["counts"] == {"ok": 2, "warning": 2, "error": 2}


def test_company_fields_in_the_contact_list_and_account_fields() -> None:
    svc = service(StubClient())
    via_contact = rendered(svc.list_fields("ws", "contact", platform_field="company.employeeCount"))
    assert via_contact["platformField"] == {
        "name": "company.employeeCount",
        "type": "integer",
        "custom": False,
    }
    assert {c["logicalName"]: c["compatibility"] for c in via_contact["columns"]}["jobtitle"] == "ok"
    account = rendered(svc.list_fields("ws", "account", platform_field="name"))
    assert [c["compatibility"] for c in account["columns"]] == ["ok"]


def test_bad_input_is_refused_before_dynamics_is_asked() -> None:
    client = StubClient()
    svc = service(client)
    with pytest.raises(UnknownEntity, match="contact, account"):
        svc.list_fields("ws", "lead")
    with pytest.raises(UnknownPlatformField):
        svc.list_fields("ws", "account", platform_field="company.name")  # company. is for contacts
    with pytest.raises(UnknownPlatformField):
        svc.list_fields("ws", "contact", platform_field="jobtitle")  # Dynamics name, not the platform's
    assert client.reads == []


def test_workspace_custom_fields_are_platform_fields() -> None:
    from core.domain.catalog import Entity, FieldType, PlatformField

    custom = [PlatformField("intentScore", Entity.CONTACT, FieldType.DECIMAL, custom=True)]
    svc = service(StubClient(), custom_fields=lambda ws: custom if ws == "ws-custom" else [])
    listing = rendered(svc.list_fields("ws-custom", "contact", platform_field="intentScore"))
    assert listing["platformField"] == {"name": "intentScore", "type": "decimal", "custom": True}
    with pytest.raises(UnknownPlatformField):
        svc.list_fields("ws-other", "contact", platform_field="intentScore")


def test_metadata_is_cached_and_refresh_reads_it_again() -> None:
    client = StubClient()
    svc = service(client)
    svc.list_fields("ws", "contact")
    svc.list_fields("ws", "contact", platform_field="firstName")
    assert client.reads == ["contact"]
    svc.list_fields("ws", "contact", refresh=True)
    assert client.reads == ["contact", "contact"]


@pytest.mark.parametrize(
    ("failure", "fragment", "retry_after"),
    [
        (TransientError("boom", status=503), "HTTP 503", None),
        (TransientError("reset", status=None), "no response", None),
        (Throttled("slow down", status=429, retry_after=42.0), "throttling", 42.0),
        (TransientTokenError("entra down"), "token", None),
    ],
)
def test_dynamics_failures_become_unavailable_without_details_of_the_request(
    failure: Exception, fragment: str, retry_after: float | None
) -> None:
    with pytest.raises(DynamicsUnavailable) as caught:
        service(StubClient(fail=failure)).list_fields("ws", "contact")
    assert fragment in caught.value.reason and caught.value.retry_after == retry_after


def test_not_connected_and_reconnect_pass_through() -> None:
    with pytest.raises(NotConnected):
        service(None).list_fields("ws", "contact")
    with pytest.raises(ReconnectRequired):
        service(StubClient(fail=ReconnectRequired("ws", "revoked"))).list_fields("ws", "contact")


def test_the_config_check_only_warns_when_dynamics_cannot_be_asked() -> None:
    from core.domain.config import DynamicsConfig
    from core.domain.config_validation import Severity
    from core.services.config.metadata_check import DynamicsMetadataCheck

    config = DynamicsConfig.default()
    for svc, reason in (
        (service(None), "not connected"),
        (service(StubClient(fail=TransientError("down", status=502))), "HTTP 502"),
        (service(StubClient(fail=ReconnectRequired("ws", "inactivity"))), "reconnected (inactivity)"),
    ):
        problems = DynamicsMetadataCheck(svc)("ws", config)
        assert len(problems) == 1 and problems[0].severity is Severity.WARNING
        assert problems[0].pointer == "" and reason in problems[0].message
    # Connected and answering: the default configuration (websiteurl as the domain column) is clean.
    assert DynamicsMetadataCheck(service(StubClientWithWebsite()))("ws", config) == []


class StubClientWithWebsite(StubClient):
    def attribute_rows(self, table: str) -> list[dict[str, Any]]:
        rows = super().attribute_rows(table)
        if table == "account":
            rows.append({"LogicalName": "websiteurl", "AttributeType": "String", "MaxLength": 200})
        return rows
