"""The Dynamics setup window in a real browser: connect through the Entra stand-in and confirm, Step 1 with
a custom AND/OR rule, the stepper, Update and reload, a 412 from a second tab, the unsaved-changes prompt,
and the reconnect notice after a scripted AADSTS700082 with its reconnect. Keyboard and axe on each screen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, expect

from emulators.tls import trusting_session
from tests.browser.window import Stack, Window

pytestmark = pytest.mark.browser
INTEGRATION_USER = "integration.user@contoso.example"  # the user the stack signs in at the Entra stand-in


def open_setup(window: Window) -> None:
    window.card("Microsoft Dynamics 365").get_by_role("button", name="Configure").click()
    expect(window.page.get_by_role("dialog", name="Dynamics 365 setup")).to_be_visible()
    expect(window.page.get_by_role("heading", name="Step 1: Sync configuration")).to_be_visible()


def enable_and_connect(window: Window, tmp_path: Path | None = None) -> None:
    page = window.page
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)
    page.get_by_label("Dynamics environment URL").fill(window.stack.dataverse_url)
    page.get_by_role("button", name="Connect", exact=True).click()
    # Microsoft's sign-in (the stand-in answers at once) brings the browser back; the page completes it.
    confirmed = page.get_by_role("dialog", name="Dynamics 365 connected")
    expect(confirmed).to_be_visible(timeout=15000)
    expect(confirmed.get_by_test_id("connected-account")).to_have_text(INTEGRATION_USER)
    expect(confirmed.get_by_test_id("connected-environment")).to_have_text(window.stack.dataverse_url)
    expect(confirmed.get_by_test_id("connected-tenant")).not_to_have_text("unknown")
    assert "handle=" not in page.url  # the one-time handle does not stay in the address bar
    window.assert_accessible()
    if tmp_path is not None:
        window.screenshot("connected", tmp_path)
    confirmed.get_by_role("button", name="Continue the setup").click()
    expect(page.get_by_test_id("integration-user")).to_contain_text(INTEGRATION_USER)


def test_connect_configure_step1_with_a_custom_rule_and_save(window: Window, tmp_path: Path) -> None:
    page = window.page
    window.sign_in()
    enable_and_connect(window, tmp_path)
    window.assert_accessible()
    window.screenshot("step1", tmp_path)

    # Contact identifier: Custom Mapping opens the rule pop-up; build "c1 OR (c2 AND c3)" by keyboard.
    page.get_by_role("radio", name="Custom Mapping").first.check()
    rule = page.get_by_role("dialog", name="Custom contact mapping")
    expect(rule).to_be_visible()
    rule.get_by_label("Operator of the rule").select_option("or")
    rule.get_by_label("Platform field of condition 1").select_option("linkedinUrl")
    rule.get_by_role("button", name="Add group").click()
    rule.get_by_label("Platform field of condition 2.1").select_option("firstName")
    rule.get_by_label("Dynamics column of condition 2.1").select_option("firstname")
    rule.get_by_role("button", name="Add condition to group 2").press("Enter")
    rule.get_by_label("Platform field of condition 2.2").select_option("lastName")
    rule.get_by_label("Dynamics column of condition 2.2").select_option("lastname")
    window.assert_accessible()
    window.screenshot("custom-rule", tmp_path)
    # A condition and a group added by mistake are removed again before applying.
    rule.get_by_role("button", name="Add condition", exact=True).click()
    rule.get_by_label("Platform field of condition 3").select_option("professionalEmail")
    rule.get_by_role("button", name="Remove condition 3").click()
    expect(rule.get_by_label("Platform field of condition 3")).to_have_count(0)
    rule.get_by_role("button", name="Add group").click()
    expect(rule.get_by_label("Platform field of condition 3.1")).to_be_visible()
    rule.get_by_role("button", name="Remove group 3").click()
    expect(rule.get_by_label("Platform field of condition 3.1")).to_have_count(0)
    rule.get_by_role("button", name="Apply rule").click()
    expect(rule).to_be_hidden()
    expect(page.get_by_test_id("contactRule")).to_contain_text(
        "firstName = firstname AND lastName = lastname"
    )
    expect(page.get_by_test_id("contactRule")).to_contain_text(" OR ")
    # Cancel leaves the applied rule as it was.
    page.get_by_role("button", name="Edit the custom contact rule").click()
    rule.get_by_label("Operator of the rule").select_option("and")
    rule.get_by_role("button", name="Cancel").click()
    expect(rule).to_be_hidden()
    expect(page.get_by_test_id("contactRule")).to_contain_text(" OR ")

    page.get_by_role("radio", name="Domain or Company Name").check()
    page.get_by_label("Any extension").check()
    page.get_by_role(
        "switch", name="When exporting companies, associate them with contacts in Dynamics"
    ).check()
    contacts_to_companies = page.get_by_role(
        "switch", name="When exporting contacts, associate them with companies in Dynamics"
    )
    expect(contacts_to_companies).to_be_checked()  # the default
    contacts_to_companies.uncheck()

    # The stepper: Next reaches each step once, and a visited step is reachable from the stepper.
    steps = page.get_by_role("navigation", name="Setup steps")
    expect(steps.get_by_role("button", name="Step 4: User mapping")).to_be_disabled()
    for title in ("Step 2: Field mapping", "Step 3: Campaign mapping", "Step 4: User mapping"):
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name=title)).to_be_focused()
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_role("heading", name="Step 3: Campaign mapping")).to_be_focused()
    steps.get_by_role("button", name="Step 1: Sync configuration").click()
    expect(page.get_by_role("heading", name="Step 1: Sync configuration")).to_be_visible()
    expect(steps.get_by_role("button", name="Step 4: User mapping")).to_be_enabled()

    # The server's validation: condition 1 still compares the LinkedIn URL with the first column listed
    # (an id Dynamics sets itself); the problem shows next to the rule and nothing is saved.
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Not saved")).to_contain_text("1 problem(s)")
    near_rule = page.get_by_role("group", name="Contact identifier").get_by_role("alert")
    expect(near_rule).to_contain_text("'linkedinUrl' cannot be compared with")
    window.assert_accessible()
    page.get_by_role("button", name="Edit the custom contact rule").click()
    rule.get_by_label("Platform field of condition 1").select_option("professionalEmail")
    rule.get_by_label("Dynamics column of condition 1").select_option("emailaddress1")
    rule.get_by_role("button", name="Apply rule").click()
    expect(page.get_by_test_id("contactRule")).to_contain_text("professionalEmail = emailaddress1 OR (")

    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")
    expect(near_rule).to_have_count(0)

    page.reload()
    expect(window.card("Microsoft Dynamics 365").get_by_test_id("dynamics-configured")).to_contain_text(
        "version 1"
    )
    open_setup(window)
    expect(page.get_by_role("radio", name="Custom Mapping").first).to_be_checked()
    expect(page.get_by_test_id("contactRule")).to_contain_text(
        "firstName = firstname AND lastName = lastname"
    )
    expect(page.get_by_role("radio", name="Domain or Company Name")).to_be_checked()
    expect(page.get_by_label("Any extension")).to_be_checked()
    expect(contacts_to_companies).not_to_be_checked()
    expect(
        page.get_by_role("switch", name="When exporting companies, associate them with contacts in Dynamics")
    ).to_be_checked()

    # Connected and configured, the card's facts (account e-mail, version, time) fit a phone's width.
    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(window.card("Microsoft Dynamics 365").get_by_test_id("dynamics-connection")).to_contain_text(
        "Connected"
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_save_from_another_tab_is_explained_and_unsaved_changes_are_not_dropped(
    window: Window, context: BrowserContext, tmp_path: Path
) -> None:
    page = window.page
    workspace = window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)

    other = Window(context.new_page(), window.stack)
    other.sign_in(user="user-colleague", workspace=workspace)
    open_setup(other)
    other.page.get_by_role(
        "switch", name="When exporting companies, associate them with contacts in Dynamics"
    ).check()
    other.page.get_by_role("button", name="Update").click()
    expect(other.page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")

    page.get_by_role("radio", name="Domain or Company Name").check()
    page.get_by_role("button", name="Update").click()
    conflict = page.get_by_role("alert").filter(has_text="saved the configuration meanwhile")
    expect(conflict).to_contain_text("user-colleague")
    expect(conflict).to_contain_text("version 1")
    window.assert_accessible()
    window.screenshot("conflict", tmp_path)
    conflict.get_by_role("button", name="Reload the saved configuration").click()
    expect(
        page.get_by_role("switch", name="When exporting companies, associate them with contacts in Dynamics")
    ).to_be_checked()

    # Closing with unsaved changes asks first (Escape too); Keep editing keeps them.
    page.get_by_role("radio", name="Domain or Company Name").check()
    page.keyboard.press("Escape")
    prompt = page.get_by_role("alertdialog", name="Discard your changes?")
    expect(prompt).to_be_visible()
    expect(prompt.get_by_role("button", name="Keep editing")).to_be_focused()
    window.assert_accessible()
    prompt.get_by_role("button", name="Keep editing").press("Enter")
    expect(page.get_by_role("radio", name="Domain or Company Name")).to_be_checked()
    page.get_by_role("button", name="Close the setup window").click()
    page.get_by_role("button", name="Discard and close").click()
    expect(page.get_by_role("dialog", name="Dynamics 365 setup")).to_be_hidden()


def test_reconnect_notice_after_microsoft_drops_the_sign_in(
    window: Window, short_access_tokens: None, tmp_path: Path
) -> None:
    page = window.page
    window.sign_in()
    enable_and_connect(window)
    page.get_by_role("button", name="Close the setup window").click()
    entra = trusting_session()
    entra.trust_env = False
    # Access tokens expire within the five minutes the app refreshes ahead, so its next Dynamics call
    # refreshes; the stand-in answers that with AADSTS700082 (refresh token expired by inactivity).
    entra.post(
        f"{window.stack.entra_url}/_emulator/faults", json={"kind": "inactivity", "count": 1}, timeout=10
    )
    health = page.request.get(
        f"{window.base_url}/api/health/dynamics", headers={"Authorization": f"Bearer {window.token()}"}
    )
    assert health.ok
    page.reload()
    expect(window.card("Microsoft Dynamics 365").get_by_test_id("dynamics-connection")).to_contain_text(
        "Needs reconnect"
    )
    bell = page.get_by_role("button", name="Notifications 1 unread")
    bell.press("Enter")
    notices = page.get_by_role("region", name="Notifications")
    expect(notices).to_contain_text("long period without use")
    window.assert_accessible()
    window.screenshot("reconnect-notice", tmp_path)

    # A member of the workspace, in another tab: sees the state and the notice, not the controls only admins
    # may use (the toggle is disabled, no Configure, and the notice says whom to ask).
    member = Window(page.context.new_page(), window.stack)
    member.sign_in(role="member", user="user-member", workspace=window.workspace)
    card = member.card("Microsoft Dynamics 365")
    expect(card.get_by_test_id("dynamics-connection")).to_contain_text("Needs reconnect")
    expect(card.get_by_role("switch")).to_be_disabled()
    expect(card.get_by_role("button", name="Configure")).to_have_count(0)
    expect(card).to_contain_text("Only workspace admins can turn integrations on or off")
    member.page.get_by_role("button", name="Notifications 1 unread").click()
    member_notices = member.page.get_by_role("region", name="Notifications")
    expect(member_notices).to_contain_text("Ask a workspace admin to reconnect Dynamics 365.")
    expect(member_notices.get_by_role("button", name="Reconnect Dynamics")).to_have_count(0)
    member.assert_accessible()
    member.page.close()

    notices.get_by_role("button", name="Reconnect Dynamics").click()
    confirmed = page.get_by_role("dialog", name="Dynamics 365 connected")
    expect(confirmed).to_be_visible(timeout=15000)
    expect(confirmed.get_by_test_id("connected-account")).to_have_text(INTEGRATION_USER)
    confirmed.get_by_role("button", name="Continue the setup").click()
    page.get_by_role("button", name="Close the setup window").click()
    expect(window.card("Microsoft Dynamics 365").get_by_test_id("dynamics-connection")).to_contain_text(
        "Connected"
    )


@pytest.fixture()
def short_access_tokens(window: Window) -> Iterator[None]:
    """Access tokens inside the app's five-minute refresh window, so a Dynamics call refreshes at once."""
    entra = trusting_session()
    entra.trust_env = False
    entra.post(f"{window.stack.entra_url}/_emulator/config", json={"accessTokenLifetime": 120}, timeout=10)
    yield
    entra.post(f"{window.stack.entra_url}/_emulator/config", json={"accessTokenLifetime": 3600}, timeout=10)
    entra.delete(f"{window.stack.entra_url}/_emulator/faults", timeout=10)


