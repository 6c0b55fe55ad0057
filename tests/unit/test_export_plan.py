"""What a sales-ops admin expects from a write: only real changes, never erase, fill-only-if-empty."""

from core.domain.config import Mode
from core.domain.export_plan import (
    DesiredLink,
    DesiredValue,
    OwnerSource,
    PlanAction,
    choose_owner,
    plan_write,
    same_value,
)

FILL = Mode.FILL_IF_EMPTY


def test_create_sends_non_empty_values_links_and_owner() -> None:
    plan = plan_write(
        None,
        [DesiredValue("firstname", "Zoë"), DesiredValue("jobtitle", ""), DesiredValue("telephone1", None)],
        [DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value")],
        create_only={"ownerid@odata.bind": "/systemusers(u-1)"},
    )
    assert plan.action is PlanAction.CREATE
    assert plan.payload == {
        "firstname": "Zoë",
        "parentcustomerid_account@odata.bind": "/accounts(a-1)",
        "ownerid@odata.bind": "/systemusers(u-1)",
    }


def test_update_sends_only_what_changed_and_never_erases() -> None:
    current = {
        "firstname": "Zoe",
        "jobtitle": "CTO",
        "telephone1": "+1 555",
        "_parentcustomerid_value": "A-1",
    }
    plan = plan_write(
        current,
        [
            DesiredValue("firstname", "Zoë"),  # changed
            DesiredValue("jobtitle", ""),  # empty platform value: keep Dynamics' CTO
            DesiredValue("telephone1", "+1 555"),  # same
        ],
        [DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value")],
        create_only={"ownerid@odata.bind": "/systemusers(u-1)"},
    )
    assert plan.action is PlanAction.UPDATE
    assert plan.payload == {"firstname": "Zoë"}
    assert plan.changes == {"firstname": {"before": "Zoe", "after": "Zoë"}}


def test_fill_if_empty_writes_only_blank_columns() -> None:
    current = {"jobtitle": "CTO", "mobilephone": "  ", "description": None}
    plan = plan_write(
        current,
        [
            DesiredValue("jobtitle", "Engineer", FILL),
            DesiredValue("mobilephone", "+34 600", FILL),
            DesiredValue("description", "From platform", FILL),
        ],
    )
    assert plan.payload == {"mobilephone": "+34 600", "description": "From platform"}


def test_nothing_to_change_is_unchanged() -> None:
    current = {"numberofemployees": 50, "createdon": "2026-01-01T10:00:00Z", "donotemail": False}
    plan = plan_write(
        current,
        [
            DesiredValue("numberofemployees", 50.0),
            DesiredValue("createdon", "2026-01-01T11:00:00+01:00"),
            DesiredValue("donotemail", False),
        ],
    )
    assert plan.action is PlanAction.UNCHANGED and plan.payload == {}


def test_same_value_distinguishes_what_dynamics_would() -> None:
    assert not same_value("acme", "Acme")  # a case fix is a real change to the stored text
    assert not same_value(0, False)
    assert same_value(None, None) and not same_value(None, "")


def test_owner_fallback_chain() -> None:
    users = {"pu-1": "su-1"}
    mapped = choose_owner(users, "su-default", "su-integration", "pu-1")
    assert (mapped.systemuser_id, mapped.source, mapped.impersonate) == (
        "su-1",
        OwnerSource.USER_MAPPING,
        True,
    )
    default = choose_owner(users, "su-default", "su-integration", "pu-2")
    assert (default.systemuser_id, default.source) == ("su-default", OwnerSource.DEFAULT_OWNER)
    fallback = choose_owner(users, None, "su-integration", None)
    assert (fallback.systemuser_id, fallback.source) == ("su-integration", OwnerSource.INTEGRATION_USER)


def test_create_reports_every_value_and_link_it_sets() -> None:
    plan = plan_write(
        None,
        [DesiredValue("firstname", "Zoë")],
        [DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value")],
    )
    assert plan.changes == {
        "firstname": {"before": None, "after": "Zoë"},
        "parentcustomerid_account": {"before": None, "after": "a-1"},
    }


def test_a_skipped_column_or_link_does_not_stop_the_ones_after_it() -> None:
    current = {"jobtitle": "CTO", "lastname": "Old", "_parentcustomerid_value": "A-1", "_ownerid_value": None}
    plan = plan_write(
        current,
        [DesiredValue("jobtitle", "Engineer", FILL), DesiredValue("lastname", "New")],
        [
            DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value"),  # same id
            DesiredLink("ownerid_team", "teams", "t-1", "_ownerid_value"),
        ],
    )
    assert plan.payload == {"lastname": "New", "ownerid_team@odata.bind": "/teams(t-1)"}


def test_a_link_to_another_record_is_changed_and_reported() -> None:
    plan = plan_write(
        {"_parentcustomerid_value": "b-2"},
        [],
        [DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value")],
    )
    assert plan.action is PlanAction.UPDATE
    assert plan.payload == {"parentcustomerid_account@odata.bind": "/accounts(a-1)"}
    assert plan.changes == {"parentcustomerid_account": {"before": "b-2", "after": "a-1"}}


def test_a_fill_if_empty_link_is_set_only_where_none_is() -> None:
    link = DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value", FILL)
    assert plan_write({"_parentcustomerid_value": "b-2"}, [], [link]).action is PlanAction.UNCHANGED
    empty = plan_write({"_parentcustomerid_value": None}, [], [link])
    assert empty.payload == {"parentcustomerid_account@odata.bind": "/accounts(a-1)"}
    overwrite = DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value")
    assert plan_write({"_parentcustomerid_value": None}, [], [overwrite]).action is PlanAction.UPDATE


def test_same_value_of_flags_numbers_and_text() -> None:
    assert same_value(True, True) and same_value(False, False)
    assert not same_value(True, False) and not same_value(False, True)
    assert not same_value(5, "5")  # a number and a text are different values
    # a change of 0.5 in a billion is a real change (e.g. revenue), not a rounding difference
    assert not same_value(1_000_000_000, 1_000_000_000.5)
    assert same_value(["a"], ["a"]) and not same_value(["a"], ["b"])


def test_only_iso_date_times_with_a_zone_are_compared_as_instants() -> None:
    assert same_value("2026-01-01T10:00:00Z", "2026-01-01T11:00:00+01:00")
    # without the T or without a zone it is text, compared exactly
    assert not same_value("2026-01-01 10:00:00+00:00", "2026-01-01T10:00:00Z")
    assert not same_value("2026-01-01T10:00:00", "2026-01-01T10:00:00.000")


def test_only_a_mapped_user_is_impersonated() -> None:
    assert choose_owner({}, "su-default", "su-integration", "pu-1").impersonate is False
    assert choose_owner({}, None, "su-integration", "pu-1").impersonate is False


def test_an_unchanged_column_or_kept_link_does_not_stop_the_ones_after_it() -> None:
    current = {"firstname": "Zoë", "lastname": "Old", "_parentcustomerid_value": "b-2"}
    plan = plan_write(
        current,
        [DesiredValue("firstname", "Zoë"), DesiredValue("lastname", "New")],
        [
            DesiredLink("parentcustomerid_account", "accounts", "a-1", "_parentcustomerid_value", FILL),
            DesiredLink("ownerid_team", "teams", "t-1", "_ownerid_value"),
        ],
    )
    assert plan.payload == {"lastname": "New", "ownerid_team@odata.bind": "/teams(t-1)"}


def test_float_noise_around_zero_is_no_change() -> None:
    assert same_value(0, 1e-12) and not same_value(0, 0.001)
