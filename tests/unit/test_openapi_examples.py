"""The OpenAPI document shows an example for every request and response body, each one valid against the
models the API itself validates with, and a problem+json example for every documented error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from core import openapi
from core.domain import config as config_models
from core.openapi_examples import EXAMPLES


def _document() -> dict[str, Any]:
    import function_app  # noqa: F401 - its blueprints register their operations

    return openapi.document()


def _operations() -> dict[tuple[str, str], openapi.Operation]:
    _document()
    return {(op.method, op.path): op for op in openapi.operations()}


def _validate(schema: type[BaseModel] | dict[str, Any], example: Any) -> None:
    """With the pydantic model (what the API validates with); a ``oneOf`` of component refs with the
    first of those models that accepts it; a plain dict schema only by its JSON type."""
    if isinstance(schema, type):
        schema.model_validate(example)
        return
    if "oneOf" in schema:
        names = [ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]]
        errors = []
        for name in names:
            try:
                getattr(config_models, name).model_validate(example)
                return
            except ValidationError as exc:
                errors.append(exc)
        raise AssertionError(f"matches none of {names}: {errors}")
    assert schema.get("type") == "object" and isinstance(example, dict), schema


def test_every_example_belongs_to_a_documented_operation() -> None:
    assert sorted(set(EXAMPLES) - set(_operations())) == []


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_examples_are_valid_against_the_operation_models(key: tuple[str, str]) -> None:
    op = _operations()[key]
    examples = EXAMPLES[key]
    if "request" in examples:
        assert op.request is not None, f"{key} takes no body"
        _validate(op.request, examples["request"])
    if "response" in examples and op.response is not None:
        _validate(op.response, examples["response"])
    for status, (model, _) in op.alternatives.items():
        assert str(status) in examples, f"{key} {status} has no example"
        _validate(model, examples[str(status)])
    unknown = set(examples) - {"request", "response"} - {str(s) for s in op.alternatives}
    assert unknown == set(), f"{key}: examples for nothing documented: {unknown}"


def test_every_body_has_an_example_in_the_document() -> None:
    missing = []
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body:
                missing.append(f"{method.upper()} {path} request")
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    if "example" not in content:
                        missing.append(f"{method.upper()} {path} {status} {media}")
    assert missing == []


def test_error_examples_are_problem_details_with_their_status() -> None:
    doc = _document()
    put = doc["paths"]["/api/dynamics/config"]["put"]["responses"]
    for status in ("400", "401", "412", "428", "500"):
        example = put[status]["content"]["application/problem+json"]["example"]
        assert example["status"] == int(status)
        assert set(openapi.PROBLEM_SCHEMA["required"]) <= set(example)
    bad = put["400"]["content"]["application/problem+json"]["example"]
    assert bad["errors"][0]["pointer"].startswith("/")  # names the field, as every 400 does


def test_the_invalid_bodies_a_request_example_would_catch_are_refused() -> None:
    # The validation above is not vacuous: a wrong body fails against the same models.
    with pytest.raises(ValidationError):
        _validate(_operations()[("POST", "/api/dynamics/exports")].request or {}, {"entity": "contacts"})
    with pytest.raises(AssertionError):
        _validate(_operations()[("PUT", "/api/dynamics/config/{step}")].request or {}, {"nonsense": 1})


def test_every_success_body_has_a_real_schema() -> None:
    thin = []
    for op in _operations().values():
        if op.status in (204, 302):
            continue
        if op.response is None or (
            isinstance(op.response, dict) and set(op.response) <= {"type", "description"}
        ):
            if op.path != "/api/openapi.json":  # the document itself
                thin.append(f"{op.method} {op.path}")
    assert thin == []
