"""Errors the Web API answers with, in Dataverse's shape ``{"error": {"code": "0x...", "message": ...}}``.

``ODataError`` is the query engineer's class (odata.py); every other module raises it through these
helpers so codes and messages live in one place. Codes: includes/data-service-error-codes.md.
"""

from __future__ import annotations

from .odata import ODataError

__all__ = [
    "ODataError",
    "bad_key",
    "bad_request",
    "duplicate_detected",
    "duplicate_key",
    "duplicate_record",
    "etag_mismatch",
    "invalid_argument",
    "lookup_missing",
    "not_found",
    "payload_error",
    "required_missing",
    "undeclared_property",
    "user_disabled",
    "validation_error",
]

PAYLOAD_HELP = "https://go.microsoft.com/fwlink/?linkid=2195293"


def bad_request(message: str, code: str = "0x80060888") -> ODataError:
    return ODataError(400, code, message)


def not_found(table: str, record_id: str) -> ODataError:
    """GET/PATCH(If-Match)/DELETE of a record that does not exist (ObjectDoesNotExist)."""
    return ODataError(404, "0x80040217", f"Entity '{table}' With Id = {record_id} Does Not Exist")


def lookup_missing(table: str, record_id: str) -> ODataError:
    """An @odata.bind to a record that does not exist."""
    return ODataError(404, "0x80040217", f"{table} With Id = {record_id} Does Not Exist")


def payload_error(entity_set: str, inner: str) -> ODataError:
    """The OData reader refused the request body (unknown property, wrong JSON type)."""
    return ODataError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', For more information "
        f"on this error please follow this help link {PAYLOAD_HELP}  ----> InnerException : "
        f"Microsoft.OData.ODataException: {inner}",
    )


def undeclared_property(name: str) -> ODataError:
    return ODataError(
        400,
        "0x80060888",
        f"An undeclared property '{name}' which only has property annotations in the payload but no property "
        "value was found in the payload. In OData, only declared navigation properties and declared named "
        "streams can be represented as properties without values.",
    )


def validation_error(message: str) -> ODataError:
    return ODataError(400, "0x80044331", f"A validation error occurred.  {message}")


def invalid_argument(message: str) -> ODataError:
    return ODataError(400, "0x80040203", message)


def required_missing(table: str, column: str) -> ODataError:
    # *unconfirmed wording*: the platform only enforces SystemRequired columns on API calls.
    return ODataError(
        400, "0x80040200", f"Attribute '{column}' of entity '{table}' is required and cannot be null."
    )


def duplicate_record(*, primary_key: bool = False) -> ODataError:
    """DuplicateRecord. A create whose client-supplied primary key is taken reads "Cannot insert duplicate
    key." (troubleshoot/power-platform/power-apps/dataverse/client-errors, bulk-operations); an upsert with
    ``If-None-Match: *`` on an existing record reads "A record with matching key values already exists."
    (webapi/perform-conditional-operations-using-web-api)."""
    if primary_key:
        return ODataError(412, "0x80040237", "Cannot insert duplicate key.")
    return ODataError(412, "0x80040237", "A record with matching key values already exists.")


def duplicate_key(table: str, key_name: str, columns: tuple[str, ...]) -> ODataError:
    cols = ", ".join(columns)
    return ODataError(
        412,
        "0x80060892",
        f"A record that has the attribute values {cols} already exists. The entity key {key_name} requires "
        "that this set of attributes contains unique values. Select unique values and try again.",
    )


def duplicate_detected() -> ODataError:
    return ODataError(
        412,
        "0x80040333",
        "A record was not created or updated because a duplicate of the current record already exists.",
    )


def etag_mismatch() -> ODataError:
    return ODataError(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def bad_key(table: str) -> ODataError:
    return ODataError(
        400,
        "0x80060888",
        f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table}'. Ensure that "
        "the names and number of key properties match the declared or alternate key properties for "
        "the resource.",
    )


def privilege_denied(user_id: str, table: str, privilege: str) -> ODataError:
    """PrivilegeDenied (includes/data-service-error-codes.md: 0x80040220), as the Web API answers it (403)."""
    return ODataError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8, roleCount=1, privilegeCount=0, accessMode=0), is missing "
        f"prv{privilege}{table.capitalize()} privilege on OTC for entity '{table}'.",
    )


def user_disabled(user_id: str) -> ODataError:
    # *unconfirmed code*: SystemUserDisabled.
    return ODataError(
        400,
        "0x8004001f",
        f"The specified user(Id = {user_id}) is disabled. Consider enabling this user. "
        "Additional Details: User is disabled.",
    )
