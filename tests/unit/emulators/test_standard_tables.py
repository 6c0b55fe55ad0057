"""The standard-table data file (``emulators/dataverse/standard_tables.json``) against Microsoft's table
reference pages (MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/reference/entities/
<table>.md): its shape, the pages' column counts ("Writable columns/attributes" and "Read-only
columns/attributes" lists) and a sample of types, lengths, requirement levels and choice options per table,
checked by hand against those pages. The loaded schema must serve exactly these facts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulators.dataverse.schema import ATTRIBUTE_TYPE_CODES, STANDARD_TABLES_PATH, load_schema

DATA: dict[str, Any] = json.loads(Path(STANDARD_TABLES_PATH).read_text())

# (writable, read-only) as the reference pages list them.
REFERENCE_COUNTS = {
    "contact": (157, 66),
    "account": (114, 59),
    "systemuser": (105, 31),
    "team": (20, 28),
    "businessunit": (64, 11),
    "task": (34, 18),
    "email": (72, 39),
    "phonecall": (37, 31),
    "appointment": (43, 37),
    "activityparty": (10, 14),
}
TYPES = set(ATTRIBUTE_TYPE_CODES) | {"Image", "File"}
KEYS = {
    "schema_name",
    "display_name",
    "type",
    "max_length",
    "required",
    "access",
    "readable",
    "targets",
    "options",
    "min",
    "max",
    "precision",
    "format",
    "default",
    "attribute_of",
}


def test_the_file_names_its_source_pages_and_commits() -> None:
    source = DATA["source"]
    assert source["repository"] == "MicrosoftDocs/powerapps-docs"
    assert set(source["pages"]) == set(REFERENCE_COUNTS) == set(DATA["tables"])
    for table, page in source["pages"].items():
        assert page["path"] == f"powerapps-docs/developer/data-platform/reference/entities/{table}.md"
        assert re.fullmatch(r"[0-9a-f]{40}", page["commit"]), table


@pytest.mark.parametrize("table", sorted(REFERENCE_COUNTS))
def test_each_table_holds_the_reference_column_counts_and_a_valid_shape(table: str) -> None:
    columns: dict[str, dict[str, Any]] = DATA["tables"][table]["columns"]
    writable, read_only = REFERENCE_COUNTS[table]
    page = DATA["source"]["pages"][table]
    assert (page["writable_columns"], page["read_only_columns"]) == (writable, read_only)
    assert len(columns) == writable + read_only
    assert sum(1 for spec in columns.values() if spec.get("access") == "read") == read_only
    for name, spec in columns.items():
        assert name == name.lower() and set(spec) <= KEYS, (table, name)
        assert spec["type"] in TYPES, (table, name)
        assert spec["schema_name"].lower() == name, (table, name)
        assert spec.get("access", "rw") in ("rw", "create", "update", "read", "none")
        if spec["type"] in ("String", "Memo"):
            assert isinstance(spec["max_length"], int) and spec["max_length"] > 0, (table, name)
        if spec["type"] in ("Lookup", "Customer", "Owner", "PartyList"):
            assert spec["targets"], (table, name)
        for option in spec.get("options", ()):
            assert isinstance(option[0], int) and isinstance(option[1], str) and option[1], (table, name)
        if spec["type"] in ("Picklist", "State", "Status", "Boolean"):
            assert spec["options"], (table, name)
        if spec["type"] == "Status":
            states = {o[0] for o in columns["statecode"]["options"]}
            assert all(o[2] in states for o in spec["options"]), table


def _column(table: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = DATA["tables"][table]["columns"][name]
    return spec


SAMPLES = [
    ("contact", "emailaddress1", {"type": "String", "max_length": 100, "format": "Email"}),
    ("contact", "lastname", {"type": "String", "max_length": 50, "required": "ApplicationRequired"}),
    ("contact", "firstname", {"type": "String", "max_length": 50, "required": "Recommended"}),
    ("contact", "yomifullname", {"type": "String", "max_length": 450, "access": "read"}),
    ("contact", "parentcustomerid", {"type": "Customer", "targets": ["account", "contact"]}),
    ("contact", "annualincome", {"type": "Money", "min": 0, "max": 100000000000000, "precision": 2}),
    ("contact", "contactid", {"type": "Uniqueidentifier", "access": "create", "required": "SystemRequired"}),
    ("account", "name", {"type": "String", "max_length": 160, "required": "ApplicationRequired"}),
    ("account", "tickersymbol", {"type": "String", "max_length": 10, "format": "TickerSymbol"}),
    ("account", "address1_telephone1", {"display_name": "Address Phone"}),
    (
        "systemuser",
        "internalemailaddress",
        {"type": "String", "max_length": 100, "required": "SystemRequired"},
    ),
    ("systemuser", "firstname", {"type": "String", "max_length": 256}),
    ("systemuser", "azureactivedirectoryobjectid", {"type": "Uniqueidentifier", "access": "read"}),
    ("team", "name", {"type": "String", "max_length": 160, "required": "SystemRequired"}),
    ("team", "teamtype", {"type": "Picklist", "access": "create"}),
    ("businessunit", "picture", {"type": "Memo", "max_length": 1073741823}),
    ("businessunit", "creditlimit", {"type": "Double", "min": 0, "max": 1000000000, "precision": 2}),
    ("task", "subject", {"type": "String", "max_length": 200, "required": "ApplicationRequired"}),
    ("task", "percentcomplete", {"type": "Integer", "min": 0, "max": 100}),
    ("email", "subject", {"type": "String", "max_length": 800}),
    ("email", "description", {"type": "Memo", "max_length": 1073741823}),
    ("email", "to", {"type": "PartyList"}),
    ("phonecall", "phonenumber", {"type": "String", "max_length": 200, "format": "Phone"}),
    ("appointment", "description", {"type": "Memo", "max_length": 1048576}),
    ("appointment", "scheduledstart", {"type": "DateTime", "required": "ApplicationRequired"}),
    ("activityparty", "addressused", {"type": "String", "max_length": 320}),
]


@pytest.mark.parametrize(("table", "name", "expected"), SAMPLES)
def test_sampled_columns_match_the_reference_pages(table: str, name: str, expected: dict[str, Any]) -> None:
    spec = _column(table, name)
    assert {key: spec.get(key) for key in expected} == expected


OPTION_SAMPLES = [
    ("contact", "gendercode", [[1, "Male"], [2, "Female"]]),
    (
        "contact",
        "preferredcontactmethodcode",
        [[1, "Any"], [2, "Email"], [3, "Phone"], [4, "Fax"], [5, "Mail"]],
    ),
    ("contact", "familystatuscode", [[1, "Single"], [2, "Married"], [3, "Divorced"], [4, "Widowed"]]),
    ("contact", "donotemail", [[1, "Do Not Allow"], [0, "Allow"]]),
    ("contact", "statuscode", [[1, "Active", 0], [2, "Inactive", 1]]),
    ("account", "accountcategorycode", [[1, "Preferred Customer"], [2, "Standard"]]),
    ("account", "ownershipcode", [[1, "Public"], [2, "Private"], [3, "Subsidiary"], [4, "Other"]]),
    ("systemuser", "isdisabled", [[1, "Disabled"], [0, "Enabled"]]),
    ("team", "membershiptype", [[0, "Members and guests"], [1, "Members"], [2, "Owners"], [3, "Guests"]]),
    ("task", "prioritycode", [[0, "Low"], [1, "Normal"], [2, "High"]]),
    ("phonecall", "statuscode", [[1, "Open", 0], [2, "Made", 1], [3, "Canceled", 2], [4, "Received", 1]]),
    ("appointment", "statecode", [[0, "Open"], [1, "Completed"], [2, "Canceled"], [3, "Scheduled"]]),
]


@pytest.mark.parametrize(("table", "name", "options"), OPTION_SAMPLES)
def test_sampled_choices_carry_every_option_with_its_english_label(
    table: str, name: str, options: list[Any]
) -> None:
    assert _column(table, name)["options"] == options


def test_long_choice_lists_are_complete() -> None:
    industries = _column("account", "industrycode")["options"]
    assert [o[0] for o in industries] == list(range(1, 34))
    assert industries[8] == [9, "Design, Direction and Creative Management"]
    email_status = {o[0]: (o[1], o[2]) for o in _column("email", "statuscode")["options"]}
    assert email_status[3] == ("Sent", 1) and email_status[4] == ("Received", 1) and len(email_status) == 8
    assert len(_column("activityparty", "participationtypemask")["options"]) == 12


def test_the_loaded_schema_serves_the_reference_facts_plus_the_custom_columns() -> None:
    schema = load_schema()
    contact = schema.tables["contact"]
    reference = DATA["tables"]["contact"]["columns"]
    assert set(reference) <= set(contact.columns)
    custom = {name for name, column in contact.columns.items() if column.is_custom}
    assert "new_linkedinurl" in custom and not custom & set(reference)
    gender = contact.columns["gendercode"]
    assert (gender.type, [(o.value, o.label) for o in gender.options]) == (
        "Picklist",
        [(1, "Male"), (2, "Female")],
    )
    assert contact.columns["parentcustomerid"].cascade_delete  # the emulator's parental behaviour stays
    assert contact.columns["accountidname"].attribute_of == "accountid"  # a name companion, not a property
    assert not contact.columns["accountidname"].is_property
    assert schema.tables["task"].columns["regardingobjectid"].cascade_delete
