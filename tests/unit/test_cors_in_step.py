"""The origins allowed to call the API from another web page are one list, set in step everywhere: the
Function App's platform CORS in infra/ (from azd's CORS_ALLOWED_ORIGINS), Host.CORS of
local.settings.json.example (the devhost's copy of it) and the README that tells an operator how."""

from __future__ import annotations

import json
import re
from pathlib import Path

from devhost.config import load_cors_origins

ROOT = Path(__file__).resolve().parents[2]


def test_infra_sets_the_platform_cors_from_the_azd_setting() -> None:
    parameters = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert parameters["corsAllowedOrigins"]["value"] == "${CORS_ALLOWED_ORIGINS=}"
    main = (ROOT / "infra" / "main.bicep").read_text()
    assert "param corsAllowedOrigins string = ''" in main
    assert re.search(r"corsAllowedOrigins: corsAllowedOrigins", main)
    api = (ROOT / "infra" / "app" / "api.bicep").read_text()
    assert re.search(r"cors: \{\s*allowedOrigins: corsOrigins\s*supportCredentials: false", api)
    assert "split(corsAllowedOrigins, ',')" in api


def test_local_settings_example_lists_the_local_platform_origin(tmp_path: Path) -> None:
    example = ROOT / "local.settings.json.example"
    assert load_cors_origins(example) == ("http://localhost:3000",)
    # A local.settings.json copied before "Host" existed takes the example's list.
    (tmp_path / "local.settings.json").write_text('{"Values": {}}')
    (tmp_path / "local.settings.json.example").write_text(example.read_text())
    assert load_cors_origins(tmp_path / "local.settings.json") == ("http://localhost:3000",)


def test_readme_explains_both() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`CORS_ALLOWED_ORIGINS`" in readme or "CORS_ALLOWED_ORIGINS " in readme
    assert '"Host": {"CORS":' in readme
