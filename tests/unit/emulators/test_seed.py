"""Seed data: deterministic, referentially sound, within the schema's limits, and full of the hard cases."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from emulators.dataverse.seed import (
    Seed,
    SeedSpec,
    build_seed,
    fold_name,
    generate_seed,
    variant_linkedin_forms,
    website_forms,
)

REPO = Path(__file__).resolve().parents[3]
ORDER = ["businessunits", "systemusers", "accounts", "contacts"]
PRIMARY_KEY = {
    "businessunits": "businessunitid",
    "systemusers": "systemuserid",
    "accounts": "accountid",
    "contacts": "contactid",
}
# MaxLength of the default schema's String columns (notes: reference/entities/contact.md, account.md)
MAX_LENGTH = {
    "firstname": 50,
    "lastname": 50,
    "emailaddress1": 100,
    "jobtitle": 100,
    "telephone1": 50,
    "mobilephone": 50,
    "websiteurl": 200,
    "new_linkedinurl": 400,
    "name": 160,
    "address1_city": 80,
    "address1_country": 80,
    "description": 2000,
}
BIND = re.compile(r"^/(\w+)\(([0-9a-f-]{36})\)$")


@pytest.fixture(scope="module")
def seed() -> Seed:
    return build_seed(SeedSpec())


def canonical_of(url: str) -> str:
    """An independent normaliser, written the way a matcher would, used to check the ground truth."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    path = unquote(parts.path).rstrip("/")
    slug = path.split("/")[-1]
    return "https://www.linkedin.com/in/" + slug.lower()


def test_default_volumes_and_dependency_order(seed: Seed) -> None:
    counts = Counter(entity for entity, _ in seed.records)
    assert counts == {"businessunits": 1, "systemusers": 20, "accounts": 2000, "contacts": 10000}
    positions = [ORDER.index(entity) for entity, _ in seed.records]
    assert positions == sorted(positions)


def test_exactly_one_user_is_disabled_and_owns_nothing(seed: Seed) -> None:
    users = [payload for entity, payload in seed.records if entity == "systemusers"]
    assert not any("isdisabled" in u for u in users)  # not valid for create in Dataverse
    disabled = [record_id for entity, record_id, patch in seed.updates if patch == {"isdisabled": True}]
    assert [e for e, _, _ in seed.updates] == ["systemusers"]
    assert disabled == seed.truth.disabled_user_ids and len(disabled) == 1
    assert disabled[0] in {u["systemuserid"] for u in users}
    owners = {p.get("ownerid@odata.bind") for _, p in seed.records}
    assert f"/systemusers({disabled[0]})" not in owners
    assert len({u["domainname"] for u in users}) == 20


def test_same_spec_gives_identical_bytes_and_another_seed_differs() -> None:
    spec = SeedSpec(accounts=300, contacts=1500)
    first = json.dumps(generate_seed(spec), ensure_ascii=False)
    assert json.dumps(generate_seed(spec), ensure_ascii=False) == first
    assert (
        json.dumps(generate_seed(SeedSpec(accounts=300, contacts=1500, seed=43)), ensure_ascii=False) != first
    )


def test_output_does_not_depend_on_hash_randomisation() -> None:
    code = (
        "import hashlib, json; from emulators.dataverse.seed import SeedSpec, generate_seed; "
        "print(hashlib.sha256(json.dumps(generate_seed(SeedSpec(accounts=200, contacts=800))).encode())"
        ".hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    in_process = hashlib.sha256(
        json.dumps(generate_seed(SeedSpec(accounts=200, contacts=800))).encode()
    ).hexdigest()
    assert digests == {in_process}


def test_keys_are_unique_guids_and_every_bind_points_to_an_earlier_record(seed: Seed) -> None:
    created: dict[str, set[str]] = {entity: set() for entity in ORDER}
    for entity, payload in seed.records:
        for key, value in payload.items():
            if key.endswith("@odata.bind"):
                match = BIND.match(value)
                assert match, value
                assert match.group(2) in created[match.group(1)], f"{key} -> missing {value}"
        record_id = payload[PRIMARY_KEY[entity]]
        assert str(uuid.UUID(record_id)) == record_id
        assert record_id not in created[entity]
        created[entity].add(record_id)


def test_strings_fit_the_schema_max_lengths(seed: Seed) -> None:
    for _, payload in seed.records:
        for column, limit in MAX_LENGTH.items():
            value = payload.get(column)
            if isinstance(value, str):
                assert len(value) <= limit, (column, value)


def test_names_have_apostrophes_accents_mixed_case_and_spaces(seed: Seed) -> None:
    contacts = [p for e, p in seed.records if e == "contacts"]
    names = [p["firstname"] for p in contacts] + [p["lastname"] for p in contacts]
    assert any("'" in n for n in names)
    assert any(re.search(r"[À-ÿĀ-ž]", n) for n in names)
    assert any(n != n.strip() for n in names)
    assert any(n.strip().isupper() and len(n.strip()) > 3 for n in names)
    assert any(n.strip().islower() and len(n.strip()) > 3 for n in names)
    account_names = [p["name"] for e, p in seed.records if e == "accounts"]
    assert any("'" in n for n in account_names)
    assert any(n != n.strip() for n in account_names)


