"""Azure Functions entry point: registers the blueprints of core/entrypoints, nothing else."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
