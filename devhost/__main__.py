"""python -m devhost [--port 7071] [--app function_app] [--settings local.settings.json] [--host-json F]

Stands in for `func start` where Azure Functions Core Tools cannot be installed. SIGINT/SIGTERM stop it
gracefully (in-flight requests, queue messages and timer runs finish) with exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devhost.config import HostConfigError, load_cors_origins, load_local_settings
from devhost.host import DevHost
from devhost.index import AppIndexError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Serve function_app locally (HTTP, queue, timer triggers) where Core Tools cannot run.",
    )
    parser.add_argument("--port", type=int, default=7071, help="HTTP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--app", default="function_app", help="module that defines the FunctionApp")
    parser.add_argument(
        "--settings",
        default="local.settings.json",
        help="local.settings.json to load (created from <file>.example if missing); 'none' to skip",
    )
    parser.add_argument("--host-json", default="host.json", help="host.json to read")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # azure-core logs every storage request (with headers) at INFO: keep it to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        values = {} if args.settings == "none" else load_local_settings(Path(args.settings))
        cors = () if args.settings == "none" else load_cors_origins(Path(args.settings))
        host = DevHost(
            args.app,
            values,
            args.port,
            host_json=Path(args.host_json),
            settings_override=False,
            cors_origins=cors,
        )
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if stop.is_set():  # a second signal: the user does not want to wait for in-flight work
                logging.getLogger("devhost").warning("second %s: exiting now", signal.Signals(signum).name)
                os._exit(1)
            logging.getLogger("devhost").info(
                "%s received: finishing in-flight work (again to exit at once)", signal.Signals(signum).name
            )
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        host.start()
    except (HostConfigError, AppIndexError, OSError) as exc:
        logging.getLogger("devhost").error("cannot start: %s", exc)
        return 2
    try:
        while not stop.wait(0.5):
            pass
    finally:
        host.stop()
        logging.getLogger("devhost").info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
