"""Harness of the export tests: ``tests/support/job_harness.py`` with the exports kind."""

from __future__ import annotations

from core.domain.caller import Caller, Role
from tests.support.job_harness import EXPORTS, JobHarness, emulator_fixture, harness_fixture

WS = "ws-export-worker"
CALLER = Caller(WS, "platform-user-1", Role.ADMIN)
ExportHarness = JobHarness

emulator = emulator_fixture()
harness_for = harness_fixture(EXPORTS, CALLER)