def test_phone_sized_screen_keyboard_only(browser: Browser, stack: Stack, tmp_path: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=True, ignore_https_errors=True
    )
    try:
        window = Window(context.new_page(), stack)
        page = window.page
        window.sign_in()
        fits = "document.documentElement.scrollWidth <= window.innerWidth"
        assert page.evaluate(fits)
        window.assert_accessible()
        window.screenshot("integrations-phone", tmp_path)
        # Keyboard only: Space toggles Dynamics on, Tab reaches Configure, Enter opens the window.
        window.card("Microsoft Dynamics 365").get_by_role("switch").focus()
        page.keyboard.press("Space")
        configure = window.card("Microsoft Dynamics 365").get_by_role("button", name="Configure")
        expect(configure).to_be_enabled()
        page.keyboard.press("Tab")
        expect(configure).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Step 1: Sync configuration")).to_be_focused()
        assert page.evaluate(fits)
        window.assert_accessible()
        window.screenshot("step1-phone", tmp_path)
        page.keyboard.press("Escape")  # nothing changed: closes without a prompt, focus back on Configure
        expect(page.get_by_role("dialog", name="Dynamics 365 setup")).to_be_hidden()
        expect(configure).to_be_focused()
    finally:
        context.close()


def test_update_that_does_not_reach_the_server_says_so_and_can_be_tried_again(window: Window) -> None:
    page = window.page
    window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)
    page.get_by_role("radio", name="Domain or Company Name").check()

    def drop_puts(route: Route) -> None:
        if route.request.method == "PUT":
            route.abort()
        else:
            route.continue_()

    page.route("**/api/dynamics/config", drop_puts)
    update = page.get_by_role("button", name="Update")
    update.click()
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_contain_text("did not reach the server")
    expect(update).to_be_enabled()
    expect(update).to_have_text("Update")
    window.assert_accessible()

    page.unroute("**/api/dynamics/config", drop_puts)
    update.click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_have_count(0)


