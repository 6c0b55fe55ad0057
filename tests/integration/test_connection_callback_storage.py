"""The OAuth callback with Table Storage failing (taking the flow, or saving the connection) redirects to
the frontend with ``storage_unavailable`` and leaves no secret in Key Vault: real msal against the Entra
stand-in, the real SecretClient against the Key Vault stand-in, a table endpoint nothing listens on."""

from __future__ import annotations

import base64

import pytest
from azure.data.tables import TableServiceClient

from core.adapters.storage.connection_repository import AuthFlowRepository, ConnectionRepository
from core.domain.connection import ConnectionStatus
from core.services.connection.service import ConnectError, ConnectionService
from tests.support.identity import IdentityStack, caller, finish_sign_in

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]

WS = "ws-a"


def dead_table_service() -> TableServiceClient:
    """A table endpoint nothing listens on (storage outage), no retries."""
    key = base64.b64encode(b"x" * 64).decode()
    return TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        retry_total=0,
    )


def with_storage(
    stack: IdentityStack, *, flows: AuthFlowRepository, connections: ConnectionRepository
) -> ConnectionService:
    service = stack.components.service
    return ConnectionService(
        connections=connections,
        flows=flows,
        notifications=stack.components.notifications,
        secrets=service._secrets,
        cipher=service._cipher,
        msal_factory=service._msal,
        whoami=service._whoami,
        allowed_hosts=service._allowed_hosts,
    )


def test_callback_with_connections_table_failing_redirects_and_leaves_no_secret(
    identity_stack: IdentityStack,
) -> None:
    stack = identity_stack
    c = stack.components
    dead = ConnectionRepository(dead_table_service(), stack.prefix + "DynamicsConnections")
    answer = stack.browser_sign_in(c.service.start_connect(caller(WS), stack.env.url))
    with pytest.raises(ConnectError) as err:
        finish_sign_in(with_storage(stack, flows=c.flows, connections=dead), caller(WS), answer)
    assert err.value.code == "storage_unavailable"
    assert stack.keyvault.live_names() == []  # the secret written just before was deleted again
    assert c.service.get(WS) is None
    # the same admin tries again once storage is back: connects normally
    stack.connect()
    assert c.service.get(WS).status is ConnectionStatus.CONNECTED  # type: ignore[union-attr]
    assert len(stack.keyvault.live_names()) == 1


def test_callback_with_flows_table_failing_redirects_and_stores_nothing(
    identity_stack: IdentityStack,
) -> None:
    stack = identity_stack
    c = stack.components
    dead = AuthFlowRepository(dead_table_service(), stack.prefix + "DynamicsAuthFlows")
    answer = stack.browser_sign_in(c.service.start_connect(caller(WS), stack.env.url))
    with pytest.raises(ConnectError) as err:
        finish_sign_in(with_storage(stack, flows=dead, connections=c.connections), caller(WS), answer)
    assert err.value.code == "storage_unavailable"
    assert stack.keyvault.live_names() == []
    assert c.service.get(WS) is None
