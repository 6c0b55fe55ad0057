"""Azure Key Vault (secrets) stand-in over HTTPS for local runs and tests."""

from emulators.keyvault.server import KeyVaultEmulator

__all__ = ["KeyVaultEmulator"]
