"""What the browser tests do with the setup window: sign in, check accessibility, take screenshots.

``Window.sign_in`` goes through the devhost's development sign-in (devhost/dev_signin.py), as a person
would. ``Window.axe`` runs axe-core (web/node_modules/axe-core, pinned in web/package.json) in the page
and returns the serious and critical violations. ``Window.screenshot`` writes ``docs/screenshots/<name>.png``
when WRITE_SCREENSHOTS=1 (the README shows them), else into the test's temporary folder.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from devhost.launcher import REPO_ROOT

AXE = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
BLOCKING = {"serious", "critical"}


@dataclass(frozen=True)
class Stack:
    base_url: str  # the devhost: the window at /, the API at /api/
    dataverse_url: str  # the Dataverse stand-in: the environment URL an admin connects to
    entra_url: str  # the Entra ID stand-in (its control API scripts sign-in failures)


class Window:
    def __init__(self, page: Page, stack: Stack) -> None:
        self.page = page
        self.stack = stack
        self.base_url = stack.base_url
        self.workspace = ""

    def sign_in(self, role: str = "admin", user: str = "user-admin", workspace: str | None = None) -> str:
        """Sign in through the development sign-in page (a fresh workspace unless given); its id."""
        self.workspace = workspace or f"ws-{uuid.uuid4().hex[:10]}"
        page = self.page
        page.goto(f"{self.base_url}/_devhost/sign-in")
        page.get_by_label("Workspace").fill(self.workspace)
        page.get_by_label("User").fill(user)
        page.get_by_label("Role").select_option(role)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Integrations", level=1)).to_be_visible()
        return self.workspace

    def token(self, role: str = "admin", user: str = "user-admin") -> str:
        """A caller token for the signed-in workspace, from the same development sign-in."""
        answer = self.page.request.post(
            f"{self.base_url}/_devhost/token", data={"workspace": self.workspace, "user": user, "role": role}
        )
        assert answer.ok, answer.text()
        return str(answer.json()["token"])

    def card(self, name: str) -> Any:
        return self.page.get_by_role("listitem").filter(has=self.page.get_by_role("heading", name=name))

    def axe(self) -> list[dict[str, Any]]:
        """Serious and critical axe-core violations of the page as it is now (shadow DOM included)."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        results = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results["violations"]
            if v["impact"] in BLOCKING
        ]

    def assert_accessible(self) -> None:
        violations = self.axe()
        assert violations == [], violations

    def screenshot(self, name: str, tmp_path: Path) -> Path:
        folder = SCREENSHOTS if os.environ.get("WRITE_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path
