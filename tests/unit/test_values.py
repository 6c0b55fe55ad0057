"""A platform value either fits its field type or is refused with a reason a user can act on."""

import pytest

from core.domain.catalog import FieldType
from core.domain.values import MAX_EMAIL_LENGTH, ascii_whole_number, check_value, is_empty, parse_datetime

T = FieldType


@pytest.mark.parametrize(
    ("ftype", "value"),
    [
        (T.TEXT, "Zoë O'Brien"),
        (T.EMAIL, "jane.doe@acme.co.uk"),
        (T.PHONE, "+34 (91) 123-45-67"),
        (T.URL, "https://www.linkedin.com/in/jane-doe/"),
        (T.INTEGER, 42),
        (T.DECIMAL, 12.5),
        (T.DECIMAL, 3),
        (T.BOOLEAN, False),
        (T.DATETIME, "2026-01-31T09:00:00Z"),
        (T.DATETIME, "2026-01-31T09:00:00+01:00"),
        (T.CHOICE, "Senior"),
        (T.CHOICES, ["English", "Español"]),
        (T.TEXT_LIST, []),
        (T.EMAIL, None),
    ],
)
def test_values_that_fit_are_accepted(ftype: FieldType, value: object) -> None:
    assert check_value(ftype, value) is None


@pytest.mark.parametrize(
    ("ftype", "value", "reason"),
    [
        (T.TEXT, 12, "expected text"),
        (T.EMAIL, "not-an-address", "not an email"),
        (T.PHONE, "call me maybe", "not a phone"),
        (T.INTEGER, 1.5, "expected an integer"),
        (T.INTEGER, True, "expected an integer"),
        (T.DECIMAL, "12", "expected a number"),
        (T.DECIMAL, float("nan"), "finite"),
        (T.BOOLEAN, "yes", "true or false"),
        (T.DATETIME, "2026-01-31T09:00:00", "timezone"),
        (T.DATETIME, "yesterday", "ISO-8601"),
        (T.CHOICE, ["a"], "one option"),
        (T.CHOICES, "English", "list of strings"),
        (T.TEXT_LIST, ["a", 1], "list of strings"),
    ],
)
def test_values_that_do_not_fit_say_why(ftype: FieldType, value: object, reason: str) -> None:
    message = check_value(ftype, value)
    assert message is not None and reason in message


def test_empty_values_mean_no_value() -> None:
    assert is_empty(None) and is_empty("  ") and is_empty([]) and is_empty(["", None])
    assert not is_empty(0) and not is_empty(False) and not is_empty(["x"])


def test_datetimes_keep_their_zone() -> None:
    parsed = parse_datetime("2026-01-31T09:00:00+01:00")
    assert parsed is not None and parsed.utcoffset() is not None and parsed.hour == 9


@pytest.mark.parametrize(
    ("text", "shaped"),
    [
        ("a@b.c", True),
        ("x@sub.example.com", True),
        ("a@b..c", True),
        ("a@b", False),
        ("a@.c", False),
        ("a@b.", False),
        ("@b.c", False),
        ("a@b@c.d", False),
        ("a b@c.d", False),
        ("a@" + "." * 300 + "@", False),
    ],
)
def test_email_shape_is_the_permissive_check(text: str, shaped: bool) -> None:
    assert (check_value(T.EMAIL, text) is None) is shaped


def test_a_long_email_is_refused_by_its_length_before_any_scan() -> None:
    assert check_value(T.EMAIL, "a@" + "." * 200_000 + "@") == (
        f"an email address is at most {MAX_EMAIL_LENGTH} characters"
    )


@pytest.mark.parametrize(
    ("text", "number"), [("42", 42), (" 7 ", 7), ("²", None), ("٣", None), ("-1", None), ("", None)]
)
def test_whole_numbers_are_ascii_digits_only(text: str, number: int | None) -> None:
    assert ascii_whole_number(text) == number
