"""The thirteen campaign properties: values written out by hand from one fixture, column-aware writing."""

from __future__ import annotations

from typing import Any

import pytest

from core.domain.campaign_properties import (
    PropertyValue,
    campaign_values,
    column_value,
    compute_properties,
    fit_text,
)
from core.domain.catalog import CAMPAIGN_PROPERTIES
from core.domain.config import CampaignMapping
from core.domain.conversion import NO_VALUE
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue

CONTACT: dict[str, Any] = {
    "id": "p-1",
    "campaigns": [
        {
            "id": "c-1",
            "name": "Q4 Outreach",
            "sequenceStatus": "finished",
            "engagementStatus": "replied",
            "steps": [
                # deliberately out of order: the properties list steps by index
                {"index": 2, "channel": "linkedin", "name": "Connect", "status": "sent", "replied": True},
                {
                    "index": 1,
                    "channel": "email",
                    "name": "Intro",
                    "status": "sent",
                    "opens": 3,
                    "clicks": 1,
                    "replied": False,
                },
                {"index": 3, "channel": "email", "name": "Follow-up", "status": "skipped", "opens": 0},
            ],
            "senders": [{"identityId": "i-1", "name": "Ana Ruiz"}],
        },
        {
            "id": "c-2",
            "name": "Webinar",
            "sequenceStatus": "active",
            "engagementStatus": "opened",
            "steps": [
                {"index": 1, "channel": "email", "name": "Invite", "status": "sent", "opens": 2, "clicks": 0},
                {"index": 2, "channel": "call", "name": "Call", "status": "pending"},
            ],
            "senders": [{"identityId": "i-2", "name": "Bo Li"}, {"identityId": "i-1", "name": "ana ruiz"}],
        },
    ],
    "activities": [
        {"id": "a1", "type": "email_sent", "at": "2026-11-02T09:15:00Z", "summary": "Intro"},
        {"id": "a2", "type": "linkedin_message", "at": "2026-11-05T10:00:00+01:00", "summary": "Hi Jane"},
        {"id": "a3", "type": "email_opened", "at": "2026-11-03T08:00:00Z"},
    ],
    "conversationTags": [
        {"name": "Pricing", "category": "NEUTRAL"},
        {"name": "Interested", "category": "POSITIVE"},
        {"name": "pricing", "category": "NEUTRAL"},
    ],
}

EXPECTED_TEXT = {
    "campaignSequenceDetails": (
        'Q4 Outreach #1 email "Intro": sent; Q4 Outreach #2 linkedin "Connect": sent; '
        'Q4 Outreach #3 email "Follow-up": skipped; Webinar #1 email "Invite": sent; '
        'Webinar #2 call "Call": pending'
    ),
    "campaignEngagementStatus": "Q4 Outreach: replied; Webinar: opened",
    "sequenceStatus": "Q4 Outreach: finished; Webinar: active",
    "campaignReplyAnalysis": (
        "Q4 Outreach #1 email: no reply; Q4 Outreach #2 linkedin: replied; Webinar #1 email: no reply"
    ),
    "campaignOpens": "5",
    "campaignClicks": "1",
    "campaignOpenAnalysis": "Q4 Outreach #1: opened (3); Webinar #1: opened (2)",
    "campaignClickAnalysis": "Q4 Outreach #1: clicked (1); Webinar #1: not clicked",
    "campaigns": "Q4 Outreach, Webinar",
    "senders": "Ana Ruiz, Bo Li",
    "activities": (
        "2026-11-05 09:00 linkedin_message: Hi Jane; 2026-11-03 08:00 email_opened; "
        "2026-11-02 09:15 email_sent: Intro"
    ),
    "conversationTags": "Pricing, Interested",
    "conversationTagCategories": "POSITIVE, NEUTRAL",
}


@pytest.mark.parametrize("key", CAMPAIGN_PROPERTIES)
def test_each_property_from_the_fixture(key: str) -> None:
    assert compute_properties(CONTACT)[key].text == EXPECTED_TEXT[key]


