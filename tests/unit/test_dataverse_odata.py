"""OData text as the client writes it: literals, key segments, percent-encoding and URL-length splitting."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import parse_qsl

import pytest

from core.adapters.dataverse.odata import (
    encode_query,
    encode_target,
    encode_value,
    expand_option,
    key_segment,
    not_in_filter,
    odata_literal,
    split_clauses,
)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (1.5, "1.5"),
        (uuid.UUID("12345678-1234-1234-1234-1234567890AB"), "12345678-1234-1234-1234-1234567890ab"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05Z"),
        ("O'Brien", "'O''Brien'"),
        ("a\x00b", "'ab'"),
    ],
)
def test_literals(value: object, literal: str) -> None:
    assert odata_literal(value) == literal


def test_key_segments() -> None:
    assert key_segment("12345678-1234-1234-1234-1234567890AB") == "(12345678-1234-1234-1234-1234567890ab)"
    assert (
        key_segment({"emailaddress1": "o'neill@acme.com", "n": 1})
        == "(emailaddress1='o''neill@acme.com',n=1)"
    )
    with pytest.raises(ValueError, match="GUID"):
        key_segment("contacts(1)")
    with pytest.raises(ValueError, match="at least one column"):
        key_segment({})


def test_query_values_cannot_break_out_of_their_option() -> None:
    value = "lastname eq 'a&$top=1' or x eq 'b+c=d#e f'"
    query = encode_query([("$filter", value), ("$select", "a,b")])
    assert dict(parse_qsl(query)) == {"$filter": value, "$select": "a,b"}
    assert "'" in query and "(" not in encode_value("&") and " " not in query
    assert encode_target("contacts(x)?$select=a b", [("$filter", "c eq 'd&e'")]) == (
        "contacts(x)?$select=a%20b&$filter=c%20eq%20'd%26e'"
    )


def test_not_in_and_expand() -> None:
    assert not_in_filter("lastname", ["O'Neill"]) == (
        "Microsoft.Dynamics.CRM.NotIn(PropertyName='lastname',PropertyValues=['O''Neill'])"
    )
    assert expand_option([("parentcustomerid_account", ("name", "websiteurl"))]) == (
        "parentcustomerid_account($select=name,websiteurl)"
    )
    assert expand_option([]) is None


def test_split_clauses_fills_each_url_up_to_the_limit_and_never_past_it() -> None:
    clauses = ["a" * 10] * 5  # separator " or " encodes to 8 characters
    # 100 fixed + 10 + 8 + 10 = 128: two clauses fit exactly, a third would need 18 more
    groups = split_clauses(clauses, fixed_length=100, max_length=128, max_clauses=100, separator=" or ")
    assert groups == [[0, 1], [2, 3], [4]]
    one_less = split_clauses(clauses, fixed_length=100, max_length=127, max_clauses=100, separator=" or ")
    assert one_less == [[0], [1], [2], [3], [4]]
    by_count = split_clauses(clauses, fixed_length=0, max_length=10_000, max_clauses=2, separator=" or ")
    assert by_count == [[0, 1], [2, 3], [4]]


def test_split_clauses_counts_what_each_clause_brings_along() -> None:
    clauses = ["a" * 10] * 3

    def split(extra: int) -> list[list[int]]:
        return split_clauses(
            clauses,
            fixed_length=100,
            max_length=139,
            max_clauses=100,
            separator=" or ",
            extra_length=lambda position: extra if position == 0 else 0,
        )

    assert split(0) == [[0, 1], [2]]  # 100 + 10 + 8 + 10 = 128
    # the first clause also excludes a value 12 characters long: 100 + 22 + 8 + 10 = 140 no longer fits
    assert split(12) == [[0], [1, 2]]


def test_a_clause_that_alone_is_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="a single value for lastname does not fit in a 50-byte URL"):
        split_clauses(
            ["x" * 41],
            fixed_length=10,
            max_length=50,
            max_clauses=10,
            separator=",",
            what="value for lastname",
        )
