"""The setup window, served by the Function App itself so the browser calls the API on the same origin.

- ``GET /``                 the window's page (``static/index.html``); revalidated on every load, so a
                            new deployment is picked up at once
- ``GET /assets/{*name}``   Vite's hashed bundles: a name changes whenever its content does, so they are
                            cached for a year and marked immutable

These are the page and its files, not API operations: they are not in the OpenAPI document.
"""

from __future__ import annotations

import azure.functions as func

from core import bootstrap
from core.entrypoints.http_support import HttpProblem, anonymous

bp = func.Blueprint()  # type: ignore[no-untyped-call]

# The page loads only its own scripts and styles and calls only this origin; Lit's styles are
# constructable stylesheets (no inline <style> needed), images may be data: URIs (icons).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
IMMUTABLE = "public, max-age=31536000, immutable"


def _not_built() -> HttpProblem:
    return HttpProblem(
        404, "Not Found", "the setup window is not built here (bash scripts/setup.sh builds it)"
    )


@bp.route(route="/", methods=["GET"])
@anonymous
def window_page(req: func.HttpRequest) -> func.HttpResponse:
    page = bootstrap.app().window_files.index()
    if page is None:
        raise _not_built()
    return func.HttpResponse(
        page.body,
        status_code=200,
        headers={
            "Content-Type": page.media_type,
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@bp.route(route="assets/{*name}", methods=["GET"])
@anonymous
def window_asset(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name") or ""
    asset = bootstrap.app().window_files.asset(name) if len(name) <= 200 else None
    if asset is None:
        raise HttpProblem(404, "Not Found", "no such file of the setup window")
    return func.HttpResponse(
        asset.body,
        status_code=200,
        headers={
            "Content-Type": asset.media_type,
            "Cache-Control": IMMUTABLE,
            "X-Content-Type-Options": "nosniff",
        },
    )
