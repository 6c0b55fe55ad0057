"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

``python -m devhost`` serves the HTTP, queue and timer triggers of ``function_app``; tests use
``DevHost`` (in-process) or ``devhost.launcher.DevHostProcess`` (a subprocess).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devhost.host import DevHost

__all__ = ["DevHost"]


def __getattr__(name: str) -> Any:
    # Lazy: scripts that only launch a devhost process (stack.py) need not import the Azure SDKs.
    if name == "DevHost":
        from devhost.host import DevHost

        return DevHost
    raise AttributeError(name)
