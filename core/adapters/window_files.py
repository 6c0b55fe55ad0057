"""The built setup window (``static/``, written by ``vite build`` from ``web/``): its page and its assets.

Only names Vite writes are served: ``index.html`` and single-segment asset names under ``assets/``
(letters, digits, ``.``, ``_``, ``-``; no ``..``, no separators), looked up in a listing of that folder
taken once, so no request path ever reaches the file system as a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_NAME = 200
_ASSET_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".map": "application/json",
}


@dataclass(frozen=True)
class WindowFile:
    body: bytes
    media_type: str


class WindowFiles:
    """Reads the built window under ``root``; ``None`` for anything that is not one of its files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._assets: dict[str, Path] | None = None

    def index(self) -> WindowFile | None:
        page = self.root / "index.html"
        if not page.is_file():
            return None
        return WindowFile(page.read_bytes(), "text/html; charset=utf-8")

    def asset(self, name: str) -> WindowFile | None:
        if not _ASSET_NAME.fullmatch(name) or ".." in name:
            return None
        if self._assets is None or name not in self._assets:  # listed again only after a rebuild
            folder = self.root / "assets"
            self._assets = {p.name: p for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}
        path = self._assets.get(name)
        media_type = MEDIA_TYPES.get(Path(name).suffix.lower())
        if path is None or media_type is None:
            return None
        return WindowFile(path.read_bytes(), media_type)
