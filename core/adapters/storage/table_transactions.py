"""One entity-group transaction of Table Storage, written by hand: ``replace_entities``.

The job store upserts per-record outcomes 100 at a time; the SDK's ``submit_transaction`` builds and parses
the multipart body through the ``email`` package and a thread pool per part, which cost more CPU than
everything else an export worker does (about 60% of it). The request still goes through the client's own
pipeline (authentication, retries, logging). Transaction rules:
https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

_CONNECTION_ATTEMPTS = 3
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?\r?$", re.MULTILINE)
_ERROR_MESSAGE = re.compile(rb'"message":\{[^{}]*"value":"((?:[^"\\]|\\.)*)"')


def replace_entities(table: TableClient, entities: Sequence[Mapping[str, Any]]) -> None:
    """Upsert (replace) up to 100 entities of one partition in one entity-group transaction.

    What ``TableClient.submit_transaction`` does, with the multipart body written here: the SDK builds
    and parses it through the ``email`` package and a thread pool per part, which cost more CPU than
    everything else an export worker does (about 60% of it). The request still goes through the
    client's own pipeline (authentication, retries, logging). Values: str, bool, int, float.
    Raises :class:`HttpResponseError` when the service refuses the transaction (nothing is written).
    """
    if not entities:
        return
    if len({str(e["PartitionKey"]) for e in entities}) > 1:
        raise ValueError("a table transaction holds entities of one partition only")
    base = f"{table.scheme}://{table._primary_hostname}"  # as the SDK's own _batch_send
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for index, entity in enumerate(entities):
        body = json.dumps(_typed(entity), separators=(",", ":"))  # ASCII: length in bytes = in chars
        key = f"PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}'"
        lines += [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {index}",
            "",
            f"PUT {base}/{table.table_name}({key}) HTTP/1.1",
            "Content-Type: application/json",
            "Accept: application/json;odata=nometadata",
            "DataServiceVersion: 3.0",
            f"Content-Length: {len(body)}",
            "",
            body,
        ]
    lines += [f"--{changeset}--", "", f"--{batch}--", ""]
    request = HttpRequest(
        "POST",
        f"{base}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content="\r\n".join(lines).encode("utf-8"),
    )
    for attempt in range(_CONNECTION_ATTEMPTS):
        try:
            response = table._client.send_request(request, stream=True)  # not decoded by ContentDecodePolicy
            break
        except (ServiceRequestError, ServiceResponseError):
            # The SDK does not repeat a POST whose connection broke (e.g. a pooled keep-alive connection
            # the server had just closed). Replacing the same entities again is harmless: repeat it.
            if attempt + 1 == _CONNECTION_ATTEMPTS:
                raise
    if response.status_code != 202:
        raise HttpResponseError(
            message=f"table transaction refused: HTTP {response.status_code}", response=response
        )
    answer = response.read()
    for status, reason in _STATUS_LINE.findall(answer):
        if not 200 <= int(status) < 300:
            error = _ERROR_MESSAGE.search(answer)
            detail = json.loads(b'"' + error.group(1) + b'"') if error else reason.decode(errors="replace")
            raise HttpResponseError(
                message=f"table transaction refused: HTTP {int(status)}: {detail}"[:500], response=response
            )


def _key(value: Any) -> str:
    return quote(str(value).replace("'", "''"), safe="~")


def _typed(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity as Table JSON: 64-bit integers need their type named, the rest are inferred."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if isinstance(value, bool) or isinstance(value, str) or isinstance(value, float):
            out[name] = value
        elif isinstance(value, int):
            if -(2**31) <= value < 2**31:
                out[name] = value
            else:
                out[name], out[f"{name}@odata.type"] = str(value), "Edm.Int64"
        else:
            raise TypeError(f"unsupported table value for {name}: {type(value).__name__}")
    return out
