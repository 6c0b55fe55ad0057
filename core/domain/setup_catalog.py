"""What the setup window shows, with stable keys and English labels: the setup guide's own words, as data.

The keys are the API's (``core.domain.catalog``, ``core.domain.config``, ``core.domain.activities``); this
module only adds labels, descriptions and, for the thirteen campaign properties, the section of step 3
they are listed under and an example value in the stable text format (docs/campaign-properties.md).
Every key of those modules has an entry here (tests/unit/test_setup_catalog.py): a new field, option or
property without a label fails the tests instead of reaching the window unnamed.

Pure data, built once at import; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.domain.activities import EventKind
from core.domain.catalog import COMPANY_FIELDS, CONTACT_FIELDS, Entity
from core.domain.config import CompanyIdentifier, ContactIdentifier, Mode


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    description: str


@dataclass(frozen=True)
class PropertyEntry:
    key: str
    label: str
    contains: str  # "What it contains", the setup guide's column
    example: str


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    properties: tuple[PropertyEntry, ...]


FIELD_LABELS: Mapping[Entity, Mapping[str, tuple[str, str]]] = {
    Entity.CONTACT: {
        "id": ("ID", "The contact's id in the platform."),
        "firstName": ("First name", "The contact's first name."),
        "lastName": ("Last name", "The contact's last name."),
        "fullName": ("Full name", "First and last name together."),
        "jobTitle": ("Job title", "The contact's current job title."),
        "seniority": ("Seniority", "Seniority level of the contact's role (one label)."),
        "professionalEmail": ("Professional email", "The contact's work e-mail address."),
        "personalEmails": ("Personal emails", "The contact's personal e-mail addresses (a list)."),
        "phoneNumber": ("Phone number", "The contact's main phone number."),
        "mobilePhone": ("Mobile phone", "The contact's mobile phone number."),
        "otherPhones": ("Other phones", "Further phone numbers (a list)."),
        "linkedinUrl": ("LinkedIn profile URL", "The contact's LinkedIn profile URL."),
        "location": ("Location", "Where the contact is based, as one text."),
        "city": ("City", "The contact's city."),
        "country": ("Country", "The contact's country."),
        "languages": ("Languages", "Languages the contact speaks (several labels)."),
        "yearsInRole": ("Years in role", "Whole years in the current role."),
        "verified": ("Verified", "Whether the contact's data was verified."),
        "outreachStage": ("Outreach stage", "Where the contact is in the outreach (one label)."),
        "sequenceStatus": ("Sequence status", "Status of the contact's campaign sequence (one label)."),
        "createdAt": ("Created at", "When the contact was added to the platform."),
        "lastActivityAt": ("Last activity at", "When the last activity with the contact happened."),
    },
    Entity.COMPANY: {
        "id": ("ID", "The company's id in the platform."),
        "name": ("Company name", "The company's name."),
        "domain": ("Domain", "The company's web domain, e.g. contoso.com."),
        "website": ("Website", "The company's website URL."),
        "linkedinUrl": ("Company LinkedIn URL", "The company's LinkedIn page URL."),
        "industry": ("Industry", "The company's industry (one label)."),
        "subIndustries": ("Sub-industries", "Further industries (several labels)."),
        "employeeCount": ("Employee count", "Number of employees."),
        "growthPercent": ("Growth (%)", "Headcount growth in percent."),
        "city": ("City", "City of the company's headquarters."),
        "country": ("Country", "Country of the company's headquarters."),
        "description": ("Description", "What the company does."),
        "foundedYear": ("Founded year", "Year the company was founded."),
        "createdAt": ("Created at", "When the company was added to the platform."),
    },
}

FIELD_KINDS: tuple[Entry, ...] = (
    Entry(
        "platform_field",
        "Enginy Fields",
        "Standard fields from your contact or company lists (e.g., Phone Number, Job Title). Select the "
        "Enginy field first, then the corresponding Dynamics field.",
    ),
    Entry(
        "fixed_value",
        "Fixed Value Fields",
        'Fields that always export with the same static value. For example, a field called "Source" with '
        'fixed value "Enginy" so every exported record is tagged with its origin.',
    ),
    Entry(
        "manual_export",
        "Manual Export Fields",
        "Fields whose value you define at the time of export. Select the Dynamics field to be set when "
        "exporting. As many as you want.",
    ),
    Entry(
        "engagement",
        "Engagement Fields",
        "Fields populated when an Activity is created in Dynamics (e.g., an email sent, a LinkedIn message, "
        "or a Task log). Select the Dynamics field and set the Value to export. Only one can be set.",
    ),
)

MODES: tuple[Entry, ...] = (
    Entry(
        Mode.OVERWRITE.value,
        "Enginy overwrites Dynamics",
        "Changes in Enginy automatically overwrite the corresponding fields in Dynamics.",
    ),
    Entry(
        Mode.FILL_IF_EMPTY.value,
        "Sync with Dynamics",
        "Data only syncs automatically when the destination field is empty, preventing overwriting "
        "existing values.",
    ),
)

CONTACT_IDENTIFIERS: tuple[Entry, ...] = (
    Entry(
        ContactIdentifier.NAME_COMPANY.value,
        "First name + Last name + Company name",
        "A contact matches when all three fields are the same in both Enginy and Dynamics.",
    ),
    Entry(
        ContactIdentifier.LINKEDIN_OR_NAME_COMPANY.value,
        "LinkedIn profile URL OR First name + Last name + Company name",
        "A contact matches if the LinkedIn profile URL is the same or all three name/company fields match.",
    ),
    Entry(
        ContactIdentifier.CUSTOM.value,
        "Custom Mapping",
        "Custom conditions using AND/OR logic (for example, match by First Name AND Last Name, OR by "
        "Professional Email).",
    ),
)

COMPANY_IDENTIFIERS: tuple[Entry, ...] = (
    Entry(CompanyIdentifier.DOMAIN.value, "Domain", "Matches on the company domain (e.g., contoso.com)."),
    Entry(
        CompanyIdentifier.DOMAIN_OR_NAME.value,
        "Domain or Company Name",
        "Matches if either the domain or the company name is the same.",
    ),
    Entry(
        CompanyIdentifier.CUSTOM.value,
        "Custom Mapping",
        "Custom conditions (for example, match by Domain OR Company LinkedIn URL).",
    ),
)

CAMPAIGN_SECTIONS: tuple[Section, ...] = (
    Section(
        "sequence",
        "Sequence",
        (
            PropertyEntry(
                "campaignSequenceDetails",
                "Campaign Sequence Details",
                "The steps included in the campaign.",
                'Q4 Outreach #1 email "Intro": sent; Q4 Outreach #2 linkedin "Connect": pending',
            ),
            PropertyEntry(
                "campaignEngagementStatus",
                "Campaign Engagement Status",
                "The current status of each lead in the campaign.",
                "Q4 Outreach: replied; Webinar: opened",
            ),
            PropertyEntry(
                "sequenceStatus",
                "Sequence Status",
                "The overall status of the campaign sequence for the lead.",
                "Q4 Outreach: finished; Webinar: active",
            ),
            PropertyEntry(
                "campaignReplyAnalysis",
                "Campaign Reply Analysis",
                "Indicates per-message whether the lead replied to each automated message.",
                "Q4 Outreach #1 email: no reply; Q4 Outreach #2 linkedin: replied",
            ),
        ),
    ),
    Section(
        "email",
        "Email",
        (
            PropertyEntry(
                "campaignOpens",
                "Campaign Opens",
                "Total number of times a lead has opened one or more emails in the campaign.",
                "5",
            ),
            PropertyEntry(
                "campaignClicks",
                "Campaign Clicks",
                "Total number of times a lead has clicked a link in campaign emails.",
                "1",
            ),
            PropertyEntry(
                "campaignOpenAnalysis",
                "Campaign Open Analysis",
                "Indicates per-message whether the contact opened that specific email.",
                "Q4 Outreach #1: opened (3); Webinar #1: not opened",
            ),
            PropertyEntry(
                "campaignClickAnalysis",
                "Campaign Click Analysis",
                "Indicates per-message whether the contact clicked a link in that specific email.",
                "Q4 Outreach #1: clicked (1); Webinar #1: not clicked",
            ),
        ),
    ),
    Section(
        "general",
        "General",
        (
            PropertyEntry(
                "campaigns",
                "Campaign",
                "All Campaign names the contact has been added to.",
                "Q4 Outreach, Webinar",
            ),
            PropertyEntry(
                "senders", "Senders", "All sender names that have contacted the contact.", "Ana Ruiz, Bo Li"
            ),
            PropertyEntry(
                "activities",
                "Activities",
                "All activities that have occurred with the contact.",
                "2026-11-05 09:00 linkedin_message: Hi Jane; 2026-11-02 09:15 email_sent: Intro",
            ),
        ),
    ),
    Section(
        "conversation_tags",
        "Conversation Tags",
        (
            PropertyEntry(
                "conversationTags",
                "Conversation Tags",
                "All conversation tags applied to the contact (comma-separated).",
                "Pricing, Interested",
            ),
            PropertyEntry(
                "conversationTagCategories",
                "Conversation Tags Categories",
                "Categories of conversation tags: POSITIVE, NEUTRAL, NEGATIVE (comma-separated).",
                "POSITIVE, NEUTRAL",
            ),
        ),
    ),
)

# The statuses a campaign reports per lead (platform-data.md), which the engagement-status property and a
# choice column mapped to it carry.
ENGAGEMENT_STATUSES: tuple[Entry, ...] = (
    Entry("not_contacted", "Not contacted", "The lead has not been contacted yet."),
    Entry("contacted", "Contacted", "A first message was sent to the lead."),
    Entry("opened", "Opened", "The lead opened a campaign email."),
    Entry("clicked", "Clicked", "The lead clicked a link in a campaign email."),
    Entry("replied", "Replied", "The lead replied to a campaign message."),
    Entry("interested", "Interested", "The lead showed interest."),
    Entry("not_interested", "Not interested", "The lead said they are not interested."),
    Entry("bounced", "Bounced", "A campaign email to the lead bounced."),
)

SEQUENCE_STATUSES: tuple[Entry, ...] = (
    Entry("active", "Active", "The sequence is running for the lead."),
    Entry("paused", "Paused", "The sequence is paused for the lead."),
    Entry("finished", "Finished", "Every step of the sequence ran."),
    Entry("stopped", "Stopped", "The sequence was stopped before its end."),
)

ACTIVITY_KINDS: tuple[Entry, ...] = (
    Entry(EventKind.EMAIL_SENT.value, "Email sent", "Logged as an outgoing email activity."),
    Entry(
        EventKind.EMAIL_OPENED.value, "Email opened", "A signal: updates campaign properties, no activity."
    ),
    Entry(
        EventKind.EMAIL_CLICKED.value, "Email clicked", "A signal: updates campaign properties, no activity."
    ),
    Entry(EventKind.EMAIL_REPLIED.value, "Email replied", "Logged as an incoming email activity."),
    Entry(EventKind.LINKEDIN_MESSAGE.value, "LinkedIn message", "Logged as a LinkedIn activity (or a task)."),
    Entry(
        EventKind.LINKEDIN_CONNECTION.value,
        "LinkedIn connection request",
        "Logged as a LinkedIn activity (or a task).",
    ),
    Entry(EventKind.CALL.value, "Call", "Logged as an outgoing phone call activity."),
    Entry(EventKind.TASK.value, "Task", "Logged as a completed task."),
)


def field_entries(entity: Entity) -> list[tuple[str, str, str, str, bool]]:
    """(key, type, label, description, required) of every catalog field of ``entity``, in catalog order."""
    fields = CONTACT_FIELDS if entity is Entity.CONTACT else COMPANY_FIELDS
    labels = FIELD_LABELS[entity]
    return [(name, f.type.value, *labels[name], f.required) for name, f in fields.items()]


def campaign_property_keys() -> tuple[str, ...]:
    """The properties of the four sections, in the order the step lists them."""
    return tuple(p.key for section in CAMPAIGN_SECTIONS for p in section.properties)
