"""How chunk outcomes add up to what an admin sees on an export job."""

from core.domain.jobs import (
    MAX_CHUNK_ERROR_CODES,
    ChunkState,
    ChunkStatus,
    ExportEntity,
    FieldError,
    JobState,
    RecordAction,
    RecordOutcome,
    count_outcomes,
    deterministic_dynamics_id,
    empty_counts,
    error_codes,
    job_state,
    split_chunks,
    summarize_job,
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


def test_error_codes_count_each_bad_record_once_per_code_and_name_the_uncoded_ones() -> None:
    outcomes = [
        RecordOutcome(
            0, "a", RecordAction.FAILED, errors=[FieldError("x", "m", "0x1"), FieldError("y", "m", "0x1")]
        ),
        RecordOutcome(
            1, "b", RecordAction.FAILED, errors=[FieldError("x", "m", "0x1"), FieldError("y", "m", "0x2")]
        ),
        RecordOutcome(2, "c", RecordAction.FAILED, errors=[FieldError("", "gave up")]),
        RecordOutcome(3, "d", RecordAction.INVALID, errors=[FieldError("id", "required")]),
        RecordOutcome(4, "e", RecordAction.WOULD_FAIL, errors=[FieldError("x", "m", "0x2")]),
        RecordOutcome(5, "f", RecordAction.CREATED, errors=[FieldError("x", "not counted", "0x9")]),
    ]
    assert error_codes(outcomes) == {"0x1": 2, "0x2": 2, "no_code": 1, "invalid": 1}
    many = [
        RecordOutcome(i, str(i), RecordAction.FAILED, errors=[FieldError("", "m", f"c{i}")])
        for i in range(50)
    ]
    assert len(error_codes(many)) == MAX_CHUNK_ERROR_CODES


def test_a_job_summary_adds_chunks_and_submission_counts_and_ranks_error_codes() -> None:
    first = ChunkStatus(
        0, ChunkState.DONE, {**empty_counts(), "created": 3, "failed": 2}, 5, error_codes={"0x1": 2}
    )
    second = ChunkStatus(
        1, ChunkState.FAILED, {**empty_counts(), "failed": 4}, 4, error="gave up", error_codes={"no_code": 4}
    )
    summary = summarize_job([first, second], total_chunks=2, total_records=12, invalid=2, skipped=1)
    assert summary.state is JobState.PARTIALLY_FAILED
    assert summary.counts == {**empty_counts(), "created": 3, "failed": 6, "invalid": 2, "skipped": 1}
    assert summary.processed == 12 and summary.chunks_done == 2
    assert summary.top_error_codes == [("no_code", 4), ("0x1", 2), ("invalid", 2)]
    assert summary.errors == ["gave up"]
    assert summarize_job([], total_chunks=0, total_records=2, invalid=2).state is JobState.FAILED