def test_totals_are_numbers_and_choice_is_the_latest_campaign() -> None:
    props = compute_properties(CONTACT)
    assert props["campaignOpens"].number == 5
    assert props["campaignClicks"].number == 1
    assert props["campaignEngagementStatus"].choice == "opened"
    assert props["sequenceStatus"].choice == "active"


def test_contact_without_campaign_data_has_no_values() -> None:
    props = compute_properties({"id": "p-2"})
    assert all(p.empty for p in props.values())


def _string(name: str, max_length: int) -> DynamicsColumn:
    return DynamicsColumn(name, AttributeType.STRING, max_length=max_length)


def test_truncation_cuts_between_entries_with_a_marker() -> None:
    value = PropertyValue(("alpha one", "beta two", "gamma three"), "; ")
    assert fit_text(value, 100) == "alpha one; beta two; gamma three"
    assert fit_text(value, 31) == "alpha one; beta two; … +1 more"
    assert fit_text(value, 20) == "alpha one; … +2 more"
    assert fit_text(value, 10) == "… +3 more"
    assert fit_text(value, 3) == ""


def test_truncated_text_never_exceeds_max_length_counting_utf16() -> None:
    value = PropertyValue(tuple(f"tag{i} 😀" for i in range(40)), ", ")
    for limit in (15, 37, 64, 100):
        text = fit_text(value, limit)
        assert len(text.encode("utf-16-le")) // 2 <= limit
        assert text.endswith("more")
        kept = text.rsplit(", … +", 1)[0].split(", ") if ", … +" in text else []
        assert all(k in value.entries for k in kept)  # whole entries only


def test_numbers_go_to_numeric_columns_and_text_does_not() -> None:
    props = compute_properties(CONTACT)
    integer = DynamicsColumn("new_opens", AttributeType.INTEGER, min_value=0, max_value=2**31 - 1)
    assert column_value("campaignOpens", props["campaignOpens"], integer) == (5, None)
    value, problem = column_value("campaigns", props["campaigns"], integer)
    assert value is NO_VALUE and problem is not None and problem.field == "new_opens"


def test_choice_columns_take_the_option_by_label() -> None:
    options = (
        OptionValue(100000000, "Not contacted"),
        OptionValue(100000001, "Opened"),
        OptionValue(100000002, "Replied"),
    )
    column = DynamicsColumn("new_status", AttributeType.PICKLIST, options=options)
    props = compute_properties(CONTACT)
    assert column_value("campaignEngagementStatus", props["campaignEngagementStatus"], column) == (
        100000001,
        None,
    )
    fresh = PropertyValue(("X: not_contacted",), choice="not_contacted")
    assert column_value("campaignEngagementStatus", fresh, column) == (100000000, None)
    unknown = PropertyValue(("X: bounced",), choice="bounced")
    value, problem = column_value("campaignEngagementStatus", unknown, column)
    assert value is NO_VALUE and problem is not None and "bounced" in problem.message


def test_multi_select_takes_each_list_item() -> None:
    options = (OptionValue(1, "POSITIVE"), OptionValue(2, "NEUTRAL"), OptionValue(3, "NEGATIVE"))
    column = DynamicsColumn("new_cats", AttributeType.MULTI_SELECT_PICKLIST, options=options)
    props = compute_properties(CONTACT)
    assert column_value("conversationTagCategories", props["conversationTagCategories"], column) == (
        "1,2",
        None,
    )


def test_campaign_values_for_the_mapped_properties_only() -> None:
    mapping = CampaignMapping.model_validate(
        {"campaigns": "new_campaigns", "campaignOpens": "new_opens", "senders": "new_missing"}
    )
    columns = {
        "new_campaigns": _string("new_campaigns", 12),
        "new_opens": DynamicsColumn("new_opens", AttributeType.INTEGER),
    }
    values, problems = campaign_values(CONTACT, mapping, columns)
    assert {v.column: v.value for v in values} == {"new_campaigns": "… +2 more", "new_opens": 5}
    assert [p.field for p in problems] == ["new_missing"]
    assert campaign_values({"id": "x"}, mapping, columns) == ([], [])
