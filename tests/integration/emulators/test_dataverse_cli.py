"""The command line (``python -m emulators.dataverse --port ... --seed ...``): it listens on the
port asked for, over HTTPS with the local CA (real Dataverse is https-only: authenticate-oauth.md, and
Microsoft's Python SDK refuses an http:// URL), loads the deterministic seed, prints one JSON line when it
listens, and stops cleanly on SIGTERM. The served API is the one the other tests cover."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.dataverse.seed import SeedSpec, build_seed
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulators.dataverse", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the emulator prints it once it listens
        if not line:
            raise AssertionError(f"emulator exited: {self.proc.wait(10)} {self.proc.stderr.read()}")  # type: ignore[union-attr]
        self.info: dict[str, Any] = json.loads(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture()
def run() -> Iterator[Any]:
    started: list[Running] = []

    def start(*args: str) -> Running:
        running = Running(list(args))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _contact_ids(api: str) -> list[str]:
    s = trusting_session()
    s.headers.update({"Authorization": "Bearer static-test-token", "Prefer": "odata.maxpagesize=5000"})
    r = s.get(f"{api}contacts?$select=contactid&$orderby=contactid")
    assert r.status_code == 200, r.text
    return [row["contactid"] for row in r.json()["value"]]


def test_port_and_seed_flags_serve_the_seeded_org_over_https(run) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    emu = run(
        "--port",
        str(port),
        "--seed",
        "7",
        "--seed-accounts",
        "5",
        "--seed-contacts",
        "30",
        "--seed-users",
        "3",
    )
    assert emu.info["url"] == f"https://127.0.0.1:{port}"
    assert emu.info["api_url"] == f"https://127.0.0.1:{port}/api/data/v9.2/"
    ids = _contact_ids(emu.info["api_url"])
    expected = sorted(
        p["contactid"] for s, p in build_seed(SeedSpec(5, 30, 3, seed=7)).records if s == "contacts"
    )
    assert ids == expected  # the records --seed 7 promised, and nothing else
    other = sorted(
        p["contactid"] for s, p in build_seed(SeedSpec(5, 30, 3, seed=8)).records if s == "contacts"
    )
    assert other != expected
    who = trusting_session().get(
        f"{emu.info['api_url']}WhoAmI", headers={"Authorization": "Bearer static-test-token"}
    )
    assert who.status_code == 200 and "UserId" in who.json()
    assert emu.stop() == 0


def test_bare_seed_flag_uses_the_default_generator_seed_and_without_it_the_org_is_empty(run) -> None:  # type: ignore[no-untyped-def]
    seeded = run("--seed", "--seed-accounts", "2", "--seed-contacts", "4", "--seed-users", "2")
    expected = sorted(p["contactid"] for s, p in build_seed(SeedSpec(2, 4, 2)).records if s == "contacts")
    assert _contact_ids(seeded.info["api_url"]) == expected
    empty = run("--http")
    assert empty.info["url"].startswith("http://127.0.0.1:")
    assert empty.info["records"].get("contact", 0) == 0


def test_knob_flags_reach_the_control_api(run) -> None:  # type: ignore[no-untyped-def]
    emu = run("--latency-ms", "5", "--error-rate-503", "0.25", "--fault-seed", "3", "--max-requests", "40")
    s = trusting_session()
    s.headers["Authorization"] = "Bearer static-test-token"
    faults = s.get(f"{emu.info['url']}/_emulator/faults").json()
    limits = s.get(f"{emu.info['url']}/_emulator/limits").json()
    assert (faults["latency_ms"], faults["error_rate_503"], faults["seed"]) == (5.0, 0.25, 3)
    assert limits["max_requests"] == 40
