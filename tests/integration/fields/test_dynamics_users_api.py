"""The users-mapping step's Dynamics users, end to end: the functions as the host calls them, the real
Dataverse client against the Dataverse emulator seeded with a few thousand users (one disabled by the
seed, more added here, plus application and non-interactive users that must never be offered).

What an admin notices: every enabled person appears once, in name order, page after page; disabled ones
only on request; the search finds names and e-mails literally (a ``%`` is a percent sign); a suggestion is
the Dynamics user with the platform user's e-mail whatever its case; without a connection the answer says
so (409), and members cannot list users.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from core import bootstrap
from core.entrypoints import users_api
from core.services.dynamics.access import DynamicsAccess
from core.settings import get_settings
from emulators.dataverse import DataverseEmulator
from emulators.dataverse.odata import like_fold
from emulators.dataverse.seed import SeedSpec
from emulators.dataverse.server import ROOT_BUSINESS_UNIT_ID
from emulators.tls import trusting_session
from tests.integration.fields.test_fields_api import EmulatorTokens
from tests.support import tokens
from tests.support.app import use_app
from tests.support.azurite import Azurite
from tests.support.dataverse import STATIC_TOKEN
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration

SEEDED_USERS = 3000


@pytest.fixture(scope="module")
def emulator() -> Iterator[DataverseEmulator]:
    instance = DataverseEmulator(accepted_tokens=(STATIC_TOKEN,))
    instance.start()
    try:
        instance.load_seed(SeedSpec(users=SEEDED_USERS, accounts=0, contacts=0))
        instance.add_user(firstname="Percy", lastname="100%", domainname="percy@contoso.com")
        instance.add_user(firstname="Underscore", lastname="A_B", domainname="under_score@contoso.com")
        instance.add_user(firstname="Mixed", lastname="Case", domainname="Mixed.Case@Contoso.com")
        instance.add_user(firstname="Gone", lastname="Away", domainname="gone@contoso.com", disabled=True)
        table = instance.schema.tables["systemuser"]
        caller = instance._system_caller()
        for n, extra in enumerate(
            ({"applicationid": str(uuid.uuid4())}, {"accessmode": 4}, {"accessmode": 3})
        ):
            instance.records.create(
                table,
                {
                    "firstname": "Robot",
                    "lastname": f"App{n}",
                    "domainname": f"robot{n}@contoso.com",
                    "internalemailaddress": f"robot{n}@contoso.com",
                    "businessunitid@odata.bind": f"/businessunits({ROOT_BUSINESS_UNIT_ID})",
                    **extra,
                },
                caller,
            )
        yield instance
    finally:
        instance.stop()


def _store_users(emulator: DataverseEmulator) -> list[dict[str, Any]]:
    return list(emulator.records.store.rows("systemuser"))


def _people(emulator: DataverseEmulator, *, include_disabled: bool) -> dict[str, dict[str, Any]]:
    """What the list must show: users that are people (no application id, access mode 0-2)."""
    return {
        str(u["systemuserid"]).lower(): u
        for u in _store_users(emulator)
        if u.get("applicationid") is None
        and (u.get("accessmode") or 0) in (0, 1, 2)
        and (include_disabled or not u.get("isdisabled"))
    }


class Api:
    def __init__(self, emulator: DataverseEmulator, provider: EmulatorTokens, ws: str) -> None:
        self.emulator = emulator
        self.provider = provider
        self.ws = ws

    def users(self, role: str = "admin", **params: str) -> func.HttpResponse:
        return call(
            users_api.get_dynamics_users,
            request("GET", "dynamics/users", headers=tokens.bearer(self.ws, role=role), params=params),
        )

    def all_pages(self, **params: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            resp = self.users(**params, **({"cursor": cursor} if cursor else {}))
            assert resp.status_code == 200, resp.get_body()
            page = body_json(resp)
            seen.extend(page["users"])
            cursor = page["nextCursor"]
            if cursor is None:
                return seen

    def suggest(self, people: list[dict[str, str]], role: str = "admin") -> func.HttpResponse:
        return call(
            users_api.post_dynamics_user_suggestions,
            request(
                "POST",
                "dynamics/users/suggestions",
                json_body={"people": people},
                headers=tokens.bearer(self.ws, role=role),
            ),
        )


@pytest.fixture()
def api(emulator: DataverseEmulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    configure_app(monkeypatch, azurite.connection_string)
    provider = EmulatorTokens(emulator.url, emulator.default_user_id)
    use_app(monkeypatch, dynamics_access=DynamicsAccess(provider, session_factory=trusting_session))
    ws = f"ws-{uuid.uuid4().hex[:12]}"
    provider.connected.add(ws)
    yield Api(emulator, provider, ws)
    get_settings.cache_clear()


def test_every_enabled_person_once_in_name_order_across_pages(api: Api) -> None:
    users = api.all_pages(limit="200")
    expected = _people(api.emulator, include_disabled=False)
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids)) == len(expected) > SEEDED_USERS - 10
    assert set(ids) == set(expected)
    assert all(u["enabled"] for u in users)
    names = [like_fold(u["fullName"]) for u in users]  # Dataverse's collation ignores case and accents
    assert names == sorted(names)
    assert not any(u["fullName"].startswith("Robot") for u in users)  # application/non-interactive users
    seeded = next(u for u in users if u["email"] and u["email"].endswith("@contoso.onmicrosoft.com"))
    assert seeded["businessUnitName"] == "Contoso Sales"


def test_disabled_users_only_on_request(api: Api) -> None:
    enabled = {u["id"] for u in api.all_pages(limit="200", search="gone")}
    assert enabled == set()
    everyone = api.all_pages(limit="200", includeDisabled="true")
    disabled = {u["id"] for u in everyone if not u["enabled"]}
    expected = {i for i, u in _people(api.emulator, include_disabled=True).items() if u.get("isdisabled")}
    assert disabled == expected and len(disabled) >= 2
    assert len(everyone) == len(_people(api.emulator, include_disabled=True))


def test_search_matches_name_or_email_literally(api: Api) -> None:
    people = _people(api.emulator, include_disabled=False)
    some = next(iter(sorted(people.values(), key=lambda u: str(u["systemuserid"]))))
    fragment = str(some["lastname"])[:4]
    found = {u["id"] for u in api.all_pages(search=fragment, limit="200")}
    want = {
        i
        for i, u in people.items()
        if fragment.casefold() in (u.get("fullname") or "").casefold()
        or fragment.casefold() in (u.get("internalemailaddress") or "").casefold()
    }
    assert found == want and str(some["systemuserid"]).lower() in found
    by_mail = api.all_pages(search="MIXED.case@contoso")
    assert [u["fullName"] for u in by_mail] == ["Mixed Case"]
    # LIKE wildcards are the user's characters: "%" is a percent sign, "_" an underscore.
    assert [u["fullName"] for u in api.all_pages(search="100%")] == ["Percy 100%"]
    assert [u["email"] for u in api.all_pages(search="r_s")] == ["under_score@contoso.com"]


def test_pages_are_cached_per_workspace_until_refresh(api: Api) -> None:
    first = api.users(limit="5", search="a")
    api.emulator.reset_stats()
    again = api.users(limit="5", search="a")
    assert body_json(again) == body_json(first)
    assert api.emulator.stats()["requests"] == 0
    refreshed = api.users(limit="5", search="a", refresh="true")
    assert refreshed.status_code == 200
    assert api.emulator.stats()["requests"] == 1


def test_bad_parameters_name_the_parameter(api: Api) -> None:
    page = body_json(api.users(limit="3", search="a"))
    other = api.users(limit="3", search="b", cursor=page["nextCursor"])
    assert other.status_code == 400 and body_json(other)["errors"][0]["pointer"] == "/cursor"
    for params, name in (
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"search": "x" * 101}, "search"),
        ({"includeDisabled": "maybe"}, "includeDisabled"),
    ):
        resp = api.users(**params)
        assert resp.status_code == 400, (params, resp.get_body())
        assert resp.mimetype == "application/problem+json"
        assert body_json(resp)["errors"][0]["pointer"] == f"/{name}"


def test_not_connected_and_members(api: Api) -> None:
    api.provider.connected.discard(api.ws)
    resp = api.users()
    assert resp.status_code == 409 and body_json(resp)["code"] == "not_connected"
    resp = api.suggest([{"platformId": "u1", "email": "a@b.c"}])
    assert resp.status_code == 409 and body_json(resp)["code"] == "not_connected"
    api.provider.connected.add(api.ws)
    assert api.users(role="member").status_code == 403
    assert api.suggest([], role="member").status_code == 403


def test_suggestions_by_email_in_one_query(api: Api) -> None:
    people = _people(api.emulator, include_disabled=False)
    seeded = sorted(people.values(), key=lambda u: str(u["systemuserid"]))[:50]
    asked = [
        {"platformId": f"p{n}", "email": str(u["internalemailaddress"]).upper()} for n, u in enumerate(seeded)
    ]
    asked += [
        {"platformId": "mixed", "email": "mixed.case@contoso.com"},
        {"platformId": "nobody", "email": "nobody@example.com"},
        {"platformId": "disabled", "email": "gone@contoso.com"},
        {"platformId": "robot", "email": "robot0@contoso.com"},
    ]
    api.emulator.reset_stats()
    resp = api.suggest(asked)
    assert resp.status_code == 200, resp.get_body()
    assert api.emulator.stats()["requests"] == 1
    got = {s["platformId"]: s["user"] for s in body_json(resp)["suggestions"]}
    for n, user in enumerate(seeded):
        assert got[f"p{n}"]["id"] == str(user["systemuserid"]).lower()
    assert got["mixed"]["fullName"] == "Mixed Case"
    assert got["nobody"] is None and got["disabled"] is None and got["robot"] is None


def test_suggestions_body_is_bounded_and_named(api: Api) -> None:
    too_many = [{"platformId": f"p{n}", "email": f"p{n}@x.com"} for n in range(users_api.MAX_PEOPLE + 1)]
    resp = api.suggest(too_many)
    assert resp.status_code == 400 and "people" in resp.get_body().decode()
    resp = api.suggest([{"platformId": "p", "email": "x" * 300}])
    assert resp.status_code == 400 and "email" in resp.get_body().decode()


def test_app_builds_one_users_service(api: Api) -> None:
    assert bootstrap.app().dynamics_users is bootstrap.app().dynamics_users
