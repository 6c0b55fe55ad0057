"""The setup window's files: only Vite's own outputs are served, whatever path a request names."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.adapters.window_files import WindowFiles


@pytest.fixture()
def files(tmp_path: Path) -> WindowFiles:
    (tmp_path / "static" / "assets").mkdir(parents=True)
    (tmp_path / "static" / "index.html").write_text("<!doctype html><title>w</title>")
    (tmp_path / "static" / "assets" / "index-Ab12_x.js").write_text("export {}")
    (tmp_path / "static" / "assets" / "notes.txt").write_text("not a served type")
    (tmp_path / "secret.json").write_text('{"k": 1}')
    return WindowFiles(tmp_path / "static")


def test_page_and_hashed_assets_are_served_with_their_media_type(files: WindowFiles) -> None:
    page = files.index()
    assert page is not None and page.media_type.startswith("text/html") and b"<title>w" in page.body
    asset = files.asset("index-Ab12_x.js")
    assert asset is not None and asset.media_type.startswith("text/javascript") and asset.body == b"export {}"


@pytest.mark.parametrize(
    "name",
    ["../secret.json", "..", "../index.html", "a/../../secret.json", "/etc/passwd", "%2e%2e/secret.json",
     "notes.txt", "missing.js", "", ".hidden.js", "x" * 300],
)  # fmt: skip
def test_anything_else_is_not_found(files: WindowFiles, name: str) -> None:
    assert files.asset(name) is None


def test_a_rebuild_is_picked_up_without_a_restart(files: WindowFiles) -> None:
    assert files.asset("index-New1.js") is None
    (files.root / "assets" / "index-New1.js").write_text("export const v = 2")
    found = files.asset("index-New1.js")
    assert found is not None and found.body == b"export const v = 2"


def test_an_unbuilt_window_has_no_page(tmp_path: Path) -> None:
    assert WindowFiles(tmp_path / "nothing").index() is None
    assert WindowFiles(tmp_path / "nothing").asset("index-Ab12.js") is None
