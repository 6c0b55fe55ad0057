"""The setup window's figures on this machine: JavaScript size (gzipped) and render times in Chromium.

    .venv/bin/python -m bench.window [--runs 7]

Starts the local stack on free ports (its own state folder), signs in through the development sign-in and
measures, as the browser sees it (wall clock around Playwright's waits, so slightly pessimistic):
- first render: navigation to "/" until the Integrations page lists the CRM cards (page, bundle, API call);
- window open: Configure pressed until Step 1 shows the contact identifiers (config, catalog, connection).
Prints the median and the worst of ``--runs``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from devhost.launcher import REPO_ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def bundle_bytes() -> tuple[int, int]:
    scripts = list((REPO_ROOT / "static" / "assets").glob("*.js"))
    raw = sum(p.stat().st_size for p in scripts)
    return raw, sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in scripts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    raw, packed = bundle_bytes()
    print(f"JavaScript: {raw / 1024:.1f} KB, {packed / 1024:.1f} KB gzipped")
    state = Path(tempfile.mkdtemp(prefix="bench-window-"))
    env = {**os.environ, "STACK_STATE_DIR": str(state), "STACK_DEVHOST_PORT": str(free_port()),
           "STACK_BLOB_PORT": str(free_port()), "STACK_QUEUE_PORT": str(free_port()),
           "STACK_TABLE_PORT": str(free_port())}  # fmt: skip
    stack = [sys.executable, str(REPO_ROOT / "scripts" / "stack.py")]
    subprocess.run([*stack, "start"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    try:
        base = json.loads((state / "state.json").read_text())["devhost_url"]
        first, window = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM if Path(CHROMIUM).exists() else None, args=ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            workspace = f"ws-bench-{uuid.uuid4().hex[:8]}"
            page.goto(f"{base}/_devhost/sign-in?workspace={workspace}&user=user-admin&role=admin&go=1")
            card = page.get_by_role("listitem").filter(
                has=page.get_by_role("heading", name="Microsoft Dynamics 365")
            )
            card.get_by_role("switch").check()
            for _ in range(args.runs):
                started = time.perf_counter()
                page.goto(f"{base}/")
                expect(card.get_by_role("button", name="Configure")).to_be_enabled()
                first.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                card.get_by_role("button", name="Configure").click()
                expect(page.get_by_role("group", name="Contact identifier")).to_be_visible()
                window.append((time.perf_counter() - started) * 1000)
            browser.close()
    finally:
        subprocess.run([*stack, "stop"], cwd=REPO_ROOT, env=env, check=False, capture_output=True)
    for name, values in (("first render of the page", first), ("setup window open to Step 1", window)):
        print(
            f"{name}: median {statistics.median(values):.0f} ms, "
            f"worst {max(values):.0f} ms ({len(values)} runs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
