"""Which table LinkedIn events are logged in: the custom activity when the organisation has it, else task."""

from __future__ import annotations

from typing import Any

import pytest

from core.adapters.dataverse.errors import DataverseError, NotFound
from core.services.activities.worker import ActivityWorker


class _Client:
    """Only what ``linkedin_table`` touches: the environment and the table lookup."""

    def __init__(self, url: str, exists: bool, error: DataverseError | None = None) -> None:
        self.environment_url = url
        self.exists = exists
        self.error = error
        self.lookups = 0

    def table(self, name: str) -> Any:
        self.lookups += 1
        if self.error is not None:
            raise self.error
        if not self.exists:
            raise NotFound("Could not find an entity", status=404, code="0x80040217")
        return name


def _worker(setting: str | None = "auto") -> ActivityWorker:
    return ActivityWorker(
        store=None,  # type: ignore[arg-type]
        client_for=lambda _ws: None,  # type: ignore[arg-type,return-value]
        export_contacts=lambda **_: {},
        linkedin_table=setting,
    )


def test_auto_uses_the_custom_table_when_it_exists_and_asks_once_per_environment() -> None:
    worker = _worker()
    with_table = _Client("https://a.crm.dynamics.com", exists=True)
    assert worker.linkedin_table(with_table) == "new_linkedinactivity"  # type: ignore[arg-type]
    assert worker.linkedin_table(with_table) == "new_linkedinactivity"  # type: ignore[arg-type]
    assert with_table.lookups == 1
    without = _Client("https://b.crm.dynamics.com", exists=False)
    assert worker.linkedin_table(without) == "task"  # type: ignore[arg-type]


def test_a_configured_table_wins_and_other_errors_are_not_mistaken_for_absence() -> None:
    assert _worker("cr9_linkedin").linkedin_table(_Client("https://c", exists=False)) == "cr9_linkedin"  # type: ignore[arg-type]
    failing = _Client("https://d", exists=True, error=DataverseError("boom", status=503))
    with pytest.raises(DataverseError):
        _worker().linkedin_table(failing)  # type: ignore[arg-type]
