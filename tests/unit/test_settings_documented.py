"""Every app setting the code reads is provisioned in infra/, documented in the README and present in
local.settings.json.example — so an operator never meets an undocumented knob."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.settings import SETTING_SPECS, SettingSpec

ROOT = Path(__file__).resolve().parents[2]
NAMES = [spec.name for spec in SETTING_SPECS]
# Local-development settings must never reach Azure: there the managed identity replaces the storage
# connection string and Key Vault token, and caller tokens are RS256 only.
LOCAL_ONLY = {"AzureWebJobsStorage", "PLATFORM_JWT_DEV_HS256_SECRET", "KEY_VAULT_LOCAL_TOKEN"}


def _infra_text() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "infra").rglob("*.bicep"))


@pytest.mark.parametrize("name", NAMES)
def test_setting_is_provisioned_in_infra(name: str) -> None:
    provisioned = re.search(rf"name: '{re.escape(name)}'", _infra_text()) is not None
    if name in LOCAL_ONLY:
        assert not provisioned, f"{name} is for local development only and must not be set on Azure"
    else:
        assert provisioned, f"{name} missing from infra/app/*.bicep"


@pytest.mark.parametrize("name", NAMES)
def test_setting_is_in_the_local_settings_example(name: str) -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert name in values, f"{name} missing from local.settings.json.example"


def _readme_settings_table() -> dict[str, tuple[str, str]]:
    """The README's settings table: name -> (default, meaning) as written in its rows."""
    text = (ROOT / "README.md").read_text()
    start = text.index("| setting | default | meaning |")
    rows: dict[str, tuple[str, str]] = {}
    for line in text[start:].split("\n\n", 1)[0].splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0].strip("`")] = (cells[1], cells[2].replace("\\|", "|"))
    return rows


@pytest.mark.parametrize("spec", SETTING_SPECS, ids=NAMES)
def test_setting_is_documented_in_the_readme_table(spec: SettingSpec) -> None:
    row = _readme_settings_table().get(spec.name)
    assert row is not None, f"{spec.name} missing from the README settings table"
    default = "—" if spec.default is None else f"`{spec.default}`"
    assert row == (default, spec.meaning), f"{spec.name}: the README row differs from core/settings.py"


def test_the_readme_table_lists_no_setting_the_code_does_not_read() -> None:
    assert sorted(set(_readme_settings_table()) - set(NAMES)) == []


def test_code_reads_settings_only_through_the_loader() -> None:
    offenders = []
    for path in [*(ROOT / "core").rglob("*.py"), ROOT / "function_app.py"]:
        if path.name == "settings.py":
            continue
        if re.search(r"os\.environ|os\.getenv", path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
