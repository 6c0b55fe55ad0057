"""Latency of GET / PUT /api/dynamics/config through the devhost against Azurite.

    python -m bench.config_latency [--calls 500] [--warmup 20]

Starts its own Azurite (free ports, in memory) and ``python -m devhost`` serving function_app, then makes
``--calls`` sequential GETs and ``--calls`` sequential PUTs (each with the If-Match of the previous answer)
over one keep-alive connection, as one admin of one workspace. Prints p50/p95/p99/max per method and a
final JSON line. Target: p95 < 30 ms for both.

Latency on a shared machine follows its load, so the figures also carry the load average around the run
and the CPU time per call of the devhost and Azurite processes (which the load does not inflate much):
compare runs by those when the load differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
import psutil
import requests

from devhost.launcher import REPO_ROOT, DevHostProcess
from tests.support.azurite import run_azurite

TARGET_P95_MS = 30.0


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0}
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 2),
        "p95_ms": round(percentile(samples, 95), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "max_ms": round(max(samples), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


def _cpu_ms(processes: list[psutil.Process]) -> list[float]:
    """User + system CPU milliseconds used so far by each process."""
    return [(p.cpu_times().user + p.cpu_times().system) * 1000 for p in processes]


def _per_call(before: list[float], after: list[float], calls: int) -> list[float]:
    return [round((b - a) / max(calls, 1), 2) for a, b in zip(before, after, strict=True)]


def measure(calls: int, warmup: int) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    settings = {
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": secret,
        "PLATFORM_JWT_AUDIENCE": "dynamics-integration",
        "PLATFORM_JWT_ISSUER": "https://platform.local",
    }
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "bench-admin",
            "workspace_id": f"ws-bench-{secrets.token_hex(4)}",
            "role": "admin",
            "aud": settings["PLATFORM_JWT_AUDIENCE"],
            "iss": settings["PLATFORM_JWT_ISSUER"],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        },
        secret,
        algorithm="HS256",
    )
    load_before = os.getloadavg()[0]
    log_dir = tempfile.TemporaryDirectory(prefix="bench-devhost-")
    log_path = Path(log_dir.name) / "devhost.log"
    with run_azurite() as azurite:
        settings["AzureWebJobsStorage"] = azurite.connection_string
        with DevHostProcess(
            "function_app",
            settings,
            settings_file=REPO_ROOT / "local.settings.json.example",
            log_path=log_path,
        ) as host:
            assert host.process is not None
            devhost_proc = psutil.Process(host.process.pid)
            # Azurite is the other process this benchmark started.
            azurite_proc = [p for p in psutil.Process().children() if p.pid != host.process.pid]
            watched = [devhost_proc, *azurite_proc[:1]]
            session = requests.Session()
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {token}"
            url = f"{host.base_url}/api/dynamics/config"
            first = session.get(url, timeout=10)
            first.raise_for_status()
            config = first.json()
            etag = first.headers["ETag"]
            for _ in range(warmup):
                session.get(url, timeout=10).raise_for_status()
            gets: list[float] = []
            cpu_start = _cpu_ms(watched)
            for _ in range(calls):
                started = time.perf_counter()
                response = session.get(url, timeout=10)
                gets.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            cpu_mid = _cpu_ms(watched)
            cpu_gets = _per_call(cpu_start, cpu_mid, calls)
            puts: list[float] = []
            for i in range(calls):
                config["syncIdentifiers"]["associateCompaniesWithContacts"] = i % 2 == 0
                started = time.perf_counter()
                response = session.put(url, json=config, headers={"If-Match": etag}, timeout=10)
                puts.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                etag = response.headers["ETag"]
            cpu_puts = _per_call(cpu_mid, _cpu_ms(watched), calls)
    # The devhost logs the time each request spent in the server (routing + the function + storage);
    # the rest of the client-side figure is the loopback round trip and scheduling on a busy machine.
    server: dict[str, list[float]] = {"GET": [], "PUT": []}
    for match in re.finditer(r"(GET|PUT) /api/dynamics/config (\d{3}) ([\d.]+)ms", log_path.read_text()):
        server[match.group(1)].append(float(match.group(3)))
    log_dir.cleanup()
    result: dict[str, Any] = {
        "benchmark": "config_latency",
        "get": summary(gets),
        "put": summary(puts),
        "server_get": summary(server["GET"][-calls:]),
        "server_put": summary(server["PUT"][-calls:]),
    }
    result["cpu_ms_per_call"] = {
        "get_devhost": cpu_gets[0],
        "get_azurite": cpu_gets[1] if len(cpu_gets) > 1 else None,
        "put_devhost": cpu_puts[0],
        "put_azurite": cpu_puts[1] if len(cpu_puts) > 1 else None,
    }
    result["load_avg_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    result["cpus"] = os.cpu_count()
    result["target_p95_ms"] = TARGET_P95_MS
    result["meets_target"] = all(result[m]["p95_ms"] < TARGET_P95_MS for m in ("get", "put"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    result = measure(args.calls, args.warmup)
    for key in ("get", "put", "server_get", "server_put"):
        s = result[key]
        where = " (in server)" if "server" in key else ""
        label = f"{key.split('_')[-1].upper()} /api/dynamics/config{where}"
        print(
            f"{label:<40} n={s['n']}  p50 {s['p50_ms']:.1f} ms  p95 {s['p95_ms']:.1f} ms  "
            f"p99 {s['p99_ms']:.1f} ms  max {s['max_ms']:.1f} ms"
        )
    cpu = result["cpu_ms_per_call"]
    print(
        f"CPU per call: GET devhost {cpu['get_devhost']} ms + Azurite {cpu['get_azurite']} ms; "
        f"PUT devhost {cpu['put_devhost']} ms + Azurite {cpu['put_azurite']} ms "
        f"(load average {result['load_avg_1m']['before']} -> {result['load_avg_1m']['after']} "
        f"on {result['cpus']} CPUs)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
