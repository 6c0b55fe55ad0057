"""The devhost's development sign-in: tokens the app accepts, only while the development token mode is on."""

from __future__ import annotations

import json

import jwt
import pytest

from devhost import dev_signin

DEV = {
    "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
    "PLATFORM_JWT_DEV_HS256_SECRET": "s" * 40,
    "PLATFORM_JWT_AUDIENCE": "aud-x",
    "PLATFORM_JWT_ISSUER": "https://iss.example",
}


def _token(env: dict[str, str], body: object) -> tuple[int, dict[str, object]]:
    answer = dev_signin.handle(env, "POST", "/_devhost/token", {}, json.dumps(body).encode())
    assert answer is not None
    return answer[0], json.loads(answer[2])


def test_token_names_the_chosen_workspace_user_and_role() -> None:
    status, body = _token(DEV, {"workspace": "ws-1", "user": "ada@example.com", "role": "member"})
    assert status == 200 and body["expiresIn"] == dev_signin.TOKEN_LIFETIME_S
    claims = jwt.decode(
        str(body["token"]), DEV["PLATFORM_JWT_DEV_HS256_SECRET"], algorithms=["HS256"],
        audience="aud-x", issuer="https://iss.example",
    )  # fmt: skip
    assert (claims["workspace_id"], claims["sub"], claims["role"]) == ("ws-1", "ada@example.com", "member")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"workspace": "ws-1", "user": "u", "role": "service"}, "/role"),
        ({"workspace": "../x", "user": "u", "role": "admin"}, "/workspace"),
        ({"workspace": "ws-1", "user": "", "role": "admin"}, "/user"),
        ({"workspace": "ws-1", "user": 5, "role": "admin"}, "/user"),
    ],
)
def test_bad_choices_are_refused_naming_the_field(body: dict[str, object], pointer: str) -> None:
    status, problem = _token(DEV, body)
    assert status == 400 and problem["errors"] == [{"pointer": pointer, "message": problem["detail"]}]


@pytest.mark.parametrize(
    "env",
    [
        {**DEV, "PLATFORM_JWT_ALLOW_DEV_HS256": "false"},
        {k: v for k, v in DEV.items() if k != "PLATFORM_JWT_DEV_HS256_SECRET"},
        {},
    ],
)
def test_off_outside_the_development_token_mode(env: dict[str, str]) -> None:
    body = b'{"workspace": "ws-1", "user": "u", "role": "admin"}'
    assert dev_signin.handle(env, "POST", "/_devhost/token", {}, body) is None
    assert dev_signin.handle(env, "GET", "/_devhost/sign-in", {}, b"") is None


def test_the_sign_in_page_escapes_what_the_link_prefills() -> None:
    answer = dev_signin.handle(DEV, "GET", "/_devhost/sign-in", {"workspace": '"><script>x', "go": "1"}, b"")
    assert answer is not None and answer[0] == 200
    page = answer[2].decode()
    assert '"><script>x' not in page and 'value="ws-local"' in page and "if (true) signIn();" in page
