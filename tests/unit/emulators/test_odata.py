"""The emulator's OData query language (powerapps-docs webapi/query/filter-rows.md, query/overview.md)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from emulators.dataverse.odata import (
    AllHint,
    AnyHint,
    ContainsHint,
    EqHint,
    ExpandItem,
    Hint,
    ODataError,
    Row,
    escape_literal,
    fold,
    index_hint,
    like_fold,
    parse_filter,
    parse_query,
    sort_rows,
    split_top_level,
)

ACCOUNTS: dict[str, Row] = {
    "a1": {"accountid": "a1", "name": "Contoso", "address1_city": "Madrid"},
    "a2": {"accountid": "a2", "name": "Fabrikam", "address1_city": None},
}


def nav(row: Row, navigation: str) -> Row | None:
    if navigation == "parentcustomerid_account":
        target = row.get("_parentcustomerid_value")
        return ACCOUNTS.get(target) if isinstance(target, str) else None
    return None


def matches(filter_text: str, row: Row, **params: str) -> bool:
    return parse_filter(filter_text, params).evaluate(row, nav)


def error_of(filter_text: str, **params: str) -> ODataError:
    with pytest.raises(ODataError) as info:
        parse_query({"$filter": filter_text, **params})
    return info.value


# ---------------------------------------------------------------------------------------------
# Comparison semantics
# ---------------------------------------------------------------------------------------------


def test_string_equality_ignores_case_accents_and_trailing_spaces() -> None:
    # language-collations.md: English environments use a _CI_AI collation.
    assert matches("lastname eq 'garcía'", {"lastname": "GARCIA"})
    assert matches("lastname eq 'Smith'", {"lastname": "Smith  "})
    assert not matches("lastname eq 'Smith'", {"lastname": " Smith"})
    assert not matches("lastname eq 'Smyth'", {"lastname": "Smith"})


def test_doubled_quote_is_an_escaped_apostrophe() -> None:
    assert matches("lastname eq 'O''Bryan'", {"lastname": "o'bryan"})
    assert escape_literal("O'Bryan") == "O''Bryan"
    name = "D'Arcy''s"
    text = f"lastname eq '{escape_literal(name)}'"
    assert matches(text, {"lastname": "D'Arcy''s"})


def test_unescaped_quote_gives_the_real_unterminated_literal_error() -> None:
    text = "lastname eq 'O'Bryan'"
    err = error_of(text)
    assert err.status == 400
    assert err.message == f"There is an unterminated literal at position {len(text)} in '{text}'."


def test_null_semantics_follow_sql_three_valued_logic() -> None:
    assert matches("lastname eq null", {"firstname": "x"})
    assert matches("lastname ne null", {"lastname": "x"})
    assert not matches("lastname ne 'x'", {"lastname": None})
    assert not matches("not (lastname eq 'x')", {"lastname": None})
    assert matches("not (lastname eq 'x')", {"lastname": "y"})
    assert not matches("numberofchildren gt 1", {"numberofchildren": None})
    # unknown or true is true; unknown and false is false
    assert matches("lastname eq 'x' or firstname eq 'a'", {"lastname": None, "firstname": "a"})


def test_numeric_and_boolean_comparisons() -> None:
    row = {"numberofemployees": 250, "revenue": 1000.5, "donotemail": True}
    assert matches("numberofemployees gt 100 and numberofemployees le 250", row)
    assert not matches("numberofemployees lt 250", row)
    assert matches("revenue ge 1000.5", row)
    assert matches("donotemail eq true", row)
    assert not matches("donotemail eq false", row)
    assert matches("-5 lt numberofemployees", row)  # literal on the left is mirrored


def test_datetime_and_guid_literals_are_unquoted() -> None:
    row = {"createdon": "2024-03-01T10:00:00Z", "_ownerid_value": "2a6e4b32-1f2b-4b3a-9a1c-0c1d2e3f4a5b"}
    assert matches("createdon gt 2024-03-01T09:59:59Z", row)
    assert not matches("createdon gt 2024-03-01T10:00:00Z", row)
    assert matches("createdon ge 2024-03-01", row)
    assert matches("_ownerid_value eq 2A6E4B32-1F2B-4B3A-9A1C-0C1D2E3F4A5B", row)


def test_string_functions_are_case_and_accent_insensitive() -> None:
    row = {"emailaddress1": "José.Pérez@Contoso.com"}
    assert matches("contains(emailaddress1,'PEREZ')", row)
    assert matches("startswith(emailaddress1, 'jose')", row)
    assert matches("endswith(emailaddress1,'.COM')", row)
    assert not matches("endswith(emailaddress1,'.org')", row)
    assert matches("not contains(emailaddress1,'xyz')", row)
    assert not matches("contains(emailaddress1,'x')", {"emailaddress1": None})


def test_lookup_navigation_and_lookup_value_columns() -> None:
    contact = {"_parentcustomerid_value": "a1"}
    assert matches("parentcustomerid_account/name eq 'contoso'", contact)
    assert not matches("parentcustomerid_account/name eq 'Fabrikam'", contact)
    assert not matches("parentcustomerid_account/name eq 'Contoso'", {"_parentcustomerid_value": None})
    assert matches("parentcustomerid_account/address1_city eq null", {"_parentcustomerid_value": "a2"})
    expr = parse_filter("parentcustomerid_account/name eq 'x' and _parentcustomerid_value ne null")
    assert expr.columns() == {"parentcustomerid_account/name", "_parentcustomerid_value"}


# ---------------------------------------------------------------------------------------------
# Grammar and precedence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        # and binds tighter than or
        ("a eq 1 or a eq 2 and b eq 3", {"a": 1, "b": 0}, True),
        ("(a eq 1 or a eq 2) and b eq 3", {"a": 1, "b": 0}, False),
        ("a eq 2 and b eq 3 or a eq 1", {"a": 1, "b": 0}, True),
        # not binds tighter than and
        ("not a eq 1 and b eq 0", {"a": 2, "b": 0}, True),
        ("not (a eq 1 and b eq 0)", {"a": 1, "b": 0}, False),
        ("not not a eq 1", {"a": 1}, True),
        ("((a eq 1))", {"a": 1}, True),
        ("donotemail", {"donotemail": True}, True),
        ("not donotemail", {"donotemail": True}, False),
    ],
)
def test_precedence(text: str, row: dict[str, Any], expected: bool) -> None:
    assert matches(text, row) is expected


def test_sdk_filter_output_parses() -> None:
    """Shapes written by PowerPlatform-Dataverse-Client's models/filters.py."""
    row = {"statecode": 0, "lastname": "Smith", "createdon": "2024-01-02T00:00:00Z"}
    assert matches(
        "((statecode eq 0 and lastname eq 'Smith') or not (createdon lt 2024-01-01T00:00:00Z))", row
    )
    assert matches('Microsoft.Dynamics.CRM.In(PropertyName=\'statecode\',PropertyValues=["0","1"])', row)
    assert not matches("Microsoft.Dynamics.CRM.NotIn(PropertyName='statecode',PropertyValues=[\"0\"])", row)
    assert matches(
        "Microsoft.Dynamics.CRM.Between(PropertyName='createdon',"
        'PropertyValues=["2024-01-01T00:00:00Z","2024-01-03T00:00:00Z"])',
        row,
    )


