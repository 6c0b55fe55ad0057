"""The platform backend's contract (docs/platform-integration.md) shows requests the API accepts: every
HTTP example is a body the request model validates, each exported record passes the per-record checks
(``changedAt`` on automatic exports included) and every header it sends is one the operation documents."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core import openapi
from core.domain.activities import ActivitiesRequest
from core.domain.export_request import ExportRequest, ExportTrigger, validate_records
from core.entrypoints import activities_api, exports_api  # noqa: F401  (registers the operations)

DOC = Path(__file__).resolve().parents[2] / "docs" / "platform-integration.md"
BLOCK = re.compile(r"```http\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str, dict[str, str], Any]]:
    found = []
    for block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        head, _, body = block.partition("\n\n")
        request_line, *header_lines = head.splitlines()
        method, path = request_line.split()
        headers = dict(line.split(": ", 1) for line in header_lines)
        found.append((method, path, headers, json.loads(body)))
    return found


def test_every_example_is_a_request_the_api_accepts() -> None:
    examples = _examples()
    assert {(m, p) for m, p, _, _ in examples} == {
        ("POST", "/api/dynamics/exports"),
        ("POST", "/api/dynamics/activities"),
    }
    document = openapi.document()
    for method, path, headers, body in examples:
        operation = document["paths"][path][method.lower()]
        documented = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        assert {h.lower() for h in headers} - {"authorization", "content-type"} <= documented, path
        if path.endswith("/exports"):
            request = ExportRequest.model_validate(body)
            automatic = request.trigger is ExportTrigger.AUTOMATIC
            valid, invalid = validate_records(request.entity, request.records, automatic=automatic)
            assert invalid == [] and len(valid) == len(request.records)
        else:
            ActivitiesRequest.model_validate(body)


def test_the_contract_shows_a_campaign_export_and_an_automatic_one() -> None:
    bodies = [body for _, path, _, body in _examples() if path.endswith("/exports")]
    assert any("identityId" in b and "userId" in b for b in bodies)
    automatic = [b for b in bodies if b.get("trigger") == "automatic"]
    assert automatic and all("changedAt" in r for b in automatic for r in b["records"])
