"""Azure Functions entry point: registers the blueprints of core/entrypoints, nothing else."""

import azure.functions as func

from core.entrypoints import config_api, integrations_api, meta_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

app.register_functions(meta_api.bp)
app.register_functions(integrations_api.bp)
app.register_functions(config_api.bp)
