"""Entity tags in conditional request headers (RFC 9110 13.1): the one parser of an ``If-Match`` /
``If-None-Match`` list, so both compare the same way (weakly: ``W/`` is ignored; ``*`` stays as given)."""

from __future__ import annotations


def listed_etags(header: str) -> set[str]:
    """The entity tags of a conditional header, ``W/`` dropped; ``*`` when the header says so."""
    tags = (t.strip() for t in header.split(","))
    return {t.removeprefix("W/") for t in tags if t}