def test_in_with_parameter_aliases() -> None:
    row = {"lastname": "Núñez"}
    text = "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)"
    assert matches(text, row, **{"@p1": "'lastname'", "@p2": '["a","NUNEZ"]'})
    assert not matches(text, row, **{"@p1": "'lastname'", "@p2": '["a","b"]'})
    assert matches("lastname eq @v", row, **{"@v": "'nunez'"})
    err = error_of("lastname eq @missing")
    assert err.status == 400 and "@missing" in err.message


def test_enum_literal_used_by_metadata_queries() -> None:
    expr = parse_filter("AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'")
    assert expr.evaluate({"AttributeType": "Picklist"}, nav)
    assert not expr.evaluate({"AttributeType": "String"}, nav)


@pytest.mark.parametrize(
    "text",
    [
        "lastname eq",
        "lastname eq 'a' and",
        "(lastname eq 'a'",
        "lastname eq 'a')",
        "lastname eq 'a' 'b'",
        "lastname foo 'a'",
        "'a' eq 'b'",
        "contains(lastname)",
        "lastname eq 'a' # x",
    ],
)
def test_syntax_errors_are_400(text: str) -> None:
    err = error_of(text)
    assert err.status == 400
    assert err.code == "0x80060888"


def test_unsupported_operators_and_functions_are_rejected() -> None:
    assert "add" in error_of("numberofemployees add 1 eq 2").message
    assert "substringof" in error_of("substringof('a', lastname)").message
    assert (
        "LastXDays"
        in error_of("Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=3)").message
    )


