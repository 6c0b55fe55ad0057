"""Deterministic seed data for the Dataverse emulator, with the messy cases real orgs have.

``generate_seed(SeedSpec())`` returns Web API create payloads in dependency order — one business unit,
the system users, accounts, contacts — each as ``(entity set name, payload)`` with a client-supplied
primary key and ``x@odata.bind`` lookups. The emulator loads them through its normal create path, so
seeded rows look exactly like rows a client created.

``systemuser.isdisabled`` is not valid for create in Dataverse (reference/entities/systemuser.md:
IsValidForCreate False, valid for update), so the disabled user is created enabled and disabled
afterwards: ``build_seed(spec).updates`` holds ``("systemusers", id, {"isdisabled": True})`` to apply
once every create is done. No account or contact is owned by that user.

The same spec gives byte-identical output (one ``random.Random(spec.seed)``, no set/hash ordering).
What makes the data realistic, and what tests can check against (:class:`SeedTruth`):

- names with apostrophes and accents (O'Brien, Núñez, Zoë), mixed case (``mcdonald``, ``SMITH``),
  surrounding spaces (``"  Anne "``);
- duplicate contacts: the same person entered twice or three times at the same company, with case /
  spacing / LinkedIn-form / e-mail differences (``SeedTruth.duplicate_contact_groups``);
- LinkedIn profile URLs stored in many forms (:func:`variant_linkedin_forms`): http/https, with or
  without ``www.``, country subdomains, trailing slash, query strings, fragments, upper case,
  percent-encoded non-ASCII slugs, surrounding spaces (``SeedTruth.contact_linkedin`` holds the
  canonical URL per contact);
- account websites stored as full URLs in many forms (``SeedTruth.account_domains`` holds the
  registrable domain), some on multi-label public suffixes (``.co.uk``, ``.com.br``);
- accounts sharing a name (``SeedTruth.shared_name_groups``), some of them the same brand on another
  country's domain (``acme.com`` / ``acme.es``: ``SeedTruth.any_extension_groups``).

Over 400 lines on purpose: the data generator and the truth it records must change together.
"""

from __future__ import annotations

import functools
import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

Record = tuple[str, dict[str, Any]]
Update = tuple[str, str, dict[str, Any]]  # (entity set name, record id, PATCH payload)

LINKEDIN_PROFILE_PREFIX = "https://www.linkedin.com/in/"
ORG_DOMAIN = "contoso.onmicrosoft.com"


@dataclass(frozen=True)
class SeedSpec:
    accounts: int = 2000
    contacts: int = 10000
    users: int = 20
    seed: int = 42
    duplicate_rate: float = 0.04  # share of contacts that repeat an earlier contact
    linkedin_rate: float = 0.7  # share of contacts with a LinkedIn URL
    shared_name_rate: float = 0.08  # share of accounts that reuse an earlier account's name

    def __post_init__(self) -> None:
        if min(self.accounts, self.contacts, self.users) < 0:
            raise ValueError("counts must not be negative")
        for name in ("duplicate_rate", "linkedin_rate", "shared_name_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass
class SeedTruth:
    """What a test needs to know about the generated data without re-deriving it."""

    business_unit_id: str
    user_ids: list[str] = field(default_factory=list)  # in creation order, enabled and disabled
    disabled_user_ids: list[str] = field(default_factory=list)
    account_ids: list[str] = field(default_factory=list)
    contact_ids: list[str] = field(default_factory=list)
    account_domains: dict[str, str | None] = field(default_factory=dict)  # accountid -> domain or None
    shared_name_groups: list[list[str]] = field(default_factory=list)  # accountids, same folded name
    any_extension_groups: list[list[str]] = field(default_factory=list)  # same brand, other public suffix
    contact_linkedin: dict[str, str] = field(default_factory=dict)  # contactid -> canonical profile URL
    contact_account: dict[str, str | None] = field(default_factory=dict)  # contactid -> accountid
    duplicate_contact_groups: list[list[str]] = field(default_factory=list)  # contactids of one person

    @property
    def disabled_user_id(self) -> str | None:
        return self.disabled_user_ids[0] if self.disabled_user_ids else None


@dataclass
class Seed:
    records: list[Record]  # creates, in dependency order
    updates: list[Update]  # PATCHes to apply after every create (disabling a user)
    truth: SeedTruth


# -- vocabulary ------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Paul", "Ashley",
    "José", "María", "François", "Zoë", "Björn", "Søren", "Łukasz", "Renée", "Chloé", "Jürgen",
    "Ana", "Luis", "Sofía", "Inés", "Mateo", "Lucía", "Ahmed", "Fátima", "Wei", "Mei",
    "Hiroshi", "Yuki", "Priya", "Arjun", "Olga", "Iván", "Siobhán", "Seán", "Jean-Luc", "Anne-Marie",
    "Noémie", "Ñuño", "Małgorzata", "Çağla", "Dagný", "Ørjan", "Gonçalo", "Kaja", "Mikael", "Élodie",
)  # fmt: skip

LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
    "O'Brien", "O'Connor", "D'Angelo", "McDonald", "MacLeod", "Müller", "Schröder", "Núñez", "Peña",
    "González", "Fernández", "Dubois", "Lefèvre", "Kowalski", "Nowak", "Johansson", "Østergaard",
    "van der Berg", "de la Cruz", "Al-Sayed", "Nakamura", "Tanaka", "Chen", "Wang", "Patel", "Singh",
    "Ivanova", "Smith-Jones", "L'Estrange", "Ó Súilleabháin", "Dupont", "García Márquez", "Kühn",
    "Łopuszańska", "Weiß", "Sánchez", "Brontë", "N'Diaye", "Rossi", "Bianchi",
)  # fmt: skip

JOB_TITLES = (
    "CEO", "CTO", "CFO", "VP of Sales", "Head of Marketing", "Sales Director", "Account Executive",
    "Software Engineer", "Product Manager", "Operations Manager", "Procurement Lead", "HR Business Partner",
    "Directora Comercial", "Responsable Achats", "Geschäftsführer", "Marketing Coordinator",
    "Customer Success Manager", "Data Analyst", "Office Manager", "Founder & CEO",
)  # fmt: skip

BRAND_WORDS_A = (
    "Blue", "Red", "Green", "Silver", "Golden", "North", "South", "East", "West", "Bright", "Rapid",
    "Clear", "Prime", "Summit", "Pioneer", "Vertex", "Nova", "Apex", "Atlas", "Quantum", "Crystal",
    "Iron", "Cedar", "Maple", "Harbor", "Orbit", "Lumen", "Zenith", "Ember", "Coral", "Contoso",
    "Fabrikam", "Northwind", "Litware", "Proseware", "Woodgrove", "Tailspin", "Wingtip", "Lucerne", "Coho",
)  # fmt: skip

BRAND_WORDS_B = (
    "Systems", "Labs", "Logistics", "Analytics", "Dynamics", "Solutions", "Media", "Health", "Energy",
    "Foods", "Capital", "Robotics", "Networks", "Software", "Consulting", "Partners", "Studios", "Works",
    "Bio", "Motors", "Textiles", "Foundry", "Ventures", "Pharma", "Retail", "Security", "Cloud", "Data",
    "Design", "Marine",
)  # fmt: skip

# Brands with apostrophes / accents / ampersands, as real company names have.
SPECIAL_BRANDS = (
    "Margie's Travel", "O'Reilly Partners", "Müller & Söhne", "Peña Hermanos", "Café Olé",
    "L'Atelier Créatif", "Crêperie Bretonne", "Société Générale de Conseil", "Fjällräven Outdoor",
    "Łódź Manufaktura", "Smith & Wesson Consulting", "Ærø Shipping", "Mañana Foods", "Zoë's Kitchen",
    "D'Artagnan Security", "São Jorge Têxteis",
)  # fmt: skip

COMPANY_SUFFIXES = ("Ltd", "Inc.", "GmbH", "S.A.", "S.L.", "LLC", "Group", "Holdings", "& Co.", "", "", "")

# (city, country, public suffix used for that country's websites)
LOCATIONS = (
    ("Seattle", "United States", "com"),
    ("New York", "United States", "com"),
    ("London", "United Kingdom", "co.uk"),
    ("Madrid", "Spain", "es"),
    ("São Paulo", "Brazil", "com.br"),
    ("München", "Germany", "de"),
    ("Paris", "France", "fr"),
    ("Kraków", "Poland", "pl"),
    ("Malmö", "Sweden", "se"),
    ("Zürich", "Switzerland", "ch"),
    ("Dublin", "Ireland", "ie"),
    ("Toronto", "Canada", "ca"),
    ("Sydney", "Australia", "com.au"),
    ("Tokyo", "Japan", "co.jp"),
    ("Bengaluru", "India", "in"),
    ("Ciudad de México", "Mexico", "com.mx"),
)

