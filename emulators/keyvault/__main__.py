"""``python -m emulators.keyvault [--port N] [--key NAME]``: run the Key Vault stand-in; prints its URL, a
token and the id of the RSA wrapping key it created at start (as infra creates ``token-wrapping-key``)."""

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
    parser.add_argument("--key", default="token-wrapping-key", help="create this wrapKey/unwrapKey RSA key")
    args = parser.parse_args()
    emulator = KeyVaultEmulator(port=args.port)
    emulator.start()
    token = args.token or emulator.issue_token()
    if args.token:
        emulator.accept_token(args.token)
    key_id = emulator.create_key(args.key, key_size=3072)
    print(
        json.dumps(
            {"vaultUrl": emulator.vault_url, "KEY_VAULT_LOCAL_TOKEN": token, "tokenWrappingKeyId": key_id}
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
