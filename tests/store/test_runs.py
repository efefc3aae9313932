"""Runs, events and artifacts: create, read, resolve, change, delete."""

from __future__ import annotations

import pytest

from workbench.store import (
    AmbiguousRun,
    InvalidValue,
    RunIndex,
    RunNotFound,
    UnknownField,
    current_host,
    new_run_id,
)
from workbench.store.ids import RUN_ID_ALPHABET
from workbench.store.records import Run, RunStatus, StopMode


def test_run_ids_are_short_unique_sortable_and_plain() -> None:
    ids = [new_run_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(run_id) <= 12 and set(run_id) <= set(RUN_ID_ALPHABET) for run_id in ids)


def test_create_and_get_decode_json_and_defaults(memory_index: RunIndex) -> None:
    run = memory_index.create_run(
        task="mnist", name="baseline", config={"lr": 0.1, "layers": [1, 2]},
        tags=["a", "b"], git_dirty=True,
    )
    assert run.status == "queued"
    assert run.attempt == 1
    assert run.host == current_host()
    assert run.config == {"lr": 0.1, "layers": [1, 2]}
    assert run.tags == ("a", "b")
    assert run.git_dirty is True
    assert run.created_at <= run.updated_at
    assert memory_index.get_run(run.id) == run
    assert memory_index.get_run("nope") is None


def test_unknown_column_and_bad_status_are_refused(memory_index: RunIndex) -> None:
    with pytest.raises(UnknownField, match="colour"):
        memory_index.create_run(task="t", colour="red")
    run = memory_index.create_run(task="t")
    with pytest.raises(UnknownField, match="colour"):
        memory_index.update_run(run.id, colour="red")
    with pytest.raises(InvalidValue, match="status"):
        memory_index.update_run(run.id, status="exploded")
    with pytest.raises(RunNotFound):
        memory_index.update_run("missing", status="running")


def test_names_are_unique_but_optional(memory_index: RunIndex) -> None:
    memory_index.create_run(task="t")
    memory_index.create_run(task="t")  # two runs without a name are fine
    memory_index.create_run(task="t", name="best")
    with pytest.raises(InvalidValue, match="best"):
        memory_index.create_run(task="t", name="best")


def test_update_bumps_updated_at_and_changed_since_sees_it(memory_index: RunIndex) -> None:
    first = memory_index.create_run(task="t")
    second = memory_index.create_run(task="t")
    seen = max(first.updated_at, second.updated_at)
    assert memory_index.runs_changed_since(seen) == []
    memory_index.update_run(first.id, status="running", step=5, config={"lr": 1})
    changed = memory_index.runs_changed_since(seen)
    assert [run.id for run in changed] == [first.id]
    assert changed[0].updated_at > seen
    assert changed[0].config == {"lr": 1}


def test_updated_at_strictly_increases_even_within_one_clock_tick(memory_index: RunIndex) -> None:
    run = memory_index.create_run(task="t")
    stamps = []
    for step in range(50):
        memory_index.update_run(run.id, step=step)
        stamps.append(memory_index.get_run(run.id).updated_at)
    assert all(a < b for a, b in zip(stamps, stamps[1:]))


def test_resolve_by_id_prefix_and_name(memory_index: RunIndex) -> None:
    one = memory_index.create_run(task="t", id="abc123", name="alpha")
    two = memory_index.create_run(task="t", id="abd456")
    assert memory_index.resolve_run("abc123").id == one.id
    assert memory_index.resolve_run("ABC1").id == one.id
    assert memory_index.resolve_run("abd").id == two.id
    assert memory_index.resolve_run("alpha").id == one.id


def test_resolve_ambiguous_prefix_names_the_candidates(memory_index: RunIndex) -> None:
    memory_index.create_run(task="t", id="abc123")
    memory_index.create_run(task="t", id="abd456")
    with pytest.raises(AmbiguousRun) as caught:
        memory_index.resolve_run("ab")
    assert sorted(caught.value.candidates) == ["abc123", "abd456"]
    assert "abc123" in str(caught.value) and "abd456" in str(caught.value)