LINKEDIN_COUNTRY_SUBDOMAINS = ("uk", "es", "de", "fr", "br", "mx", "in", "ca")

# -- helpers ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """``"Núñez"`` -> ``"Nunez"``, ``"Søren"`` -> ``"Soren"`` (letters without their marks)."""
    special = {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "AE", "đ": "d"}
    text = "".join(special.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=4096)
def _slug_part(text: str, *, keep_unicode: bool) -> str:
    # "ß" has no single upper-case letter ("WEISS"), so even unicode slugs spell it "ss".
    base = text.replace("ß", "ss") if keep_unicode else ascii_fold(text)
    out = []
    for ch in base.lower():
        if ch.isalnum():
            out.append(ch)
        elif ch in " -":
            out.append("-")
    return "-".join(filter(None, "".join(out).split("-")))


def canonical_linkedin(slug: str) -> str:
    """The canonical form of a profile URL: https, ``www.``, lower-case decoded slug, no trailing slash."""
    return LINKEDIN_PROFILE_PREFIX + slug.lower()


def variant_linkedin_forms(canonical: str) -> list[str]:
    """Every form of ``canonical`` this seed may store; a matcher must treat all of them as equal.

    ``canonical`` is ``https://www.linkedin.com/in/<slug>`` (see :func:`canonical_linkedin`).
    """
    if not canonical.startswith(LINKEDIN_PROFILE_PREFIX):
        raise ValueError(f"not a canonical LinkedIn profile URL: {canonical!r}")
    slug = canonical[len(LINKEDIN_PROFILE_PREFIX) :]
    mixed = "-".join(part[:1].upper() + part[1:] for part in slug.split("-"))
    forms = [
        canonical,
        canonical + "/",
        f"http://www.linkedin.com/in/{slug}",
        f"https://linkedin.com/in/{slug}/",
        f"linkedin.com/in/{slug}",
        f"www.linkedin.com/in/{slug}/",
        *(f"https://{cc}.linkedin.com/in/{slug}" for cc in LINKEDIN_COUNTRY_SUBDOMAINS[:3]),
        f"https://www.linkedin.com/in/{slug}?trk=public_profile_browsemap",
        f"https://www.linkedin.com/in/{slug}/?originalSubdomain=es",
        f"https://www.linkedin.com/in/{slug}#experience",
        f"HTTPS://WWW.LINKEDIN.COM/IN/{slug.upper()}",
        f"https://www.linkedin.com/in/{mixed}",
        f"  {canonical}/ ",
    ]
    encoded = quote(slug, safe="-")
    if encoded != slug:  # non-ASCII slug: as copied from a browser's address bar, both hex cases
        forms.append(f"https://www.linkedin.com/in/{encoded}/")
        forms.append(f"https://www.linkedin.com/in/{encoded.lower()}")
    return forms


def website_forms(domain: str) -> list[str]:
    """The ways an account's website is stored in real orgs; all have registrable domain ``domain``."""
    return [
        f"https://www.{domain}/",
        f"http://{domain}",
        domain,
        f"www.{domain}",
        f"https://{domain}/en/home",
        f"HTTPS://WWW.{domain.upper()}",
        f"https://www.{domain}/?utm_source=crm",
        f" {domain} ",
        f"https://shop.{domain}/",
        f"http://www.{domain}/contact-us/",
    ]


def fold_name(name: str) -> str:
    """Case- and whitespace-insensitive key used by the ground truth for "the same name"."""
    return " ".join(name.split()).casefold()


def _messy(rng: random.Random, value: str) -> str:
    """Sometimes change case or add surrounding spaces, the way humans type."""
    roll = rng.random()
    if roll < 0.02:
        return value.upper()
    if roll < 0.04:
        return value.lower()
    if roll < 0.06:
        return f"  {value} "
    return value


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


# -- generator -------------------------------------------------------------------------------------------


