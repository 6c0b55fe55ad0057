"""The READMEs and docs/ name only what exists: every repository path they quote (`core/...`, `tests/...`),
every local link, and every test they cite as `path::test_name`. A module moved or a test renamed without
its documentation fails here, so a reader never follows a path to nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("core", "tests", "emulators", "devhost", "bench", "scripts", "infra", "docs")
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *(readme for d in TOP_LEVEL if (readme := ROOT / d / "README.md").is_file()),
]
QUOTED = re.compile(r"`([^`\s]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _quoted_paths(text: str) -> list[str]:
    """Backquoted repository paths (optionally ``::test``), leaving out patterns and placeholders."""
    found = []
    for quoted in QUOTED.findall(text):
        path = quoted.split("::")[0]
        if path.split("/")[0] in TOP_LEVEL and "/" in path and not set("*<>{}$") & set(quoted):
            found.append(quoted)
    return found


def _local_links(text: str) -> list[str]:
    return [t.split("#")[0] for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t) and t.split("#")[0]]


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_checks_see_what_they_look_for() -> None:
    text = "see `core/x.py`, `tests/unit/a.py::test_b[1]`, `core/*.py`, `$API/x` and [m](docs/m.md#top)"
    assert _quoted_paths(text) == ["core/x.py", "tests/unit/a.py::test_b[1]"]
    assert _local_links(text + " [u](https://example.com) [a](#anchor)") == ["docs/m.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_path_and_local_link_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = [q for q in _quoted_paths(text) if not (ROOT / q.split("::")[0]).exists()]
    missing += [link for link in _local_links(text) if not (doc.parent / link).exists()]
    assert missing == [], f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_test_exists(doc: Path) -> None:
    missing = []
    for quoted in _quoted_paths(doc.read_text(encoding="utf-8")):
        if "::" not in quoted:
            continue
        path, name = quoted.split("::", 1)
        name = name.split("[")[0].split("::")[-1]
        if not (ROOT / path).is_file() or name not in _defined_names(ROOT / path):
            missing.append(quoted)
    assert missing == [], f"{doc.relative_to(ROOT)} cites tests that do not exist: {missing}"
