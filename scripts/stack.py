"""The local stack: Azurite (blob, queue, table) + extra stand-in services + the devhost serving function_app.

    python scripts/stack.py start [--port 7071] [--blob-port 10000 --queue-port 10001 --table-port 10002]
    python scripts/stack.py status
    python scripts/stack.py stop
    python scripts/stack.py run [options] -- <command ...>   # start, run the command, always stop

Processes run detached (their own session) with logs under .local/stack/logs/ and their pids in
.local/stack/state.json, so `stop` works from another shell. Ports default to the well-known ones
(Azurite 10000-10002, devhost 7071); override them with flags or STACK_* environment variables.
A stand-in service joins the stack with one `Service` entry in SERVICES: its command, the ports it listens
on, and the app settings that point the devhost at it. The stack runs the three stand-ins (Entra ID, Key
Vault, Dataverse; see emulators/README.md) wired to each other and to the devhost: the Dataverse emulator
trusts the Entra stand-in's signing key and knows its signed-in user as a systemuser, so `POST
/api/dynamics/connect` works end to end. Their ports are free ones picked at start unless given
(--entra-port/--keyvault-port/--dataverse-port or STACK_ENTRA_PORT/...); their URLs are printed and kept in
state.json ("services").

Over 400 lines on purpose: start, status and stop of one stack share its process and port bookkeeping.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from devhost.launcher import DevHostProcess, free_port  # noqa: E402
from emulators.tls import ensure_ca, trusting_session  # noqa: E402

# STACK_STATE_DIR lets a second stack (e.g. a test's, on other ports) keep its own state and logs.
STATE_DIR = Path(os.environ.get("STACK_STATE_DIR") or REPO_ROOT / ".local" / "stack")
STATE_FILE = STATE_DIR / "state.json"
LOG_DIR = STATE_DIR / "logs"
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class StackConfig:
    devhost_port: int = 7071
    blob_port: int = 10000
    queue_port: int = 10001
    table_port: int = 10002
    app: str = "function_app"
    entra_port: int = 0  # 0: a free port picked at start (resolved())
    keyvault_port: int = 0
    dataverse_port: int = 0

    def resolved(self) -> StackConfig:
        """The same config with every stand-in port that is 0 replaced by a free port."""
        return StackConfig(
            self.devhost_port,
            self.blob_port,
            self.queue_port,
            self.table_port,
            self.app,
            self.entra_port or free_port(),
            self.keyvault_port or free_port(),
            self.dataverse_port or free_port(),
        )

    @property
    def devhost_url(self) -> str:
        return f"http://127.0.0.1:{self.devhost_port}"

    @property
    def storage_connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT};"
        )


@dataclass(frozen=True)
class Service:
    """A process of the stack, started before the devhost."""

    name: str
    # The command line. The second argument holds the JSON lines of the services started before it, by
    # name (e.g. the Dataverse emulator needs the Entra stand-in's signing key).
    command: Callable[[StackConfig, dict[str, dict[str, Any]]], list[str]]
    ports: Callable[[StackConfig], list[int]]
    # App settings the devhost gets so the app uses this service (a connection string, a URL, a token).
    # The second argument is the first JSON line the service printed (the emulators print their URL and
    # credentials that way), or {} when ``prints_json`` is False.
    settings: Callable[[StackConfig, dict[str, Any]], dict[str, str]] = field(default=lambda _c, _j: {})
    prints_json: bool = False
    # Called once the service is ready, with every earlier service's JSON line too (wiring between them).
    on_ready: Callable[[StackConfig, dict[str, dict[str, Any]]], None] | None = None
    # Public parts of the JSON line (URLs) kept in state.json so scripts can find the service.
    public: Callable[[dict[str, Any]], dict[str, str]] = field(default=lambda _j: {})


AZURITE = Service(
    name="azurite",
    command=lambda c, _ready: [
        str(AZURITE_BIN),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(c.blob_port),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(c.queue_port),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(c.table_port),
    ],
    ports=lambda c: [c.blob_port, c.queue_port, c.table_port],
    settings=lambda c, _ready: {"AzureWebJobsStorage": c.storage_connection_string},
)

# The local Entra app registration (the stand-in's client; not a secret: nothing outside loopback trusts it).
LOCAL_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
LOCAL_CLIENT_SECRET = "local-client-secret"
# The user who signs in at the Entra stand-in when the admin connects (the integration user), and the
# systemuser the Dataverse emulator maps that user's token ``oid`` to.
INTEGRATION_USER_EMAIL = "integration.user@contoso.example"
INTEGRATION_USER_OBJECT_ID = "5d1c9a7e-3b2f-4e6d-8a9c-1f0e2d3c4b5a"


def _entra_command(c: StackConfig, _ready: dict[str, dict[str, Any]]) -> list[str]:
    port = ["--port", str(c.entra_port)]
    return [sys.executable, "-m", "emulators.entra", *port, "--client-id", LOCAL_CLIENT_ID,
            "--client-secret", LOCAL_CLIENT_SECRET, "--redirect-uri", _redirect_uri(c)]  # fmt: skip


def _redirect_uri(c: StackConfig) -> str:
    """The devhost's OAuth callback: the app registration's only redirect URI."""
    return f"{c.devhost_url}/api/dynamics/oauth/callback"


# The local organisation keeps contact e-mail addresses unique with an alternate key (as many real ones
# do): a create that repeats one is refused by Dataverse itself (412 0x80060892), a refusal no metadata
# check can foresee, so exports show what a record failed by Dynamics looks like.
ORGANISATION_SCHEMA = {
    "tables": {"contact": {"keys": [{"name": "new_emailaddress1_key", "columns": ["emailaddress1"]}]}}
}
# Seed data loaded through the control API once it listens (20 users, 300 accounts, 1,000 contacts; no
# repeated contacts, which the e-mail key would refuse).
SEED = {"accounts": 300, "contacts": 1000, "users": 20, "duplicate_rate": 0.0}


def _dataverse_command(c: StackConfig, ready: dict[str, dict[str, Any]]) -> list[str]:
    """The Dataverse emulator trusting the Entra stand-in's signing key (written to a JWKS file: the
    emulator reads keys at start), with the organisation's schema additions."""
    jwks, schema = STATE_DIR / "entra-jwks.json", STATE_DIR / "dataverse-schema.json"
    jwks.write_text(json.dumps({"keys": [ready["entra"]["jwk"]]}))
    schema.write_text(json.dumps(ORGANISATION_SCHEMA))
    return [sys.executable, "-m", "emulators.dataverse", "--port", str(c.dataverse_port),
            "--jwks", str(jwks), "--schema", str(schema)]  # fmt: skip