def test_edits_kept_across_the_sign_in_do_not_overwrite_a_save_made_meanwhile(window: Window) -> None:
    page = window.page
    window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)
    page.get_by_role("radio", name="Domain or Company Name").check()

    # Meanwhile a colleague saves version 1 through the API.
    api = f"{window.base_url}/api/dynamics/config"
    colleague = {"Authorization": f"Bearer {window.token(user='user-colleague')}"}
    saved = page.request.get(api, headers=colleague)
    config = saved.json()
    config["syncIdentifiers"]["associateCompaniesWithContacts"] = True
    answer = page.request.put(api, headers={**colleague, "If-Match": saved.headers["etag"]}, data=config)
    assert answer.ok, answer.text()

    # The Microsoft sign-in round trip keeps this tab's edits, and the version they were based on.
    page.get_by_label("Dynamics environment URL").fill(window.stack.dataverse_url)
    page.get_by_role("button", name="Connect", exact=True).click()
    confirmed = page.get_by_role("dialog", name="Dynamics 365 connected")
    expect(confirmed).to_be_visible(timeout=15000)
    confirmed.get_by_role("button", name="Continue the setup").click()
    expect(page.get_by_test_id("integration-user")).to_contain_text(INTEGRATION_USER)
    expect(page.get_by_role("radio", name="Domain or Company Name")).to_be_checked()

    page.get_by_role("button", name="Update").click()
    conflict = page.get_by_role("alert").filter(has_text="saved the configuration meanwhile")
    expect(conflict).to_contain_text("user-colleague")
    expect(conflict).to_contain_text("version 1")
    window.assert_accessible()
    now = page.request.get(api, headers=colleague)
    assert now.headers["etag"] == '"v1"'
    assert now.json()["syncIdentifiers"]["associateCompaniesWithContacts"] is True


