"""Timer: refresh Dynamics tokens that are due (schedule from app setting ``TOKEN_REFRESH_SCHEDULE``,
default ``0 */15 * * * *``; the binding expression needs the setting present in the app settings)."""

from __future__ import annotations

import logging

import azure.functions as func

from core.services.connection_service import get_components

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(
    arg_name="timer", schedule="%TOKEN_REFRESH_SCHEDULE%", run_on_startup=False, use_monitor=True
)
def token_refresh_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("token refresh timer is past due; running now")
    report = get_components().refresher.run()
    log.info("token refresh: %s", report.as_dict())
