"""Decide what to write for one record: create, update only what changed, or nothing (pure).

Rules (the "Mapping Options" of setup step 2):
- ``overwrite``: the platform value replaces the Dynamics value when they differ.
- ``fill_if_empty``: written only where the Dynamics value is null or blank.
- An empty platform value is "no value": it never erases Dynamics data, in either mode.
- A record whose mapped values would change nothing is ``unchanged`` and costs no write.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.domain.config import Mode
from core.domain.values import is_empty


class PlanAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class DesiredValue:
    """A Dataverse-ready value for ``column`` (already converted to the column's type)."""

    column: str
    value: Any
    mode: Mode = Mode.OVERWRITE


@dataclass(frozen=True)
class DesiredLink:
    """A lookup to set with ``@odata.bind``: ``navigation`` e.g. ``parentcustomerid_account``.

    ``value_column`` is how the Web API returns the current target id (``_parentcustomerid_value``).
    """

    navigation: str
    entity_set: str
    target_id: str
    value_column: str
    mode: Mode = Mode.OVERWRITE


@dataclass
class WritePlan:
    action: PlanAction
    payload: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> {"before", "after"}


def same_value(current: Any, desired: Any) -> bool:
    """Equality as Dynamics would see it: numbers by value, date-times by instant, text exactly."""
    if current is None or desired is None:
        return current is None and desired is None
    if isinstance(desired, bool) or isinstance(current, bool):
        return bool(current) == bool(desired) and type(current) is type(desired)
    if isinstance(desired, int | float) and isinstance(current, int | float):
        return math.isclose(float(current), float(desired), rel_tol=1e-12, abs_tol=1e-9)
    if isinstance(desired, str) and isinstance(current, str):
        if current == desired:
            return True
        a, b = _instant(current), _instant(desired)
        return a is not None and a == b
    return bool(current == desired)


def _instant(value: str) -> dt.datetime | None:
    if len(value) < 10 or value[4:5] != "-" or "T" not in value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def plan_write(
    current: Mapping[str, Any] | None,
    values: Iterable[DesiredValue],
    links: Iterable[DesiredLink] = (),
    *,
    create_only: Mapping[str, Any] | None = None,
) -> WritePlan:
    """What to send for one record. ``current`` is the matched Dynamics row (None: create).

    ``create_only`` columns (e.g. ``ownerid@odata.bind``) are sent on create and never on update: an
    existing record keeps its owner.
    """
    value_list: Sequence[DesiredValue] = [v for v in values if not is_empty(v.value)]
    link_list: Sequence[DesiredLink] = list(links)
    if current is None:
        payload: dict[str, Any] = {v.column: v.value for v in value_list}
        changes = {v.column: {"before": None, "after": v.value} for v in value_list}
        for link in link_list:
            payload[f"{link.navigation}@odata.bind"] = f"/{link.entity_set}({link.target_id})"
            changes[link.navigation] = {"before": None, "after": link.target_id}
        payload.update(create_only or {})
        return WritePlan(PlanAction.CREATE, payload, changes)

    payload = {}
    changes = {}
    for v in value_list:
        before = current.get(v.column)
        if v.mode is Mode.FILL_IF_EMPTY and not is_empty(before):
            continue
        if same_value(before, v.value):
            continue
        payload[v.column] = v.value
        changes[v.column] = {"before": before, "after": v.value}
    for link in link_list:
        before_id = current.get(link.value_column)
        if link.mode is Mode.FILL_IF_EMPTY and before_id:
            continue
        if isinstance(before_id, str) and before_id.lower() == link.target_id.lower():
            continue
        payload[f"{link.navigation}@odata.bind"] = f"/{link.entity_set}({link.target_id})"
        changes[link.navigation] = {"before": before_id, "after": link.target_id}
    return WritePlan(PlanAction.UPDATE if payload else PlanAction.UNCHANGED, payload, changes)


class OwnerSource(StrEnum):
    USER_MAPPING = "user_mapping"
    DEFAULT_OWNER = "default_owner"
    INTEGRATION_USER = "integration_user"


@dataclass(frozen=True)
class OwnerChoice:
    systemuser_id: str
    source: OwnerSource
    impersonate: bool  # write on that user's behalf (CallerObjectId) so Dynamics applies their rights


def choose_owner(
    users: Mapping[str, str],
    default_owner_id: str | None,
    integration_user_id: str,
    platform_user_id: str | None,
) -> OwnerChoice:
    """Step 4: the mapped Dynamics user, else the default CRM owner, else the integration user."""
    if platform_user_id and platform_user_id in users:
        return OwnerChoice(users[platform_user_id], OwnerSource.USER_MAPPING, impersonate=True)
    if default_owner_id:
        return OwnerChoice(default_owner_id, OwnerSource.DEFAULT_OWNER, impersonate=False)
    return OwnerChoice(integration_user_id, OwnerSource.INTEGRATION_USER, impersonate=False)
