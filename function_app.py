"""Azure Functions entry point: registers the blueprints of core/entrypoints, nothing else."""

import azure.functions as func

from core import observability
from core.entrypoints import (
    activities_api,
    activity_queue,
    alert_queue,
    alerts_api,
    catalog_api,
    config_api,
    connection_api,
    export_queue,
    exports_api,
    fields_api,
    icons_api,
    integrations_api,
    meta_api,
    notifications_api,
    results_api,
    retention_timer,
    token_timer,
    usage_api,
    users_api,
    window_api,
)

observability.setup()  # JSON logs with ids and redaction; OpenTelemetry only when its setting is set
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

app.register_functions(meta_api.bp)
app.register_functions(integrations_api.bp)
app.register_functions(config_api.bp)
app.register_functions(connection_api.bp)
app.register_functions(notifications_api.bp)
app.register_functions(token_timer.bp)
app.register_functions(retention_timer.bp)
app.register_functions(exports_api.bp)
app.register_functions(results_api.bp)
app.register_functions(export_queue.bp)
app.register_functions(fields_api.bp)
app.register_functions(icons_api.bp)
app.register_functions(catalog_api.bp)
app.register_functions(users_api.bp)
app.register_functions(usage_api.bp)
app.register_functions(activities_api.bp)
app.register_functions(activity_queue.bp)
app.register_functions(alerts_api.bp)
app.register_functions(alert_queue.bp)
app.register_functions(window_api.bp)