def test_unknown_column_message_names_the_table_type() -> None:
    known = {"lastname", "firstname", "parentcustomerid_account/name"}
    with pytest.raises(ODataError) as info:
        parse_query({"$filter": "lastnme eq 'x'"}, known_columns=known.__contains__, entity_type="contact")
    assert info.value.status == 400
    assert info.value.code == "0x80060888"
    assert (
        info.value.message
        == "Could not find a property named 'lastnme' on type 'Microsoft.Dynamics.CRM.contact'."
    )
    for params in ({"$select": "firstname,nope"}, {"$orderby": "nope desc"}):
        with pytest.raises(ODataError, match="'nope'"):
            parse_query(params, known_columns=known.__contains__, entity_type="contact")
    # valid names pass
    parse_query(
        {"$select": "firstname", "$filter": "parentcustomerid_account/name eq 'a'", "$orderby": "lastname"},
        known_columns=known.__contains__,
        entity_type="contact",
    )


# ---------------------------------------------------------------------------------------------
# Query options
# ---------------------------------------------------------------------------------------------


def test_parse_all_supported_options() -> None:
    opts = parse_query(
        {
            "$select": "fullname, emailaddress1",
            "$filter": "statecode eq 0",
            "$orderby": "lastname asc,firstname desc",
            "$top": "10",
            "$expand": "parentcustomerid_account($select=name,accountid),ownerid",
            "$count": "true",
            "$skiptoken": "opaque",
            "custom": "ignored",
        }
    )
    assert opts.select == ["fullname", "emailaddress1"]
    assert opts.filter is not None and opts.filter.evaluate({"statecode": 0}, nav)
    assert opts.orderby == [("lastname", False), ("firstname", True)]
    assert opts.top == 10
    assert opts.expand == [
        ExpandItem("parentcustomerid_account", ["name", "accountid"]),
        ExpandItem("ownerid"),
    ]
    assert opts.count is True
    assert opts.skiptoken == "opaque"


