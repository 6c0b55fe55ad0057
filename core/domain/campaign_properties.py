"""The thirteen campaign properties of step 3, computed from a contact's campaign data (pure).

Input: the contact's ``campaigns``, ``activities`` and ``conversationTags`` as the platform sends them.
Output: one value per property in ONE stable text format (docs/campaign-properties.md) — admins build
Dynamics views and reports on these values, so the format never changes silently:

- list properties (campaigns, senders, tags, tag categories): names joined with ``", "``, each once;
- per-campaign properties (engagement status, sequence status): ``<campaign>: <status>`` joined ``"; "``;
- per-step / per-message properties: ``<campaign> #<step> ...: <value>`` joined ``"; "``;
- activities: ``YYYY-MM-DD HH:MM <type>: <summary>``, newest first, joined ``"; "``;
- opens / clicks: whole numbers (totals across every campaign's email steps).

Writing respects the column: text columns get the text cut at an entry boundary with a marker
(``"; … +3 more"``) when it exceeds MaxLength (never mid-value); numeric columns get numbers; choice
columns get the option whose label matches (``not_contacted`` ~ "Not contacted"); multi-select choice
columns get the list items. A property without data is "no value": it never erases a Dynamics value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.domain.catalog import CAMPAIGN_PROPERTIES, FieldType
from core.domain.config import CampaignMapping, Mode
from core.domain.conversion import NO_VALUE, ConversionError, convert, utf16_length
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn
from core.domain.export_plan import DesiredValue
from core.domain.jobs import FieldError

FORMAT_VERSION = "1"
LIST_SEPARATOR = ", "
ENTRY_SEPARATOR = "; "
TAG_CATEGORIES = ("POSITIVE", "NEUTRAL", "NEGATIVE")
MESSAGE_CHANNELS = ("email", "linkedin")

_NUMERIC = frozenset(
    {
        AttributeType.INTEGER,
        AttributeType.BIGINT,
        AttributeType.DECIMAL,
        AttributeType.DOUBLE,
        AttributeType.MONEY,
    }
)
_TEXT = frozenset({AttributeType.STRING, AttributeType.MEMO})
_CHOICE = frozenset({AttributeType.PICKLIST, AttributeType.STATUS})


@dataclass(frozen=True)
class PropertyValue:
    """A computed property: ``entries`` joined by ``separator`` (text), or ``number`` for totals.

    ``choice`` is the single label a choice column takes (the latest campaign's status), if any.
    """

    entries: tuple[str, ...] = ()
    separator: str = ENTRY_SEPARATOR
    number: int | None = None
    choice: str | None = None

    @property
    def empty(self) -> bool:
        return self.number is None and not self.entries

    @property
    def text(self) -> str:
        if self.number is not None:
            return str(self.number)
        return self.separator.join(self.entries)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    folded: set[str] = set()
    for value in values:
        if value and value.casefold() not in folded:
            folded.add(value.casefold())
            seen[value] = None
    return tuple(seen)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _campaigns(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = data.get("campaigns")
    return [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []


def _steps(campaign: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = campaign.get("steps")
    steps = [s for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []

    def order(step: Mapping[str, Any]) -> tuple[int, int]:
        index = step.get("index")
        return (0, index) if isinstance(index, int) and not isinstance(index, bool) else (1, 0)

    return sorted(steps, key=order)


def _name(campaign: Mapping[str, Any]) -> str:
    return _text(campaign.get("name")) or _text(campaign.get("id")) or "Campaign"


def _step_ref(campaign: Mapping[str, Any], step: Mapping[str, Any]) -> str:
    return f"{_name(campaign)} #{step.get('index', '?')}"


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def _sent(step: Mapping[str, Any]) -> bool:
    return step.get("status") == "sent"


def _latest(campaigns: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The campaign the contact was added to last (the last of the list): a choice column's value."""
    return campaigns[-1] if campaigns else None


def _activity_time(raw: Any) -> tuple[str, dt.datetime | None]:
    if not isinstance(raw, str):
        return "", None
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return _text(raw), None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    utc = parsed.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M"), utc


def compute_properties(data: Mapping[str, Any]) -> dict[str, PropertyValue]:
    """All thirteen properties (``catalog.CAMPAIGN_PROPERTIES`` keys) of one contact's campaign data."""
    campaigns = _campaigns(data)
    out: dict[str, PropertyValue] = {}

    details: list[str] = []
    replies: list[str] = []
    opens: list[str] = []
    clicks: list[str] = []
    total_opens = total_clicks = 0
    for campaign in campaigns:
        for step in _steps(campaign):
            channel = _text(step.get("channel")) or "step"
            name = _text(step.get("name"))
            label = f"{_step_ref(campaign, step)} {channel}" + (f' "{name}"' if name else "")
            details.append(f"{label}: {_text(step.get('status')) or 'pending'}")
            if channel in MESSAGE_CHANNELS and _sent(step):
                replies.append(
                    f"{_step_ref(campaign, step)} {channel}: "
                    + ("replied" if step.get("replied") is True else "no reply")
                )
            if channel == "email":
                step_opens, step_clicks = _count(step.get("opens")), _count(step.get("clicks"))
                total_opens += step_opens
                total_clicks += step_clicks
                if _sent(step):
                    ref = _step_ref(campaign, step)
                    opens.append(f"{ref}: opened ({step_opens})" if step_opens else f"{ref}: not opened")
                    clicks.append(f"{ref}: clicked ({step_clicks})" if step_clicks else f"{ref}: not clicked")
    latest = _latest(campaigns)
    out["campaignSequenceDetails"] = PropertyValue(tuple(details))
    out["campaignEngagementStatus"] = PropertyValue(
        tuple(
            f"{_name(c)}: {_text(c.get('engagementStatus'))}" for c in campaigns if c.get("engagementStatus")
        ),
        choice=_text(latest.get("engagementStatus")) or None if latest else None,
    )
    out["sequenceStatus"] = PropertyValue(
        tuple(f"{_name(c)}: {_text(c.get('sequenceStatus'))}" for c in campaigns if c.get("sequenceStatus")),
        choice=_text(latest.get("sequenceStatus")) or None if latest else None,
    )
    out["campaignReplyAnalysis"] = PropertyValue(tuple(replies))
    out["campaignOpens"] = PropertyValue(number=total_opens if campaigns else None)
    out["campaignClicks"] = PropertyValue(number=total_clicks if campaigns else None)
    out["campaignOpenAnalysis"] = PropertyValue(tuple(opens))
    out["campaignClickAnalysis"] = PropertyValue(tuple(clicks))
    out["campaigns"] = PropertyValue(_unique(_name(c) for c in campaigns), LIST_SEPARATOR)
    out["senders"] = PropertyValue(
        _unique(
            _text(s.get("name")) for c in campaigns for s in _list(c.get("senders")) if isinstance(s, Mapping)
        ),
        LIST_SEPARATOR,
    )
    out["activities"] = PropertyValue(_activities(data.get("activities")))
    tags = data.get("conversationTags")
    tag_list = [t for t in tags if isinstance(t, Mapping)] if isinstance(tags, list) else []
    out["conversationTags"] = PropertyValue(_unique(_text(t.get("name")) for t in tag_list), LIST_SEPARATOR)
    present = {_text(t.get("category")).upper() for t in tag_list}
    out["conversationTagCategories"] = PropertyValue(
        tuple(c for c in TAG_CATEGORIES if c in present), LIST_SEPARATOR
    )
    return out


def _activities(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    rows: list[tuple[dt.datetime | None, int, str]] = []
    for position, activity in enumerate(raw):
        if not isinstance(activity, Mapping):
            continue
        shown, instant = _activity_time(activity.get("at"))
        kind = _text(activity.get("type")) or "activity"
        summary = _text(activity.get("summary"))
        head = f"{shown} {kind}".strip()
        rows.append((instant, position, f"{head}: {summary}" if summary else head))
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    # Newest first (ties: later in the list first) so a cut at MaxLength drops the oldest.
    rows.sort(key=lambda r: (r[0] or floor, r[1]), reverse=True)
    return tuple(text for _, _, text in rows)


def fit_text(value: PropertyValue, max_length: int | None) -> str:
    """The text, cut at an entry boundary with ``… +N more`` when it exceeds ``max_length`` (UTF-16).

    Never cuts inside an entry; when not even one entry fits with the marker, the marker alone says how
    many were left out.
    """
    full = value.text
    if max_length is None or utf16_length(full) <= max_length:
        return full
    entries = value.entries
    for keep in range(len(entries) - 1, -1, -1):
        marker = f"… +{len(entries) - keep} more"
        text = value.separator.join((*entries[:keep], marker))
        if utf16_length(text) <= max_length:
            return text
    return ""


def _humanize(label: str) -> str:
    return label.replace("_", " ").replace("-", " ")


def column_value(key: str, value: PropertyValue, column: DynamicsColumn) -> tuple[Any, FieldError | None]:
    """The Dataverse value of one property for ``column`` (``NO_VALUE`` when there is nothing)."""
    if value.empty:
        return NO_VALUE, None
    kind = column.attribute_type
    where = column.logical_name
    try:
        if kind in _TEXT:
            text = fit_text(value, column.max_length)
            if not text:
                return NO_VALUE, FieldError(where, f"{key}: the column is too short for any value")
            return text, None
        if kind in _NUMERIC:
            if value.number is None:
                return NO_VALUE, FieldError(where, f"{key} is text; a {kind.value} column takes a number")
            return convert(value.number, FieldType.INTEGER, column, field=key), None
        if kind in _CHOICE:
            label = value.choice or (value.entries[0] if len(value.entries) == 1 else None)
            if label is None:
                return NO_VALUE, FieldError(where, f"{key} has several values; a choice column takes one")
            try:
                return convert(label, FieldType.CHOICE, column, field=key), None
            except ConversionError:
                return convert(_humanize(label), FieldType.CHOICE, column, field=key), None
        if kind is AttributeType.MULTI_SELECT_PICKLIST:
            return convert(list(value.entries), FieldType.CHOICES, column, field=key), None
    except ConversionError as exc:
        return NO_VALUE, FieldError(where, f"{key}: {exc.reason}", exc.code)
    return NO_VALUE, FieldError(where, f"{key} cannot be written to a column of type {kind.value}")


def mapped_columns(mapping: CampaignMapping) -> dict[str, str]:
    """Property key -> column, for the mapped properties only (in step 3's order)."""
    raw = mapping.to_json()
    return {key: str(raw[key]) for key in CAMPAIGN_PROPERTIES if raw.get(key)}


def campaign_values(
    data: Mapping[str, Any], mapping: CampaignMapping, columns: Mapping[str, DynamicsColumn]
) -> tuple[list[DesiredValue], list[FieldError]]:
    """Desired column values of the mapped properties for one contact, and the properties that cannot be
    written (missing column, wrong type). Contacts without campaign data yield nothing."""
    wanted = mapped_columns(mapping)
    if not wanted or not any(data.get(k) for k in ("campaigns", "activities", "conversationTags")):
        return [], []
    properties = compute_properties(data)
    values: list[DesiredValue] = []
    problems: list[FieldError] = []
    for key, column_name in wanted.items():
        column = columns.get(column_name)
        if column is None:
            problems.append(
                FieldError(column_name, f"{key}: column {column_name} does not exist in Dynamics")
            )
            continue
        value, problem = column_value(key, properties[key], column)
        if problem is not None:
            problems.append(problem)
        if value is not NO_VALUE:
            values.append(DesiredValue(column_name, value, Mode.OVERWRITE))
    return values, problems