def test_resolve_unknown_says_how_to_list(memory_index: RunIndex) -> None:
    memory_index.create_run(task="t", id="abc123")
    with pytest.raises(RunNotFound) as caught:
        memory_index.resolve_run("zzz")
    assert str(caught.value) == "no run matches 'zzz'; `workbench ls` lists runs"
    with pytest.raises(RunNotFound):
        memory_index.resolve_run("")


def test_list_runs_filters_and_orders_newest_first(memory_index: RunIndex) -> None:
    a = memory_index.create_run(task="mnist", created_at=1.0)
    b = memory_index.create_run(task="mnist", created_at=2.0, status="running")
    c = memory_index.create_run(task="cifar", created_at=3.0, status="failed")
    ids = lambda runs: [run.id for run in runs]  # noqa: E731
    assert ids(memory_index.list_runs()) == [c.id, b.id, a.id]
    assert ids(memory_index.list_runs(task="mnist")) == [b.id, a.id]
    assert ids(memory_index.list_runs(status="running")) == [b.id]
    assert ids(memory_index.list_runs(status=["queued", "failed"])) == [c.id, a.id]
    assert ids(memory_index.list_runs(limit=1)) == [c.id]


def test_events_keep_order_and_data(memory_index: RunIndex) -> None:
    run = memory_index.create_run(task="t")
    memory_index.add_event(run.id, "launched", "on cpu", {"device": "cpu"})
    memory_index.add_event(run.id, "started")
    events = memory_index.events(run.id)
    assert [(e.kind, e.message, e.data) for e in events] == [
        ("launched", "on cpu", {"device": "cpu"}),
        ("started", "", None),
    ]


def test_artifacts_upsert_by_path_and_refuse_escaping_paths(memory_index: RunIndex) -> None:
    run = memory_index.create_run(task="t")
    memory_index.add_artifacts(run.id, [{"path": "checkpoints/last.pt", "size": 10, "kind": "checkpoint"}])
    memory_index.add_artifacts(run.id, [{"path": "checkpoints/last.pt", "size": 20, "kind": "checkpoint"},
                                           {"path": "artifacts/plot.png", "size": 5}])
    rows = memory_index.artifacts(run.id)
    assert [(r["path"], r["size"]) for r in rows] == [("artifacts/plot.png", 5), ("checkpoints/last.pt", 20)]
    for bad in ("/etc/passwd", "../other/x", "a/../../b"):
        with pytest.raises(InvalidValue):
            memory_index.add_artifacts(run.id, [{"path": bad}])
    with pytest.raises(UnknownField):
        memory_index.add_artifacts(run.id, [{"path": "x", "colour": 1}])


def test_write_groups_changes_and_rolls_back_on_error(memory_index: RunIndex) -> None:
    run = memory_index.create_run(task="t")
    with pytest.raises(RuntimeError):
        with memory_index.write():
            memory_index.update_run(run.id, status="running")
            memory_index.add_event(run.id, "started")
            raise RuntimeError("crash between the two writes")
    assert memory_index.get_run(run.id).status == "queued"
    assert memory_index.events(run.id) == []


def test_delete_run_removes_everything_of_the_run(index: RunIndex) -> None:
    keep = index.create_run(task="t")
    gone = index.create_run(task="t")
    for run in (keep, gone):
        index.add_metrics(run.id, [("loss", float(s), s) for s in range(200)])
        index.add_event(run.id, "started")
        index.add_artifacts(run.id, [{"path": "a.txt"}])
    index.set_aside_after(gone.id, 100)
    assert index.delete_run(gone.id) is True
    assert index.delete_run(gone.id) is False
    conn = index.connection
    for table in ("metrics", "metrics_aside", "metrics_rollup", "events", "artifacts"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (gone.id,)).fetchone()[0] == 0
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (keep.id,)).fetchone()[0] > 0 or table == "metrics_aside"
    assert index.get_run(gone.id) is None
    assert len(index.points(keep.id, "loss")) == 200


def test_run_names_and_ids_follow_creates_and_deletes(memory_index: RunIndex) -> None:
    a = memory_index.create_run(task="t", name="brisk-otter-1")
    b = memory_index.create_run(task="t")  # no name: not among the names
    assert memory_index.run_names() == {"brisk-otter-1"}
    assert memory_index.run_ids() == {a.id, b.id}
    memory_index.delete_run(a.id)
    assert memory_index.run_names() == set()
    assert memory_index.run_ids() == {b.id}