def test_accounts_sharing_a_name_are_reported(seed: Seed) -> None:
    names = {p["accountid"]: p["name"] for e, p in seed.records if e == "accounts"}
    assert len(seed.truth.shared_name_groups) >= 20
    grouped = set()
    for group in seed.truth.shared_name_groups:
        assert len({fold_name(names[a]) for a in group}) == 1
        grouped.update(group)
    by_fold = Counter(fold_name(n) for n in names.values())
    ungrouped = [a for a in names if a not in grouped]
    assert all(by_fold[fold_name(names[a])] == 1 for a in ungrouped)
    # some of them are written differently (case/spaces), not just identical strings
    assert any(len({names[a] for a in group}) > 1 for group in seed.truth.shared_name_groups)


def test_websites_are_full_urls_of_the_recorded_domain(seed: Seed) -> None:
    accounts = {p["accountid"]: p for e, p in seed.records if e == "accounts"}
    forms_seen: Counter[int] = Counter()
    for account_id, domain in seed.truth.account_domains.items():
        website = accounts[account_id].get("websiteurl")
        if domain is None:
            assert website is None
            continue
        forms = website_forms(domain)
        assert website in forms
        forms_seen[forms.index(website)] += 1
    assert len(forms_seen) == len(website_forms("x.com"))  # every form occurs
    suffixes = {d.split(".", 1)[1] for d in seed.truth.account_domains.values() if d}
    assert {"co.uk", "com.br", "com"} <= suffixes


def test_any_extension_groups_share_the_brand_on_other_suffixes(seed: Seed) -> None:
    assert len(seed.truth.any_extension_groups) >= 10
    for group in seed.truth.any_extension_groups:
        domains = {seed.truth.account_domains[a] for a in group}
        assert len(domains) > 1
        assert len({d.split(".", 1)[0] for d in domains if d}) == 1


def test_every_linkedin_form_normalises_to_its_canonical_url() -> None:
    for canonical in (
        "https://www.linkedin.com/in/jane-doe-1a2b3c",
        "https://www.linkedin.com/in/josé-núñez",
        "https://www.linkedin.com/in/łukasz-østergaard-00ff00",
    ):
        forms = variant_linkedin_forms(canonical)
        assert len(forms) == len(set(forms))
        assert {canonical_of(f) for f in forms} == {canonical}
    assert any("%C3%A9" in f for f in variant_linkedin_forms("https://www.linkedin.com/in/josé-núñez"))
    with pytest.raises(ValueError):
        variant_linkedin_forms("https://example.com/in/jane")


def test_stored_linkedin_urls_vary_and_match_the_ground_truth(seed: Seed) -> None:
    contacts = {p["contactid"]: p for e, p in seed.records if e == "contacts"}
    with_url = [c for c in contacts.values() if "new_linkedinurl" in c]
    assert 0.6 < len(with_url) / len(contacts) < 0.8
    assert set(seed.truth.contact_linkedin) == {c["contactid"] for c in with_url}
    shapes: Counter[int] = Counter()
    for contact_id, canonical in seed.truth.contact_linkedin.items():
        stored = contacts[contact_id]["new_linkedinurl"]
        assert stored in variant_linkedin_forms(canonical)
        assert canonical_of(stored) == canonical
        shapes[variant_linkedin_forms(canonical).index(stored)] += 1
    assert len(shapes) >= 14  # nearly every form is stored somewhere
    assert any("%" in c["new_linkedinurl"] for c in with_url)
    assert any(re.search(r"[À-ÿĀ-ž]", c["new_linkedinurl"]) for c in with_url)


def test_duplicate_contacts_are_the_same_person_at_the_same_company(seed: Seed) -> None:
    contacts = {p["contactid"]: p for e, p in seed.records if e == "contacts"}
    groups = seed.truth.duplicate_contact_groups
    duplicates = sum(len(g) - 1 for g in groups)
    assert 0.02 < duplicates / len(contacts) < 0.06
    differently_typed = 0
    for group in groups:
        members = [contacts[c] for c in group]
        assert len({fold_name(m["firstname"] + " " + m["lastname"]) for m in members}) == 1
        assert len({seed.truth.contact_account[c] for c in group}) == 1
        assert len({m.get("parentcustomerid_account@odata.bind") for m in members}) == 1
        if len({(m["firstname"], m["lastname"]) for m in members}) > 1:
            differently_typed += 1
    assert differently_typed > len(groups) / 4


def test_small_specs_and_validation() -> None:
    small = build_seed(SeedSpec(accounts=0, contacts=5, users=1))
    records = small.records
    assert len([p for e, p in records if e == "systemusers"]) == 1
    assert small.updates == [] and small.truth.disabled_user_id is None
    contacts: list[dict[str, Any]] = [p for e, p in records if e == "contacts"]
    assert len(contacts) == 5
    assert not any("parentcustomerid_account@odata.bind" in c for c in contacts)
    with pytest.raises(ValueError):
        SeedSpec(contacts=-1)
    with pytest.raises(ValueError):
        SeedSpec(duplicate_rate=2)
