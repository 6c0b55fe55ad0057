"""Timer: delete what retention no longer keeps (finished jobs' per-record results and staged records after
``RESULTS_RETENTION_DAYS``, their summaries after ``JOB_SUMMARY_RETENTION_DAYS``), a bounded amount per run
(``RETENTION_MAX_DELETES_PER_RUN``); the next run goes on where this one stopped.

Schedule: the app setting ``RETENTION_SCHEDULE`` (binding expression ``%RETENTION_SCHEDULE%``) when it is
set; otherwise its declared default literally, because a binding expression naming an unset setting stops
the host from starting.
"""

from __future__ import annotations

import logging

import azure.functions as func

from core import bootstrap
from core.observability import log_context, new_correlation_id
from core.settings import SETTING_SPECS, load_settings

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

_DEFAULT_SCHEDULE = (
    next(s.default for s in SETTING_SPECS if s.name == "RETENTION_SCHEDULE") or "0 */10 * * * *"
)
SCHEDULE = "%RETENTION_SCHEDULE%" if load_settings().values.get("RETENTION_SCHEDULE") else _DEFAULT_SCHEDULE


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def retention_timer(timer: func.TimerRequest) -> None:
    with log_context(correlation_id=new_correlation_id()):
        if timer.past_due:
            log.info("retention timer is past due; running now")
        bootstrap.app().retention.run()
