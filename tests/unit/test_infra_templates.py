"""What a Bicep compiler would catch in infra/ (none can be installed here), and the resources the app
needs: module parameters and outputs wired consistently, the Flex Consumption app (FC1, Python 3.11,
identity-based deployment storage), every table/queue/container the code uses, RBAC role assignments by
their built-in ids, Key Vault in RBAC mode, Application Insights on Log Analytics, and the azd layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

from core.adapters.dataverse import budget as dynamics_budget
from core.adapters.storage import (
    alert_repository,
    config_repository,
    connection_repository,
    integrations_repository,
    leases,
    notification_repository,
    record_versions,
)
from core.services.activities import service as activity_service
from core.services.exports import service as export_service

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = (INFRA / "main.bicep").read_text()
# Set by azd itself: the principal ones resolved from whoever is logged in to azd (User, or ServicePrincipal
# when logged in with a client id), not from the .env file (azure-dev bicep_provider.go loadParameters).
AZD_PROVIDED = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_TYPE"}
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
# Roles the app never needs: key or vault management, every crypto operation, or everything.
# learn.microsoft.com/azure/role-based-access-control/built-in-roles#security and #privileged
TOO_BROAD = {
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603": "Key Vault Crypto Officer",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "f25e0fa2-a7c8-4377-a976-54943a77a395": "Key Vault Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
}

# Built-in role ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
ROLES = {
    "storage.bicep": {
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    },
    "keyvault.bicep": {
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",  # Key Vault Secrets Officer
        "e147488a-f6f5-4113-8e2d-b22465e65bf6",  # Key Vault Crypto Service Encryption User
    },
    "monitoring.bicep": {"3913510d-42f4-4e42-8a64-420c390055eb"},  # Monitoring Metrics Publisher
}


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _params(text: str) -> dict[str, bool]:
    """param name -> has a default."""
    return {
        m.group(1): m.group(2) is not None
        for m in re.finditer(r"^param (\w+) \w+( = .+)?$", _strip_comments(text), re.M)
    }


def _outputs(text: str) -> set[str]:
    return set(re.findall(r"^output (\w+) ", text, re.M))


def _modules() -> dict[str, tuple[Path, set[str]]]:
    """symbol -> (module file, parameter names passed to it) for every module in main.bicep."""
    found: dict[str, tuple[Path, set[str]]] = {}
    text = _strip_comments(MAIN)
    for m in re.finditer(r"^module (\w+) '([^']+)' = \{", text, re.M):
        depth, i = 0, m.end() - 1
        while True:  # the module body up to its closing brace
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        body = text[m.end() : i]
        params = body[body.index("params:") :]
        passed = set(re.findall(r"(?:^|[{\s,])(\w+): ", params[len("params:") :], re.M))
        found[m.group(1)] = (INFRA / m.group(2), passed)
    return found


def test_azd_layout() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^\s+host: function$", azure_yaml, re.M)
    assert re.search(r"^\s+language: python$", azure_yaml, re.M)
    assert re.search(r"^\s+path: infra$", azure_yaml, re.M)
    assert "targetScope = 'subscription'" in MAIN
    modules = _modules()
    assert {p.relative_to(INFRA).as_posix() for p, _ in modules.values()} == {
        p.relative_to(INFRA).as_posix() for p in (INFRA / "app").glob("*.bicep")
    }


def test_every_module_gets_exactly_its_parameters() -> None:
    for symbol, (path, passed) in _modules().items():
        declared = _params(path.read_text())
        required = {name for name, has_default in declared.items() if not has_default}
        assert passed <= set(declared), f"module {symbol} is given unknown params {passed - set(declared)}"
        assert required <= passed, f"module {symbol} is missing params {required - passed}"


def test_every_module_output_used_exists() -> None:
    modules = _modules()
    for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", MAIN):
        assert symbol in modules, symbol
        assert output in _outputs(modules[symbol][0].read_text()), f"{symbol}.outputs.{output}"


def test_main_parameters_match_main_bicep() -> None:
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = _params(MAIN)
    assert set(given) <= set(declared)
    assert {name for name, has_default in declared.items() if not has_default} <= set(given)
    # azd fills ${NAME} from its environment; the README tells operators to set the ones without defaults
    # (azd sets the environment name and location itself, and the signed-in principal's id and type).
    readme = (ROOT / "README.md").read_text()
    for name, value in given.items():
        env = re.fullmatch(r"\$\{(\w+)(=[^}]*)?\}", value["value"])
        assert env, name
        if env.group(1) not in AZD_PROVIDED and env.group(2) is None:
            assert f"azd env set {env.group(1)} " in readme, env.group(1)


def test_flex_consumption_python_311_with_the_user_assigned_identity() -> None:
    api = (INFRA / "app" / "api.bicep").read_text()
    assert "sku: { tier: 'FlexConsumption', name: 'FC1' }" in api
    assert "kind: 'functionapp,linux'" in api
    assert "runtime: { name: 'python', version: '3.11' }" in api
    assert "type: 'UserAssigned'" in api
    assert (
        "authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }" in api
    )
    assert "type: 'blobContainer'" in api
    assert "keyVaultReferenceIdentity: identityId" in api
    assert "httpsOnly: true" in api


def test_role_assignments_use_the_built_in_role_ids_for_the_app_identity() -> None:
    for file, roles in ROLES.items():
        text = (INFRA / "app" / file).read_text()
        assert roles <= set(re.findall(r"'([0-9a-f-]{36})'", text)), file
        assert "principalType: 'ServicePrincipal'" in text
        assert "principalId: principalId" in text
    for symbol in ("storage", "keyVault", "monitoring"):
        assert "principalId" in _modules()[symbol][1], symbol
    assert re.search(r"principalId: identity\.outputs\.principalId", MAIN)


def test_key_vault_rbac_and_application_insights_on_log_analytics() -> None:
    vault = (INFRA / "app" / "keyvault.bicep").read_text()
    assert "enableRbacAuthorization: true" in vault
    assert "accessPolicies" not in vault
    monitoring = (INFRA / "app" / "monitoring.bicep").read_text()
    assert "Microsoft.OperationalInsights/workspaces@" in monitoring
    assert "WorkspaceResourceId: logs.id" in monitoring
    assert "DisableLocalAuth: true" in monitoring  # ingestion only with the identity's Entra ID token


def _bicep_list(text: str, var: str) -> set[str]:
    body = re.search(rf"^var {var} = \[(.*?)^\]", text, re.M | re.S)
    assert body, var
    return set(re.findall(r"^\s+'([^']+)'", body.group(1), re.M))


def test_every_table_queue_and_container_the_code_uses_is_provisioned_and_nothing_else() -> None:
    storage = (INFRA / "app" / "storage.bicep").read_text()
    names = [export_service.EXPORT_NAMES, activity_service.ACTIVITY_NAMES]
    tables = {
        integrations_repository.TABLE,
        config_repository.TABLE,
        connection_repository.CONNECTIONS_TABLE,
        connection_repository.FLOWS_TABLE,
        notification_repository.NOTIFICATIONS_TABLE,
        leases.LEASES_TABLE,
        dynamics_budget.BUDGET_TABLE,
        record_versions.VERSIONS_TABLE,
        *(n.jobs_table for n in names),
        *(n.chunks_table for n in names),
        *(n.records_table for n in names),
        *(n.paused_table for n in names),
        *(n.index_table for n in names),
        alert_repository.WEBHOOKS_TABLE,
        alert_repository.DELIVERIES_TABLE,
        alert_repository.DELIVERY_LOG_TABLE,
    }
    queues = {q for n in names for q in (n.queue, f"{n.queue}-poison")}
    queues |= {alert_repository.ALERT_QUEUE, f"{alert_repository.ALERT_QUEUE}-poison"}
    containers = {config_repository.CONTAINER, *(n.container for n in names)}
    assert _bicep_list(storage, "tables") == tables
    assert _bicep_list(storage, "queues") == queues
    assert _bicep_list(storage, "containers") == containers  # plus deploymentContainerName, below
    assert re.search(r"^var deploymentContainerName = '[a-z0-9-]{3,63}'", storage, re.M)


def _role_assignments(text: str) -> dict[str, tuple[str | None, str]]:
    """symbol -> (condition of an ``= if (...)`` resource or None, body) of every role assignment."""
    found: dict[str, tuple[str | None, str]] = {}
    text = _strip_comments(text)
    for m in re.finditer(
        r"^resource (\w+) 'Microsoft\.Authorization/roleAssignments@[\d-]+' = (?:if \((.+)\) )?\{$",
        text,
        re.M,
    ):
        end = re.compile(r"^\}$", re.M).search(text, m.end())
        assert end, m.group(1)
        found[m.group(1)] = (m.group(2), text[m.end() : end.start()])
    return found


def _decorated_param(text: str, name: str) -> str:
    """The decorators and declaration of one parameter."""
    m = re.search(rf"((?:^@.*\n)*)^param {name} .*$", text, re.M)
    assert m, name
    return m.group(0)


def test_whoever_runs_azd_becomes_key_vault_secrets_officer_to_store_the_app_secrets() -> None:
    # RBAC mode: without a data role even the subscription owner gets 403 storing DYNAMICS-CLIENT-SECRET.
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert given["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE}"
    assert re.search(r"^param principalId string = ''$", MAIN, re.M)  # no azd (plain ARM): no role
    principal_type = _decorated_param(MAIN, "principalType")
    assert principal_type.endswith("param principalType string = 'User'")
    assert "@allowed(['User', 'ServicePrincipal'])" in principal_type  # what azd can set
    vault_module = _modules()["keyVault"][1]
    assert {"operatorPrincipalId", "operatorPrincipalType"} <= vault_module
    assert re.search(r"^\s+operatorPrincipalId: principalId$", MAIN, re.M)
    assert re.search(r"^\s+operatorPrincipalType: principalType$", MAIN, re.M)

    vault = (INFRA / "app" / "keyvault.bicep").read_text()
    assert re.search(r"^param operatorPrincipalId string = ''$", vault, re.M)
    assert "@allowed(['User', 'ServicePrincipal'])" in _decorated_param(vault, "operatorPrincipalType")
    assignments = _role_assignments(vault)
    by_principal = {
        re.search(r"principalId: (\w+)", body).group(1): (condition, body)  # type: ignore[union-attr]
        for condition, body in assignments.values()
        if "keyVaultSecretsOfficer" in body
    }
    assert len(by_principal) == 2, sorted(assignments)
    app_condition, app_body = by_principal["principalId"]
    operator_condition, operator_body = by_principal["operatorPrincipalId"]
    assert app_condition is None and "principalType: 'ServicePrincipal'" in app_body
    assert operator_condition == "!empty(operatorPrincipalId)"
    assert "principalType: operatorPrincipalType" in operator_body
    for body, principal in ((app_body, "principalId"), (operator_body, "operatorPrincipalId")):
        assert "scope: vault" in body
        assert (
            "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
            "keyVaultSecretsOfficer)"
        ) in body
        # Distinct, deterministic names: a re-run is idempotent and the two never collide.
        assert f"name: guid(vault.id, {principal}, keyVaultSecretsOfficer)" in body
    assert f"var keyVaultSecretsOfficer = '{SECRETS_OFFICER}'" in vault

    # The operator finds the vault by name and is told they hold the role.
    assert re.search(r"^output AZURE_KEY_VAULT_NAME string = keyVault\.outputs\.name$", MAIN, re.M)
    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploy to Azure") :]
    deploy = deploy[: deploy.index("\n## ", 1)]
    assert "azd env get-value AZURE_KEY_VAULT_NAME" in deploy
    assert re.search(r"az keyvault secret set --vault-name \S+ --name DYNAMICS-CLIENT-SECRET ", deploy)
    # the key-encryption key is the vault key infra creates: nobody generates or stores a key by hand
    assert "TOKEN-ENCRYPTION-KEY --value" not in deploy and "openssl rand" not in deploy
    assert "Key Vault Secrets Officer" in deploy and "AZURE_PRINCIPAL_ID" in deploy


def _resource(text: str, type_: str) -> dict[str, tuple[str | None, str]]:
    """symbol -> (condition or None, body) of every resource of one type (``Microsoft.X/y``)."""
    found: dict[str, tuple[str | None, str]] = {}
    text = _strip_comments(text)
    for m in re.finditer(rf"^resource (\w+) '{re.escape(type_)}@[\w-]+' = (?:if \((.+)\) )?\{{$", text, re.M):
        end = re.compile(r"^\}$", re.M).search(text, m.end())
        assert end, m.group(1)
        found[m.group(1)] = (m.group(2), text[m.end() : end.start()])
    return found


def test_the_app_identity_wraps_with_a_vault_key_it_cannot_manage_or_read() -> None:
    vault = (INFRA / "app" / "keyvault.bicep").read_text()
    keys = _resource(vault, "Microsoft.KeyVault/vaults/keys")
    assert list(keys) == ["tokenWrappingKey"], keys
    condition, key = keys["tokenWrappingKey"]
    assert condition is None and "parent: vault" in key
    assert "kty: 'RSA'" in key and re.search(r"keySize: (3072|4096)", key)  # standard vaults: no oct keys
    assert "keyOps: ['wrapKey', 'unwrapKey']" in key  # no encrypt/decrypt/sign on this key
    assert "exportable: true" not in key and "releasePolicy" not in key
    assert re.search(
        r"^output tokenWrappingKeyId string = tokenWrappingKey\.properties\.keyUri$", vault, re.M
    )

    # The app principal: wrap/unwrap on that one key, secrets on the vault, nothing else in the vault.
    app_roles = set()
    for _condition, body in _role_assignments(vault).values():
        if re.search(r"principalId: principalId$", body, re.M):
            role = re.search(
                r"roleDefinitionId: subscriptionResourceId\(\s*'Microsoft\.Authorization/roleDefinitions',"
                r"\s*(\w+)\s*\)",
                body,
            )
            scope = re.search(r"scope: (\w+)", body)
            assert role and scope, body
            app_roles.add((role.group(1), scope.group(1)))
    assert app_roles == {
        ("keyVaultSecretsOfficer", "vault"),
        ("keyVaultCryptoServiceEncryptionUser", "tokenWrappingKey"),
    }
    assert f"var keyVaultCryptoServiceEncryptionUser = '{CRYPTO_SERVICE_ENCRYPTION_USER}'" in vault
    for path in INFRA.rglob("*.bicep"):
        for role_id, role in TOO_BROAD.items():
            assert role_id not in path.read_text(), f"{path.name} grants {role}"


def test_ftp_and_basic_auth_publishing_are_off() -> None:
    api = (INFRA / "app" / "api.bicep").read_text()
    policies = _resource(api, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    names = {}
    for condition, body in policies.values():
        assert condition is None  # unconditional
        assert "parent: app" in body
        assert re.search(r"^\s+properties: \{ allow: false \}$", body, re.M), body
        names[re.search(r"name: '(\w+)'", body).group(1)] = body  # type: ignore[union-attr]
    assert set(names) == {"ftp", "scm"}
    assert "ftpsState: 'Disabled'" in api


def test_network_restriction_is_an_off_by_default_parameter_documented_in_the_readme() -> None:
    assert re.search(r"^param allowedIpRanges string = ''$", MAIN, re.M)
    assert "allowedIpRanges" in _modules()["api"][1]
    assert re.search(r"^\s+allowedIpRanges: allowedIpRanges$", MAIN, re.M)
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["allowedIpRanges"]["value"] == "${ALLOWED_IP_RANGES=}"  # empty unless the operator sets it
    api = _strip_comments((INFRA / "app" / "api.bicep").read_text())
    assert re.search(r"^param allowedIpRanges string = ''$", api, re.M)
    assert "ipSecurityRestrictionsDefaultAction: empty(allowedRanges) ? 'Allow' : 'Deny'" in api
    assert re.search(
        r"for \(range, i\) in allowedRanges: \{\s+name: [^\n]+\s+ipAddress: range\s+action: 'Allow'", api
    )
    assert "scmIpSecurityRestrictionsUseMain: true" in api  # the scm site cannot be a way around it
    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploy to Azure") :]
    assert "azd env set ALLOWED_IP_RANGES " in deploy
    assert "OAuth callback" in deploy[deploy.index("ALLOWED_IP_RANGES") :][:1200]


def test_the_app_gets_the_vault_key_id_and_the_legacy_key_only_when_upgrading() -> None:
    assert re.search(r"^\s+tokenWrappingKeyId: keyVault\.outputs\.tokenWrappingKeyId$", MAIN, re.M)
    assert re.search(r"^param legacyTokenEncryptionKeySecret string = ''$", MAIN, re.M)
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["legacyTokenEncryptionKeySecret"]["value"] == "${LEGACY_TOKEN_ENCRYPTION_KEY_SECRET=}"
    api = (INFRA / "app" / "api.bicep").read_text()
    assert "{ name: 'TOKEN_WRAPPING_KEY_ID', value: tokenWrappingKeyId }" in api
    assert (
        "{ name: 'TOKEN_ENCRYPTION_KEY', value: empty(legacyTokenEncryptionKeySecret) ? '' : "
        "'@Microsoft.KeyVault(VaultName=${vaultName};SecretName=${legacyTokenEncryptionKeySecret})' }"
    ) in api
    readme = (ROOT / "README.md").read_text()
    assert "azd env set LEGACY_TOKEN_ENCRYPTION_KEY_SECRET TOKEN-ENCRYPTION-KEY" in readme