def build_seed(spec: SeedSpec) -> Seed:
    """Records plus the ground truth about them."""
    rng = random.Random(spec.seed)
    new_id = _Ids(rng)
    records: list[Record] = []

    bu_id = new_id()
    truth = SeedTruth(business_unit_id=bu_id)
    records.append(("businessunits", {"businessunitid": bu_id, "name": "Contoso Sales"}))

    # System users; the last one is disabled (when there are at least two).
    enabled_users: list[str] = []
    used_upns: set[str] = set()
    for index in range(spec.users):
        user_id = new_id()
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        local = _email_local(first, last)
        upn = f"{local}@{ORG_DOMAIN}"
        counter = 2
        while upn in used_upns:
            upn = f"{local}{counter}@{ORG_DOMAIN}"
            counter += 1
        used_upns.add(upn)
        disabled = spec.users >= 2 and index == spec.users - 1
        records.append(
            (
                "systemusers",
                {
                    "systemuserid": user_id,
                    "firstname": first,
                    "lastname": last,
                    "domainname": upn,
                    "internalemailaddress": upn,
                    "azureactivedirectoryobjectid": new_id(),
                    "businessunitid@odata.bind": f"/businessunits({bu_id})",
                },
            )
        )
        truth.user_ids.append(user_id)
        (truth.disabled_user_ids if disabled else enabled_users).append(user_id)

    def owner_bind(payload: dict[str, Any]) -> None:
        if enabled_users and rng.random() < 0.9:  # otherwise the calling user becomes the owner
            payload["ownerid@odata.bind"] = f"/systemusers({rng.choice(enabled_users)})"

    # Accounts.
    used_labels: set[str] = set()
    brand_of: dict[str, str] = {}  # accountid -> brand label (for any-extension ground truth)
    accounts: list[tuple[str, str, str, str | None]] = []  # (id, name, label, domain)
    for _ in range(spec.accounts):
        account_id = new_id()
        city, country, suffix = rng.choice(LOCATIONS)
        sibling = accounts[rng.randrange(len(accounts))] if accounts else None
        if sibling is not None and rng.random() < spec.shared_name_rate:
            _, sibling_name, sibling_label, _ = sibling
            name = _messy(rng, sibling_name.strip()) if rng.random() < 0.5 else sibling_name
            if rng.random() < 0.5:
                label = sibling_label  # the same brand in another country: acme.com ~ acme.es
            else:
                label = _unique_label(
                    sibling_label + "-" + _slug_part(country, keep_unicode=False), used_labels
                )
        else:
            if rng.random() < 0.04:
                brand = rng.choice(SPECIAL_BRANDS)
            else:
                brand = f"{rng.choice(BRAND_WORDS_A)} {rng.choice(BRAND_WORDS_B)}"
            company_suffix = rng.choice(COMPANY_SUFFIXES)
            name = _messy(rng, f"{brand} {company_suffix}".strip())
            label = _unique_label(_slug_part(brand, keep_unicode=False).replace("-", ""), used_labels)
        domain: str | None = None
        payload: dict[str, Any] = {"accountid": account_id, "name": name}
        if rng.random() < 0.95:
            domain = f"{label}.{suffix}"
            payload["websiteurl"] = rng.choice(website_forms(domain))
            payload["emailaddress1"] = f"info@{domain}"
        payload["telephone1"] = _phone(rng)
        payload["numberofemployees"] = rng.choice((5, 12, 48, 120, 250, 800, 1500, 12000))
        payload["revenue"] = float(rng.randrange(50, 500_000)) * 1000.0
        payload["address1_city"] = city
        payload["address1_country"] = country
        if rng.random() < 0.5:
            payload["new_linkedinurl"] = f"https://www.linkedin.com/company/{label}/"
        if rng.random() < 0.1:
            payload["description"] = f"Cliente desde 2019 — {city}. Contacto habitual: compras."
        owner_bind(payload)
        records.append(("accounts", payload))
        accounts.append((account_id, name, label, domain))
        brand_of[account_id] = label
        truth.account_ids.append(account_id)
        truth.account_domains[account_id] = domain

    by_name: dict[str, list[str]] = {}
    by_label: dict[str, list[str]] = {}
    for account_id, name, label, domain in accounts:
        by_name.setdefault(fold_name(name), []).append(account_id)
        if domain is not None:
            by_label.setdefault(label, []).append(account_id)
    truth.shared_name_groups = [ids for ids in by_name.values() if len(ids) > 1]
    truth.any_extension_groups = [
        ids for ids in by_label.values() if len({truth.account_domains[a] for a in ids}) > 1
    ]

    # Contacts.
    people: list[dict[str, Any]] = []  # originals that duplicates can copy
    parent_id: str | None
    used_slugs: set[str] = set()
    group_of: dict[str, list[str]] = {}
    for _ in range(spec.contacts):
        contact_id = new_id()
        if people and rng.random() < spec.duplicate_rate:
            original = rng.choice(people)
            canonical = truth.contact_linkedin.get(original["contactid"])
            payload = _duplicate_of(rng, original, contact_id, canonical)
            group_of.setdefault(original["contactid"], [original["contactid"]]).append(contact_id)
            if canonical is not None and "new_linkedinurl" in payload:
                truth.contact_linkedin[contact_id] = canonical
            parent_id = truth.contact_account[original["contactid"]]
        else:
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            account = accounts[rng.randrange(len(accounts))] if accounts and rng.random() < 0.92 else None
            parent_id = account[0] if account else None
            email_domain = account[3] if account and account[3] else "example.org"
            payload = {
                "contactid": contact_id,
                "firstname": _messy(rng, first),
                "lastname": _messy(rng, last),
            }
            if rng.random() < 0.9:
                payload["emailaddress1"] = f"{_email_local(first, last)}@{email_domain}"
            payload["jobtitle"] = rng.choice(JOB_TITLES)
            payload["telephone1"] = _phone(rng)
            if rng.random() < 0.4:
                payload["mobilephone"] = _phone(rng)
            if rng.random() < spec.linkedin_rate:
                has_accents = ascii_fold(first + last) != first + last
                keep_unicode = has_accents and rng.random() < 0.5
                slug = "-".join(_slug_part(part, keep_unicode=keep_unicode) for part in (first, last))
                if rng.random() < 0.6:
                    slug += f"-{rng.getrandbits(24):06x}"
                slug = _unique_label(slug, used_slugs, sep="-")
                canonical = canonical_linkedin(slug)
                forms = variant_linkedin_forms(canonical)
                payload["new_linkedinurl"] = canonical if rng.random() < 0.4 else rng.choice(forms)
                truth.contact_linkedin[contact_id] = canonical
            if parent_id is not None:
                payload["parentcustomerid_account@odata.bind"] = f"/accounts({parent_id})"
            payload["donotemail"] = rng.random() < 0.05
            owner_bind(payload)
            people.append(payload)
        records.append(("contacts", payload))
        truth.contact_ids.append(contact_id)
        truth.contact_account[contact_id] = parent_id
    truth.duplicate_contact_groups = list(group_of.values())
    updates: list[Update] = [("systemusers", uid, {"isdisabled": True}) for uid in truth.disabled_user_ids]
    return Seed(records=records, updates=updates, truth=truth)


