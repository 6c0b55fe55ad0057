"""The OpenAPI document lists every HTTP route function_app registers, with schemas from the models."""

from __future__ import annotations

from typing import Any

from core import openapi
from core.domain.catalog import CATALOG_VERSION
from core.domain.config import DynamicsConfig


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
                    routes.add((str(method).upper(), f"/api/{data['route']}"))
    return frozenset(routes)


def test_every_registered_route_is_documented() -> None:
    routes = _http_routes()  # imports function_app, whose blueprints register their operations
    doc = openapi.document()
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert {("PUT", "/api/dynamics/config"), ("GET", "/api/health")} <= routes
    assert routes <= documented, routes - documented


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
    assert "security" not in doc["paths"]["/api/integrations"]["get"]


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
        assert set(op["responses"]) == {"200", "400", "401", "409", "413", "415", "500"}
        assert openapi.document()["components"]["schemas"]["Thing"]["required"] == ["name"]
    finally:
        openapi.unregister("POST", "/api/test-only/things")
    assert "/api/test-only/things" not in openapi.document()["paths"]
