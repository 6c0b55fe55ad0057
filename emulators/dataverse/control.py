"""The control API outside the Web API: ``/_emulator/<name>``.

| endpoint | GET | POST |
|---|---|---|
| ``health`` | status and URL | |
| ``reset`` | | empty the tables, knobs back to start-up values, counters zeroed |
| ``seed`` | | load ``SeedSpec`` fields (``accounts``, ``contacts``, ``users``, ``seed``, ...) |
| ``snapshot`` | every table's rows | restore rows from a snapshot |
| ``stats`` | requests by method/kind/status, inner ops, 429s, rows served/stored | ``{"reset": true}`` |
| ``clock`` | the emulator clock | ``{"advance": s}`` / ``{"set": epoch}`` |
| ``latency`` / ``faults`` | simulation knobs | knob values; ``{"inject": 503, "count": n, "kinds": [..]}`` |
| ``limits`` | limits and counters | limit values (``max_requests``, ``window_s``, ...) |
| ``users`` | | ``add_user`` arguments (``object_id``, ``domainname``, ``disabled``) |
| ``privileges`` | | ``{"userId", "table", "privilege", "deny"}``: deny Create or Write (403) |

Bad values answer 400 with ``{"error": "..."}``; unknown endpoints 404.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .odata import ODataError
from .seed import SeedSpec
from .simulation import Fault

if TYPE_CHECKING:
    from .server import DataverseEmulator


def handle(emulator: DataverseEmulator, method: str, name: str, body: bytes) -> tuple[int, Any]:
    """(status, JSON-able body) for ``method`` on ``/_emulator/<name>``."""
    path = f"/_emulator/{name}"
    data: dict[str, Any] = {}
    if body.strip():
        try:
            loaded = json.loads(body)
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if not isinstance(loaded, dict):
            return 400, {"error": "body must be a JSON object"}
        data = loaded
    try:
        if name == "health":
            return 200, {"status": "ok", "url": emulator.url}
        if name == "reset" and method == "POST":
            emulator.reset()
            return 200, {"status": "reset", "records": emulator.store.counts()}
        if name == "seed" and method == "POST":
            loaded_counts = emulator.load_seed(SeedSpec(**data))
            return 200, {"loaded": loaded_counts, "records": emulator.store.counts()}
        if name == "snapshot":
            if method == "GET":
                return 200, emulator.snapshot()
            if method == "POST":
                emulator.restore(data)
                return 200, {"records": emulator.store.counts()}
        if name == "stats":
            if method == "POST" and data.get("reset"):
                emulator.reset_stats()
            return 200, emulator.stats()
        if name == "clock":
            if method == "POST":
                if "advance" in data:
                    emulator.clock.advance(float(data["advance"]))
                if "set" in data:
                    emulator.clock.set(float(data["set"]))
            return 200, emulator.clock.state()
        if name in ("latency", "faults", "simulation"):
            if method == "POST":
                inject = data.pop("inject", None)
                if inject is not None:
                    fault: Fault = "drop" if inject == "drop" else 503 if int(inject) == 503 else 500
                    emulator.simulator.inject(fault, int(data.pop("count", 1)), data.pop("kinds", None))
                if data:
                    emulator.simulator.update(**data)
            return 200, {
                **emulator.simulator.config.to_dict(),
                "pending_injections": emulator.simulator.pending_injections(),
            }
        if name == "limits":
            if method == "POST":
                emulator.limits.configure(**data)
            return 200, {**emulator.limits.config.to_dict(), "stats": emulator.limits.stats()}
        if name == "users" and method == "POST":
            user_id = emulator.add_user(**data)
            return 200, {"systemuserid": user_id}
        if name == "privileges" and method == "POST":
            # {"userId": guid, "table": "contact", "privilege": "Create" | "Write", "deny": true}
            user, table, privilege = str(data["userId"]).lower(), str(data["table"]), str(data["privilege"])
            if privilege not in ("Create", "Write") or table not in emulator.schema.tables:
                return 400, {"error": "privilege must be Create or Write on a known table"}
            denied = emulator.records.denied.setdefault(user, set())
            if data.get("deny", True):
                denied.add((table, privilege))
            else:
                denied.discard((table, privilege))
            return 200, {"userId": user, "denied": sorted(f"{t}:{p}" for t, p in denied)}
    except (ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}
    except ODataError as exc:
        return exc.status, {"error": {"code": exc.code, "message": exc.message}}
    return 404, {"error": f"unknown control endpoint {method} {path}"}
