"""Microsoft Entra ID stand-in (HTTPS, v2.0 OAuth endpoints) for local runs and tests."""

from emulators.entra.server import EntraEmulator, EntraUser

__all__ = ["EntraEmulator", "EntraUser"]