def generate_seed(spec: SeedSpec) -> list[Record]:
    """``(entity set name, Web API create payload)`` in dependency order (see module docstring)."""
    return build_seed(spec).records


def _email_local(first: str, last: str) -> str:
    return f"{_slug_part(first, keep_unicode=False)}.{_slug_part(last, keep_unicode=False)}".replace("-", "")


def _unique_label(label: str, used: set[str], *, sep: str = "") -> str:
    candidate = label
    counter = 2
    while candidate in used:
        candidate = f"{label}{sep}{counter}"
        counter += 1
    used.add(candidate)
    return candidate


def _phone(rng: random.Random) -> str:
    style = rng.randrange(3)
    digits = f"{rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"
    if style == 0:
        return f"+1 555 {digits}"
    if style == 1:
        return f"+34 91 {digits}"
    return f"(555) {digits.replace(' ', '-')}"


def _duplicate_of(
    rng: random.Random, original: dict[str, Any], contact_id: str, canonical: str | None
) -> dict[str, Any]:
    """The same person entered again: same company, small differences in how it was typed."""
    payload = {key: value for key, value in original.items() if key != "contactid"}
    payload = {"contactid": contact_id, **payload}
    payload["firstname"] = _messy(rng, str(original["firstname"]).strip())
    payload["lastname"] = _messy(rng, str(original["lastname"]).strip())
    if rng.random() < 0.3:
        payload["firstname"] = str(original["firstname"]).strip().swapcase()
    if canonical is not None:
        roll = rng.random()
        if roll < 0.6:
            payload["new_linkedinurl"] = rng.choice(variant_linkedin_forms(canonical))
        elif roll < 0.8:
            payload.pop("new_linkedinurl")
    email = original.get("emailaddress1")
    if isinstance(email, str):
        roll = rng.random()
        if roll < 0.3:
            payload["emailaddress1"] = email.upper()
        elif roll < 0.5:
            payload.pop("emailaddress1")
    return payload
