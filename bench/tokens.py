"""Benchmark: one token-refresh timer run over many connected workspaces, a fraction of them due.

``python -m bench.tokens [--workspaces 10000] [--due-fraction 0.1] [--concurrency 8]``

Real pieces: Azurite (tables), the Entra ID stand-in and the Key Vault stand-in in their own processes
(HTTPS), real msal and the real SecretClient. Seeding (not measured): one real sign-in gives an msal cache;
every workspace gets a copy holding its own live refresh token, sealed (AES-256-GCM, its data key wrapped
by the stand-in's RSA key as on Azure) in Key Vault, and a metadata row; due workspaces were last
refreshed 8 days ago. Measured: the wall time of ``TokenRefresher.run()``, the process's peak RSS during
it and the vault unwraps it made (a cold instance: one per due workspace). The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msal
import psutil
from azure.data.tables import TableServiceClient

from core.adapters.identity.key_wrapping import VaultKeyWrapper
from core.adapters.identity.keyvault import KeyVaultSecretStore, StaticTokenCredential, secret_client
from core.adapters.identity.token_crypto import TokenCipher
from core.bootstrap import build_connection
from core.domain.connection import ConnectionRecord, ConnectionStatus
from core.services.connection.tokens import secret_name_for
from core.settings import load_settings
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import run_azurite

REPO = Path(__file__).resolve().parent.parent
ENV_URL = "https://contoso.crm.dynamics.com"
REDIRECT = "https://app.local/api/dynamics/oauth/callback"


def start_emulator(module: str) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{module} did not start")
    return proc, json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspaces", type=int, default=10_000)
    parser.add_argument("--due-fraction", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    due_count = int(args.workspaces * args.due_fraction)
    ensure_ca()
    entra_proc, entra = start_emulator("emulators.entra")
    kv_proc, kv = start_emulator("emulators.keyvault")
    try:
        with run_azurite() as azurite:
            result = run(args, due_count, azurite.connection_string, entra, kv)
    finally:
        for proc in (entra_proc, kv_proc):
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))


def run(
    args: argparse.Namespace, due_count: int, storage: str, entra: dict[str, object], kv: dict[str, object]
) -> dict[str, object]:
    session = trusting_session()
    authority = str(entra["authority"])
    settings = load_settings(
        {
            "AzureWebJobsStorage": storage,
            "DYNAMICS_CLIENT_ID": str(entra["clientId"]),
            "DYNAMICS_CLIENT_SECRET": "local-client-secret",
            "DYNAMICS_AUTHORITY": authority,
            "DYNAMICS_REDIRECT_URI": REDIRECT,
            "KEY_VAULT_URL": str(kv["vaultUrl"]),
            "KEY_VAULT_LOCAL_TOKEN": str(kv["KEY_VAULT_LOCAL_TOKEN"]),
            "TOKEN_WRAPPING_KEY_ID": str(kv["tokenWrappingKeyId"]),
            "TOKEN_REFRESH_CONCURRENCY": str(args.concurrency),
        }
    )
    store = KeyVaultSecretStore(
        secret_client(
            str(kv["vaultUrl"]),
            StaticTokenCredential(str(kv["KEY_VAULT_LOCAL_TOKEN"])),
            local=True,
            connection_verify=str(ensure_ca().bundle_path),
            connection_pool_maxsize=32,
        )
    )
    tables = TableServiceClient.from_connection_string(storage)

    def wrapper() -> VaultKeyWrapper:
        return VaultKeyWrapper(
            str(kv["tokenWrappingKeyId"]),
            StaticTokenCredential(str(kv["KEY_VAULT_LOCAL_TOKEN"])),
            verify_challenge_resource=False,
            connection_verify=str(ensure_ca().bundle_path),
            connection_pool_maxsize=32,
        )

    # The measured run has its own wrapper, cold like a fresh instance's: each due workspace costs an unwrap.
    components = build_connection(
        settings, tables=tables, secret_store=store, key_wrapper=wrapper(), http_session=session
    )
    cipher = TokenCipher.from_settings(settings, wrapper=wrapper())

    # --- seed: one real sign-in for the cache template
    t0 = time.monotonic()
    app = msal.ConfidentialClientApplication(
        str(entra["clientId"]),
        client_credential="local-client-secret",
        authority=authority,
        instance_discovery=False,
        http_client=session,
        token_cache=msal.SerializableTokenCache(),
    )
    scope = f"{ENV_URL}/.default"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # msal's form_post advice; the callback is a GET
        flow = app.initiate_auth_code_flow([scope], redirect_uri=REDIRECT)
    location = session.get(flow["auth_uri"], allow_redirects=False, timeout=10).headers["Location"]
    params = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
    first = app.acquire_token_by_auth_code_flow(flow, params)
    template = app.token_cache.serialize()
    template_rt = first["refresh_token"]
    account_id = app.get_accounts()[0]["home_account_id"]
    base = str(entra["authority"]).rsplit("/", 1)[0]
    rts: list[str] = session.post(
        f"{base}/_emulator/grants", json={"count": args.workspaces, "scope": scope}, timeout=120
    ).json()["refreshTokens"]
    now = dt.datetime.now(dt.UTC)

    def seed(i: int) -> None:
        workspace = f"bench-{i:06d}"
        connection_id = uuid.uuid4().hex
        due = i < due_count
        record = ConnectionRecord(
            workspace_id=workspace,
            connection_id=connection_id,
            status=ConnectionStatus.CONNECTED,
            environment_url=ENV_URL,
            secret_name=secret_name_for(workspace, connection_id),
            account_id=account_id,
            integration_user_email="integration.user@contoso.example",
            dynamics_user_id=str(uuid.uuid4()),
            connected_by="bench",
            connected_at=now - dt.timedelta(days=30),
            last_refresh_at=now - dt.timedelta(days=8) if due else now,
            access_token_expires_at=now + dt.timedelta(minutes=50),
        )
        cache = template.replace(template_rt, rts[i])
        store.put(record.secret_name, cipher.seal(cache.encode(), workspace))
        components.connections.put(record)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(seed, range(args.workspaces)))
    seed_seconds = time.monotonic() - t0
    print(f"seeded {args.workspaces} workspaces ({due_count} due) in {seed_seconds:.1f}s", file=sys.stderr)

    # --- measure one timer run
    proc = psutil.Process(os.getpid())
    rss_before = proc.memory_info().rss
    peak = [rss_before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    vault_stats = f"{kv['vaultUrl']}/_emulator/stats"
    unwraps_before = session.get(vault_stats, timeout=10).json()["unwraps"]
    started = time.monotonic()
    report = components.refresher.run()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    stats = session.get(f"{base}/_emulator/stats", timeout=10).json()
    return {
        "workspaces": args.workspaces,
        "due": due_count,
        "concurrency": args.concurrency,
        "wall_seconds": round(wall, 2),
        "refreshes_per_second": round(report.refreshed / wall, 1) if wall else None,
        "target_seconds": 300,
        "within_target": wall < 300,
        "peak_rss_mb": round(peak[0] / 2**20, 1),
        "rss_growth_mb": round((peak[0] - rss_before) / 2**20, 1),
        "report": report.as_dict(),
        "entra_refresh_requests": stats["refreshToken"],
        "vault_unwraps": session.get(vault_stats, timeout=10).json()["unwraps"] - unwraps_before,
        "seed_seconds": round(seed_seconds, 1),
    }


if __name__ == "__main__":
    main()
