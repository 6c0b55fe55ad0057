"""How chunk outcomes add up to what an admin sees on an export job."""

from core.domain.jobs import (
    ChunkState,
    ChunkStatus,
    ExportEntity,
    JobState,
    RecordAction,
    RecordOutcome,
    count_outcomes,
    deterministic_dynamics_id,
    empty_counts,
    job_state,
    split_chunks,
)


def _chunk(i: int, state: ChunkState, **counts: int) -> ChunkStatus:
    c = empty_counts()
    c.update(counts)
    return ChunkStatus(index=i, state=state, counts=c, records=sum(counts.values()))


def test_deterministic_ids_are_stable_and_scoped() -> None:
    a = deterministic_dynamics_id("ws1", ExportEntity.CONTACTS, "p-1")
    assert a == deterministic_dynamics_id("ws1", ExportEntity.CONTACTS, "p-1")
    assert a != deterministic_dynamics_id("ws2", ExportEntity.CONTACTS, "p-1")
    assert a != deterministic_dynamics_id("ws1", ExportEntity.COMPANIES, "p-1")


def test_counts_fold_dry_run_actions_into_the_same_columns() -> None:
    outcomes = [
        RecordOutcome(0, "a", RecordAction.CREATED),
        RecordOutcome(1, "b", RecordAction.WOULD_CREATE),
        RecordOutcome(2, "c", RecordAction.UNCHANGED),
        RecordOutcome(3, "d", RecordAction.INVALID),
    ]
    counts = count_outcomes(outcomes)
    assert counts["created"] == 2 and counts["unchanged"] == 1 and counts["invalid"] == 1


def test_job_states() -> None:
    assert job_state([], total_chunks=2) is JobState.QUEUED
    assert job_state([_chunk(0, ChunkState.DONE, created=5)], total_chunks=2) is JobState.RUNNING
    done = [_chunk(0, ChunkState.DONE, created=5), _chunk(1, ChunkState.DONE, updated=5)]
    assert job_state(done, total_chunks=2) is JobState.SUCCEEDED
    partial = [_chunk(0, ChunkState.DONE, created=5), _chunk(1, ChunkState.DONE, failed=1)]
    assert job_state(partial, total_chunks=2) is JobState.PARTIALLY_FAILED
    all_bad = [_chunk(0, ChunkState.FAILED), _chunk(1, ChunkState.DONE, failed=3)]
    assert job_state(all_bad, total_chunks=2) is JobState.FAILED
    paused = [_chunk(0, ChunkState.DONE, created=1), _chunk(1, ChunkState.PAUSED_RECONNECT)]
    assert job_state(paused, total_chunks=2) is JobState.PAUSED_RECONNECT


def test_split_chunks_covers_every_record_once() -> None:
    chunks = split_chunks(1201, 500)
    assert [len(c) for c in chunks] == [500, 500, 201]
    assert sorted(i for c in chunks for i in c) == list(range(1201))
