"""Normalisation of identifier values before they are compared (see docs/matching.md).

Every function is pure, total (never raises on odd input) and returns ``None`` for "no usable value": an
empty value must never match another empty value. The same functions normalise both sides — the platform
record and the Dynamics row — so a match is "equal after normalisation".

Decisions (the why is in docs/matching.md):
- text and names ignore accents (``José`` == ``Jose``), like Dataverse itself: the default collation of
  an environment is ``_CI_AI`` (case- and accent-insensitive), so its own queries and duplicate detection
  already treat them as equal, and a dropped accent is a data-entry slip, not another person. Identifiers
  (LinkedIn slugs, e-mail local parts) keep their accents: there a different letter is a different key;
- company legal suffixes are kept (``Acme Inc`` != ``Acme Ltd``), only their punctuation is ignored
  (``Acme, Inc.`` == ``Acme Inc``): a false merge overwrites somebody else's record, a miss creates a
  duplicate the admin can merge; the first is worse;
- the domain key is the registrable domain (``www.eu.acme.co.uk`` -> ``acme.co.uk``); "any extension"
  drops the ICANN public suffix (``acme.co.uk`` ~ ``acme.com``) but never a private one
  (``acme.myshopify.com`` stays whole, or every shop would merge).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import idna
from publicsuffixlist import PublicSuffixList

# Typographic variants people paste from documents: ’ ‘ ʼ ` ´ -> ' ; ‐ ‑ ‒ – — -> -
_PUNCTUATION_VARIANTS = str.maketrans(
    {
        **{c: "'" for c in "\u2019\u2018\u02bc\u0060\u00b4\u2032"},
        **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"},
    }
)
# Punctuation ignored in company names: "Acme, Inc." == "Acme Inc" (but "Acme Inc" != "Acme Ltd").
_COMPANY_PUNCTUATION = re.compile(r"[.,]")

LINKEDIN_HOST = "linkedin.com"
_LINKEDIN_FAST = re.compile(
    r"(?:https?://)?(?:[a-z0-9-]+\.)*linkedin\.com/(?:(?:mwlite|m)/)?"
    r"(?P<kind>in|company|school|showcase)/(?P<slug>[^/?#\s]+)(?:[/?#].*)?\Z",
    re.IGNORECASE | re.DOTALL,
)
_LINKEDIN_KINDS = ("in", "company", "school", "showcase")


class ValueKind(StrEnum):
    """How a value is normalised; chosen from the platform field (``matching.kind_for_field``)."""

    TEXT = "text"
    PERSON_NAME = "person_name"
    COMPANY_NAME = "company_name"
    LINKEDIN = "linkedin"
    DOMAIN = "domain"
    EMAIL = "email"
    PHONE = "phone"


def _as_text(value: object) -> str | None:
    if type(value) is str:
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        return None
    return value


def strip_accents(text: str) -> str:
    """Combining marks removed after canonical decomposition (``Café`` -> ``Cafe``, ``ß`` unchanged)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _fold(text: str, *, keep_accents: bool) -> str | None:
    if text.isascii():  # fast path: NFKC, accents and full case folding are no-ops on ASCII
        return " ".join(text.lower().split()) or None
    text = unicodedata.normalize("NFKC", text).casefold()
    # casefold may produce decomposed sequences (e.g. "İ" -> "i̇"): recompose so both sides agree.
    text = unicodedata.normalize("NFC", text) if keep_accents else strip_accents(text)
    return " ".join(text.split()) or None


def normalize_text(value: object, *, keep_accents: bool = False) -> str | None:
    """NFKC, case-folded, accents removed (unless ``keep_accents``), inner whitespace collapsed to one
    space, trimmed; ``None`` when empty or not text/number."""
    text = _as_text(value)
    if text is None:
        return None
    return _fold(text, keep_accents=keep_accents)


def normalize_person_name(value: object) -> str | None:
    """A first/last/full name: text normalisation plus typographic apostrophes and dashes unified."""
    text = _as_text(value)
    if text is None:
        return None
    if not text.isascii() or "`" in text:
        text = text.translate(_PUNCTUATION_VARIANTS)
    return _fold(text, keep_accents=False)


def normalize_company_name(value: object) -> str | None:
    """A company name: person-name rules plus ``.``/``,`` ignored. Legal suffixes are kept on purpose."""
    name = normalize_person_name(value)
    if name is None:
        return None
    return normalize_text(_COMPANY_PUNCTUATION.sub(" ", name))


def linkedin_key(value: object) -> str | None:
    """The canonical key of a LinkedIn profile or page URL: ``in/<slug>``, ``company/<slug>``...

    Accepts any scheme or none, ``www.``/country/mobile subdomains, ``/mwlite/`` and ``/m/`` prefixes,
    trailing slashes and extra path segments, query strings, fragments and percent-encoding. The slug is
    case-folded (LinkedIn treats ``/in/Jane-Doe`` and ``/in/jane-doe`` as the same profile). ``None`` for
    anything that is not a LinkedIn profile/page URL.
    """
    text = _as_text(value)
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    fast = _LINKEDIN_FAST.match(text)
    if fast is not None:  # the common shape, without the cost of urlsplit
        slug = unquote(fast["slug"]) if "%" in fast["slug"] else fast["slug"]
        slug_key = normalize_text(slug, keep_accents=True)
        if slug_key is None or " " in slug_key:
            return None
        return f"{fast['kind'].lower()}/{slug_key}"
    if "://" not in text:
        text = "https://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if host != LINKEDIN_HOST and not host.endswith("." + LINKEDIN_HOST):
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    while segments and segments[0].lower() in ("mwlite", "m"):
        segments = segments[1:]
    if len(segments) < 2 or segments[0].lower() not in _LINKEDIN_KINDS:
        return None
    slug = normalize_text(segments[1], keep_accents=True)
    if slug is None or " " in slug:
        return None
    return f"{segments[0].lower()}/{slug}"


