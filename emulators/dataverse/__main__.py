"""Run the emulator: ``python -m emulators.dataverse --port 8443 --seed`` (or ``--seed 7``).

``--seed`` loads the deterministic seed data at start; its optional value is the generator's random seed
(same value, same records). Prints one JSON line with the base URL once it listens, then serves until
interrupted (SIGINT or SIGTERM; exit status 0).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading

from .limits import LimitConfig
from .seed import SeedSpec
from .server import DataverseEmulator
from .simulation import SimulationConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.dataverse", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--schema", help="JSON schema file with custom tables/columns/keys")
    parser.add_argument(
        "--seed",
        nargs="?",
        type=int,
        const=SeedSpec.seed,
        default=None,
        metavar="N",
        help=f"load the seed data at start, generated with random seed N (default {SeedSpec.seed})",
    )
    parser.add_argument("--seed-accounts", type=int, default=SeedSpec.accounts)
    parser.add_argument("--seed-contacts", type=int, default=SeedSpec.contacts)
    parser.add_argument("--seed-users", type=int, default=SeedSpec.users)
    parser.add_argument(
        "--seed-value", type=int, default=None, help="random seed of the seed data (as --seed N)"
    )
    parser.add_argument("--token", action="append", default=None, help="accepted static bearer token(s)")
    parser.add_argument("--audience", help="accepted JWT audience (default: the emulator's URL)")
    parser.add_argument("--jwks", help="JSON file with a JWKS whose keys sign accepted JWTs")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--per-record-ms", type=float, default=0.0)
    parser.add_argument("--error-rate-500", type=float, default=0.0)
    parser.add_argument("--error-rate-503", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of requests delayed by --slow-ms")
    parser.add_argument("--slow-ms", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=None)
    parser.add_argument("--max-requests", type=int, default=LimitConfig.max_requests)
    parser.add_argument("--max-execution-ms", type=float, default=LimitConfig.max_execution_ms)
    parser.add_argument("--max-concurrent", type=int, default=LimitConfig.max_concurrent)
    parser.add_argument("--window-s", type=float, default=LimitConfig.window_s)
    parser.add_argument("--no-limits", action="store_true", help="disable service protection limits")
    args = parser.parse_args(argv)

    jwks = None
    if args.jwks:
        with open(args.jwks) as handle:
            jwks = json.load(handle)
    emulator = DataverseEmulator(
        schema_path=args.schema,
        seed=SeedSpec(
            args.seed_accounts,
            args.seed_contacts,
            args.seed_users,
            args.seed_value if args.seed_value is not None else args.seed,
        )
        if args.seed is not None
        else None,
        port=args.port,
        tls=not args.http,
        accepted_tokens=tuple(args.token or ("static-test-token",)),
        jwks=jwks,
        audience=args.audience,
        limits=LimitConfig(
            window_s=args.window_s,
            max_requests=args.max_requests,
            max_execution_ms=args.max_execution_ms,
            max_concurrent=args.max_concurrent,
            enabled=not args.no_limits,
        ),
        simulation=SimulationConfig(
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            per_record_ms=args.per_record_ms,
            error_rate_500=args.error_rate_500,
            error_rate_503=args.error_rate_503,
            drop_rate=args.drop_rate,
            slow_rate=args.slow_rate,
            slow_ms=args.slow_ms,
            seed=args.fault_seed,
        ),
    )
    url = emulator.start()
    print(
        json.dumps({"url": url, "api_url": emulator.api_url, "records": emulator.store.counts()}), flush=True
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
