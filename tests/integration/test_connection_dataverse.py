"""Connecting against the Dataverse emulator itself: it trusts the Entra stand-in's tokens, WhoAmI maps
the token's ``oid`` to the systemuser, and the provider's token works on the Web API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.services.connection.service import ConnectError
from emulators.dataverse.server import DataverseEmulator
from emulators.entra import EntraEmulator
from tests.support.identity import IdentityStack, caller, finish_sign_in

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=())
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


def test_connect_records_the_dynamics_user_and_token_works(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    stack = identity_stack
    user = stack.entra.current_user
    systemuserid = dataverse.add_user(object_id=user.object_id, domainname=user.email)
    url = stack.components.service.start_connect(caller("ws-dv"), dataverse.url)
    record = finish_sign_in(stack.components.service, caller("ws-dv"), stack.browser_sign_in(url))
    assert record.dynamics_user_id == systemuserid
    assert record.integration_user_email == user.email
    token = stack.components.tokens.access_token("ws-dv")
    answer = stack.session.get(
        f"{dataverse.url}/api/data/v9.2/WhoAmI", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["UserId"] == systemuserid


def test_user_outside_the_organisation_is_refused(
    identity_stack: IdentityStack, dataverse: DataverseEmulator
) -> None:
    stack = identity_stack
    stack.entra.add_user("stranger@fabrikam.example")  # signs in, but is no systemuser of this environment
    url = stack.components.service.start_connect(caller("ws-dv2"), dataverse.url)
    with pytest.raises(ConnectError) as err:
        finish_sign_in(stack.components.service, caller("ws-dv2"), stack.browser_sign_in(url))
    assert err.value.code == "whoami_failed"
    assert stack.components.service.get("ws-dv2") is None
    assert stack.keyvault.live_names() == []