def test_a_run_is_a_typed_frozen_record_whose_status_knows_its_rules(memory_index: RunIndex) -> None:
    import dataclasses

    from workbench.store import Run, RunStatus

    run = memory_index.create_run(task="t", status="stopped", tags=["x"])
    assert isinstance(run, Run) and run.status is RunStatus.STOPPED
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RunStatus.RUNNING  # type: ignore[misc]
    live = {s for s in RunStatus if s.is_live}
    resumable = {s for s in RunStatus if s.is_resumable}
    assert live == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert resumable == {RunStatus.FAILED, RunStatus.STOPPED, RunStatus.INTERRUPTED}
    assert {s for s in RunStatus if s.is_final} == set(RunStatus) - live
    assert RunStatus.COMPLETED not in resumable and RunStatus.PRUNED not in resumable


def test_a_stop_request_is_recorded_once_and_a_kill_upgrades_it(memory_index: RunIndex) -> None:
    from workbench.store import StopMode

    run = memory_index.create_run(task="t", status="running")
    first = memory_index.request_stop(run.id)
    assert first.stop_requested_at is None  # the row as it was before
    asked = memory_index.get_run(run.id)
    assert asked.stop_requested and asked.stop_mode is StopMode.GRACEFUL and asked.stop_reason == "user"
    again = memory_index.request_stop(run.id, reason="pruned")
    assert again.stop_requested_at == asked.stop_requested_at  # the grace period runs from the first
    memory_index.request_stop(run.id, StopMode.KILL)
    killed = memory_index.get_run(run.id)
    assert killed.stop_mode is StopMode.KILL and killed.stop_requested_at == asked.stop_requested_at
    assert killed.stop_reason == "user"


def test_a_name_that_reads_as_another_runs_id_is_ambiguous_never_guessed(memory_index: RunIndex) -> None:
    target = memory_index.create_run(task="t")
    # Written around the launch check (which refuses such names): the resolver still never guesses.
    shadow = memory_index.create_run(task="t", name=target.id)
    prefix = memory_index.create_run(task="t", name=target.id[:6])
    with pytest.raises(AmbiguousRun) as caught:
        memory_index.resolve_run(target.id)
    assert set(caught.value.candidates) == {target.id, shadow.id}
    with pytest.raises(AmbiguousRun):
        memory_index.resolve_run(target.id[:6])
    assert memory_index.resolve_run(shadow.id).id == shadow.id
    assert memory_index.resolve_run(prefix.id).id == prefix.id


def test_a_row_decodes_as_the_dataclass_builds_it() -> None:
    """``Run.from_row`` fills fields without ``__init__`` (speed): the result equals the run
    ``__init__`` builds, for a full row, an old schema's row without the newer columns, and a
    row with columns a newer workbench added; a row without a required column still raises."""
    full = {"id": "r1", "status": "stopped", "created_at": 1.0, "updated_at": 2.0, "name": "a",
            "config": '{"lr": 0.1}', "tags": '["x"]', "git_dirty": 1, "command": '["python", "t.py"]',
            "overrides": "{}", "stop_mode": "kill", "priority": None, "kind": None}
    assert Run.from_row(full) == Run(id="r1", status=RunStatus.STOPPED, created_at=1.0, updated_at=2.0, name="a",
                                     config={"lr": 0.1}, tags=("x",), git_dirty=True, command=("python", "t.py"),
                                     stop_mode=StopMode.KILL)
    old = {"id": "r2", "status": "running", "created_at": 1.0, "updated_at": 2.0, "config": "{}", "tags": "[]",
           "from_the_future": 7}
    decoded = Run.from_row(old)
    assert decoded == Run(id="r2", status=RunStatus.RUNNING, created_at=1.0, updated_at=2.0)
    assert decoded.overrides == {} and decoded.overrides is not Run.from_row(old).overrides
    with pytest.raises(TypeError, match="id"):
        Run.from_row({"status": "running", "created_at": 1.0, "updated_at": 2.0})
    names = list(full)
    assert Run.from_rows(names, [tuple(full.values())]) == [Run.from_row(full)]
