"""CreateMultiple / UpdateMultiple / UpsertMultiple (bulk-operations.md and the action reference pages).

Standard tables: all-or-nothing (one failing target rolls the whole call back), the same validation as
single-record writes. ``{"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", ...}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors
from .records import Caller, RecordService
from .schema import Table

BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def targets_of(table: Table, message: str, body: Any) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping) or not isinstance(body.get("Targets"), list):
        raise errors.bad_request(
            f"Error identified in Payload provided by the user for Action :'{message}'. The "
            "parameter 'Targets' "
            "is missing or is not a collection.",
            code="0x80048d19",
        )
    targets: list[Mapping[str, Any]] = body["Targets"]
    if not targets:
        raise errors.bad_request(f"The Targets collection of {message} must contain at least one entity.")
    for target in targets:
        if not isinstance(target, Mapping):
            raise errors.payload_error(table.entity_set, "A JSON object was expected for each target.")
    return targets


def execute(
    service: RecordService, table: Table, message: str, body: Any, caller: Caller
) -> tuple[int, dict[str, Any] | None, int]:
    """Run a bulk message; returns (status, JSON body or None, number of targets)."""
    if not table.supports_bulk:
        # *code unconfirmed*; the message is the platform's MessageProcessor wording.
        raise errors.ODataError(
            400,
            "0x80040800",
            f"The '{message}' method does not support entities of type '{table.logical_name}'. "
            "MessageProcessorCache returned MessageProcessor.Empty.",
        )
    targets = targets_of(table, message, body)
    with service.store.transaction():
        if message == "CreateMultiple":
            ids = [str(service.create(table, dict(t), caller)[table.primary_id]) for t in targets]
            context = f"{service.api_url}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
            return 200, {"@odata.context": context, "Ids": ids}, len(targets)
        if message == "UpdateMultiple":
            missing = []
            for target in targets:
                record_id = target.get(table.primary_id)
                if (
                    not isinstance(record_id, str)
                    or service.store.get(table.logical_name, record_id.lower()) is None
                ):
                    missing.append(str(record_id))
            if missing:
                raise errors.ODataError(
                    404,
                    "0x80040217",
                    f"{table.logical_name.title()} With Ids = {', '.join(missing)} Do Not Exist",
                )
            for target in targets:
                record_id = str(target[table.primary_id]).lower()
                payload = {k: v for k, v in target.items() if k != table.primary_id}
                service.update(table, record_id, payload, caller)
            return 204, None, len(targets)
        for target in targets:
            payload = {k: v for k, v in target.items() if k != "@odata.id"}
            reference = target.get("@odata.id")
            if isinstance(reference, str):
                start = reference.find("(")
                key_text = reference[start + 1 : -1] if start > 0 and reference.endswith(")") else ""
                if not key_text:
                    raise errors.bad_key(table.logical_name)
            elif isinstance(target.get(table.primary_id), str):
                key_text = str(target[table.primary_id])
                payload.pop(table.primary_id, None)
            else:
                service.create(table, payload, caller)
                continue
            service.upsert(table, key_text, payload, caller)
        return 204, None, len(targets)
