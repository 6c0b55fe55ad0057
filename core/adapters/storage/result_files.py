"""Files of per-record results, written into Blob Storage block by block, and handed out as short-lived
read-only links.

Why a blob and a link rather than the HTTP answer itself: a Python function on azure-functions 1.x
answers with one ``HttpResponse`` whose body is a complete ``bytes`` object (the worker does not stream
it), so a 100,000-record file (tens of MB) would have to be held in memory whole, and the answer would
go through the Functions host in one piece. Instead the file is built here as a block blob: each
``write`` buffers at most ``block_bytes`` and uploads it as an uncommitted block (Put Block), ``commit``
makes the blob out of them in one call (Put Block List), so the memory used does not depend on the size of
the file (https://learn.microsoft.com/rest/api/storageservices/understanding-block-blobs--append-blobs--and-page-blobs).
The caller is then redirected to the blob with a SAS that can read that one blob only, for a few minutes,
and names the file (``Content-Disposition``): the bytes go from storage to the client without passing
through a function.

A SAS is signed with the account key when the app has one (a connection string: Azurite locally), and
otherwise with a user delegation key the app's managed identity asks Blob Storage for (the identity needs
Storage Blob Data Owner/Contributor, which infra/app/storage.bicep grants), so no account key is needed on
Azure (https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas).
The trade-offs: the client must follow a redirect to the storage account's host (a browser does, for
``fetch`` the account would need CORS, so a page asks for the link as JSON and navigates to it), the
link is a bearer credential for its few minutes, and a finished file stays in storage until the job's
staged data is deleted (retention), where a second download reuses it.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    generate_blob_sas,
)

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
LINK_TTL = dt.timedelta(minutes=5)
# A SAS valid from a little before now: the storage service's clock may be behind this instance's.
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ResultFile:
    name: str
    size: int


class FileWriter:
    """One blob being written: ``write`` text, then ``commit`` (nothing is visible before)."""

    def __init__(self, files: ResultFiles, name: str, block_bytes: int) -> None:
        self._blob = files.blob_client(name)
        self.name = name
        self._block_bytes = block_bytes
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._blocks: list[BlobBlock] = []
        self.size = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= self._block_bytes:
            self._stage()

    def _stage(self) -> None:
        if not self._buffered:
            return
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        data = b"".join(self._buffer)
        self._blob.stage_block(block_id, data, length=len(data))
        self._blocks.append(BlobBlock(block_id=block_id))
        self.size += len(data)
        self._buffer, self._buffered = [], 0

    def commit(self, content_type: str, metadata: Mapping[str, str] | None = None) -> ResultFile:
        self._stage()
        self._blob.commit_block_list(
            self._blocks,
            content_settings=ContentSettings(content_type=content_type),
            metadata=dict(metadata or {}),
        )
        return ResultFile(self.name, self.size)


class ResultFiles:
    def __init__(
        self,
        blobs: BlobServiceClient,
        container: str,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        clock: Any = None,
    ) -> None:
        self._blobs = blobs
        self._container = container
        self._block_bytes = block_bytes
        self._now = clock or (lambda: dt.datetime.now(dt.UTC))

    def blob_client(self, name: str) -> Any:
        return self._blobs.get_blob_client(self._container, name)

    def new_file(self, prefix: str) -> FileWriter:
        """A writer of a new blob named ``prefix`` + a unique suffix (two builds never share blocks)."""
        return FileWriter(self, f"{prefix}{uuid.uuid4().hex}", self._block_bytes)

    def existing(self, prefix: str) -> ResultFile | None:
        """A committed file whose name starts with ``prefix`` (the newest), or None. Uncommitted blocks of a
        build still running are not listed."""
        found = [
            (b.last_modified, ResultFile(b.name, int(b.size or 0)))
            for b in self._blobs.get_container_client(self._container).list_blobs(name_starts_with=prefix)
        ]
        return max(found, key=lambda f: f[0])[1] if found else None

    def link(self, name: str, *, filename: str, content_type: str, ttl: dt.timedelta = LINK_TTL) -> str:
        """A URL that reads blob ``name`` only, for ``ttl``, downloaded as ``filename``."""
        now = self._now()
        start, expiry = now - _CLOCK_SKEW, now + ttl
        signing: dict[str, Any]
        account_key = getattr(self._blobs.credential, "account_key", None)
        if account_key:
            signing = {"account_key": account_key}
        else:
            key = self._blobs.get_user_delegation_key(start, expiry)
            signing = {"user_delegation_key": key}
        sas = generate_blob_sas(
            self._blobs.account_name or "",
            self._container,
            name,
            permission=BlobSasPermissions(read=True),
            start=start,
            expiry=expiry,
            content_disposition=f'attachment; filename="{filename}"',
            content_type=content_type,
            **signing,
        )
        return f"{self.blob_client(name).url}?{sas}"
