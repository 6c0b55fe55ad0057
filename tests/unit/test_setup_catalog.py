"""The catalog the setup window is built from: every key the API accepts has a label, the thirteen
campaign properties are exactly the domain's, in the setup guide's four sections, and keys do not drift."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest

from core.domain import setup_catalog
from core.domain.activities import EventKind
from core.domain.campaign_properties import FORMAT_VERSION, compute_properties
from core.domain.catalog import CAMPAIGN_PROPERTIES, COMPANY_FIELDS, CONTACT_FIELDS
from core.domain.config import MAPPING_KINDS, CampaignMapping, CompanyIdentifier, ContactIdentifier, Mode
from core.entrypoints import catalog_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.http import body_json, call, configure_app, request


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # No storage or Dynamics is touched: the catalog is data (the connection string is never dialled).
    configure_app(monkeypatch, "UseDevelopmentStorage=true")
    response: func.HttpResponse = call(
        catalog_api.get_dynamics_catalog,
        request("GET", "dynamics/catalog", headers=tokens.bearer("ws-catalog", role="member")),
    )
    assert response.status_code == 200, response.get_body()
    get_settings.cache_clear()
    return body_json(response)


def _labels_filled(entries: list[dict[str, Any]]) -> bool:
    return all(e["label"].strip() and e["description"].strip() for e in entries)


def test_thirteen_properties_match_the_domain_in_four_sections(served: dict[str, Any]) -> None:
    sections = served["campaignSections"]
    assert [s["label"] for s in sections] == ["Sequence", "Email", "General", "Conversation Tags"]
    keys = tuple(p["key"] for s in sections for p in s["properties"])
    assert keys == CAMPAIGN_PROPERTIES and len(keys) == 13
    assert set(keys) == set(CampaignMapping().model_dump(by_alias=True))  # what step 3 saves
    for prop in (p for s in sections for p in s["properties"]):
        assert prop["label"].strip() and prop["contains"].strip() and prop["example"].strip(), prop
    assert served["campaignFormatVersion"] == FORMAT_VERSION


def test_examples_are_what_the_properties_compute() -> None:
    """The examples are the documented format: the domain computes exactly them from matching data."""
    data = {
        "campaigns": [
            {
                "name": "Q4 Outreach",
                "sequenceStatus": "finished",
                "engagementStatus": "replied",
                "senders": [{"name": "Ana Ruiz"}, {"name": "Bo Li"}],
                "steps": [
                    {
                        "index": 1,
                        "channel": "email",
                        "name": "Intro",
                        "status": "sent",
                        "opens": 3,
                        "clicks": 1,
                    },
                    {"index": 2, "channel": "linkedin", "name": "Connect", "status": "pending"},
                ],
            },
        ],
        "conversationTags": [
            {"name": "Pricing", "category": "POSITIVE"},
            {"name": "Interested", "category": "NEUTRAL"},
        ],
    }
    computed = compute_properties(data)
    examples = {p.key: p.example for s in setup_catalog.CAMPAIGN_SECTIONS for p in s.properties}
    for key in ("campaignSequenceDetails", "conversationTags", "conversationTagCategories", "senders"):
        assert computed[key].text == examples[key], key


def test_every_field_kind_mode_identifier_and_activity_kind_is_labelled(served: dict[str, Any]) -> None:
    assert [k["key"] for k in served["fieldKinds"]] == list(MAPPING_KINDS)
    assert {m["key"] for m in served["modes"]} == {m.value for m in Mode}
    assert {c["key"] for c in served["contactIdentifiers"]} == {c.value for c in ContactIdentifier}
    assert {c["key"] for c in served["companyIdentifiers"]} == {c.value for c in CompanyIdentifier}
    assert {a["key"] for a in served["activityKinds"]} == {k.value for k in EventKind}
    for name in ("fieldKinds", "modes", "contactIdentifiers", "companyIdentifiers", "activityKinds"):
        assert _labels_filled(served[name]), name
    assert _labels_filled(served["engagementStatuses"]) and _labels_filled(served["sequenceStatuses"])


def test_platform_fields_are_the_catalog_with_types(served: dict[str, Any]) -> None:
    contact = {f["key"]: f for f in served["platformFields"]["contact"]}
    company = {f["key"]: f for f in served["platformFields"]["company"]}
    assert list(contact) == list(CONTACT_FIELDS) and list(company) == list(COMPANY_FIELDS)
    assert all(contact[k]["type"] == f.type.value for k, f in CONTACT_FIELDS.items())
    assert all(company[k]["type"] == f.type.value for k, f in COMPANY_FIELDS.items())
    assert contact["id"]["required"] and not contact["jobTitle"]["required"]
    assert _labels_filled(list(contact.values())) and _labels_filled(list(company.values()))
    assert served["platformFields"]["companyPrefix"] == "company."


def test_keys_are_stable(served: dict[str, Any]) -> None:
    """Frontends store these keys; renaming one is a breaking change, so it must show up here."""
    keys = {
        name: [e["key"] for e in served[name]]
        for name in ("fieldKinds", "modes", "contactIdentifiers", "companyIdentifiers", "activityKinds")
    }
    assert json.dumps(keys, sort_keys=True) == json.dumps(
        {
            "activityKinds": [
                "email_sent",
                "email_opened",
                "email_clicked",
                "email_replied",
                "linkedin_message",
                "linkedin_connection",
                "call",
                "task",
            ],
            "companyIdentifiers": ["domain", "domain_or_name", "custom"],
            "contactIdentifiers": ["name_company", "linkedin_or_name_company", "custom"],
            "fieldKinds": ["platform_field", "fixed_value", "manual_export", "engagement"],
            "modes": ["overwrite", "fill_if_empty"],
        },
        sort_keys=True,
    )
    assert [s["key"] for s in served["campaignSections"]] == [
        "sequence",
        "email",
        "general",
        "conversation_tags",
    ]
