"""``python -m emulators.keyvault [--port N]``: run the Key Vault stand-in; prints its URL and a token."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from emulators.keyvault.server import KeyVaultEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("KEYVAULT_EMULATOR_PORT", "0")))
    parser.add_argument(
        "--token", default=os.environ.get("KEY_VAULT_LOCAL_TOKEN"), help="accept this bearer token"
    )
    args = parser.parse_args()
    emulator = KeyVaultEmulator(port=args.port)
    emulator.start()
    token = args.token or emulator.issue_token()
    if args.token:
        emulator.accept_token(args.token)
    print(json.dumps({"vaultUrl": emulator.vault_url, "KEY_VAULT_LOCAL_TOKEN": token}))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    emulator.stop()


if __name__ == "__main__":
    main()
