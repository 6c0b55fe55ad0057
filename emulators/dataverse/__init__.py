"""A local Dataverse (Dynamics 365) Web API v9.2 emulator. See emulators/README.md."""

from __future__ import annotations

from .clock import Clock
from .limits import LimitConfig
from .seed import SeedSpec
from .server import DataverseEmulator
from .simulation import SimulationConfig

__all__ = ["Clock", "DataverseEmulator", "LimitConfig", "SeedSpec", "SimulationConfig"]
