"""The demo's sample data: a platform contact list, the records already in Dynamics, engagement events.

Deterministic (no randomness): the demo's summary and tests/e2e/test_demo.py rely on the same counts.
Every name that identifies a record (domains, company names, LinkedIn profiles, e-mail addresses) carries
the run's ``tag``, so the demo can run again against a stack left running and find the same situation.

The list (``CONTACT_COUNT`` = 200 contacts, each with an embedded company, campaign data on most):
- ``LINKEDIN_MATCHES`` contacts are already in Dynamics with the same LinkedIn profile written another way
  (``https://www.linkedin.com/in/<slug>/`` there, ``linkedin.com/in/<Slug>`` here) and an older job title:
  matched by LinkedIn, updated.
- ``NAME_MATCHES`` contacts are in Dynamics without a LinkedIn URL, under an accented / upper-case name at
  an account whose name differs in case and legal suffix: matched by name + company, updated.
- ``UNCHANGED`` contacts are in Dynamics with every mapped value already equal: nothing is written.
- ``DUPLICATES`` rows repeat an earlier contact's LinkedIn profile: skipped, naming the keeper.
- ``INVALID`` rows: two carry a malformed e-mail address, one a job title longer than Dynamics'
  ``jobtitle`` column holds (MaxLength 100): refused before sending, naming the field.
- ``FAILED`` row is a new person whose work e-mail is the one a different Dynamics contact already has
  (``shared_email``, a shared inbox); the organisation keeps e-mails unique with an alternate key
  (scripts/stack.py), so Dynamics refuses the create: the record fails with the field and Dynamics' code.
- the rest are new: created, with their companies (``EXISTING_COMPANIES`` of those companies already exist
  in Dynamics under a ``www.`` website URL: matched by domain).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CONTACT_COUNT = 200
LINKEDIN_MATCHES = 15
NAME_MATCHES = 8
UNCHANGED = 5
DUPLICATES = 3
INVALID = 3
FAILED = 1
COMPANY_COUNT = 40
EXISTING_COMPANIES = 10


def expected_counts() -> tuple[dict[str, int], dict[str, int]]:
    """The outcomes the list is built for: the first export, then the same list exported again."""
    matched = LINKEDIN_MATCHES + NAME_MATCHES + UNCHANGED
    first = {
        "created": CONTACT_COUNT - matched - DUPLICATES - INVALID - FAILED,
        "updated": LINKEDIN_MATCHES + NAME_MATCHES,
        "unchanged": UNCHANGED,
        "skipped": DUPLICATES,
        "failed": FAILED,
        "invalid": INVALID,
    }
    written = first["created"] + first["updated"] + first["unchanged"]
    return first, {**first, "created": 0, "updated": 0, "unchanged": written}


FIRST_NAMES = ["Ana", "Ben", "Chloé", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas",
               "Keiko", "Liam", "María", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven",
               "Tariq"]  # fmt: skip
LAST_NAMES = ["Álvarez", "Brown", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ivanova",
              "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Rossi", "Silva",
              "Tanaka", "Weber"]  # fmt: skip
TITLES = ["Head of Sales", "CTO", "VP Marketing", "Account Executive", "Data Engineer", "COO",
          "Sales Manager", "Founder", "Product Lead", "Growth Marketer"]  # fmt: skip
SENIORITIES = ["Entry", "Senior", "Manager", "Director", "VP", "C-Level", "Owner"]
INDUSTRIES = ["Software", "Retail", "Logistics", "Banking", "Healthcare"]
CITIES = ["Madrid", "Berlin", "Lyon", "Oslo", "Porto", "Austin", "Leeds", "Turin"]
IDENTITIES = [
    {"id": "identity-alex-linkedin", "kind": "linkedin", "name": "Alex (LinkedIn)", "userId": "user-alex"},
    {"id": "identity-sam-email", "kind": "email", "name": "Sam (e-mail)", "userId": "user-sam"},
    {"id": "identity-unmapped", "kind": "email", "name": "Shared inbox", "userId": "user-nobody"},
]
CAMPAIGN_NAMES = ["Q3 Outbound", "Webinar follow-up", "Fintech ABM"]
BASE_TIME = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def company(index: int, tag: str) -> dict[str, Any]:
    return {
        "id": f"co-{index:03d}",
        "name": f"Nimbus {INDUSTRIES[index % len(INDUSTRIES)]} {tag.upper()} {index} Ltd",
        # a registrable domain of its own (a subdomain of example.com would be example.com to matching)
        "domain": f"nimbus{index}-{tag}.com",
        "employeeCount": 20 + 15 * index,
        "city": CITIES[index % len(CITIES)],
    }


def _campaigns(index: int) -> dict[str, Any]:
    if index % 4 == 3:
        return {}  # not in any campaign
    name = CAMPAIGN_NAMES[index % len(CAMPAIGN_NAMES)]
    sent = BASE_TIME + dt.timedelta(hours=index)
    steps = [
        {"index": 1, "channel": "email", "name": "Intro", "status": "sent", "sentAt": _iso(sent),
         "opens": index % 3, "clicks": index % 2, "replied": index % 5 == 0},
        {"index": 2, "channel": "linkedin", "name": "Connect", "status": "sent" if index % 2 else "pending",
         "replied": False},
        {"index": 3, "channel": "email", "name": "Follow-up", "status": "pending"},
    ]  # fmt: skip
    return {
        "campaigns": [
            {
                "id": f"camp-{index % len(CAMPAIGN_NAMES)}",
                "name": name,
                "sequenceStatus": "active" if index % 5 else "finished",
                "engagementStatus": "replied" if index % 5 == 0 else "opened" if index % 3 else "contacted",
                "steps": steps,
                "senders": [
                    {"identityId": IDENTITIES[index % 2]["id"], "name": IDENTITIES[index % 2]["name"]}
                ],
            }
        ],
        "activities": [
            {
                "id": f"act-{index}",
                "type": "email_sent",
                "at": _iso(sent),
                "summary": "Intro sent",
                "identityId": IDENTITIES[index % 2]["id"],
            }
        ],
        "conversationTags": [{"name": "Pricing", "category": "POSITIVE"}] if index % 5 == 0 else [],
    }


def _slug(index: int, tag: str) -> str:
    return f"{FIRST_NAMES[index % 20]}-{LAST_NAMES[(index // 20) % 20]}-{index}-{tag}".lower().replace(
        "'", ""
    )


def shared_email(tag: str) -> str:
    return f"sales@nimbus5-{tag}.com"


def contacts(tag: str) -> list[dict[str, Any]]:
    """The platform list to export, in the order the demo sends it."""
    out: list[dict[str, Any]] = []
    for index in range(CONTACT_COUNT - DUPLICATES - INVALID - FAILED):
        first, last = FIRST_NAMES[index % 20], LAST_NAMES[(index // 20) % 20]
        contact: dict[str, Any] = {
            "id": f"ct-{index:03d}",
            "firstName": first,
            "lastName": last,
            "jobTitle": TITLES[index % len(TITLES)],
            "seniority": SENIORITIES[index % len(SENIORITIES)],
            "professionalEmail": f"{_slug(index, tag)}@{company(index % COMPANY_COUNT, tag)['domain']}",
            "phoneNumber": f"+34 91 555 {index:04d}",
            "company": company(index % COMPANY_COUNT, tag),
            **_campaigns(index),
        }
        if is_name_match(index) or is_unchanged(index):  # at a company Dynamics already has
            contact["company"] = company(index % EXISTING_COMPANIES, tag)
        if is_unchanged(index):  # no campaign data either: nothing new to write
            contact = {
                k: v for k, v in contact.items() if k not in ("campaigns", "activities", "conversationTags")
            }
        if not is_name_match(index):
            contact["linkedinUrl"] = f"linkedin.com/in/{_slug(index, tag).title()}"
        out.append(contact)
    for n in range(DUPLICATES):  # the same LinkedIn profile as an earlier row, another platform id
        keeper = out[40 + n]
        out.append({**keeper, "id": f"ct-dup-{n}", "jobTitle": "Duplicate row"})
    for n in range(INVALID - 1):
        out.append(
            {**out[60 + n], "id": f"ct-bad-{n}", "professionalEmail": "not-an-email", "linkedinUrl": None}
        )
    too_long = (
        "Senior Vice President of Global Strategic Partnerships, Alliances and Channel Ecosystems (EMEA)"
    )
    out.append({**out[70], "id": "ct-too-long", "linkedinUrl": f"linkedin.com/in/too-long-title-{tag}",
                "firstName": "Tom", "lastName": "Longtitle", "jobTitle": too_long + " & LATAM"})  # fmt: skip
    out.append({**out[80], "id": "ct-shared-inbox", "linkedinUrl": f"linkedin.com/in/sales-desk-{tag}",
                "firstName": "Sales", "lastName": "Desk",
                "professionalEmail": shared_email(tag)})  # fmt: skip
    return out


def is_linkedin_match(index: int) -> bool:
    return index < LINKEDIN_MATCHES


def is_name_match(index: int) -> bool:
    return LINKEDIN_MATCHES <= index < LINKEDIN_MATCHES + NAME_MATCHES


def is_unchanged(index: int) -> bool:
    start = LINKEDIN_MATCHES + NAME_MATCHES
    return start <= index < start + UNCHANGED


def dynamics_values(contact: dict[str, Any]) -> dict[str, Any]:
    """What Dynamics holds for a contact whose mapped values are all up to date (the ``UNCHANGED`` ones)."""
    return {
        "jobtitle": contact["jobTitle"],
        "emailaddress1": contact["professionalEmail"],
        "telephone1": contact["phoneNumber"],
        "new_linkedinurl": contact["linkedinUrl"],
        "new_seniority": 100000000 + SENIORITIES.index(contact["seniority"]),
        "description": "Sourced by the sales-engagement platform",
    }


def events(contacts_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Engagement events for some exported contacts: who ran each step decides who the activity is by."""
    plan = [
        ("email_sent", "identity-sam-email", 4),  # identity's platform user is mapped (user mapping)
        ("linkedin_message", "identity-alex-linkedin", 3),  # identity mapped
        ("call", "identity-unmapped", 2),  # nobody mapped: the default owner
        ("task", None, 2),  # no identity: the default owner
    ]
    out: list[dict[str, Any]] = []
    position = 0
    for kind, identity, count in plan:
        for _ in range(count):
            contact = contacts_[30 + position * 7]
            at = BASE_TIME + dt.timedelta(days=1, minutes=17 * position)
            event: dict[str, Any] = {
                "id": f"evt-{position:03d}",
                "contactId": contact["id"],
                "kind": kind,
                "at": _iso(at),
                "subject": f"{kind.replace('_', ' ').capitalize()} with {contact['firstName']}",
                "body": "Logged by the sales-engagement platform demo",
                "campaignId": "camp-0",
            }
            if identity:
                event["identityId"] = identity
            out.append(event)
            position += 1
    return out
