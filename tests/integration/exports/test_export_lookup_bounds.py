"""What an identifier lookup reads is bounded: a value's own LIKE wildcards are escaped, and a lookup that
still matches more rows than the cap stops there with a clear outcome for the records it left unmatched.

Dataverse evaluates ``contains`` as SQL LIKE (``%`` any string, ``_`` any character, ``[`` a set), so a
LinkedIn slug ``%`` (``linkedin.com/in/%25``) or an e-mail ``%@gmail.com`` searched unescaped matches,
and pages through, every row with a LinkedIn URL or a Gmail address. Rows read are counted by the
emulator (``rows_served`` of its stats), which applies the same LIKE semantics.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from core.services.jobs import lookups
from tests.integration.exports.conftest import ExportHarness
from tests.support.dataverse import create, rows

BASE = {
    "fieldMapping": {
        "contacts": [
            {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
            {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
        ],
        "companies": [{"kind": "platform_field", "platformField": "name", "dynamicsField": "name"}],
    },
    "campaignMapping": {},
    "userMapping": {},
}
LINKEDIN = DynamicsConfig.model_validate(
    {
        **BASE,
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl"},
        },
    }
)
EMAIL_RULE = DynamicsConfig.model_validate(
    {
        **BASE,
        "syncIdentifiers": {
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "or",
                "conditions": [{"platformField": "professionalEmail", "dynamicsField": "emailaddress1"}],
            },
        },
    }
)
DOMAIN = DynamicsConfig.model_validate(
    {**BASE, "syncIdentifiers": {"companyIdentifier": "domain", "columns": {"companyDomain": "websiteurl"}}}
)
PEOPLE = 30


def _seed_people(env: ExportHarness) -> None:
    for i in range(PEOPLE):
        create(
            env.emulator,
            "contacts",
            {
                "firstname": f"Person{i}",
                "lastname": "Seeded",
                "emailaddress1": f"person{i}@gmail.com",
                "new_linkedinurl": f"https://www.linkedin.com/in/person{i}",
            },
        )
    env.emulator.reset_stats()


@pytest.mark.parametrize(
    ("config", "record"),
    [
        (
            LINKEDIN,
            {"id": "p-pct", "firstName": "Pat", "lastName": "Cent", "linkedinUrl": "linkedin.com/in/%25"},
        ),
        (
            EMAIL_RULE,
            {"id": "p-pct", "firstName": "Pat", "lastName": "Cent", "professionalEmail": "%@gmail.com"},
        ),
        (
            EMAIL_RULE,
            {"id": "p-pct", "firstName": "Pat", "lastName": "Cent", "professionalEmail": "_@gmail.com"},
        ),
    ],
    ids=["linkedin-percent", "email-percent", "email-underscore"],
)
def test_wildcards_in_a_value_are_searched_literally(
    harness_for: Callable[[DynamicsConfig], ExportHarness], config: DynamicsConfig, record: dict[str, str]
) -> None:
    env = harness_for(config)
    _seed_people(env)
    # The same export with a value nobody has and no wildcard: what a lookup reads besides matches.
    plain = {
        k: v.replace("%25", "nobody").replace("%", "nobody").replace("_", "nobody") for k, v in record.items()
    }
    assert (
        env.run(
            {
                "entity": "contacts",
                "records": [plain | {"id": "p-plain", "firstName": "Plain", "lastName": "Value"}],
            }
        )["records"]["p-plain"]["action"]
        == "created"
    )
    baseline = env.emulator.stats()["rows_served"]
    env.emulator.reset_stats()

    outcome = env.run({"entity": "contacts", "records": [record]})["records"]["p-pct"]

    assert outcome["action"] == "created"
    # Nobody seeded has that slug or address: no seeded row is read, as for the plain value.
    assert env.emulator.stats()["rows_served"] == baseline < PEOPLE
    assert len(rows(env.emulator, "contacts")) == PEOPLE + 2


def test_a_value_with_a_wildcard_character_still_finds_its_own_row(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    env = harness_for(LINKEDIN)
    _seed_people(env)
    own = create(
        env.emulator,
        "contacts",
        {"firstname": "Pat", "lastname": "Cent", "new_linkedinurl": "https://www.linkedin.com/in/50%_off"},
    )
    record = {
        "id": "p-50",
        "firstName": "Pat",
        "lastName": "Cent",
        "linkedinUrl": "linkedin.com/in/50%25_off",
    }

    outcome = env.run({"entity": "contacts", "records": [record]})["records"]["p-50"]

    assert outcome["dynamicsId"] == own
    assert outcome["match"]["rule"] == "linkedin"


def test_a_lookup_matching_more_rows_than_the_cap_stops_and_says_so(
    harness_for: Callable[[DynamicsConfig], ExportHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = harness_for(DOMAIN)
    # Websites that contain "acme.com" but are other domains: the lookup's contains() finds them all.
    for i in range(9):
        create(
            env.emulator, "accounts", {"name": f"Other {i}", "websiteurl": f"https://acme.com.other{i}.org"}
        )
    env.emulator.reset_stats()
    monkeypatch.setattr(lookups, "LOOKUP_PAGE_SIZE", 2)
    monkeypatch.setattr(lookups, "MAX_LOOKUP_PAGES", 3)

    result = env.run(
        {"entity": "companies", "records": [{"id": "co-acme", "name": "Acme", "domain": "acme.com"}]}
    )
    outcome = result["records"]["co-acme"]

    assert outcome["action"] == "invalid"
    assert [e.get("code") for e in outcome["errors"]] == [lookups.LOOKUP_TOO_BROAD]
    assert "more specific identifier" in outcome["errors"][0]["message"]
    assert env.emulator.stats()["rows_served"] < 9  # 3 pages of 2 rows (and a user row), not all 9
    assert len(rows(env.emulator, "accounts")) == 9  # nothing created on partial evidence