def test_back_and_forward_keep_the_open_setup_and_its_unsaved_changes(window: Window) -> None:
    page = window.page
    window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)
    option = page.get_by_role("radio", name="Domain or Company Name")
    option.check()
    setup = page.get_by_role("dialog", name="Dynamics 365 setup")

    page.evaluate("location.hash = '#exports'")  # what Forward to the Exports page does
    expect(page.get_by_role("link", name="Exports")).to_have_attribute("aria-current", "page")
    expect(setup).to_be_visible()
    expect(option).to_be_checked()
    window.assert_accessible()
    page.go_back()
    expect(page.get_by_role("link", name="Integrations")).to_have_attribute("aria-current", "page")
    expect(setup).to_be_visible()
    expect(option).to_be_checked()
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text("Saved (version 1).")


def test_the_discard_prompt_keeps_focus_and_escape_keeps_editing(window: Window) -> None:
    page = window.page
    window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    open_setup(window)
    option = page.get_by_role("radio", name="Domain or Company Name")
    option.check()
    page.get_by_role("button", name="Close the setup window").click()
    prompt = page.get_by_role("alertdialog", name="Discard your changes?")
    expect(prompt.get_by_role("button", name="Keep editing")).to_be_focused()
    window.assert_accessible()
    inside = "d => d.contains(d.getRootNode().activeElement)"
    for key in ("Tab", "Tab", "Tab", "Tab", "Shift+Tab"):
        page.keyboard.press(key)
        assert prompt.evaluate(inside), f"focus left the prompt on {key}"

    page.keyboard.press("Escape")
    expect(prompt).to_be_hidden()
    setup = page.get_by_role("dialog", name="Dynamics 365 setup")
    expect(setup).to_be_visible()
    expect(option).to_be_checked()


