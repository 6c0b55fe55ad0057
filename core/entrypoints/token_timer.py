"""Timer: refresh Dynamics tokens that are due.

Schedule: the app setting ``TOKEN_REFRESH_SCHEDULE`` (binding expression ``%TOKEN_REFRESH_SCHEDULE%``) when
it is set; otherwise its declared default ``0 */15 * * * *`` literally, because a binding expression naming
an unset setting stops the host from starting.
"""

from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from core import bootstrap
from core.observability import log_context, new_correlation_id
from core.settings import SETTING_SPECS, SettingsError, load_settings

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

_DEFAULT_SCHEDULE = (
    next(s.default for s in SETTING_SPECS if s.name == "TOKEN_REFRESH_SCHEDULE") or "0 */15 * * * *"
)
SCHEDULE = (
    "%TOKEN_REFRESH_SCHEDULE%" if load_settings().values.get("TOKEN_REFRESH_SCHEDULE") else _DEFAULT_SCHEDULE
)


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def token_refresh_timer(timer: func.TimerRequest) -> None:
    with log_context(correlation_id=new_correlation_id()):  # one id for the whole run's lines
        _refresh_due_tokens(timer)


def _refresh_due_tokens(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("token refresh timer is past due; running now")
    try:
        components = bootstrap.app().connection
    except SettingsError as exc:  # the integration is not configured on this deployment
        log.warning("token refresh skipped: %s", exc)
        return
    report = components.refresher.run()
    expired = components.flows.purge_expired(dt.datetime.now(dt.UTC))  # abandoned sign-ins
    if expired:
        log.info("removed %d expired OAuth flows", expired)
    log.info("token refresh: %s", report.as_dict())
