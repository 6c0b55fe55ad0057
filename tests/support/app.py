"""The app's composition root under a test's control: ``app()`` builds the test's own ``App``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core import bootstrap
from core.bootstrap import App
from core.settings import Settings


def use_app(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[Settings], App] | None = None, **parts: Any
) -> None:
    """Until the test ends, ``bootstrap.app()`` is ``make(settings)`` or ``App(settings, **parts)`` for
    whatever settings the test applies (a new ``App`` each time they change, as in production)."""
    monkeypatch.setattr(bootstrap, "_make", bootstrap._make)  # the production root again afterwards
    monkeypatch.setattr(bootstrap, "_current", bootstrap._current)
    bootstrap.install(make or (lambda settings: App(settings, **parts)))


def storage() -> Any:
    """The storage clients of the app of the current settings."""
    return bootstrap.app().storage


def enable_dynamics(workspace_id: str, user_id: str = "admin-1") -> None:
    """Make Dynamics the workspace's enabled CRM, as an admin's toggle on the Integrations page does:
    connecting, exports and activities need it."""
    bootstrap.app().integrations_repository.enable(workspace_id, "dynamics", user_id)
