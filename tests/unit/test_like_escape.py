"""A value searched with ``contains()`` matches itself only: its LIKE wildcards are escaped the way
Dataverse documents, and the emulator reads escaped and unescaped patterns with the same LIKE rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.adapters.dataverse.odata import contains_filter, like_literal
from emulators.dataverse.odata import like_fold, like_regex

TEXT = st.text(alphabet=st.sampled_from("ab%_[]^-@."), max_size=8)


def test_wildcards_are_enclosed_in_brackets() -> None:
    assert contains_filter("new_linkedinurl", "/in/%") == "contains(new_linkedinurl,'/in/[%]')"
    assert contains_filter("emailaddress1", "o'_[x@a.com") == "contains(emailaddress1,'o''[_][[]x@a.com')"


@given(needle=TEXT, value=TEXT)
def test_an_escaped_value_matches_exactly_where_it_is_a_substring(needle: str, value: str) -> None:
    pattern = like_regex(like_fold(like_literal(needle)))
    matched = pattern.search(value) is not None if pattern else needle in value
    assert matched is (needle in value)


def test_unescaped_wildcards_are_wildcards_in_the_emulator() -> None:
    percent = like_regex("/in/%")
    assert percent is not None and percent.search("https://linkedin.com/in/jane")
    underscore = like_regex("_@gmail.com")
    assert underscore is not None and underscore.search("x@gmail.com")
    negated = like_regex("[^a]b")
    assert negated is not None and not negated.search("ab") and negated.search("cb")