def linkedin_slug_variants(value: object) -> tuple[str, ...]:
    """The path fragments (``/in/<slug>``) a Dataverse ``contains`` filter should look for.

    Dataverse compares case-insensitively but does not decode percent-encoding, so a non-ASCII slug is
    searched both decoded (``/in/josé``) and encoded (``/in/jos%C3%A9``).
    """
    key = linkedin_key(value)
    if key is None:
        return ()
    kind, slug = key.split("/", 1)
    forms = [f"/{kind}/{slug}"]
    encoded = "".join(ch if ch.isascii() else "".join(f"%{b:02X}" for b in ch.encode()) for ch in slug)
    if encoded != slug:
        forms.append(f"/{kind}/{encoded}")
    return tuple(forms)


def _host_of(value: str) -> str | None:
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if "@" in text and "://" not in text:
        text = text.rsplit("@", 1)[1]
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host


def to_ascii_domain(host: str) -> str | None:
    """IDNA (UTS-46) form of a host name, lower case, no trailing dot; ``None`` if it is not a host."""
    host = unicodedata.normalize("NFKC", host).strip().rstrip(".").lower()
    if not host or "." not in host or " " in host:
        return None
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    labels = ascii_host.split(".")
    if any(not label for label in labels):
        return None
    if all(label.isdigit() for label in labels):  # an IP address is not a company domain
        return None
    return ascii_host


def domain_host(value: object) -> str | None:
    """The host of a URL, bare domain or e-mail address: IDNA ASCII, lower case, ``www.`` dropped."""
    text = _as_text(value)
    if text is None:
        return None
    return _domain_host(text)


@lru_cache(maxsize=8192)  # the same company domains recur across a chunk's contacts; IDNA is costly
def _domain_host(text: str) -> str | None:
    host = _host_of(text)
    if host is None:
        return None
    ascii_host = to_ascii_domain(host)
    if ascii_host is None:
        return None
    while ascii_host.startswith("www.") and ascii_host.count(".") >= 2:
        ascii_host = ascii_host[len("www.") :]
    return ascii_host


_psl_lock = threading.Lock()
_psl_lists: dict[bool, PublicSuffixList] = {}


def _psl_list(only_icann: bool) -> PublicSuffixList:
    """The bundled list (no download, works offline), parsed once per process (~0.3 s) even when
    several threads ask for it at the same moment."""
    found = _psl_lists.get(only_icann)
    if found is None:
        with _psl_lock:
            found = _psl_lists.get(only_icann)
            if found is None:
                found = _psl_lists[only_icann] = PublicSuffixList(only_icann=only_icann)
    return found


def _psl() -> PublicSuffixList:
    return _psl_list(False)


def _psl_icann() -> PublicSuffixList:
    return _psl_list(True)


@lru_cache(maxsize=8192)  # bounded: long-running workers must stay flat in memory
def _registrable(host: str) -> str | None:
    registrable = _psl().privatesuffix(host)
    return str(registrable) if registrable else None


def registrable_domain(value: object) -> str | None:
    """The registrable domain (public suffix + one label) of a URL/domain/e-mail: the domain key."""
    host = domain_host(value)
    if host is None:
        return None
    return _registrable(host)


@lru_cache(maxsize=8192)  # bounded: long-running workers must stay flat in memory
def _any_extension(registrable: str) -> str:
    suffix = _psl().publicsuffix(registrable)
    icann_suffix = _psl_icann().publicsuffix(registrable)
    if suffix != icann_suffix:  # a private suffix (github.io, myshopify.com): the whole name identifies
        return registrable
    return registrable[: -len(suffix) - 1] if suffix and registrable.endswith("." + suffix) else registrable


def domain_any_extension_key(value: object) -> str | None:
    """The "any extension" key: ``acme.co.uk``, ``acme.com``, ``www.acme.es`` -> ``acme``."""
    registrable = registrable_domain(value)
    if registrable is None:
        return None
    return _any_extension(registrable)


def normalize_email(value: object) -> str | None:
    """An e-mail address: trimmed, ``mailto:`` dropped, case-folded, domain in IDNA ASCII form.

    No provider-specific rewriting (dots or ``+tags`` in Gmail addresses are kept): conservative.
    """
    text = _as_text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if text.count("@") != 1:
        return None
    local, _, domain = text.partition("@")
    local = local.strip().casefold()
    ascii_domain = to_ascii_domain(domain)
    if not local or " " in local or ascii_domain is None:
        return None
    return f"{local}@{ascii_domain}"


def normalize_phone(value: object) -> str | None:
    """Digits only, with a leading ``+`` kept; ``00`` international prefix read as ``+``."""
    text = _as_text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("00") and len(digits) > 2:
        return "+" + digits[2:]
    if not digits:
        return None
    return ("+" + digits) if text.startswith("+") else digits


def normalize(kind: ValueKind, value: object, *, any_extension: bool = False) -> str | None:
    """Dispatch on ``kind``. ``any_extension`` only matters for domains."""
    if kind is ValueKind.DOMAIN:
        return domain_any_extension_key(value) if any_extension else registrable_domain(value)
    return _NORMALIZERS[kind](value)


_NORMALIZERS: dict[ValueKind, Callable[[object], str | None]] = {
    ValueKind.TEXT: normalize_text,
    ValueKind.PERSON_NAME: normalize_person_name,
    ValueKind.COMPANY_NAME: normalize_company_name,
    ValueKind.LINKEDIN: linkedin_key,
    ValueKind.DOMAIN: registrable_domain,
    ValueKind.EMAIL: normalize_email,
    ValueKind.PHONE: normalize_phone,
}
