""".funcignore keeps the Functions deployment package to what the app runs: azd packages the service folder
(the repository root, azure.yaml ``project: .``) minus what .funcignore lists, in gitignore syntax, and
applies none of its default exclusions once the file exists (learn.microsoft.com/azure/developer/
azure-developer-cli/service-packaging-ignore-files). Without it node_modules, .venv, tests and .local (the
local CA's private key) would be zipped and uploaded."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the deployed app needs: the entry point, the host configuration, the dependencies the platform
# installs, and the package it imports.
DEPLOYED = {"function_app.py", "host.json", "requirements.txt", "core"}
# The built setup window the app serves (``vite build`` of web/, by scripts/setup.sh; not in git).
BUILT = {"static"}
# Created by azd (its environment, with a .env of values) or editors; not in this checkout yet.
EXPECTED_LOCAL_DIRS = {".azure", ".vscode"}
EXPECTED_LOCAL = {*EXPECTED_LOCAL_DIRS, ".env"}
# The subset of gitignore syntax _ignored() implements faithfully: one path component (a glob), optionally
# anchored with a leading "/", optionally directory-only with a trailing "/"; no "!" negation, no escapes.
SUPPORTED = re.compile(r"^/?[^/!\\#\s][^/\\\s]*/?$")


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.rstrip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(relative: str, is_dir: bool = False) -> bool:
    """Whether a path (relative to the root, "/"-separated) is excluded, as gitignore would decide: a path
    is out when it or any directory above it matches a pattern."""
    parts = relative.split("/")
    for pattern in _patterns():
        anchored = pattern.startswith("/")
        dir_only = pattern.endswith("/")
        glob = pattern.strip("/")
        for depth, name in enumerate(parts):
            if anchored and depth > 0:
                break
            is_directory = depth < len(parts) - 1 or is_dir
            if dir_only and not is_directory:
                continue
            if fnmatch.fnmatchcase(name, glob):
                return True
    return False


def _top_level_entries() -> set[str]:
    entries = set(os.listdir(ROOT)) | EXPECTED_LOCAL
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        entries |= {path.split("/")[0] for path in listed}
    return entries


def _local_module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_local_files(entry: Path) -> set[Path]:
    """Every repository file reached by following imports from ``entry`` (lazy ones inside functions too)."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for module in modules:
                # Parent packages run too (their __init__.py).
                pieces = module.split(".")
                for i in range(1, len(pieces) + 1):
                    found = _local_module_file(".".join(pieces[:i]))
                    if found is not None:
                        todo.append(found)
    return seen


def test_every_line_is_in_the_syntax_this_test_understands() -> None:
    assert _patterns(), ".funcignore has no patterns"
    odd = [line for line in _patterns() if not SUPPORTED.match(line)]
    assert odd == [], "extend _ignored() before using these gitignore features"


def test_the_matcher_follows_gitignore_rules() -> None:
    # Directory patterns exclude everything below them, at any depth unless anchored.
    assert _ignored(".local/tls/ca.key")
    assert _ignored("node_modules/azurite/package.json")
    assert _ignored("core/adapters/__pycache__/storage.cpython-311.pyc")
    assert _ignored("tests", is_dir=True)
    # A directory-only pattern leaves a file of that name alone; unlisted paths stay.
    assert not _ignored("core/tests")
    assert not _ignored("core/domain/matching.py")
    assert not _ignored("function_app.py")


def test_everything_but_the_app_is_left_out_of_the_package() -> None:
    entries = _top_level_entries()
    assert DEPLOYED <= entries, DEPLOYED - entries
    shipped = {e for e in entries if not _ignored(e, is_dir=(ROOT / e).is_dir() or e in EXPECTED_LOCAL_DIRS)}
    assert shipped - BUILT == DEPLOYED, f"add to .funcignore: {sorted(shipped - DEPLOYED - BUILT)}"
    # The window ships built, its sources and their node_modules do not.
    assert not _ignored("static/assets/index-0a1b2c3d.js")
    assert _ignored("web/src/main.ts") and _ignored("web/node_modules/lit/index.js")


def test_secrets_and_local_state_are_left_out() -> None:
    for path in (
        ".local/tls/ca-key.pem",  # the local certificate authority's private key
        "local.settings.json",  # local secrets (HS256 dev secret, Key Vault stand-in token)
        ".azure/dev/.env",  # azd's environment values
        ".env",
        ".venv/bin/python",
        "node_modules/.bin/azurite",
    ):
        assert _ignored(path), path


def test_nothing_the_app_imports_is_left_out() -> None:
    imported = _imported_local_files(ROOT / "function_app.py")
    names = {p.relative_to(ROOT).as_posix() for p in imported}
    # The walk really follows the app: the blueprints and what they import.
    assert {"function_app.py", "core/observability.py", "core/entrypoints/meta_api.py"} <= names
    assert any(name.startswith("core/adapters/") for name in names)
    assert any(name.startswith("core/domain/") for name in names)
    assert {name.split("/")[0] for name in names} <= DEPLOYED, "the app imports a folder that is not shipped"
    assert sorted(name for name in names if _ignored(name)) == []
    # Every module of the package ships, imported statically or not.
    package = [p.relative_to(ROOT).as_posix() for p in (ROOT / "core").rglob("*.py")]
    assert package and sorted(name for name in package if _ignored(name)) == []


def test_local_state_is_also_kept_out_of_git() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".local/tls/ca-key.pem", "node_modules/azurite/package.json", ".azure/dev/.env"):
        ignored = subprocess.run([git, "-C", str(ROOT), "check-ignore", "-q", "--no-index", path])
        assert ignored.returncode == 0, f"{path} is not gitignored"