@pytest.mark.parametrize("option", ["$skip", "$search", "$format", "$Filter", "$TOP", "$apply"])
def test_unsupported_or_miscased_options_are_400(option: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_query({option: "1"})
    assert info.value.status == 400
    assert option in info.value.message


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_top_must_be_a_non_negative_integer(value: str) -> None:
    with pytest.raises(ODataError, match="requires a non-negative integer"):
        parse_query({"$top": value})


def test_expand_rejects_collection_options_on_single_valued_navigation() -> None:
    with pytest.raises(ODataError):
        parse_query({"$expand": "parentcustomerid_account($filter=name eq 'a')"})


def test_sort_rows_nulls_first_case_insensitive_and_stable() -> None:
    rows = [
        {"id": 1, "lastname": "beta", "firstname": "z"},
        {"id": 2, "lastname": None, "firstname": "a"},
        {"id": 3, "lastname": "Alpha", "firstname": "b"},
        {"id": 4, "lastname": "alpha", "firstname": "a"},
    ]
    assert [r["id"] for r in sort_rows(rows, [("lastname", False)])] == [2, 3, 4, 1]
    assert [r["id"] for r in sort_rows(rows, [("lastname", False), ("firstname", False)])] == [2, 4, 3, 1]
    assert [r["id"] for r in sort_rows(rows, [("lastname", True)])] == [1, 3, 4, 2]


# ---------------------------------------------------------------------------------------------
# index_hint: a correct (complete) candidate set, or None
# ---------------------------------------------------------------------------------------------


def test_index_hint_shapes() -> None:
    def hint(text: str, **aliases: str) -> Hint | None:
        return index_hint(parse_filter(text, aliases))

    assert hint("lastname eq 'Smith '") == EqHint("lastname", frozenset({"smith"}))
    assert hint("'x' eq lastname") == EqHint("lastname", frozenset({"x"}))
    assert hint("lastname eq 'a' or lastname eq 'B'") == AnyHint(
        (EqHint("lastname", frozenset({"a"})), EqHint("lastname", frozenset({"b"})))
    )
    both = hint(
        'statecode eq 0 and Microsoft.Dynamics.CRM.In(PropertyName=\'lastname\',PropertyValues=["a","b"])'
    )
    assert both == AllHint((EqHint("statecode", frozenset({0})), EqHint("lastname", frozenset({"a", "b"}))))
    assert hint("contains(new_linkedinurl,'/in/Ada-L')") == ContainsHint("new_linkedinurl", ("/in/ada-l",))
    assert hint("startswith(lastname,'Lov')") == ContainsHint("lastname", ("lov",))
    many = " or ".join(f"contains(websiteurl,'acme{i}.com')" for i in range(10))
    assert hint(many) == ContainsHint("websiteurl", tuple(f"acme{i}.com" for i in range(10)))
    assert isinstance(hint("lastname eq 'a' or firstname eq 'b'"), AnyHint)  # a union over two indexes
    assert hint("lastname eq 'a' or lastname ne 'b'") is None  # a branch without an index: full scan
    assert hint("lastname ne 'a'") is None
    assert hint("not (lastname eq 'a')") is None
    assert hint("lastname eq null") is None
    assert hint("parentcustomerid_account/name eq 'a'") is None
    assert hint("contains(parentcustomerid_account/name,'a')") is None
    assert hint("createdon eq 2024-01-01T00:00:00Z") is None
    assert index_hint(None) is None
    pairs = " or ".join(f"(contains(lastname,'smith') and contains(firstname,'ada{i}'))" for i in range(10))
    keyed = hint(pairs)  # a lookup of name pairs: each term narrowed by both of its columns
    assert keyed == AnyHint(
        tuple(
            AllHint((ContainsHint("lastname", ("smith",)), ContainsHint("firstname", (f"ada{i}",))))
            for i in range(10)
        )
    )


def _covers(hint: Hint, row: dict[str, Any]) -> bool:
    """Whether ``row`` is among the rows ``hint`` narrows to (what the store's indexes compute)."""
    if isinstance(hint, EqHint):
        return fold(row.get(hint.column)) in hint.values
    if isinstance(hint, ContainsHint):
        value = row.get(hint.column)
        return value is not None and any(n in like_fold(str(value)) for n in hint.needles)
    if isinstance(hint, AnyHint):
        return any(_covers(part, row) for part in hint.parts)
    return all(_covers(part, row) for part in hint.parts)


_COLUMNS = ["lastname", "statecode", "city"]
_VALUES: list[Any] = ["Smith", "smith ", "SMÍTH", "Jones", "jones", "0", "1", 0, 1, 2, None, "O'Brien", "Ö"]


def _literal(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return f"'{escape_literal(v)}'"
    return str(v)


def _random_filter(rng: random.Random, depth: int) -> str:
    col = rng.choice(_COLUMNS)
    if depth <= 0 or rng.random() < 0.3:
        kind = rng.random()
        if kind < 0.45:
            return f"{col} {rng.choice(['eq', 'eq', 'ne', 'gt', 'le'])} {_literal(rng.choice(_VALUES))}"
        if kind < 0.75:
            vals = rng.sample([v for v in _VALUES if v is not None], rng.randint(1, 4))
            quoted = ",".join(f'"{v}"' for v in (str(x) for x in vals))
            return f"Microsoft.Dynamics.CRM.In(PropertyName='{col}',PropertyValues=[{quoted}])"
        if kind < 0.85:
            function = rng.choice(["contains", "startswith", "endswith"])
            return f"{function}({col},'{escape_literal(str(rng.choice(_VALUES))[:3])}')"
        return f"{col} eq {_literal(rng.choice(_VALUES))}"
    op = rng.choice(["and", "or", "and", "not"])
    if op == "not":
        return f"not ({_random_filter(rng, depth - 1)})"
    return f"({_random_filter(rng, depth - 1)}) {op} ({_random_filter(rng, depth - 1)})"


def test_index_hint_never_excludes_a_matching_row() -> None:
    """Property: for random rows and filters, every matching row is among the rows the hint narrows to."""
    rng = random.Random(20240301)
    rows = [{c: rng.choice(_VALUES) for c in _COLUMNS} for _ in range(300)]
    hinted = 0
    for _ in range(400):
        text = _random_filter(rng, 3)
        expr = parse_filter(text)
        hint = index_hint(expr)
        if hint is None:
            continue
        hinted += 1
        for row in rows:
            if expr.evaluate(row, nav):
                assert _covers(hint, row), (text, row)
    assert hinted > 100  # the property was exercised on many hinted filters


@pytest.mark.parametrize(
    ("text", "sep", "expected"),
    [
        ("a,b,c", ",", ["a", "b", "c"]),
        ("a", ",", ["a"]),
        ("", ",", [""]),
        ("nav($select=a,b),other", ",", ["nav($select=a,b)", "other"]),
        ("x eq 'a,b',y", ",", ["x eq 'a,b'", "y"]),
        ('In(PropertyValues=["a","b"]),z', ",", ['In(PropertyValues=["a","b"])', "z"]),
        (
            "EntityDefinitions(LogicalName='a/b')/Attributes",
            "/",
            ["EntityDefinitions(LogicalName='a/b')", "Attributes"],
        ),
        (
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
            "/",
            ["contacts", "Microsoft.Dynamics.CRM.CreateMultiple"],
        ),
    ],
)
def test_split_top_level(text: str, sep: str, expected: list[str]) -> None:
    assert split_top_level(text, sep) == expected


def test_in_values_are_json_strings_not_odata_literals() -> None:
    """PropertyValues is a JSON array (filter-rows.md: values double-quoted): an apostrophe is written as is.
    Doubling it, as PowerPlatform-Dataverse-Client's in_() does, makes a value with two quotes."""
    row = {"lastname": "O'Brien"}
    assert matches("Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[\"O'Brien\"])", row)
    assert not matches(
        "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[\"O''Brien\"])", row
    )
    assert matches(
        "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)",
        row,
        **{"@p1": "'lastname'", "@p2": '["O\'Brien", "x \\"quoted\\""]'},
    )


def test_a_long_or_of_contains_on_one_column_answers_like_the_chain_it_replaces() -> None:
    # Lookup queries OR hundreds of contains() on one column; the emulator evaluates them at once
    # (ContainsAny). The answer must be exactly the OR of the single clauses.
    from emulators.dataverse.odata import ContainsAny, parse_filter

    needles = [f"/in/p{i}-x" for i in range(40)] + ["Zoë", "o'b"]
    clauses = [f"contains(new_linkedinurl,'{n.replace(chr(39), chr(39) * 2)}')" for n in needles]
    merged = parse_filter(" or ".join(clauses))
    assert isinstance(merged, ContainsAny)
    singles = [parse_filter(c) for c in clauses]
    rows = [
        {"new_linkedinurl": "https://www.linkedin.com/in/P7-X/"},
        {"new_linkedinurl": "https://linkedin.com/in/p7-y"},
        {"new_linkedinurl": "ZOE smith"},
        {"new_linkedinurl": "O'Brien"},
        {"new_linkedinurl": None},
        {"new_linkedinurl": ""},
    ]

    def nav(row: dict[str, object], name: str) -> None:
        return None

    answers = [merged.evaluate(row, nav) for row in rows]
    assert answers == [any(c.evaluate(row, nav) for c in singles) for row in rows]
    assert answers == [True, False, True, True, False, False]


def test_an_or_of_keyed_pairs_answers_like_the_chain_it_replaces() -> None:
    # Lookup queries pair a value with another column's values, hundreds of times: ``(In(a,..) and ..)
    # or ...`` and ``(contains(a,..) and ..) or ...`` are evaluated at once (KeyedOr), three-valued
    # exactly like the chain (checked under ``not`` too, where unknown and false differ).
    from emulators.dataverse.odata import KeyedOr, Not, Or, parse_filter

    def nav(row: dict[str, object], name: str) -> None:
        return None

    exact = [
        f"(Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['{last}','{last}s'])"
        f" and Microsoft.Dynamics.CRM.In(PropertyName='firstname',PropertyValues=['F{i}','G{i}']))"
        for i, last in enumerate(["Smith", "Lee", "Núñez", "O''Brien", "Smith", "Wu", "Chen", "Li"])
    ]
    broad = [
        f"(contains(lastname,'{token}') and (contains(firstname,'ann') or contains(firstname,'{token}')))"
        for token in ["smith", "lee", "nunez", "brien", "wu", "chen", "li", "ng"]
    ]
    rows: list[dict[str, object]] = [
        {"lastname": "SMITH ", "firstname": "f4"},
        {"lastname": "Smiths", "firstname": "G0"},
        {"lastname": "Smith", "firstname": "F1"},
        {"lastname": "nunez", "firstname": "f2"},
        {"lastname": "O'Brien", "firstname": "F3"},
        {"lastname": "  Anne Lee", "firstname": "Joanna"},
        {"lastname": "Wu", "firstname": None},
        {"lastname": None, "firstname": "F0"},
        {"lastname": "Chen", "firstname": "Xi"},
        {"lastname": "Lin", "firstname": "Lina"},
    ]
    for clauses in (exact, broad):
        text = " or ".join(clauses)
        merged = parse_filter(text)
        assert isinstance(merged, KeyedOr)
        singles = [parse_filter(c) for c in clauses]
        answers = [merged.evaluate(row, nav) for row in rows]
        assert answers == [any(c.evaluate(row, nav) for c in singles) for row in rows]
        assert any(answers) and not all(answers)
        negated = Not(merged)
        chain = singles[0]
        for single in singles[1:]:
            chain = Or(chain, single)
        assert [negated.evaluate(r, nav) for r in rows] == [Not(chain).evaluate(r, nav) for r in rows]


@pytest.mark.parametrize("option", ["$filter=subject eq 'x'", "$orderby=subject", "$top=1"])
def test_options_inside_expand_other_than_select_are_the_emulators_limit(option: str) -> None:
    """query/join-tables.md: Dataverse applies $filter/$orderby/$top inside $expand to collection-valued
    navigation properties (e.g. Account_Tasks); the emulator supports $select only and says so, without
    calling the navigation property single-valued."""
    with pytest.raises(ODataError) as info:
        parse_query({"$expand": f"Account_Tasks({option})"})
    assert info.value.status == 400
    key = option.split("=")[0]
    assert info.value.message == (
        f"The query option '{key}' inside $expand of navigation property 'Account_Tasks' is not supported "
        "by the emulator: only $select is."
    )


def test_string_function_arguments_are_like_patterns() -> None:
    """As in Dataverse, ``%``, ``_`` and ``[...]`` are wildcards; a bracketed one is itself
    (powerapps-docs developer/data-platform/wildcard-characters.md)."""
    row = {"new_linkedinurl": "https://www.linkedin.com/in/50%_off", "emailaddress1": "ann@gmail.com"}
    assert matches("contains(new_linkedinurl,'/in/%')", {"new_linkedinurl": "https://linkedin.com/in/jo"})
    assert matches("contains(emailaddress1,'_@gmail.com')", {"emailaddress1": "x@gmail.com"})
    assert matches("contains(new_linkedinurl,'/in/50[%][_]off')", row)
    assert not matches(
        "contains(new_linkedinurl,'/in/[%]')", {"new_linkedinurl": "https://linkedin.com/in/jo"}
    )
    assert matches("startswith(emailaddress1,'[a-c]nn')", row)
    assert not matches("startswith(emailaddress1,'[^a]nn')", row)
    assert matches("endswith(emailaddress1,'gmail.co_')", row)
    # A pattern with a real wildcard is not a substring: the q-gram index cannot look it up, rows are scanned.
    assert index_hint(parse_filter("contains(new_linkedinurl,'/in/50%off')", {})) is None
    # Escaped wildcards only: a literal search (what the product sends for every value), so it is indexed
    # like any substring; scanning every row for each such value made a 100,000-contact export crawl.
    assert index_hint(parse_filter("contains(new_linkedinurl,'/in/50[%][_]off')", {})) == ContainsHint(
        "new_linkedinurl", ("/in/50%_off",)
    )
    assert matches(
        "contains(new_linkedinurl,'/in/jo[_]x') or contains(new_linkedinurl,'/in/50[%][_]off')", row
    )
    assert not matches("contains(new_linkedinurl,'/in/50[%][_]of[[]')", row)
