"""A finished job's per-record results as one file (CSV or NDJSON), for jobs of any size.

The file is built from the job's record rows a page at a time (``JobStore.iter_outcome_pages``), each
page rendered (``core.domain.result_files``) and appended to a block blob (``ResultFiles``), so memory
holds one page and one block whatever the job's size; the caller gets a short-lived link to the blob (why
a link and not the answer's body: ``core.adapters.storage.result_files``).

Only a job that has ended is offered: its results no longer change, so the file is built once per format
and audience and reused by later downloads (two downloads racing on the first build each build one; both
files are right). Admins' files hold the values Dynamics had (``changes[column].before``), everyone
else's do not, as on the records endpoint. A job whose results retention has deleted (or is deleting)
answers ``ResultsExpired``; a file finished while retention started on its job is not handed out.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from core.adapters.storage.job_store import JobStore
from core.adapters.storage.result_files import LINK_TTL, ResultFile, ResultFiles
from core.domain.jobs import JobState, job_state
from core.domain.result_files import ResultFormat, csv_header, csv_row, ndjson_line, without_crm_values
from core.services.jobs.merged import join_merged

log = logging.getLogger(__name__)

# Still running (or waiting to): results may change.
UNFINISHED = frozenset(
    {JobState.QUEUED, JobState.RUNNING, JobState.PAUSED_RECONNECT, JobState.PAUSED_DISABLED}
)
PAGE_SIZE = 1000


class JobNotFinished(Exception):
    def __init__(self, state: JobState) -> None:
        super().__init__(f"the job is {state.value}")
        self.state = state


class ResultsExpired(Exception):
    def __init__(self, deleted_at: str) -> None:
        super().__init__(f"per-record results were deleted by retention at {deleted_at}")
        self.deleted_at = deleted_at


@dataclass(frozen=True)
class DownloadLink:
    url: str
    filename: str
    expires_in_s: int
    size: int
    built: bool  # False when an earlier download's file was reused


class ResultsDownloads:
    def __init__(
        self,
        store: JobStore,
        files: ResultFiles,
        *,
        kind: str,
        page_size: int = PAGE_SIZE,
        link_ttl: dt.timedelta = LINK_TTL,
    ) -> None:
        self._store = store
        self._files = files
        self._kind = kind
        self._page_size = page_size
        self._ttl = link_ttl

    def link(
        self, workspace_id: str, job_id: str, fmt: ResultFormat, *, sees_crm_values: bool
    ) -> DownloadLink | None:
        """A link to the job's results file (built now unless an earlier download built it); None when the
        workspace has no such job. ``JobNotFinished``, ``ResultsExpired``."""
        self._store.ensure_ready()
        job = self._store.get_job(workspace_id, job_id)
        if job is None:
            return None
        if job.records_deleted_at:
            raise ResultsExpired(job.records_deleted_at)
        if job.total_chunks:
            state = job_state(self._store.list_chunks(workspace_id, job_id), total_chunks=job.total_chunks)
            if state in UNFINISHED:
                raise JobNotFinished(state)
        audience = "admin" if sees_crm_values else "people"
        prefix = f"{workspace_id}/{job_id}/downloads/records-{audience}.{fmt.value}."
        found = self._files.existing(prefix)
        built = found is None
        if found is None:
            found = self._build(workspace_id, job_id, fmt, prefix, sees_crm_values=sees_crm_values)
            after = self._store.get_job(workspace_id, job_id)
            if after is None or after.records_deleted_at:  # retention began meanwhile: no half file
                self._files.blob_client(found.name).delete_blob()
                raise ResultsExpired(after.records_deleted_at if after and after.records_deleted_at else "")
        filename = f"{self._kind}-{job_id}-records.{fmt.value}"
        url = self._files.link(found.name, filename=filename, content_type=fmt.media_type, ttl=self._ttl)
        return DownloadLink(url, filename, int(self._ttl.total_seconds()), found.size, built)

    def _build(
        self, workspace_id: str, job_id: str, fmt: ResultFormat, prefix: str, *, sees_crm_values: bool
    ) -> ResultFile:
        writer = self._files.new_file(prefix)
        if fmt is ResultFormat.CSV:
            writer.write(csv_header())
        records = 0
        for page in self._store.iter_outcome_pages(workspace_id, job_id, self._page_size):
            details = [outcome.detail for outcome in page]
            join_merged(self._store, workspace_id, job_id, details)
            lines = []
            for detail in details:
                shown = detail if sees_crm_values else without_crm_values(detail)
                lines.append(csv_row(shown) if fmt is ResultFormat.CSV else ndjson_line(shown))
            writer.write("".join(lines))
            records += len(details)
        done = writer.commit(fmt.media_type, {"records": str(records)})
        log.info(
            "results file built",
            extra={"workspace": workspace_id, "job": job_id, "records": records, "bytes": done.size},
        )
        return done