def test_a_kept_draft_is_restored_only_in_its_own_workspace(window: Window) -> None:
    page = window.page
    workspace = window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    saved = page.request.get(
        f"{window.base_url}/api/dynamics/config", headers={"Authorization": f"Bearer {window.token()}"}
    )
    edited = saved.json()
    edited["syncIdentifiers"]["companyIdentifier"] = "domain_or_name"
    option = page.get_by_role("radio", name="Domain or Company Name")

    def keep_draft(of: str) -> None:
        draft = {"workspace": of, "etag": saved.headers["etag"], "config": edited}
        page.evaluate("d => sessionStorage.setItem('dynamics-setup-draft', JSON.stringify(d))", draft)

    keep_draft("ws-someone-else")
    open_setup(window)
    expect(option).not_to_be_checked()
    page.keyboard.press("Escape")
    keep_draft(workspace)
    open_setup(window)
    expect(option).to_be_checked()


def test_rule_columns_that_cannot_be_loaded_say_why(window: Window) -> None:
    page = window.page
    window.sign_in()
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    problem = {"title": "Service Unavailable", "status": 503, "detail": "Dynamics is resting."}
    page.route(
        "**/api/dynamics/fields?*",
        lambda route: route.fulfill(
            status=503, content_type="application/problem+json", body=json.dumps(problem)
        ),
    )
    open_setup(window)
    page.get_by_role("radio", name="Custom Mapping").first.check()
    identifier = page.get_by_role("group", name="Contact identifier")
    expect(identifier.get_by_role("alert")).to_have_text(
        "The Dynamics columns could not be loaded: Dynamics is resting."
    )
    expect(page.get_by_role("dialog", name="Custom contact mapping")).to_be_hidden()
    window.assert_accessible()
