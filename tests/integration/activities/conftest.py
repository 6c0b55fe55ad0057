"""Harness of the activity tests: ``tests/support/job_harness.py`` with the activities kind."""

from __future__ import annotations

from core.domain.caller import Caller, Role
from tests.support.job_harness import ACTIVITIES, JobHarness, emulator_fixture, harness_fixture

WS = "ws-activities"
CALLER = Caller(WS, "platform-user-1", Role.SERVICE)  # only the platform service logs activities
ActivityHarness = JobHarness

emulator = emulator_fixture()
harness_for = harness_fixture(ACTIVITIES, CALLER)
