"""Browser tests of the setup window: Playwright's Python client driving a real Chromium against the whole
local stack (scripts/stack.py: Azurite, the Entra ID / Key Vault / Dataverse stand-ins, the devhost serving
function_app and the built window), started once per session on free ports with its own state folder.

The browser is the operating system's Chromium (/usr/bin/chromium, installed by scripts/setup.sh) when it
is there, else Playwright's own download (``python -m playwright install chromium`` where that is
reachable). One browser for the session; each test gets a fresh context (its own storage) and page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from devhost.launcher import REPO_ROOT, free_port
from tests.browser.window import Stack, Window

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
# Headless without the services a closed network refuses (each would be retried at every start).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The local stack on free ports: the devhost's URL and the stand-ins' (state.json)."""
    if not (REPO_ROOT / "static" / "index.html").is_file():
        pytest.fail("the setup window is not built: run bash scripts/setup.sh")
    state_dir = tmp_path_factory.mktemp("stack")
    env = {
        **os.environ,
        "STACK_STATE_DIR": str(state_dir),
        "STACK_DEVHOST_PORT": str(free_port()),
        "STACK_BLOB_PORT": str(free_port()),
        "STACK_QUEUE_PORT": str(free_port()),
        "STACK_TABLE_PORT": str(free_port()),
    }
    script = [sys.executable, str(REPO_ROOT / "scripts" / "stack.py")]
    started = subprocess.run([*script, "start"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads((state_dir / "state.json").read_text())
        services = state["services"]
        yield Stack(
            str(state["devhost_url"]),
            str(services["dataverse"]["url"]),
            str(services["entra"]["authority"]).rsplit("/", 1)[0],
        )
    finally:
        subprocess.run([*script, "stop"], cwd=REPO_ROOT, env=env, capture_output=True, check=False)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else None
    launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    # bypass_csp: the axe-core check injects its script into the page, which the page's CSP forbids.
    # ignore_https_errors: the Entra stand-in's certificate comes from the local CA, not a public one.
    made = browser.new_context(
        viewport={"width": 1280, "height": 800}, bypass_csp=True, ignore_https_errors=True
    )
    yield made
    made.close()


@pytest.fixture()
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture()
def window(page: Page, stack: Stack) -> Window:
    return Window(page, stack)
