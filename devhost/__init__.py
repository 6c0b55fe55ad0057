"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

``python -m devhost`` serves the HTTP, queue and timer triggers of ``function_app``; tests use
``DevHost`` (in-process) or ``devhost.launcher.DevHostProcess`` (a subprocess).
"""

from devhost.host import DevHost

__all__ = ["DevHost"]
