"""scripts/stack.py and the in-process DevHost API: start, answer, stop cleanly, leave nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devhost import DevHost
from devhost.launcher import REPO_ROOT, free_port

pytestmark = pytest.mark.integration


def stack_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STACK_STATE_DIR": str(tmp_path / "stack"),
        "STACK_DEVHOST_PORT": str(free_port()),
        "STACK_BLOB_PORT": str(free_port()),
        "STACK_QUEUE_PORT": str(free_port()),
        "STACK_TABLE_PORT": str(free_port()),
    }


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_stack_run_serves_the_app_passes_the_exit_status_and_always_stops(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    probe = (
        "import os, json, urllib.request;"
        "r = urllib.request.urlopen(os.environ['DEVHOST_URL'] + '/api/health', timeout=30);"
        "state = json.load(open(os.environ['STACK_STATE_DIR'] + '/state.json'));"
        "print(json.dumps({'status': r.status, 'pids': [p['pid'] for p in state['processes']]}));"
        "raise SystemExit(3)"
    )
    result = subprocess.run(
        [sys.executable, "scripts/stack.py", "run", "--", sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 3, result.stdout + result.stderr  # the command's own status
    report = json.loads(next(line for line in reversed(result.stdout.splitlines()) if line.startswith("{")))
    assert report["status"] == 200
    assert len(report["pids"]) == 5  # azurite, the Entra/Key Vault/Dataverse stand-ins, devhost
    assert not any(pid_alive(pid) for pid in report["pids"]), "stack run left processes behind"
    assert not (tmp_path / "stack" / "state.json").exists()


def test_stack_start_refuses_busy_ports_naming_them(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(env["STACK_TABLE_PORT"])))
        busy.listen()
        refused = subprocess.run(
            [sys.executable, "scripts/stack.py", "start"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 1
    assert env["STACK_TABLE_PORT"] in refused.stderr
    assert not (tmp_path / "stack" / "state.json").exists()


def test_in_process_devhost_starts_twice_and_restores_the_environment(tmp_path: Path) -> None:
    settings = {
        "SAMPLE_TIMER_SCHEDULE": "0 0 0 1 1 *",
        "SAMPLE_RETRY_SCHEDULE": "0 0 0 1 1 *",
        "SAMPLE_QUEUE": "unused",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "DEVHOST_TEST_VALUE": "inside",
    }
    assert "DEVHOST_TEST_VALUE" not in os.environ
    for _ in range(2):  # the app object is indexed once and reused (get_functions() works only once)
        host = DevHost("tests.support.sample_app", settings, enable_queues=False)
        base_url = host.start()
        try:
            response = requests.get(f"{base_url}/api/settings/DEVHOST_TEST_VALUE", timeout=5)
            assert response.json() == {"value": "inside"}
        finally:
            host.stop()
        assert "DEVHOST_TEST_VALUE" not in os.environ
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base_url}/api/echo/x", timeout=2)
