"""The Integrations page in a real browser: sign in, the CRM cards, the one-active-CRM rule, keyboard use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from emulators.tls import trusting_session
from tests.browser.window import Window

pytestmark = pytest.mark.browser


def test_signed_in_admin_sees_the_crm_cards(window: Window, tmp_path: Path) -> None:
    window.sign_in()
    page = window.page
    expect(page.get_by_role("tab", name="All")).to_have_attribute("aria-selected", "true")
    for name in ("Microsoft Dynamics 365", "HubSpot", "Salesforce", "Pipedrive"):
        expect(window.card(name)).to_be_visible()
    dynamics = window.card("Microsoft Dynamics 365")
    expect(dynamics.get_by_test_id("dynamics-connection")).to_have_text("Not connected")
    expect(dynamics.get_by_test_id("dynamics-configured")).to_have_text("Not configured")
    expect(dynamics.get_by_role("button", name="Configure")).to_be_disabled()
    window.assert_accessible()
    window.screenshot("integrations", tmp_path)


def test_without_a_token_the_page_offers_the_sign_in(window: Window) -> None:
    scripts: list[str] = []
    window.page.on("response", lambda r: scripts.append(r.url) if "/assets/" in r.url else None)
    page_answer = window.page.goto(window.base_url + "/")
    assert page_answer is not None and page_answer.headers["cache-control"] == "no-cache"
    link = window.page.get_by_role("link", name="Sign in for local development")
    expect(link).to_be_visible()
    window.assert_accessible()
    # The hashed bundle is cached for good; a path outside the build is not served.
    assert scripts
    asset = window.page.request.get(scripts[0])
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert window.page.request.get(window.base_url + "/assets/..%2Fhost.json").status == 404


def test_enabling_a_second_crm_shows_which_to_disable_first(window: Window, tmp_path: Path) -> None:
    window.sign_in()
    page = window.page
    dynamics = window.card("Microsoft Dynamics 365")
    dynamics.get_by_role("switch").check()
    expect(dynamics.get_by_role("button", name="Configure")).to_be_enabled()

    hubspot = window.card("HubSpot")
    hubspot.get_by_role("switch").click()
    expect(hubspot.get_by_role("alert")).to_contain_text(
        "Microsoft Dynamics 365 is enabled; disable it first"
    )
    expect(hubspot.get_by_role("switch")).not_to_be_checked()
    window.assert_accessible()
    window.screenshot("integrations-409", tmp_path)

    # Keyboard only: the tab list moves with the arrow keys; Enabled lists Dynamics alone.
    page.get_by_role("tab", name="All").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Enabled")).to_be_focused()
    expect(page.get_by_role("tab", name="Enabled")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("listitem")).to_have_count(1)
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("listitem")).to_have_count(3)

    # After a reload the saved state is what shows.
    page.reload()
    expect(window.card("Microsoft Dynamics 365").get_by_role("switch")).to_be_checked()


def test_the_platform_origin_may_call_the_api_and_others_may_not(window: Window) -> None:
    # local.settings.json's Host.CORS (the platform web app's origin locally), as the devhost honours it.
    request = window.page.request
    url = f"{window.base_url}/api/integrations"
    ask = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = request.fetch(url, method="OPTIONS", headers={"Origin": "http://localhost:3000", **ask})
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    answer = request.get(url, headers={"Origin": "http://localhost:3000"})
    assert answer.status == 401 and answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = request.get(url, headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


def test_a_refused_microsoft_sign_in_is_reported_and_nothing_connects(window: Window) -> None:
    window.sign_in()
    page = window.page
    completions: list[str] = []
    page.on(
        "request", lambda r: completions.append(r.url) if "/api/dynamics/oauth/complete" in r.url else None
    )
    window.card("Microsoft Dynamics 365").get_by_role("switch").check()
    window.card("Microsoft Dynamics 365").get_by_role("button", name="Configure").click()
    page.get_by_label("Dynamics environment URL").fill(window.stack.dataverse_url)
    # Microsoft's sign-in refuses (the stand-in answers consent_required to the authorization request).
    entra = trusting_session()
    entra.trust_env = False
    entra.post(
        f"{window.stack.entra_url}/_emulator/faults",
        json={"kind": "consent_required", "count": 1},
        timeout=10,
    )
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Microsoft sign-in did not complete")).to_contain_text(
        "consent_required", timeout=15000
    )
    assert "dynamics=" not in page.url
    assert completions == []  # nothing to complete: no sign-in was kept
    expect(window.card("Microsoft Dynamics 365").get_by_test_id("dynamics-connection")).to_have_text(
        "Not connected"
    )
    state = page.request.get(
        f"{window.base_url}/api/dynamics/connection", headers={"Authorization": f"Bearer {window.token()}"}
    )
    assert state.ok and state.json()["status"] == "disconnected", state.text()
    window.assert_accessible()


def test_notifications_that_cannot_be_loaded_are_not_shown_as_none(window: Window) -> None:
    page = window.page
    problem = {"title": "Service Unavailable", "status": 503, "detail": "Notices are resting."}
    page.route(
        "**/api/notifications",
        lambda route: route.fulfill(
            status=503,
            content_type="application/problem+json",
            body=json.dumps(problem),
        ),
    )
    window.sign_in()
    page.get_by_role("button", name="Notifications").click()
    notices = page.get_by_role("region", name="Notifications")
    expect(notices.get_by_role("alert")).to_have_text(
        "Notifications could not be loaded: Notices are resting."
    )
    expect(notices).not_to_contain_text("No notifications.")
    window.assert_accessible()
