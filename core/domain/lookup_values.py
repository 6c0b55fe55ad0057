"""The values a lookup searches for, for one record and one rule condition (pure).

Dataverse compares strings case- and accent-insensitively (``_CI_AI`` collation) and ignores trailing
spaces, but not punctuation or URL variants, so:

* whole values (``condition_values``) are the variant forms a stored value may take: raw and
  whitespace-collapsed, straight and typographic apostrophes, company legal-suffix punctuation
  (``Acme, Inc.`` / ``Acme Inc``), an e-mail as typed and normalised, a phone as typed and in E.164;
* fragments (also ``condition_values``) for what is stored inside longer text: a LinkedIn ``/in/<slug>``
  (any scheme, host, query string), a registrable domain (``acme.`` for "any extension"), each with its
  Unicode (IDN) form;
* the broad lookup's fragments (``broad_fragments``): the longest search token of a name or text, a
  whole normalised e-mail, a non-ASCII slug's longest ASCII run.

``collation_key`` says which values the collation would treat as the same, so each is searched once.
Costs: linear in the record's values; no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import idna

from core.domain.matching import Condition, platform_value
from core.domain.normalize import (
    ValueKind,
    domain_any_extension_key,
    linkedin_key,
    linkedin_slug_variants,
    normalize_email,
    normalize_phone,
    registrable_domain,
    strip_accents,
)

SHORT_FRAGMENT = 3  # a fragment shorter than this matches too many rows on its own
BROAD_KINDS = frozenset(
    {ValueKind.PERSON_NAME, ValueKind.COMPANY_NAME, ValueKind.TEXT, ValueKind.EMAIL, ValueKind.LINKEDIN}
)
"""Condition kinds the broad lookup searches again (domains and ASCII slugs are fragments already)."""
_ASCII_SLUG_RUN = re.compile(r"[a-z0-9-]+")
_LEGAL_SUFFIXES = frozenset(
    "inc inc. incorporated corp corp. corporation co co. company ltd ltd. limited llc llp lp plc gmbh ag"
    " kg sa s.a. sas sarl sl s.l. srl s.r.l. spa s.p.a. bv b.v. nv n.v. ab as oy pty pty. ltda".split()
)


def _text_variants(raw: str, *, company: bool) -> list[str]:
    base = raw.strip()
    if not base:
        return []
    collapsed = " ".join(base.split())
    forms = [base, collapsed]
    for form in list(forms):
        if "'" in form:
            forms.append(form.replace("'", "\u2019"))
        if "\u2019" in form:
            forms.append(form.replace("\u2019", "'"))
    if company:
        for form in list(forms):
            forms.extend(_company_suffix_variants(form))
    return forms


def _company_suffix_variants(name: str) -> list[str]:
    """``Acme Inc`` -> ``Acme, Inc.``, ``Acme Inc.``, ``Acme, Inc``: the punctuation the key ignores."""
    head, sep, last = name.rstrip().rpartition(" ")
    if not sep or last.lower() not in _LEGAL_SUFFIXES:
        return []
    head = head.rstrip(", ")
    bare = last.rstrip(".")
    dotted = bare + "."
    return [f"{head} {bare}", f"{head} {dotted}", f"{head}, {bare}", f"{head}, {dotted}"]


def _unicode_domain(ascii_domain: str) -> str | None:
    if "xn--" not in ascii_domain:
        return None
    try:
        return str(idna.decode(ascii_domain))
    except (idna.IDNAError, UnicodeError):
        return None


def condition_values(condition: Condition, record: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The raw strings to look for in ``condition.dynamics_field`` for one record, and whether they are
    ``contains`` fragments (True) or whole values (False)."""
    raws = [platform_value(record, name) for name in (condition.platform_field, *condition.fallback_fields)]
    texts = [r.strip() for r in raws if isinstance(r, str) and r.strip()]
    texts += [str(r) for r in raws if isinstance(r, int | float) and not isinstance(r, bool)]
    if condition.kind is ValueKind.LINKEDIN:
        return [v for t in texts for v in linkedin_slug_variants(t)][:2], True
    if condition.kind is ValueKind.DOMAIN:
        for text in texts:
            if condition.any_extension:
                key = domain_any_extension_key(text)
                registrable = registrable_domain(text)
                if key is None or registrable is None:
                    continue
                fragment = key if key == registrable else key + "."
            else:
                fragment = registrable_domain(text) or ""
            if not fragment:
                continue
            unicode_form = _unicode_domain(fragment)
            return [fragment, *([unicode_form] if unicode_form else [])], True
        return [], True
    if condition.kind is ValueKind.EMAIL:
        out: list[str] = []
        for text in texts[:1]:
            email = normalize_email(text)
            if email is None:
                continue
            local, _, domain = email.partition("@")
            unicode_domain = _unicode_domain(domain)
            out += [text, email] + ([f"{local}@{unicode_domain}"] if unicode_domain else [])
        return out, False
    if condition.kind is ValueKind.PHONE:
        return [v for t in texts[:1] for v in (t, normalize_phone(t) or "") if v], False
    company = condition.kind is ValueKind.COMPANY_NAME
    return [v for t in texts[:1] for v in _text_variants(t, company=company)], False