def _wire_integration_user(_c: StackConfig, ready: dict[str, dict[str, Any]]) -> None:
    """Seed data in Dataverse; the integration user signs in at the Entra stand-in and exists in
    Dataverse (WhoAmI answers)."""
    session = trusting_session()
    session.trust_env = False
    entra_base = ready["entra"]["authority"].rsplit("/", 1)[0]
    user = {
        "email": INTEGRATION_USER_EMAIL,
        "objectId": INTEGRATION_USER_OBJECT_ID,
        "name": "Integration User",
    }
    session.post(f"{entra_base}/_emulator/users", json=user, timeout=10).raise_for_status()
    systemuser = {"object_id": INTEGRATION_USER_OBJECT_ID, "domainname": INTEGRATION_USER_EMAIL,
                  "firstname": "Integration", "lastname": "User"}  # fmt: skip
    dataverse = ready["dataverse"]["url"]
    session.post(f"{dataverse}/_emulator/seed", json=SEED, timeout=60).raise_for_status()
    session.post(f"{dataverse}/_emulator/users", json=systemuser, timeout=10).raise_for_status()


ENTRA = Service(
    name="entra",
    command=_entra_command,
    ports=lambda c: [c.entra_port],
    settings=lambda c, ready: {
        "DYNAMICS_CLIENT_ID": str(ready["clientId"]),
        "DYNAMICS_CLIENT_SECRET": LOCAL_CLIENT_SECRET,
        "DYNAMICS_AUTHORITY": str(ready["authority"]),
        "DYNAMICS_REDIRECT_URI": _redirect_uri(c),
    },
    prints_json=True,
    public=lambda ready: {"authority": str(ready["authority"])},
)
KEYVAULT = Service(
    name="keyvault",
    command=lambda c, _ready: [sys.executable, "-m", "emulators.keyvault", "--port", str(c.keyvault_port)],
    ports=lambda c: [c.keyvault_port],
    settings=lambda _c, ready: {
        "KEY_VAULT_URL": str(ready["vaultUrl"]),
        "KEY_VAULT_LOCAL_TOKEN": str(ready["KEY_VAULT_LOCAL_TOKEN"]),
        "TOKEN_WRAPPING_KEY_ID": str(ready["tokenWrappingKeyId"]),
    },
    prints_json=True,
    public=lambda ready: {"url": str(ready["vaultUrl"])},
)
DATAVERSE = Service(
    name="dataverse",
    command=_dataverse_command,
    ports=lambda c: [c.dataverse_port],
    # Environment URLs on loopback are allowed next to the real Dynamics host patterns.
    settings=lambda _c, _ready: {
        "DYNAMICS_ALLOWED_HOST_PATTERNS": "*.crm.dynamics.com,*.crm?.dynamics.com,127.0.0.1:*"
    },
    prints_json=True,
    on_ready=_wire_integration_user,
    public=lambda ready: {"url": str(ready["url"])},
)

