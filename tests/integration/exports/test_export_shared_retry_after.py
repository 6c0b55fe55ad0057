"""A 429 any worker process receives pauses every request of that Dynamics user until its Retry-After has
elapsed, in every process and thread (the shared budget's ``pause`` row, checked before each request).

The emulator's limits sit far below what the budget plans for (other apps use the same Dynamics user), so
the budget's pacing does not prevent 429s: only the shared pause keeps the processes from sending while
Dynamics has said to wait. The emulator counts requests that arrive while a Retry-After it gave the user
has not elapsed (``early``); the grace leaves out only what no client can avoid: requests sent in the
moment between Dynamics answering a 429 and its pause being written to storage.
"""

from __future__ import annotations

import pytest

from bench.export import Scenario, build_scenario
from core.adapters.dataverse.budget import BudgetLimits
from emulators.dataverse import LimitConfig
from tests.integration.exports.test_export_scale import assert_exactly_once, export_with
from tests.support.azurite import Azurite

# Dynamics: 30 requests per 4 s for the user. The budget: Microsoft's defaults (6,000 per 300 s).
DYNAMICS = LimitConfig(window_s=4.0, max_requests=30, early_grace_s=0.2)
BUDGET = BudgetLimits(slots=4)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(240, 40, 0.3, 0.5, seed=11)


def test_no_process_sends_before_a_retry_after_another_was_given(
    azurite: Azurite, scenario: Scenario
) -> None:
    run = export_with(azurite, scenario, 3, threads=2, emulator_limits=DYNAMICS, budget_limits=BUDGET)
    limits = run.stats["limits"]
    print(
        f"\n429s: {run.stats['throttled']}, requests sent early: {limits['early']}, "
        f"requests: {run.stats['requests']}, created: {run.status.counts['created']}"
    )
    assert run.stats["throttled"] > 0  # the limits really were below the budget's
    assert limits["early"] == 0
    assert_exactly_once(run, scenario)  # nothing lost or doubled
