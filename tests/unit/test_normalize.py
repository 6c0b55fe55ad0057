"""Identifier normalisation: the variants a real CRM holds must collapse to one key, different things not."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.normalize import (
    _LINKEDIN_FAST,
    ValueKind,
    domain_any_extension_key,
    domain_host,
    linkedin_key,
    linkedin_slug_variants,
    normalize,
    normalize_company_name,
    normalize_email,
    normalize_person_name,
    normalize_phone,
    normalize_text,
    registrable_domain,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane   Doe ", "jane doe"),
        ("JANE\tDOE\n", "jane doe"),
        ("Ｊａｎｅ", "jane"),  # full-width letters (NFKC)
        ("ﬁnance", "finance"),  # ligature (NFKC)
        ("Straße", "strasse"),  # full case folding, not lower()
        ("José", "jose"),  # accents ignored, like Dataverse's _CI_AI collation
        ("Jose\u0301", "jose"),  # decomposed accent
        ("Zoë Ångström", "zoe angstrom"),
        ("\u00a0Jane\u2003Doe\u00a0", "jane doe"),  # no-break and em spaces
        ("", None),
        ("   ", None),
        (None, None),
        (12, "12"),
        (True, None),
        (["a"], None),
    ],
)
def test_normalize_text(raw: object, expected: str | None) -> None:
    assert normalize_text(raw) == expected


def test_text_can_keep_accents_for_identifiers() -> None:
    assert normalize_text("José", keep_accents=True) == "josé"
    assert normalize_text("Jose\u0301", keep_accents=True) == "josé"  # composed either way


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("O'Brien", "O’Brien"),
        ("o'brien", "O`BRIEN"),
        ("Anne-Marie", "Anne–Marie"),
        ("Müller", "MULLER"),
        ("  van  der Berg", "Van der Berg"),
    ],
)
def test_person_name_variants_are_equal(a: str, b: str) -> None:
    assert normalize_person_name(a) == normalize_person_name(b) is not None


@pytest.mark.parametrize(("a", "b"), [("Jane", "Janet"), ("O'Brien", "OBrien"), ("Anne-Marie", "Anne Marie")])
def test_person_names_that_differ_stay_different(a: str, b: str) -> None:
    assert normalize_person_name(a) != normalize_person_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme, Inc.", "Acme Inc"),
        ("ACME INC.", "acme, inc"),
        ("Société Générale", "SOCIETE GENERALE"),
        ("  Acme   Holdings ", "Acme Holdings"),
    ],
)
def test_company_name_punctuation_and_case_are_ignored(a: str, b: str) -> None:
    assert normalize_company_name(a) == normalize_company_name(b) is not None


@pytest.mark.parametrize(("a", "b"), [("Acme Inc", "Acme Ltd"), ("Acme Inc", "Acme"), ("Acme", "Acme Corp")])
def test_company_legal_suffixes_are_kept(a: str, b: str) -> None:
    # Conservative: Acme Inc (US) and Acme Ltd (UK) may be different legal entities.
    assert normalize_company_name(a) != normalize_company_name(b)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.linkedin.com/in/jane-doe",
        "http://www.LinkedIn.com/in/Jane-Doe/",
        "linkedin.com/in/jane-doe",
        "www.linkedin.com/in/JANE-DOE/?originalSubdomain=es",
        "https://es.linkedin.com/in/jane-doe#experience",
        "https://m.linkedin.com/in/jane-doe",
        "https://www.linkedin.com/mwlite/in/jane-doe",
        "https://www.linkedin.com/in/jane-doe/details/experience/",
        "https://www.linkedin.com/in/jane%2Ddoe",
        "  https://linkedin.com/in/jane-doe  ",
        "https://www.linkedin.com./in/jane-doe",
        "https://www.linkedin.com:443/in/jane-doe",
        "//www.linkedin.com/in/jane-doe",
    ],
)
def test_linkedin_variants_share_one_key(url: str) -> None:
    assert linkedin_key(url) == "in/jane-doe"


def test_linkedin_percent_encoded_slug_equals_decoded() -> None:
    assert linkedin_key("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa/") == "in/josé-garcía"
    assert linkedin_key("linkedin.com/in/José-García") == "in/josé-garcía"
    # identifiers keep their accents: a different slug is a different profile
    assert linkedin_key("linkedin.com/in/jose-garcia") != linkedin_key("linkedin.com/in/josé-garcía")


def test_linkedin_company_pages() -> None:
    assert linkedin_key("https://www.linkedin.com/company/Acme-Inc/about/") == "company/acme-inc"
    assert linkedin_key("https://www.linkedin.com/company/acme-inc") != linkedin_key(
        "https://www.linkedin.com/in/acme-inc"
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        None,
        "https://www.linkedin.com/",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/in/",
        "https://notlinkedin.com/in/jane-doe",
        "https://linkedin.com.evil.example/in/jane-doe",
        "https://evil-linkedin.com/in/jane-doe",
        "jane doe",
        "https://www.linkedin.com/in/jane%20doe",
    ],
)
def test_not_a_linkedin_profile(url: str | None) -> None:
    assert linkedin_key(url) is None


_SLUG_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.éÉèÈüÜñÑçÇøØßİıłŁ"


def _recase(text: str, uppers: list[bool]) -> str:
    """Letters in another case, where that is the same letter case-folded (``ı``.upper() is ``I``)."""
    recased = [ch.upper() if up else ch.lower() for ch, up in zip(text, uppers, strict=True)]
    pairs = zip(text, recased, strict=True)
    return "".join(new if new.casefold() == ch.casefold() else ch for ch, new in pairs)


def _spell_slug(slug: str, encode: list[bool]) -> str:
    return "".join(quote(ch, safe="") if enc else ch for ch, enc in zip(slug, encode, strict=True))


@st.composite
def _linkedin_url_pair(draw: st.DrawFn) -> tuple[str, str, str]:
    """The same profile written twice: once in the common shape ``linkedin_key`` reads with its regex,
    once with a port, a trailing dot on the host or doubled slashes, which it parses with ``urlsplit``;
    each spelling with its own letter case and percent-encoding. Returns (common, unusual, expected key)."""
    kind = draw(st.sampled_from(["in", "company", "school", "showcase"]))
    slug = draw(st.text(alphabet=_SLUG_LETTERS, min_size=1, max_size=24))
    scheme = draw(st.sampled_from(["", "http://", "https://", "HTTPS://"]))
    subdomain = draw(st.sampled_from(["", "www.", "WWW.", "es.", "m."]))
    host = draw(st.sampled_from(["linkedin.com", "LinkedIn.com", "LINKEDIN.COM"]))
    prefix = draw(st.sampled_from(["", "m/", "mwlite/", "MWLite/"]))
    tail = draw(st.sampled_from(["", "/", "/details/", "?originalSubdomain=es", "#top", "/?a=b#c"]))

    def flags(text: str) -> list[bool]:
        return draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))

    def spelled() -> tuple[str, str]:
        recased = _recase(slug, flags(slug))
        return _recase(kind, flags(kind)), _spell_slug(recased, flags(recased))

    kind_a, slug_a = spelled()
    common = f"{scheme}{subdomain}{host}/{prefix}{kind_a}/{slug_a}{tail}"
    kind_b, slug_b = spelled()
    port = draw(st.sampled_from(["", ":443", ":80", ":8443"]))
    dot = draw(st.sampled_from(["", "."]))
    lead = draw(st.sampled_from(["", "//"])) if not scheme else ""
    inner = draw(st.sampled_from(["/", "//"]))
    between = draw(st.sampled_from(["/", "//"]))
    if not (port or dot or lead or inner == "//" or between == "//"):
        port = ":443"
    unusual = f"{lead}{scheme}{subdomain}{host}{dot}{port}{inner}{prefix}{kind_b}{between}{slug_b}{tail}"
    expected = normalize_text(slug, keep_accents=True)
    return common, unusual, f"{kind}/{expected}"


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(_linkedin_url_pair())
def test_both_linkedin_parsers_agree(pair: tuple[str, str, str]) -> None:
    # linkedin_key reads the common shape with a regex and anything else with urlsplit: a profile must
    # get one key whichever way it was written, or a match is missed and a duplicate created.
    common, unusual, expected = pair
    assert _LINKEDIN_FAST.match(common) is not None and _LINKEDIN_FAST.match(unusual) is None
    assert linkedin_key(common) == linkedin_key(unusual) == expected


def test_linkedin_slug_variants_for_contains_queries() -> None:
    assert linkedin_slug_variants("http://www.LinkedIn.com/in/Jane-Doe/") == ("/in/jane-doe",)
    assert linkedin_slug_variants("linkedin.com/in/josé") == ("/in/josé", "/in/jos%C3%A9")
    assert linkedin_slug_variants("nope") == ()


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("acme.com", "acme.com"),
        ("ACME.COM", "acme.com"),
        ("https://www.acme.com/en/about?x=1#top", "acme.com"),
        ("http://WWW.Acme.com:8080", "acme.com"),
        ("acme.com.", "acme.com"),
        ("jane.doe@Acme.com", "acme.com"),
        ("mailto:jane@acme.com", "acme.com"),
        ("https://user:pw@shop.acme.com/", "shop.acme.com"),
        ("https://www.acme.com/contact?to=sales@other.org", "acme.com"),  # an address in the URL's query
        ("//www.acme.com/about", "acme.com"),  # protocol-relative, as pasted from HTML
        ("bücher.de", "xn--bcher-kva.de"),
        ("https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
        ("www.com", "www.com"),
        ("", None),
        ("acme", None),
        ("127.0.0.1", None),
        ("http://", None),
        ("not a domain", None),
    ],
)
def test_domain_host(raw: str, host: str | None) -> None:
    assert domain_host(raw) == host


@pytest.mark.parametrize(
    ("raw", "registrable", "any_ext"),
    [
        ("https://www.acme.co.uk/", "acme.co.uk", "acme"),
        ("acme.com", "acme.com", "acme"),
        ("eu.shop.acme.es", "acme.es", "acme"),
        ("jane@mail.acme.com.br", "acme.com.br", "acme"),
        ("bücher.de", "xn--bcher-kva.de", "xn--bcher-kva"),
        # private suffixes: the shop or page is the company, never the platform hosting it
        ("acme.myshopify.com", "acme.myshopify.com", "acme.myshopify.com"),
        ("acme.github.io", "acme.github.io", "acme.github.io"),
        ("co.uk", None, None),
    ],
)
def test_registrable_domain_and_any_extension(raw: str, registrable: str | None, any_ext: str | None) -> None:
    assert registrable_domain(raw) == registrable
    assert domain_any_extension_key(raw) == any_ext


def test_any_extension_relates_acme_across_tlds_only() -> None:
    keys = {domain_any_extension_key(d) for d in ("acme.com", "www.acme.co.uk", "https://acme.es/x")}
    assert keys == {"acme"}
    assert domain_any_extension_key("acme.com") != domain_any_extension_key("acmecorp.com")
    assert registrable_domain("acme.com") != registrable_domain("acme.es")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Acme.COM", "jane.doe@acme.com"),
        ("  mailto:jane@acme.com ", "jane@acme.com"),
        ("jane+crm@gmail.com", "jane+crm@gmail.com"),  # no provider rewriting
        ("jane@bücher.de", "jane@xn--bcher-kva.de"),
        ("jane@", None),
        ("@acme.com", None),
        ("jane@@acme.com", None),
        ("jane doe@acme.com", None),
        ("jane", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+34 612 345 678", "+34612345678"),
        ("0034 612-345-678", "+34612345678"),
        ("(555) 010-0000", "5550100000"),
        ("n/a", None),
        ("", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_dispatch_by_kind() -> None:
    assert normalize(ValueKind.DOMAIN, "https://www.acme.co.uk") == "acme.co.uk"
    assert normalize(ValueKind.DOMAIN, "https://www.acme.co.uk", any_extension=True) == "acme"
    assert normalize(ValueKind.LINKEDIN, "linkedin.com/in/X") == "in/x"
    assert normalize(ValueKind.COMPANY_NAME, "Acme, Inc.") == "acme inc"
    assert normalize(ValueKind.EMAIL, "A@B.COM") == "a@b.com"
    assert normalize(ValueKind.PHONE, "+1 (555) 0100") == "+15550100"
    assert normalize(ValueKind.TEXT, "  X ") == "x"
