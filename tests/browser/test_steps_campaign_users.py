"""Steps 3 and 4 of the setup window in a real browser: a campaign property mapped to a Dynamics contact
column with its icon (a red column cannot be chosen), identities and users mapped through the searchable
Dynamics-user dropdown and by e-mail suggestions, the default CRM owner, a server problem shown next to
its control, Update, reload and the mapping still there; axe on both steps, at 1280x800 and 390x844."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_setup_window import enable_and_connect, open_setup
from tests.browser.window import Window

pytestmark = pytest.mark.browser

# Elements of the setup window (shadow roots included) that reach past the right edge of the screen.
OVERFLOW = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > window.innerWidth + 1) out.push(`${el.tagName}#${el.id}.${el.className}`);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  const find = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'SETUP-WINDOW') return el;
      const inner = el.shadowRoot && find(el.shadowRoot);
      if (inner) return inner;
    }
    return null;
  };
  walk(find(document).shadowRoot);
  return out;
}"""


def setup_window_overflow(window: Window) -> list[str]:
    return list(window.page.evaluate(OVERFLOW))


def dynamics_users(window: Window) -> list[dict[str, Any]]:
    answer = window.page.request.get(
        f"{window.base_url}/api/dynamics/users?limit=50",
        headers={"Authorization": f"Bearer {window.token()}"},
    )
    assert answer.ok, answer.text()
    users = [u for u in answer.json()["users"] if u["email"] and u["fullName"]]
    assert len(users) >= 3, users
    return users


def test_campaign_and_user_mapping_saved_and_reloaded(window: Window, tmp_path: Path) -> None:
    page = window.page
    window.sign_in()
    enable_and_connect(window)
    first, second, third = dynamics_users(window)[:3]

    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Step 3: Campaign mapping")).to_be_focused()
    for section in ("Sequence", "Email", "General", "Conversation Tags"):
        expect(page.get_by_role("group", name=section)).to_be_visible()
    opens = page.get_by_role("combobox", name="Dynamics column for Campaign Opens")
    opens.click()
    # Columns that cannot take the count are listed with their icon but refused with the reason.
    red = page.get_by_role("option", name="Cannot be applied:").first
    expect(red).to_be_visible()
    red.click(force=True)  # a person can click it (aria-disabled); the picker refuses it
    expect(page.get_by_role("alert").filter(has_text="cannot be chosen")).to_be_visible()
    # Keyboard: type to filter to a blue column, its option is active, Enter takes it.
    opens.press("Escape")
    expect(page.get_by_role("dialog", name="Dynamics 365 setup")).to_be_visible()
    page.mouse.move(0, 0)
    opens.press("ArrowDown")
    column = page.get_by_role("option", name="Compatible:").first.get_attribute("data-value")
    assert column
    opens.fill(f"({column})")
    expect(page.get_by_role("option").first).to_have_attribute("data-value", column)
    opens.press("Enter")
    picked = page.get_by_test_id("prop-campaignOpens")
    expect(picked).to_contain_text("Compatible:")
    expect(opens).to_have_value(re.compile(rf"\({column}\)$"))
    expect(page.get_by_role("button", name="Unmap Campaign Opens")).to_be_visible()
    window.assert_accessible()
    window.screenshot("step3", tmp_path)

    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Step 4: User mapping")).to_be_focused()
    # A user mapped through the searchable dropdown, by keyboard.
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_label("Platform user 1")).to_be_focused()
    page.get_by_label("Platform user 1").fill("user-admin")
    page.get_by_label("Platform user 1").press("Tab")
    picker = page.get_by_role("combobox", name="Dynamics user for user 1")
    picker.focus()
    picker.fill(first["email"])
    expect(page.get_by_role("option", name=first["fullName"])).to_be_visible()
    picker.press("Enter")
    expect(picker).to_have_value(f"{first['fullName']} <{first['email']}>")

    # An identity with the e-mail of a Dynamics user: Use suggestions fills it.
    page.get_by_role("button", name="Add identity").click()
    page.get_by_label("Platform identity 1").fill("identity-linkedin")
    page.get_by_label("E-mail of identity 1 (for suggestions)").fill(second["email"].upper())
    page.get_by_role("button", name="Use suggestions").click()
    expect(page.get_by_test_id("suggestion-note")).to_have_text("1 of 1 unmapped row(s) filled by e-mail.")
    expect(page.get_by_role("combobox", name="Dynamics user for identity 1")).to_have_value(
        f"{second['fullName']} <{second['email']}>"
    )

    # A row left without a Dynamics user: the server's problem shows next to that row's dropdown.
    page.get_by_role("button", name="Add user").click()
    page.get_by_label("Platform user 2").fill("user-sam")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Not saved")).to_be_visible()
    second_row = page.get_by_test_id("users-row").nth(1)
    expect(second_row.get_by_role("alert")).to_be_visible()
    window.assert_accessible()
    second_row.get_by_role("button", name="Remove user 2").click()

    owner = page.get_by_role("combobox", name="Default CRM owner")
    owner.click()
    page.get_by_role("option", name=third["fullName"]).click()
    expect(owner).to_have_value(f"{third['fullName']} <{third['email']}>")
    window.assert_accessible()

    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")
    window.screenshot("step4", tmp_path)

    page.reload()
    open_setup(window)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(opens).to_have_value(re.compile(rf"\({column}\)$"))
    expect(page.get_by_test_id("prop-campaignOpens")).to_contain_text("Compatible:")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Platform user 1")).to_have_value("user-admin")
    expect(page.get_by_role("combobox", name="Dynamics user for user 1")).to_have_value(
        f"{first['fullName']} <{first['email']}>"
    )
    expect(page.get_by_label("Platform identity 1")).to_have_value("identity-linkedin")
    expect(page.get_by_role("combobox", name="Dynamics user for identity 1")).to_have_value(
        f"{second['fullName']} <{second['email']}>"
    )
    expect(owner).to_have_value(f"{third['fullName']} <{third['email']}>")

    # Phone-sized: nothing of the window wider than the screen, still no axe violation, on both steps.
    page.set_viewport_size({"width": 390, "height": 844})
    assert setup_window_overflow(window) == []
    window.assert_accessible()
    window.screenshot("step4-phone", tmp_path)
    page.get_by_role("navigation", name="Setup steps").get_by_role(
        "button", name="Step 3: Campaign mapping"
    ).click()
    expect(opens).to_have_value(re.compile(rf"\({column}\)$"))
    assert setup_window_overflow(window) == []
    window.assert_accessible()
