"""The OpenAPI document lists every HTTP route function_app registers, with schemas from the models."""

from __future__ import annotations

from typing import Any

import pytest

from core import openapi
from core.domain.catalog import CATALOG_VERSION
from core.domain.config import DynamicsConfig
from core.settings import get_settings
from tests.support.http import body_json, call, request
from tests.support.tokens import bearer, configured


def _http_routes() -> frozenset[tuple[str, str]]:
    import function_app

    # Read the builders instead of FunctionApp.get_functions(): that may be called only once per app
    # (a second call raises "does not have a unique function name"), and the devhost needs it.
    routes: set[tuple[str, str]] = set()
    for builder in function_app.app._function_builders:
        for binding in builder._function.get_bindings():
            if binding.type == "httpTrigger":
                data: dict[str, Any] = binding.get_dict_repr()
                for method in data["methods"]:
                    routes.add((str(method).upper(), f"/{data['route']}".rstrip("/") or "/"))
    return frozenset(routes)


# The setup window's page and files: served by the app, not API operations (core/entrypoints/window_api.py).
WINDOW_ROUTES = {("GET", "/"), ("GET", "/assets/{*name}")}


def test_every_registered_route_is_documented() -> None:
    routes = _http_routes()  # imports function_app, whose blueprints register their operations
    doc = openapi.document()
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert {("PUT", "/api/dynamics/config"), ("GET", "/api/health")} <= routes
    api = {route for route in routes if route[1].startswith("/api/")}
    # host.json has no route prefix (the window is served at "/"): an API route spells its "api/" itself.
    assert routes - api == WINDOW_ROUTES, (
        f"declare these as route='api/...': {sorted(routes - api - WINDOW_ROUTES)}"
    )
    assert api <= documented, api - documented


def test_document_shape_and_catalog_version() -> None:
    _http_routes()
    doc = openapi.document()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["x-catalog-version"] == CATALOG_VERSION
    put = doc["paths"]["/api/dynamics/config"]["put"]
    assert {"400", "401", "403", "412", "413", "415", "428", "500"} <= set(put["responses"])
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DynamicsConfig"
    }
    schemas = doc["components"]["schemas"]
    assert schemas["DynamicsConfig"]["required"] == DynamicsConfig.model_json_schema()["required"]
    assert {"Rule", "Condition", "CampaignMapping", "PlatformFieldMapping", "Problem"} <= set(schemas)
    assert doc["paths"]["/api/health"]["get"]["security"] == []
    assert doc["paths"]["/api/integrations"]["get"]["security"] == [{"platformUser": ["admin", "member"]}]
    assert doc["paths"]["/api/dynamics/activities"]["post"]["security"] == [{"platformService": []}]
    assert doc["paths"]["/api/dynamics/config"]["put"]["security"] == [{"platformUser": ["admin"]}]


def test_refs_all_resolve() -> None:
    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    missing: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.split("/")[-1] not in schemas:
                missing.append(ref)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert missing == []


def test_later_blueprints_can_register_themselves() -> None:
    from pydantic import BaseModel

    class Thing(BaseModel):
        name: str

    openapi.register(
        "POST", "/api/test-only/things", "Make a thing", request=Thing, response=Thing, problems=(409,)
    )
    try:
        op = openapi.document()["paths"]["/api/test-only/things"]["post"]
        assert set(op["responses"]) == {"200", "400", "401", "403", "409", "413", "415", "500", "503"}
        assert openapi.document()["components"]["schemas"]["Thing"]["required"] == ["name"]
    finally:
        openapi.unregister("POST", "/api/test-only/things")
    assert "/api/test-only/things" not in openapi.document()["paths"]


def _operations_of(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_authenticated_operation_documents_401_and_503_problems() -> None:
    """``authenticate`` answers 401 for a bad token and 503 when tokens cannot be verified, on every
    route that needs a caller; anonymous routes document neither (unless they answer it themselves)."""
    _http_routes()
    authenticated = 0
    for method, path, op in _operations_of(openapi.document()):
        if op.get("security") == []:
            assert "401" not in op["responses"], (method, path)
            continue
        authenticated += 1
        for status in ("401", "503"):
            content = op["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)
            assert content["application/problem+json"]["example"]["status"] == int(status)
        assert "Authentication unavailable" in op["responses"]["503"]["description"], (method, path)
    assert authenticated >= 20


def test_auth_only_503_example_is_what_authenticate_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no caller-token key configured an authenticated route answers the documented 503."""
    from core.entrypoints import exports_api, meta_api

    _http_routes()
    doc = openapi.document()
    with configured(monkeypatch):
        monkeypatch.delenv("PLATFORM_JWT_PUBLIC_KEY", raising=False)
        get_settings.cache_clear()
        for handler, route, path in (
            (meta_api.get_dynamics_health, "health/dynamics", "/api/health/dynamics"),
            (exports_api.list_exports, "dynamics/exports", "/api/dynamics/exports"),
        ):
            response = call(handler, request("GET", route, headers=bearer("ws-a")))
            documented = doc["paths"][path]["get"]["responses"]["503"]
            example = documented["content"]["application/problem+json"]["example"]
            assert response.status_code == 503
            assert response.mimetype == "application/problem+json"
            body = body_json(response)
            assert (body["title"], body["detail"]) == (example["title"], example["detail"])
            assert body["title"] in documented["description"]


def test_job_submissions_document_idempotency_key_and_location() -> None:
    _http_routes()
    doc = openapi.document()
    for path, status_path in (
        ("/api/dynamics/exports", "/api/dynamics/exports/{jobId}"),
        ("/api/dynamics/activities", "/api/dynamics/activities/{jobId}"),
    ):
        post = doc["paths"][path]["post"]
        headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
        assert headers["Idempotency-Key"]["required"] is False
        assert "200" in headers["Idempotency-Key"]["description"]  # the length limit the handler enforces
        location = post["responses"]["202"]["headers"]["Location"]
        assert status_path in location["description"]
        assert status_path in doc["paths"]  # it points at a documented operation


def test_health_503_is_the_health_body_not_a_problem() -> None:
    _http_routes()
    responses = openapi.document()["paths"]["/api/health"]["get"]["responses"]
    assert set(responses["503"]["content"]) == {"application/json"}
    assert (
        responses["503"]["content"]["application/json"]["schema"]
        == responses["200"]["content"]["application/json"]["schema"]
        == {"$ref": "#/components/schemas/Health"}
    )
    assert responses["503"]["content"]["application/json"]["example"]["status"] == "down"


def test_alternatives_replace_the_problem_body_of_their_status() -> None:
    from pydantic import BaseModel

    class Busy(BaseModel):
        retryInSeconds: int

    openapi.register(
        "GET",
        "/api/test-only/busy",
        "Maybe busy",
        problems=(503,),
        alternatives={429: (Busy, "Busy: come back later")},
        anonymous=True,
    )
    try:
        doc = openapi.document()
        responses = doc["paths"]["/api/test-only/busy"]["get"]["responses"]
        assert set(responses) == {"200", "429", "500", "503"}
        assert responses["429"] == {
            "description": "Busy: come back later",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Busy"}}},
        }
        assert doc["components"]["schemas"]["Busy"]["required"] == ["retryInSeconds"]
        assert "application/problem+json" in responses["503"]["content"]
    finally:
        openapi.unregister("GET", "/api/test-only/busy")
