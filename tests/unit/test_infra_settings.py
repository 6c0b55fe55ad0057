"""The settings the code actually reads (found by parsing it, not by trusting the declarations) are all
declared in core/settings.py, provisioned in infra/ (or kept out of it when local-only), in
local.settings.json.example and in the README; and the infra provisions what Azure itself needs to run the
app on Flex Consumption with its managed identity."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from core.settings import SETTING_SPECS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DECLARED = {spec.name for spec in SETTING_SPECS}
SETTINGS_METHODS = {"get", "require", "get_int", "get_bool"}
# Local development only: on Azure the managed identity replaces them, and caller tokens are RS256 only.
LOCAL_ONLY = {"AzureWebJobsStorage", "PLATFORM_JWT_DEV_HS256_SECRET", "KEY_VAULT_LOCAL_TOKEN"}


def _sources() -> list[Path]:
    return [*sorted((ROOT / "core").rglob("*.py")), ROOT / "function_app.py"]


def _is_settings_receiver(node: ast.expr) -> bool:
    """``settings.get(...)``, ``self.settings.require(...)``, ``get_settings().get(...)``,
    ``(settings or get_settings()).get(...)``, ``settings.values.get(...)``."""
    return "settings" in ast.unparse(node).lower()


def settings_read_by_code() -> dict[str, set[str]]:
    """Setting name -> files reading it. Literal names passed to a settings object's get/require/...,
    literal names passed to a local helper that forwards its parameter to one (``number("X", 1)``), and
    ``%NAME%`` app-setting placeholders in trigger decorators (the timer schedule)."""
    found: dict[str, set[str]] = {}

    def add(name: str, path: Path) -> None:
        found.setdefault(name, set()).add(str(path.relative_to(ROOT)))

    for path in _sources():
        if path.name == "settings.py" and path.parent.name == "core":
            continue  # the loader itself reads every declared name generically
        text = path.read_text()
        tree = ast.parse(text)
        forwarding: set[str] = set()  # local helpers whose parameter is the setting name
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef):
                params = {a.arg for a in fn.args.args}
                for call in ast.walk(fn):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr in SETTINGS_METHODS
                        and _is_settings_receiver(call.func.value)
                        and call.args
                        and isinstance(call.args[0], ast.Name)
                        and call.args[0].id in params
                    ):
                        forwarding.add(fn.name)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not call.args:
                continue
            first = call.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            func = call.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr in SETTINGS_METHODS
                and _is_settings_receiver(func.value)
            ) or (isinstance(func, ast.Name) and func.id in forwarding):
                add(first.value, path)
        for placeholder in re.findall(r"""["']%(\w+)%["']""", text):
            add(placeholder, path)
    return found


READ = settings_read_by_code()


def _bicep() -> str:
    return "\n".join(p.read_text() for p in sorted(INFRA.rglob("*.bicep")))


def _app_settings() -> dict[str, str]:
    """name -> value expression of every app setting in infra/app/api.bicep."""
    text = (INFRA / "app" / "api.bicep").read_text()
    return dict(re.findall(r"\{ name: '([^']+)', value: (.+?) \}", text))


def test_the_parser_finds_the_reads_it_must_find() -> None:
    # One of each shape: a plain get, require, get_int, the forwarding helper, the timer placeholder.
    assert "core/adapters/identity/auth.py" in READ["PLATFORM_JWT_JWKS_URL"]
    assert "core/adapters/identity/msal_app.py" in READ["DYNAMICS_CLIENT_SECRET"]
    assert "EXPORT_CHUNK_SIZE" in READ
    assert "core/bootstrap.py" in READ["DYNAMICS_LIMIT_WINDOW_S"]
    assert any(f.startswith("core/entrypoints/") for f in READ["TOKEN_REFRESH_SCHEDULE"])
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in READ


def test_every_setting_the_code_reads_is_declared() -> None:
    undeclared = {name: sorted(files) for name, files in READ.items() if name not in DECLARED}
    assert undeclared == {}, "declare these in core/settings.py SETTING_SPECS (then scripts/settings_docs.py)"


def test_every_declared_setting_is_read_somewhere() -> None:
    assert sorted(DECLARED - set(READ)) == [], "declared in SETTING_SPECS but no code reads them"


@pytest.mark.parametrize("name", sorted(READ))
def test_a_setting_the_code_reads_is_provisioned_documented_and_in_the_example(name: str) -> None:
    app_settings = _app_settings()
    if name in LOCAL_ONLY:
        assert name not in app_settings, f"{name} is for local development only and must not reach Azure"
    else:
        assert name in app_settings, (
            f"{name} is read by {sorted(READ[name])} but not set in infra/app/api.bicep"
        )
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert name in example, f"{name} missing from local.settings.json.example"
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{re.escape(name)}` \|", readme, re.M), f"{name} missing from the README table"


def test_infra_sets_no_setting_nobody_reads() -> None:
    """Every app setting is read by the code, by the Functions host / its extensions, or by an SDK."""
    platform = {
        "AzureWebJobsStorage__credential",  # host + queue trigger extension (identity-based)
        "AzureWebJobsStorage__clientId",
        "AZURE_CLIENT_ID",  # azure-identity's DefaultAzureCredential: which managed identity
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # azure-monitor-opentelemetry + host: Entra ID auth
        "PYTHON_ENABLE_OPENTELEMETRY",  # Functions host + Python worker: the worker streams OTel logs itself
    }
    assert sorted(set(_app_settings()) - set(READ) - platform) == []


def test_storage_is_reached_through_the_user_assigned_identity_only() -> None:
    settings = _app_settings()
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}Endpoint"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identityClientId};Authorization=AAD'"
    )
    text = _bicep()
    assert "AccountKey" not in text and "listKeys(" not in text
    assert "allowSharedKeyAccess: false" in (INFRA / "app" / "storage.bicep").read_text()
    # Flex Consumption rejects these two app settings (the runtime is in functionAppConfig).
    assert "FUNCTIONS_WORKER_RUNTIME" not in settings and "FUNCTIONS_EXTENSION_VERSION" not in settings


def test_secrets_are_key_vault_references_named_in_the_readme() -> None:
    settings = _app_settings()
    readme = (ROOT / "README.md").read_text()
    for name, secret in (("DYNAMICS_CLIENT_SECRET", "DYNAMICS-CLIENT-SECRET"),):
        assert settings[name] == f"'@Microsoft.KeyVault(VaultName=${{vaultName}};SecretName={secret})'"
        assert f"`{secret}`" in readme
    # The key-encryption key is a vault key the app uses through the vault, not a secret it reads.
    assert settings["TOKEN_WRAPPING_KEY_ID"] == "tokenWrappingKeyId"
    assert settings["PLATFORM_JWT_ALLOW_DEV_HS256"] == "'false'"


def test_opentelemetry_mode_on_the_host_and_the_worker_with_one_exporter() -> None:
    """learn.microsoft.com/azure/azure-functions/opentelemetry-howto (Python): host.json telemetryMode
    OpenTelemetry, PYTHON_ENABLE_OPENTELEMETRY=true so the host lets the worker stream its OpenTelemetry logs
    (no duplicate host-level entries), and the app calls configure_azure_monitor() itself."""
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = _app_settings()
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "'true'"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
    # The worker would call configure_azure_monitor() a second time (duplicate export) with this one.
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    observability = (ROOT / "core" / "observability.py").read_text()
    assert re.search(r"^\s+configure_azure_monitor\($", observability, re.M)
    readme = (ROOT / "README.md").read_text()
    assert '"telemetryMode": "OpenTelemetry"' in readme and "`PYTHON_ENABLE_OPENTELEMETRY=true`" in readme
