"""The Exports page in a real browser: a sample list dry run (each column before and after), then exported
with its progress watched to the end, each record's outcome filtered, the match explanation, Dynamics' own
code for a refused record, a CSV that cannot be read; keyboard only, axe, and a phone-sized screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from emulators.tls import trusting_session
from tests.browser.test_setup_window import enable_and_connect
from tests.browser.window import Window

pytestmark = pytest.mark.browser
DATAVERSE_TOKEN = "static-test-token"  # the Dataverse stand-in's built-in token for its own tools
# The first contact of the page's sample list (web/src/pages/sample-lists.ts) and the shared inbox address.
FIRST_LINKEDIN = "linkedin.com/in/Ana-Álvarez-0-Demo"
SHARED_EMAIL = "sales@nimbus1-demo.com"


def field(platform_field: str, column: str, mode: str) -> dict[str, str]:
    return {"kind": "platform_field", "platformField": platform_field, "dynamicsField": column, "mode": mode}


def configure(window: Window) -> None:
    """Steps 1, 2 and 4 through the API, as an admin saves them: LinkedIn or name + company, a few
    columns, one manual-export field (description) and a default owner."""
    request = window.page.request
    auth = {"Authorization": f"Bearer {window.token()}"}
    api = f"{window.base_url}/api/dynamics"
    users = request.get(f"{api}/users", headers=auth).json()["users"]
    owner = next(u["id"] for u in users if u["fullName"] != "Integration User")
    steps: dict[str, Any] = {
        "sync-identifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "contactRule": None,
            "companyIdentifier": "domain",
            "companyDomainAnyExtension": False,
            "companyRule": None,
            "columns": {
                "contactLinkedinUrl": "new_linkedinurl",
                "companyDomain": "websiteurl",
                "companyLinkedinUrl": None,
            },
            "associateContactsWithCompanies": True,
            "associateCompaniesWithContacts": False,
        },
        "field-mapping": {
            "contacts": [
                field("firstName", "firstname", "overwrite"),
                field("lastName", "lastname", "overwrite"),
                field("jobTitle", "jobtitle", "overwrite"),
                field("professionalEmail", "emailaddress1", "overwrite"),
                field("linkedinUrl", "new_linkedinurl", "fill_if_empty"),
                {"kind": "manual_export", "dynamicsField": "description", "valueType": "text"},
            ],
            "companies": [
                field("name", "name", "fill_if_empty"),
                field("domain", "websiteurl", "fill_if_empty"),
            ],
        },
        "user-mapping": {"identities": [], "users": [], "defaultOwnerId": owner},
    }  # fmt: skip
    etag = request.get(f"{api}/config", headers=auth).headers["etag"]
    for step, body in steps.items():
        saved = request.put(f"{api}/config/{step}", headers={**auth, "If-Match": etag}, data=body)
        assert saved.status == 200, saved.text()
        etag = saved.headers["etag"]


def seed_dynamics(window: Window) -> None:
    """Records Dynamics already has: the sample's first person (another job title, the LinkedIn profile
    written another way) and a contact holding the shared inbox address."""
    session = trusting_session()
    session.trust_env = False
    session.headers.update({"Authorization": f"Bearer {DATAVERSE_TOKEN}"})
    url = f"{window.stack.dataverse_url.rstrip('/')}/api/data/v9.2/contacts"
    slug = FIRST_LINKEDIN.rsplit("/", 1)[1].lower()
    for record in (
        {"firstname": "Ana", "lastname": "Álvarez", "jobtitle": "Previous title",
         "new_linkedinurl": f"https://www.linkedin.com/in/{slug}/"},
        {"firstname": "Front", "lastname": "Desk", "emailaddress1": SHARED_EMAIL},
    ):  # fmt: skip
        created = session.post(url, json=record, timeout=30)
        assert created.status_code in (201, 204), created.text


def record(window: Window, platform_id: str) -> Any:
    return window.page.get_by_role("listitem").filter(
        has=window.page.get_by_role("heading", name=platform_id, level=4)
    )


def shown(window: Window) -> Any:
    """The records the results list shows now (each one a list item of its own)."""
    return window.page.get_by_role("list", name="Records").locator(":scope > li")


def test_dry_run_then_export_a_sample_list(window: Window, tmp_path: Path) -> None:
    window.sign_in()
    enable_and_connect(window)
    configure(window)
    seed_dynamics(window)
    page = window.page
    page.goto(f"{window.base_url}/")

    # Keyboard only: the Exports section from the shell's navigation.
    exports = page.get_by_role("link", name="Exports")
    exports.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Exports", level=2)).to_be_visible()
    expect(exports).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("List to export")).to_have_value("demo-contacts")
    expect(page.get_by_test_id("list-summary")).to_have_text("14 contacts ready.")
    page.get_by_label("description (text)").fill("Met at the Lisbon fair")
    window.assert_accessible()

    # Dry run: nothing written, each column the first person would get, before and after.
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("job-status")).to_contain_text("Dry run finished", timeout=30000)
    expect(page.get_by_role("heading", name="Dry run results")).to_be_visible()
    ana = record(window, "ct-000")
    expect(ana.get_by_text("Would update")).to_be_visible()
    expect(ana.get_by_test_id("match")).to_have_text(
        "Matched by LinkedIn URL ~ new_linkedinurl = in/ana-álvarez-0-demo"
    )
    jobtitle = ana.get_by_role("row", name="jobtitle")
    expect(jobtitle.get_by_role("cell")).to_have_text(["Previous title", "Head of Sales"])
    expect(ana.get_by_role("row", name="description").get_by_role("cell")).to_have_text(
        ["—", "Met at the Lisbon fair"]
    )
    expect(record(window, "ct-001").get_by_text("Would create")).to_be_visible()
    window.assert_accessible()

    # The export itself: the progress bar while it runs, every record's outcome once it has ended.
    page.get_by_role("button", name="Export to Dynamics").click()
    expect(page.get_by_role("progressbar", name="Export progress")).to_be_visible()
    status = page.get_by_test_id("job-status")
    expect(status).to_contain_text("Export finished, some records failed: 14 of 14 records.", timeout=60000)
    expect(page.get_by_role("heading", name="Export results")).to_be_visible()
    counts = page.get_by_test_id("counts")
    expect(counts.locator("dd")).to_have_text(["9", "1", "0", "1", "1", "2"])
    expect(record(window, "ct-000").get_by_test_id("match")).to_have_text(
        "Matched by LinkedIn URL ~ new_linkedinurl = in/ana-álvarez-0-demo"
    )
    expect(record(window, "ct-dup-0")).to_contain_text("ct-004")  # the earlier row it was exported as
    window.screenshot("exports", tmp_path)

    # Filters by outcome: Dynamics' own code and message for the refused record; the field for invalid ones.
    page.get_by_label("Show").select_option("failed")
    expect(shown(window)).to_have_count(1)
    failed = record(window, "ct-shared-inbox")
    expect(failed.get_by_text("Failed", exact=True)).to_be_visible()
    expect(failed.locator(".errors code")).to_have_text(re.compile(r"^0x[0-9a-f]{8}$"))
    page.get_by_label("Show").select_option("invalid")
    expect(shown(window)).to_have_count(2)
    expect(record(window, "ct-too-long")).to_contain_text("jobtitle")
    page.get_by_label("Show").select_option("updated")
    expect(shown(window)).to_have_count(1)
    expect(record(window, "ct-000")).to_be_visible()
    window.assert_accessible()

    # A phone-sized screen: nothing wider than the screen, still accessible.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    window.assert_accessible()


def test_a_csv_that_cannot_be_read_names_the_row_and_column(window: Window, tmp_path: Path) -> None:
    window.sign_in()
    page = window.page
    page.get_by_role("link", name="Exports").click()
    page.get_by_label("List to export").select_option("upload")
    bad = tmp_path / "people.csv"
    bad.write_text("id,firstName,company.employeeCount\np-1,Ada,12\np-2,Grace,many\n", encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(str(bad))
    expect(page.get_by_role("alert")).to_have_text(
        'people.csv: Row 3, column "company.employeeCount": "many" is not a whole number.'
    )
    good = tmp_path / "good.csv"
    good.write_text('id,firstName,company.name\np-1,Ada,"Engines, Ltd"\np-2,Grace,Navy\n', encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(str(good))
    expect(page.get_by_test_id("list-summary")).to_have_text("2 contacts ready from good.csv.")
    window.assert_accessible()
