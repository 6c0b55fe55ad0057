"""The Exports page's "Recent exports" in a real browser: the page's own export in the history once it
ends, the state filter, Load more, both downloads (the file itself, through Playwright's download), a
running export cancelled and a failed one retried, by keyboard where a person would; axe and a phone-sized
screen. Jobs the page did not start are submitted through the API, as the platform would; Dynamics is
made slow (the Dataverse stand-in's latency) or made to refuse creates (its privileges) for the cases that
need a job still running or a failed one."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from core.domain.result_files import CSV_COLUMNS
from emulators.tls import trusting_session
from tests.browser.test_exports_page import DATAVERSE_TOKEN, configure
from tests.browser.test_setup_window import enable_and_connect
from tests.browser.window import Window

pytestmark = pytest.mark.browser


def api(window: Window, method: str, path: str, body: Any = None) -> Any:
    answer = window.page.request.fetch(
        f"{window.base_url}/api/dynamics/{path}",
        method=method,
        headers={"Authorization": f"Bearer {window.token()}"},
        data=body,
    )
    assert answer.ok, answer.text()
    return answer.json()


def submit(window: Window, prefix: str, count: int, *, dry_run: bool = False) -> str:
    """An export of ``count`` new contacts through the API (not the page); its job id. The Dataverse
    stand-in is the session's: the workspace in the names keeps them apart from other tests' contacts."""
    prefix = f"{prefix}{window.workspace[-6:]}"
    records = [
        {"id": f"{prefix}-{i}", "firstName": "Hist", "lastName": f"{prefix.title()} {i}",
         "professionalEmail": f"{prefix}.{i}@history-demo.example", "jobTitle": "Buyer",
         "company": {"id": f"co-{prefix}", "name": f"{prefix.title()} Ltd",
                     "domain": f"{prefix}-demo.example"}}
        for i in range(count)
    ]  # fmt: skip
    body = {
        "entity": "contacts",
        "records": records,
        "manualValues": {},
        "dryRun": dry_run,
        "trigger": "manual",
    }
    return str(api(window, "POST", "exports", body)["jobId"])


def wait_for(window: Window, job_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = api(window, "GET", f"exports/{job_id}")
        if status["state"] in states:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


@contextmanager
def dataverse_control(window: Window) -> Iterator[Any]:
    """A session on the Dataverse stand-in's control API (/_emulator/...), shared by the session's tests."""
    session = trusting_session()
    session.trust_env = False
    session.headers.update({"Authorization": f"Bearer {DATAVERSE_TOKEN}"})
    try:
        yield session
    finally:
        session.close()


def control_url(window: Window, name: str) -> str:
    return f"{window.stack.dataverse_url.rstrip('/')}/_emulator/{name}"


def row(window: Window, job_id: str) -> Any:
    """The history table's row of a job (its row header holds the whole id)."""
    return window.page.get_by_role("row").filter(has=window.page.get_by_role("rowheader", name=job_id))


def history_table(window: Window) -> Any:
    return window.page.get_by_role("region", name="Exports table").get_by_role("table")


def history_rows(window: Window) -> Any:
    return history_table(window).locator("tbody tr")


def open_exports(window: Window, query: str = "") -> None:
    # The setup window is modal and stays open across a change of view: a person closes it first.
    if window.page.get_by_role("dialog", name="Dynamics 365 setup").is_visible():
        window.page.get_by_role("button", name="Close the setup window").click()
    window.page.goto(f"{window.base_url}/{query}#exports")
    expect(window.page.get_by_role("heading", name="Recent exports", level=3)).to_be_visible()


