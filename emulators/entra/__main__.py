"""``python -m emulators.entra [--port N] [--redirect-uri URI ...]``: run the Entra ID stand-in until
interrupted. Redirect URIs given are the app registration's: ``/authorize`` refuses others (AADSTS50011).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from emulators.entra.server import EntraEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("ENTRA_EMULATOR_PORT", "0")))
    parser.add_argument("--client-id", default=os.environ.get("DYNAMICS_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("DYNAMICS_CLIENT_SECRET"))
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="a registered redirect URI (repeatable)"
    )
    args = parser.parse_args()
    kwargs: dict[str, object] = {}
    if args.redirect_uri:
        kwargs["redirect_uris"] = tuple(args.redirect_uri)
    if args.client_id:
        kwargs["client_id"] = args.client_id
    if args.client_secret:
        kwargs["client_secret"] = args.client_secret
    emulator = EntraEmulator(port=args.port, **kwargs)  # type: ignore[arg-type]
    emulator.start()
    print(
        json.dumps(
            {"authority": emulator.authority, "clientId": emulator.client_id, "jwk": emulator.public_jwk()}
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    emulator.stop()


if __name__ == "__main__":
    main()
