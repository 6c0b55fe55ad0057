"""Development sign-in for the setup window: the devhost plays the platform's sign-in, locally only.

The platform's web app gives the window a caller token of the signed-in person. Locally there is no
platform, so the devhost serves, while the app's development token mode is on
(``PLATFORM_JWT_ALLOW_DEV_HS256=true`` with ``PLATFORM_JWT_DEV_HS256_SECRET``, which production refuses):

- ``GET  /_devhost/sign-in``  a page to pick the workspace, the user and the role (admin or member);
                              ``?workspace=&user=&role=&go=1`` signs in at once (the demo's ready link)
- ``POST /_devhost/token``    ``{"workspace", "user", "role"}`` → ``{"token", "expiresIn"}``: an HS256
                              caller token with the app's audience and issuer, as the platform would mint

Off otherwise (404, as for any unknown path). It lives in the devhost, which is never deployed: the app
itself has no way to mint a caller token.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import jwt

PREFIX = "/_devhost/"
TOKEN_LIFETIME_S = 600
MAX_BODY = 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
ROLES = ("admin", "member")
IDENTITY_KEY = "dynamics-dev-identity"  # web/src/auth.ts reads it

Answer = tuple[int, list[tuple[str, str]], bytes]


def enabled(env: Mapping[str, str]) -> bool:
    return (env.get("PLATFORM_JWT_ALLOW_DEV_HS256") or "").lower() == "true" and bool(
        env.get("PLATFORM_JWT_DEV_HS256_SECRET")
    )


def _json(status: int, body: dict[str, Any]) -> Answer:
    content_type = "application/json" if status < 400 else "application/problem+json"
    headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
    return status, headers, json.dumps(body).encode()


def _problem(status: int, detail: str, pointer: str | None = None) -> Answer:
    body: dict[str, Any] = {"type": "about:blank", "title": "Bad Request", "status": status, "detail": detail}
    if pointer:
        body["errors"] = [{"pointer": pointer, "message": detail}]
    return _json(status, body)


def mint(env: Mapping[str, str], workspace: str, user: str, role: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "workspace_id": workspace,
        "role": role,
        "aud": env.get("PLATFORM_JWT_AUDIENCE") or "dynamics-integration",
        "iss": env.get("PLATFORM_JWT_ISSUER") or "https://platform.local",
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_S,
    }
    return jwt.encode(claims, env["PLATFORM_JWT_DEV_HS256_SECRET"], algorithm="HS256")


def token(env: Mapping[str, str], body: bytes) -> Answer:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _problem(400, "the body must be JSON: {workspace, user, role}")
    if not isinstance(data, dict):
        return _problem(400, "the body must be a JSON object: {workspace, user, role}")
    for name in ("workspace", "user"):
        value = data.get(name)
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            return _problem(400, f"{name}: 1-64 letters, digits, '.', '_', '@' or '-'", f"/{name}")
    if data.get("role") not in ROLES:
        return _problem(400, "role: admin or member", "/role")
    signed = mint(env, data["workspace"], data["user"], data["role"])
    return _json(200, {"token": signed, "expiresIn": TOKEN_LIFETIME_S})


def page(query: Mapping[str, str]) -> Answer:
    def value(name: str, default: str) -> str:
        given = query.get(name, default)
        return html.escape(given if _NAME.fullmatch(given) else default)

    role = query.get("role", "admin")
    options = "".join(f'<option value="{r}"{" selected" if r == role else ""}>{r}</option>' for r in ROLES)
    auto = "true" if query.get("go") == "1" else "false"
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in</title>
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; color: #1b1b1f; max-width: 28rem; margin: 3rem auto;
   padding: 0 1rem; }}
 label {{ display: block; margin-top: 1rem; font-weight: 600; }}
 input, select {{ font: inherit; width: 100%; padding: .4rem; border: 1px solid #6b6b75;
   border-radius: 6px; }}
 button {{ margin-top: 1.5rem; font: inherit; padding: .5rem 1rem; background: #0b5cad; color: #fff;
   border: 0; border-radius: 6px; }}
 p {{ color: #4a4a55; }}
</style></head>
<body><main>
<h1>Development sign-in</h1>
<p>Local development only: pick who you are in the platform. The devhost mints a caller token for this
workspace, user and role, as the platform's sign-in would.</p>
<form id="sign-in">
 <label for="workspace">Workspace</label>
 <input id="workspace" name="workspace" required value="{value("workspace", "ws-local")}">
 <label for="user">User</label>
 <input id="user" name="user" required value="{value("user", "user-admin")}">
 <label for="role">Role</label><select id="role" name="role">{options}</select>
 <button type="submit">Sign in</button>
</form>
<script>
const form = document.getElementById("sign-in");
function signIn(event) {{
  if (event) event.preventDefault();
  const identity = {{ workspace: form.workspace.value.trim(), user: form.user.value.trim(),
                      role: form.role.value }};
  sessionStorage.setItem("{IDENTITY_KEY}", JSON.stringify(identity));
  location.assign("/");
}}
form.addEventListener("submit", signIn);
if ({auto}) signIn();
</script>
</main></body></html>"""
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
    return 200, headers, body.encode()


def handle(
    env: Mapping[str, str], method: str, path: str, query: Mapping[str, str], body: bytes
) -> Answer | None:
    """The answer for a ``/_devhost/`` request, or ``None`` when it is not one of ours (or we are off)."""
    if not enabled(env):
        return None
    if path == PREFIX + "sign-in" and method in {"GET", "HEAD"}:
        return page(query)
    if path == PREFIX + "token" and method == "POST":
        if len(body) > MAX_BODY:
            return _problem(413, f"at most {MAX_BODY} bytes")
        return token(env, body)
    return None
