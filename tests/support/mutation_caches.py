"""A pytest plugin for mutation runs only (``[tool.mutmut]`` in pyproject.toml loads it with ``-p``).

mutmut forks each mutant's test run from the process that first ran the whole selection, so the
normalisation and matching lru_caches already hold the unmutated answers: a mutant of a cached function
would never be called and would survive every test. Each test here starts with those caches empty.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

CACHED_MODULES = ("core.domain.normalize", "core.domain.matching", "core.domain.lookup_plan")


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    for name in CACHED_MODULES:
        module = sys.modules.get(name)
        for value in vars(module).values() if module is not None else ():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()
    yield
