"""A platform value either fits its field type or is refused with a reason a user can act on."""

import pytest

from core.domain.catalog import FieldType
from core.domain.values import check_value, is_empty, parse_datetime

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