# The stack's services in start order (Entra first: Dataverse trusts its key).
SERVICES: list[Service] = [AZURITE, ENTRA, KEYVAULT, DATAVERSE]


def base_settings() -> dict[str, str]:
    """Settings of the devhost that no service provides: the local CA for its HTTPS clients. Token caches
    are wrapped by the Key Vault stand-in's key (``TOKEN_WRAPPING_KEY_ID``), as on Azure."""
    return {"REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path)}


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def wait_for_ports(
    name: str, ports: list[int], process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}; see {LOG_DIR / name}.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not listen on {pending} within {timeout}s")
        pending = [p for p in pending if not port_open(p)]
        time.sleep(0.05)


def read_ready_json(name: str, process: subprocess.Popen[bytes], timeout: float = 30) -> dict[str, Any]:
    """The first JSON object line the service wrote to its log (stdout)."""
    deadline = time.monotonic() + timeout
    log_path = LOG_DIR / f"{name}.log"
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    data = json.loads(line)
                    if isinstance(data, dict):
                        return data
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}; see {log_path}")
        time.sleep(0.05)
    raise TimeoutError(f"{name} printed no JSON ready line within {timeout}s")


def read_state() -> dict[str, object] | None:
    if not STATE_FILE.exists():
        return None
    try:
        data = json.loads(STATE_FILE.read_text())
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_processes(state: dict[str, object]) -> list[dict[str, object]]:
    processes = state.get("processes")
    if not isinstance(processes, list):
        return []
    return [p for p in processes if isinstance(p, dict) and alive(int(p["pid"]))]


def stop_process(entry: dict[str, object], timeout: float = 20.0) -> None:
    """SIGTERM the process group we started (graceful), SIGKILL after ``timeout``."""
    pid = int(str(entry["pid"]))
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(quiet: bool = False) -> int:
    state = read_state()
    if state is None:
        if not quiet:
            print("stack: not running")
        return 0
    processes = state.get("processes")
    stopped: list[str] = []
    # The devhost first (it finishes in-flight work against storage), then the services in reverse order.
    # Every process is stopped before anything is printed: a closed stdout must not leave one running.
    for entry in reversed(processes if isinstance(processes, list) else []):
        if isinstance(entry, dict) and alive(int(entry["pid"])):
            stop_process(entry)
            stopped.append(f"stack: stopped {entry['name']} (pid {entry['pid']})")
    STATE_FILE.unlink(missing_ok=True)
    if not quiet:
        with contextlib.suppress(OSError):
            print("\n".join(stopped), flush=True)
    return 0