def test_history_filter_load_more_and_downloads(window: Window, tmp_path: Path) -> None:
    window.sign_in()
    enable_and_connect(window)
    configure(window)
    page = window.page
    # An older job from the platform (through the API), then the page's own dry run and export of a CSV
    # file (its own people: the sample list's are another test's, in the session's one Dynamics).
    older = submit(window, "older", 1, dry_run=True)
    wait_for(window, older, {"succeeded", "partially_failed", "failed"})
    open_exports(window, "?historyPageSize=2")
    expect(history_rows(window)).to_have_count(1)
    tag = window.workspace[-6:]
    people = tmp_path / "people.csv"
    people.write_text(
        "id,firstName,lastName,professionalEmail,jobTitle,company.name,company.domain\n"
        + "".join(
            f"h{tag}-{i},Hana,Row {i},hana.{i}.{tag}@history-demo.example,Buyer,Hist {tag},h{tag}.example\n"
            for i in range(3)
        )
        + f"h{tag}-bad,Ivo,Bad,ivo.{tag}@history-demo.example,{'Buyer ' * 40},Hist {tag},h{tag}.example\n",
        encoding="utf-8",
    )
    page.get_by_label("List to export").select_option("upload")
    page.get_by_label("CSV file").set_input_files(str(people))
    expect(page.get_by_test_id("list-summary")).to_have_text("4 contacts ready from people.csv.")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("job-status")).to_contain_text("Dry run finished", timeout=30000)
    page.get_by_role("button", name="Export to Dynamics").click()
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("Export finished, some records failed: 4 of 4 records.", timeout=60000)

    # The page's export, newest first, in the words of the page's own status; two rows a page.
    rows = history_rows(window)
    expect(rows).to_have_count(2)
    words = re.match(r"Export (.*?):", status.inner_text())
    assert words is not None
    exported = rows.nth(0)
    expect(exported.get_by_test_id("state")).to_have_text(words.group(1))
    expect(exported.get_by_role("cell").nth(1)).to_have_text("contacts")  # entity, after the state
    expect(exported.get_by_role("cell").nth(2)).to_have_text("manual")
    expect(exported.get_by_role("cell").nth(3)).to_have_text("4")  # records
    expect(exported.get_by_role("cell").nth(4)).to_have_text("3")  # created
    expect(exported.get_by_role("cell").nth(7)).to_have_text("1")  # invalid
    expect(exported.get_by_role("cell").nth(8)).to_have_text("user-admin")
    expect(rows.nth(1)).to_contain_text("dry run")
    expect(history_table(window).get_by_role("columnheader")).to_have_text(
        ["Export", "State", "Entity", "Trigger", "Records", "Created", "Updated", "Failed", "Invalid",
         "Requested by", "When", "Actions"]
    )  # fmt: skip
    export_id = str(exported.get_by_role("rowheader").locator("code").get_attribute("title"))
    window.assert_accessible()
    page.get_by_role("heading", name="Recent exports").scroll_into_view_if_needed()
    window.screenshot("exports-history", tmp_path)

    # Load more, by keyboard: the older job follows; no more pages.
    more = page.get_by_role("button", name="Load more")
    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(3)
    expect(row(window, older)).to_be_visible()
    expect(more).to_have_count(0)
    expect(page.get_by_test_id("history-status")).to_have_text("3 exports shown.")

    # The state filter: only jobs in that state (the server filters), and none in a state nobody is in.
    state = exported.get_by_test_id("state").inner_text()
    same = api(window, "GET", f"exports?state={api(window, 'GET', f'exports/{export_id}')['state']}&limit=2")
    page.get_by_label("State", exact=True).select_option(label=state)
    expect(history_rows(window).get_by_test_id("state")).to_have_text([state] * len(same["jobs"]))
    expect(row(window, export_id)).to_be_visible()
    expect(row(window, older)).to_have_count(0)
    page.get_by_label("State", exact=True).select_option(label="cancelled")
    expect(page.get_by_text("No export in this state.")).to_be_visible()
    expect(history_rows(window)).to_have_count(0)
    page.get_by_label("State", exact=True).select_option(label="any state")
    expect(history_rows(window)).to_have_count(2)

    # Downloads: the file itself, named by the API, saved by the browser.
    with page.expect_download() as csv_download:
        page.get_by_role("button", name=f"Download CSV of export {export_id}").click()
    assert csv_download.value.suggested_filename == f"export-{export_id}-records.csv"
    saved = tmp_path / "records.csv"
    csv_download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == list(CSV_COLUMNS)
    first = dict(zip(table[0], table[1], strict=True))
    assert (first["seq"], first["platformId"], first["action"]) == ("0", f"h{tag}-0", "created")
    assert first["dynamicsId"]
    assert [r[table[0].index("action")] for r in table[1:]] == ["created", "created", "created", "invalid"]
    expect(page.get_by_test_id("history-status")).to_have_text(f"Downloading export-{export_id}-records.csv.")

    download_ndjson = page.get_by_role("button", name=f"Download NDJSON of export {export_id}")
    download_ndjson.focus()
    with page.expect_download() as ndjson_download:
        page.keyboard.press("Enter")
    assert ndjson_download.value.suggested_filename == f"export-{export_id}-records.ndjson"
    lines = Path(ndjson_download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["platformId"] == f"h{tag}-0"
    window.assert_accessible()

    # A laptop (1280x800): the whole table fits, nothing scrolls sideways.
    page.set_viewport_size({"width": 1280, "height": 800})
    box = page.get_by_role("region", name="Exports table")
    assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), box.evaluate(
        "el => [el.scrollWidth, el.clientWidth]"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # A phone: the page never scrolls sideways; the table scrolls inside its own box.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")
    window.assert_accessible()
    page.get_by_role("heading", name="Recent exports").scroll_into_view_if_needed()
    window.screenshot("exports-history-phone", tmp_path)


def test_cancel_a_running_export(window: Window) -> None:
    window.sign_in()
    enable_and_connect(window)
    configure(window)
    page = window.page
    with dataverse_control(window) as dataverse:
        # Every Dynamics request takes seconds: the job is still running when the button is pressed.
        slow = dataverse.post(control_url(window, "latency"), json={"latency_ms": 2500}, timeout=10)
        assert slow.status_code == 200, slow.text
        try:
            job_id = submit(window, "slow", 3)
            open_exports(window)
            cancel = page.get_by_role("button", name=f"Cancel export {job_id}")
            expect(cancel).to_be_visible()
            expect(row(window, job_id).get_by_test_id("state")).to_have_text(re.compile("^(queued|running)$"))
            expect(row(window, job_id).get_by_role("button", name=re.compile("^Download"))).to_have_count(0)
            window.assert_accessible()
            cancel.focus()
            page.keyboard.press("Enter")
            announced = page.get_by_test_id("history-status")
            expect(announced).to_have_text(re.compile(rf"^Export {job_id[:8]} (stopping|cancelled)\.$"))
            state = row(window, job_id).get_by_test_id("state")
            expect(state).to_have_text("cancelled", timeout=30000)
            expect(announced).to_have_text(f"Export {job_id[:8]} cancelled.")
            expect(cancel).to_have_count(0)
            # Ended: its results (what was written, what was not) can be downloaded.
            expect(page.get_by_role("button", name=f"Download CSV of export {job_id}")).to_be_visible()
            assert api(window, "GET", f"exports/{job_id}")["state"] == "cancelled"
            window.assert_accessible()
        finally:
            dataverse.post(control_url(window, "latency"), json={"latency_ms": 0}, timeout=10)


def test_retry_a_failed_export(window: Window) -> None:
    window.sign_in()
    enable_and_connect(window)
    configure(window)
    page = window.page
    user = api(window, "GET", "connection")["integrationUser"]["dynamicsUserId"]
    with dataverse_control(window) as dataverse:

        def creates(deny: bool) -> None:
            body = {"userId": user, "table": "contact", "privilege": "Create", "deny": deny}
            answer = dataverse.post(control_url(window, "privileges"), json=body, timeout=10)
            assert answer.status_code == 200, answer.text

        creates(deny=True)  # Dynamics refuses every new contact: the export fails
        try:
            failed = submit(window, "refused", 2)
            wait_for(window, failed, {"failed", "partially_failed", "succeeded"})
        finally:
            creates(deny=False)
        assert api(window, "GET", f"exports/{failed}")["state"] == "failed"

    open_exports(window)
    old = row(window, failed)
    expect(old.get_by_test_id("state")).to_have_text("failed")
    expect(old.get_by_role("cell").nth(6)).to_have_text("2")  # failed
    retry = page.get_by_role("button", name=f"Retry export {failed}")
    retry.click()
    announced = page.get_by_test_id("history-status")
    expect(announced).to_contain_text(f"sends the failed records of export {failed[:8]} again")
    retried_by = api(window, "GET", f"exports/{failed}")["retriedBy"]
    # The new job on top, linked both ways; the old one cannot be retried twice.
    rows = history_rows(window)
    expect(rows.nth(0).get_by_role("rowheader")).to_contain_text(retried_by)
    expect(rows.nth(0)).to_contain_text(f"retry of {failed[:8]}")
    expect(old).to_contain_text(f"retried by {retried_by[:8]}")
    expect(retry).to_have_count(0)
    # Dynamics takes the records now: the retry finishes with both created.
    fresh = row(window, retried_by)
    expect(fresh.get_by_test_id("state")).to_have_text("finished", timeout=60000)
    expect(fresh.get_by_role("cell").nth(4)).to_have_text("2")  # created
    window.assert_accessible()
