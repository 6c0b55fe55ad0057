"""MSAL confidential client for the Dynamics (Dataverse) delegated grant, and the WhoAmI call.

One ``ConfidentialClientApplication`` per operation, bound to that workspace's token cache. The OIDC
discovery answer is fetched once per factory and handed to each new application as a deep copy of msal's
``http_cache``, so new applications do not re-discover but never share msal's 60 s cache of HTTP 400
answers (a refresh after a fault is cleared is really sent again).
"""

from __future__ import annotations

import copy
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import msal
import requests

from core.settings import Settings


@dataclass(frozen=True)
class MsalConfig:
    client_id: str
    client_secret: str
    authority: str
    redirect_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> MsalConfig:
        return cls(
            client_id=settings.require("DYNAMICS_CLIENT_ID"),
            client_secret=settings.require("DYNAMICS_CLIENT_SECRET"),
            authority=settings.require("DYNAMICS_AUTHORITY"),
            redirect_uri=settings.require("DYNAMICS_REDIRECT_URI"),
        )

    def __repr__(self) -> str:  # never print the client secret
        return f"MsalConfig(client_id={self.client_id!r}, authority={self.authority!r})"


class _TimeoutHttpClient:
    """msal's ``http_client`` contract (get/post/close) over a session, with a default timeout.

    msal applies its ``timeout`` argument only to the session it builds itself; with our own session every
    token request would wait as long as Entra keeps the connection open."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        self._session.close()


class MsalAppFactory:
    def __init__(
        self, config: MsalConfig, http_client: requests.Session | None = None, timeout: float = 20
    ) -> None:
        self.config = config
        self._http = _TimeoutHttpClient(http_client or requests.Session(), timeout)
        self._timeout = timeout
        self._discovery: dict[Any, Any] | None = None
        self._lock = threading.Lock()

    def build(self, cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
        with self._lock:
            seed = copy.deepcopy(self._discovery) if self._discovery is not None else {}
        app = msal.ConfidentialClientApplication(
            self.config.client_id,
            client_credential=self.config.client_secret,
            authority=self.config.authority,
            instance_discovery=False,
            validate_authority=True,
            http_client=self._http,
            token_cache=cache if cache is not None else msal.SerializableTokenCache(),
            http_cache=seed,
            timeout=self._timeout,
        )
        if self._discovery is None:
            with self._lock:
                if self._discovery is None:
                    self._discovery = copy.deepcopy(seed)  # only the discovery GET is in it so far
        return app

    def initiate_flow(self, scopes: list[str], state: str) -> dict[str, Any]:
        app = self.build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # msal suggests form_post; our callback is a GET
            flow: dict[str, Any] = app.initiate_auth_code_flow(
                scopes,
                redirect_uri=self.config.redirect_uri,
                state=state,
                response_mode="query",
                prompt="select_account",
            )
        return flow


class WhoAmIError(Exception):
    """WhoAmI failed (status only; the token is never part of the message)."""


class DataverseWhoAmI:
    """``GET {env}/api/data/v9.2/WhoAmI`` → the Dynamics ``systemuserid`` of the token's user."""

    def __init__(self, http_client: requests.Session | None = None, timeout: float = 20) -> None:
        self._http = http_client or requests.Session()
        self._timeout = timeout

    def user_id(self, environment_url: str, access_token: str) -> str:
        try:
            response = self._http.get(
                f"{environment_url.rstrip('/')}/api/data/v9.2/WhoAmI",
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "Accept": "application/json",
                    "OData-MaxVersion": "4.0",
                    "OData-Version": "4.0",
                },
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise WhoAmIError(f"WhoAmI unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise WhoAmIError(f"WhoAmI answered HTTP {response.status_code}")
        try:
            user_id = response.json()["UserId"]
        except (ValueError, KeyError, TypeError):
            raise WhoAmIError("WhoAmI answered without UserId") from None
        return str(user_id)