def start(config: StackConfig) -> int:
    state = read_state()
    if state is not None and running_processes(state):
        print(f"stack: already running (devhost {state.get('devhost_url')}); `stop` it first")
        return 0
    if not AZURITE_BIN.exists():
        print("stack: Azurite is not installed; run `bash scripts/setup.sh` first", file=sys.stderr)
        return 1
    busy = [(s.name, p) for s in SERVICES for p in s.ports(config) if port_open(p)] + [
        ("devhost", config.devhost_port)
    ] * port_open(config.devhost_port)
    if busy:
        listed = ", ".join(f"{port} ({name})" for name, port in busy)
        print(
            f"stack: ports already in use: {listed}. Stop whatever uses them or pick other ports.",
            file=sys.stderr,
        )
        return 1
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, object]] = []
    public: dict[str, dict[str, str]] = {}
    settings: dict[str, str] = base_settings()
    ready_lines: dict[str, dict[str, Any]] = {}

    def save() -> None:
        STATE_FILE.write_text(
            json.dumps(
                {"processes": entries, "devhost_url": config.devhost_url, "services": public}, indent=2
            )
        )

    try:
        for service in SERVICES:
            # A fresh log per start: the JSON ready line read below must be this start's.
            with open(LOG_DIR / f"{service.name}.log", "wb") as log:
                process = subprocess.Popen(
                    service.command(config, ready_lines),
                    cwd=REPO_ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            entries.append({"name": service.name, "pid": process.pid, "ports": service.ports(config)})
            save()
            wait_for_ports(service.name, service.ports(config), process)
            ready = read_ready_json(service.name, process) if service.prints_json else {}
            ready_lines[service.name] = ready
            settings.update(service.settings(config, ready))
            public[service.name] = service.public(ready)
            if service.on_ready is not None:
                service.on_ready(config, ready_lines)
            save()
        # The OAuth callback brings the admin back to the setup window this devhost serves.
        settings["FRONTEND_URL"] = f"{config.devhost_url}/"
        devhost = DevHostProcess(
            config.app,
            settings,
            config.devhost_port,
            settings_file=REPO_ROOT / "local.settings.json",
            log_path=LOG_DIR / "devhost.log",
            detach=True,
        )
        try:
            devhost.start(timeout=60)
        finally:
            if devhost.process is not None:
                entries.append(
                    {"name": "devhost", "pid": devhost.process.pid, "ports": [config.devhost_port]}
                )
                save()
    except (RuntimeError, TimeoutError, OSError, KeyError, requests.RequestException) as exc:
        print(f"stack: start failed: {exc}", file=sys.stderr)
        print(f"stack: logs are in {LOG_DIR}", file=sys.stderr)
        stop(quiet=True)
        return 1
    for entry in entries:
        print(f"stack: {entry['name']} running (pid {entry['pid']}, ports {entry['ports']})")
    for name, urls in public.items():
        if urls:
            print(f"stack: {name} at " + ", ".join(f"{k} {v}" for k, v in urls.items()))
    print(f"stack: devhost at {config.devhost_url}/api/  (logs: {LOG_DIR})")
    return 0


def status() -> int:
    state = read_state()
    if state is None:
        print("stack: not running")
        return 1
    processes = state.get("processes")
    entries = processes if isinstance(processes, list) else []
    up = {int(str(p["pid"])) for p in running_processes(state)}
    for entry in entries:
        print(f"{entry['name']:>10}  pid {entry['pid']}  {'up' if int(entry['pid']) in up else 'DOWN'}")
    return 0 if entries and len(up) == len(entries) else 1


def run(config: StackConfig, command: list[str]) -> int:
    if not command:
        print("stack: `run` needs a command after --", file=sys.stderr)
        return 2
    state = read_state()
    reuse = state is not None and bool(running_processes(state))
    if not reuse:
        code = start(config)
        if code:
            return code
    devhost_url = str(state.get("devhost_url")) if reuse and state is not None else config.devhost_url
    env = {**os.environ, "DEVHOST_URL": devhost_url, "STACK_STATE_DIR": str(STATE_DIR)}

    def terminated(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM: still stop the stack on the way out

    signal.signal(signal.SIGTERM, terminated)
    try:
        return subprocess.call(command, cwd=REPO_ROOT, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if not reuse:
            stop()


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    env = os.environ
    parser = argparse.ArgumentParser(prog="python scripts/stack.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "run"])
    parser.add_argument("--port", type=int, default=int(env.get("STACK_DEVHOST_PORT", 7071)))
    parser.add_argument("--blob-port", type=int, default=int(env.get("STACK_BLOB_PORT", 10000)))
    parser.add_argument("--queue-port", type=int, default=int(env.get("STACK_QUEUE_PORT", 10001)))
    parser.add_argument("--table-port", type=int, default=int(env.get("STACK_TABLE_PORT", 10002)))
    parser.add_argument("--entra-port", type=int, default=int(env.get("STACK_ENTRA_PORT", 0)))
    parser.add_argument("--keyvault-port", type=int, default=int(env.get("STACK_KEYVAULT_PORT", 0)))
    parser.add_argument("--dataverse-port", type=int, default=int(env.get("STACK_DATAVERSE_PORT", 0)))
    parser.add_argument("--app", default="function_app")
    return parser.parse_args(argv), command


def main(argv: list[str] | None = None) -> int:
    args, command = parse_args(sys.argv[1:] if argv is None else argv)
    config = StackConfig(
        args.port,
        args.blob_port,
        args.queue_port,
        args.table_port,
        args.app,
        args.entra_port,
        args.keyvault_port,
        args.dataverse_port,
    ).resolved()
    if args.action == "start":
        return start(config)
    if args.action == "stop":
        return stop()
    if args.action == "status":
        return status()
    return run(config, command)


if __name__ == "__main__":
    sys.exit(main())