def collation_key(value: str) -> str:
    """What the ``_CI_AI`` collation treats as equal anyway (case, accents, trailing spaces): one value
    per key is enough to search for."""
    return strip_accents(value).casefold().rstrip(" ")


def search_tokens(value: str) -> list[str]:
    """The fragments of a name or text that any stored form with the same normalised key contains.

    Runs of letters and digits of the NFKC, lower-cased value: whitespace, punctuation (apostrophes of
    any kind, dashes, ``.``, ``,``, ``&``) and letters whose case folding expands (``ß`` -> ``ss``) end
    a token, since a stored form may differ exactly there (``"  Van  Dyke "``, ``O’Neill``, ``Weiss``).
    Case, accents and width are left to the ``_CI_AI`` collation (accents are kept as given, so an
    accent-sensitive org still finds values typed with the same accents). Longest first, then in order.
    """
    text = unicodedata.normalize("NFKC", value).lower()
    tokens: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isalnum() and ch.casefold() == ch:
            current.append(ch)
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    ordered = sorted(enumerate(tokens), key=lambda item: (-len(item[1]), item[0]))
    return list(dict.fromkeys(token for _, token in ordered))


def broad_fragments(condition: Condition, record: Mapping[str, Any]) -> list[str]:
    """What the broad lookup looks for with ``contains`` in ``condition.dynamics_field`` for one record:
    the longest search token of a name or text; the whole normalised address for an e-mail (+ its
    Unicode-domain form); for a LinkedIn slug with non-ASCII letters, its longest ASCII run (a slug
    stored percent-encoded from another letter case, ``/in/%C3%89milie-dupont``, contains neither form
    the exact plan searched). Empty for domains and ASCII slugs (the exact plan's ``contains`` already
    finds every form) and for phones (formatting differs too much for a fragment; documented miss)."""
    if condition.kind not in BROAD_KINDS:
        return []
    raws = [platform_value(record, name) for name in (condition.platform_field, *condition.fallback_fields)]
    texts = [r.strip() for r in raws if isinstance(r, str) and r.strip()]
    texts += [str(r) for r in raws if isinstance(r, int | float) and not isinstance(r, bool)]
    if not texts:
        return []
    if condition.kind is ValueKind.LINKEDIN:
        key = linkedin_key(texts[0])
        slug = key.split("/", 1)[1] if key else ""
        if slug.isascii():
            return []
        runs = sorted(_ASCII_SLUG_RUN.findall(slug), key=len, reverse=True)
        return runs[:1] if runs and len(runs[0]) >= SHORT_FRAGMENT else []
    if condition.kind is ValueKind.EMAIL:
        email = normalize_email(texts[0])
        if email is None:
            return []
        local, _, domain = email.partition("@")
        unicode_domain = _unicode_domain(domain)
        return [email, *([f"{local}@{unicode_domain}"] if unicode_domain else [])]
    tokens = search_tokens(texts[0])
    return tokens[:1]
