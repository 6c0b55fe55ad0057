"""Step 2 of the setup window, field mapping, in a real browser: one mapping of each kind (platform field,
fixed values typed by their column, manual export, the engagement field), the icons of the Dynamics
dropdown with their reasons, a red read-only column refused with its reason, the cross-tab warning, the
mode of a mapping, Update, and the mappings back after a reload. Keyboard and axe on the step."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.test_setup_window import enable_and_connect, open_setup
from tests.browser.window import Window

pytestmark = pytest.mark.browser


def go_to_step2(page: Page) -> None:
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Step 2: Field mapping")).to_be_focused()


def kind(page: Page, name: str) -> Locator:
    return page.get_by_role("dialog", name="Dynamics 365 setup").get_by_role("region", name=name)


def pick(scope: Locator, search: str, option: str) -> None:
    """Choose a Dynamics column: type to filter, then click the option."""
    box = scope.get_by_role("combobox", name="Dynamics column")
    box.fill(search)
    scope.get_by_role("option", name=option).click()


def test_map_fields_of_every_kind_with_icons_and_save(window: Window, tmp_path: Path) -> None:
    page = window.page
    window.sign_in()
    enable_and_connect(window)
    go_to_step2(page)
    expect(page.get_by_role("tab", name="Contacts")).to_have_attribute("aria-selected", "true")

    # Platform field first, then the Dynamics column. Every option carries its icon: a read-only column
    # is red, and choosing it is refused with the reason.
    enginy = kind(page, "Enginy Fields")
    enginy.get_by_role("button", name="Add field").click()
    new = enginy.get_by_role("group", name="New enginy field")
    new.get_by_label("Platform field").select_option(label="Job title")
    box = new.get_by_role("combobox", name="Dynamics column")
    box.fill("full name")
    red = new.get_by_role("option", name="Cannot be applied: Full Name (fullname)")
    expect(red).to_have_attribute("aria-disabled", "true")
    red.hover()
    expect(red).to_have_accessible_description("Cannot be applied: fullname is read-only in Dynamics")
    expect(red.locator(".reason")).to_be_visible()
    red.click(force=True)  # a person can click it (aria-disabled); the picker refuses it
    expect(new.get_by_role("alert")).to_have_text(
        "Full Name (fullname) cannot be chosen: fullname is read-only in Dynamics"
    )
    expect(box).to_have_attribute("aria-expanded", "true")
    # Keyboard only: the blue option becomes active with ArrowDown, its reason shows, Enter takes it.
    box.fill("job title")
    box.press("ArrowDown")
    active = new.get_by_role("option", name="Compatible: Job Title (jobtitle)")
    expect(active).to_have_class("ok active")
    expect(active.locator(".reason")).to_be_visible()
    expect(box).to_have_attribute("aria-activedescendant", str(active.get_attribute("id")))
    box.press("Enter")
    expect(box).to_have_value("Job Title (jobtitle)")
    expect(new).to_contain_text("Compatible: text is written as-is")
    new.get_by_label("Mode").select_option("fill_if_empty")
    new.get_by_role("button", name="Add", exact=True).click()
    job = page.get_by_role("group", name="Job title → Job Title (jobtitle)")
    expect(job).to_be_visible()
    expect(job.get_by_label("Mode")).to_have_value("fill_if_empty")

    # A company field in the Contacts tab: the setup guide's warning, then the server's, at the row.
    enginy.get_by_role("button", name="Add field").click()
    new.get_by_label("Platform field").select_option(label="Company: Company name")
    expect(new).to_contain_text("A company field in the Contacts tab can cause export errors")
    pick(new, "nickname", "Compatible: Nickname (nickname)")
    new.get_by_role("button", name="Add", exact=True).click()
    crossing = page.get_by_role("group", name="Company: Company name → Nickname (nickname)")
    expect(crossing).to_contain_text("is a company field in the contacts tab: this can cause export errors")

    # A fixed value typed by its column: a choice offers the column's options.
    fixed = kind(page, "Fixed Value Fields")
    fixed.get_by_role("button", name="Add field").click()
    new_fixed = fixed.get_by_role("group", name="New fixed value field")
    pick(new_fixed, "seniority", "Compatible: Seniority (new_seniority)")
    new_fixed.get_by_label("Value").select_option("Director")
    new_fixed.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("group", name="Seniority (new_seniority) = Director")).to_be_visible()

    # A manual-export field: only the column; its value is given at export time.
    manual = kind(page, "Manual Export Fields")
    manual.get_by_role("button", name="Add field").click()
    pick(manual, "city", "Compatible: Address 1: City (address1_city)")
    manual.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("group", name="Address 1: City (address1_city), set at export")).to_be_visible()

    # The engagement field: one only.
    engagement = kind(page, "Engagement Fields")
    engagement.get_by_role("button", name="Add field").click()
    pick(engagement, "engagement", "Compatible: Engagement (new_engagement)")
    engagement.get_by_label("Value").fill("Engaged")
    engagement.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("group", name="Engagement (new_engagement) = Engaged")).to_be_visible()
    expect(engagement.get_by_role("button", name="Add field")).to_be_disabled()

    # Companies tab (arrow keys move between tabs): a number-typed fixed value.
    page.get_by_role("tab", name="Contacts").press("ArrowRight")
    expect(page.get_by_role("tab", name="Companies")).to_be_focused()
    expect(page.get_by_role("tab", name="Companies")).to_have_attribute("aria-selected", "true")
    fixed = kind(page, "Fixed Value Fields")
    fixed.get_by_role("button", name="Add field").click()
    pick(fixed, "employees", "Compatible: Number of Employees (numberofemployees)")
    fixed.get_by_role("spinbutton", name="Value (integer)").fill("250")
    fixed.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("group", name="Number of Employees (numberofemployees) = 250")).to_be_visible()

    page.get_by_role("tab", name="Contacts").click()
    expect(crossing).to_contain_text("this can cause export errors")

    # The server's problems show at the control their pointer names: the same column mapped twice.
    manual_row = page.get_by_role("group", name="Address 1: City (address1_city), set at export")
    pick(manual_row, "job title", "Compatible: Job Title (jobtitle)")
    twice = page.get_by_role("group", name="Job Title (jobtitle), set at export")
    expect(twice.get_by_role("alert")).to_have_text(
        "column 'jobtitle' is already mapped at /fieldMapping/contacts/0"
    )
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Not saved")).to_contain_text("1 problem(s)")
    expect(twice.get_by_role("combobox", name="Dynamics column")).to_have_attribute("aria-invalid", "true")
    pick(twice, "city", "Compatible: Address 1: City (address1_city)")
    expect(manual_row.get_by_role("alert")).to_have_count(0)

    # The icons of a row's dropdown: a mix of blue, yellow and red for the job title; Escape closes the
    # list only, not the window.
    job_box = job.get_by_role("combobox", name="Dynamics column")
    job_box.fill("a")
    job_box.press("End")
    expect(job.get_by_role("listbox", name="Dynamics column").get_by_role("option").last).to_be_visible()
    window.assert_accessible()
    window.screenshot("step2", tmp_path)
    job_box.press("Escape")
    expect(job_box).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("dialog", name="Dynamics 365 setup")).to_be_visible()
    expect(job_box).to_have_value("Job Title (jobtitle)")

    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")

    page.reload()
    open_setup(window)
    go_to_step2(page)
    expect(
        page.get_by_role("group", name="Job title → Job Title (jobtitle)").get_by_label("Mode")
    ).to_have_value("fill_if_empty")
    expect(page.get_by_role("group", name="Company: Company name → Nickname (nickname)")).to_be_visible()
    expect(
        page.get_by_role("group", name="Seniority (new_seniority) = Director").get_by_label("Value")
    ).to_have_value("Director")
    expect(page.get_by_role("group", name="Address 1: City (address1_city), set at export")).to_be_visible()
    expect(page.get_by_role("group", name="Engagement (new_engagement) = Engaged")).to_be_visible()
    page.get_by_role("tab", name="Companies").click()
    expect(
        page.get_by_role("group", name="Number of Employees (numberofemployees) = 250").get_by_label("Value")
    ).to_have_value("250")

    # Remove a mapping: it is gone from the working copy (and Update would save that).
    page.get_by_role("tab", name="Contacts").click()
    page.get_by_role("button", name="Remove Address 1: City (address1_city), set at export").click()
    expect(page.get_by_role("group", name="Address 1: City (address1_city), set at export")).to_have_count(0)


def test_step2_on_a_phone_sized_screen(window: Window, tmp_path: Path) -> None:
    page = window.page
    page.set_viewport_size({"width": 390, "height": 844})
    window.sign_in()
    enable_and_connect(window)
    go_to_step2(page)
    enginy = kind(page, "Enginy Fields")
    enginy.get_by_role("button", name="Add field").click()
    new = enginy.get_by_role("group", name="New enginy field")
    new.get_by_label("Platform field").select_option(label="First name")
    box = new.get_by_role("combobox", name="Dynamics column")
    box.fill("first")
    option = new.get_by_role("option", name="Compatible: First Name (firstname)")
    expect(option).to_be_visible()
    # Everything of the step stays inside the phone's width (no sideways scrolling inside the window).
    for control in (
        page.get_by_role("tabpanel", name="Contacts"),
        box,
        option,
        new.get_by_role("button", name="Add", exact=True),
    ):
        bounds = control.bounding_box()
        assert bounds is not None and bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 390, bounds
    window.assert_accessible()
