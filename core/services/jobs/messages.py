"""What a chunk job receives: the queue message naming one chunk, and how it reaches Dynamics."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from core.adapters.dataverse.client import DataverseClient
from core.domain.connection import DynamicsConnection, ReconnectRequired

# workspace -> the workspace's Dataverse client and connection (raises NotConnected / ReconnectRequired)
ClientFactory = Callable[[str], tuple[DataverseClient, DynamicsConnection]]
# (workspace, the ReconnectRequired that paused a chunk) -> connected again by a newer connection?
ReconnectCheck = Callable[[str, ReconnectRequired], bool]
# workspace -> is Dynamics the workspace's enabled integration? (one table read; chunks halt when not)
EnabledCheck = Callable[[str], bool]


@dataclass(frozen=True)
class ChunkMessage:
    """``{"workspaceId", "jobId", "chunk"}``: one chunk of an export or activity job (references only)."""

    workspace_id: str
    job_id: str
    chunk: int

    @classmethod
    def parse(cls, body: str | bytes) -> ChunkMessage:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("chunk message must be a JSON object")
        workspace_id, job_id, chunk = data.get("workspaceId"), data.get("jobId"), data.get("chunk")
        if not isinstance(workspace_id, str) or not isinstance(job_id, str) or not isinstance(chunk, int):
            raise ValueError("chunk message needs workspaceId, jobId and chunk")
        return cls(workspace_id, job_id, chunk)

    def to_json(self) -> dict[str, object]:
        return {"workspaceId": self.workspace_id, "jobId": self.job_id, "chunk": self.chunk}
