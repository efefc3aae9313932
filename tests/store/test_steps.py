"""A run's pipeline steps and its evaluations in the run index."""

from __future__ import annotations

import pytest

from workbench.store import EVALUATION, InvalidValue, RunIndex, RunStatus, StepStatus


def test_steps_are_planned_once_and_walk_through_their_statuses(index: RunIndex) -> None:
    run = index.create_run(task="T", status=RunStatus.RUNNING)
    before = index.get_run(run.id).updated_at
    steps = index.plan_steps(run.id, ["fit", "test", "evaluate"])
    assert [(s.position, s.name, s.status) for s in steps] == [
        (0, "fit", StepStatus.PENDING), (1, "test", StepStatus.PENDING), (2, "evaluate", StepStatus.PENDING)]
    assert index.get_run(run.id).updated_at > before  # a poller of the runs table sees it
    assert [s.name for s in index.plan_steps(run.id, ["test"])] == ["fit", "test", "evaluate"]  # kept
    index.start_step(run.id, "fit", attempt=1)
    index.end_step(run.id, "fit", StepStatus.COMPLETED)
    index.start_step(run.id, "test", attempt=1)
    fit, test, evaluate = index.run_steps(run.id)
    assert fit.status is StepStatus.COMPLETED and fit.attempt == 1 and fit.ended_at >= fit.started_at
    assert test.status is StepStatus.RUNNING and test.ended_at is None
    assert evaluate.status is StepStatus.PENDING and evaluate.attempt is None


def test_a_run_marked_interrupted_ends_its_running_step(index: RunIndex) -> None:
    run = index.create_run(task="T", status=RunStatus.RUNNING)
    index.plan_steps(run.id, ["fit", "test"])
    index.start_step(run.id, "fit", attempt=1)
    assert index.mark_interrupted(run.id, "process gone")
    (fit, test) = index.run_steps(run.id)
    assert fit.status is StepStatus.INTERRUPTED and fit.error == "process gone"
    assert test.status is StepStatus.PENDING
    assert index.end_open_steps(run.id, StepStatus.FAILED) == 0  # nothing running any more


def test_bad_step_requests_are_refused(index: RunIndex) -> None:
    run = index.create_run(task="T")
    with pytest.raises(InvalidValue, match="distinct"):
        index.plan_steps(run.id, ["fit", "fit"])
    with pytest.raises(InvalidValue, match="distinct"):
        index.plan_steps(run.id, [])
    index.plan_steps(run.id, ["fit"])
    with pytest.raises(InvalidValue, match="no step 'test'"):
        index.start_step(run.id, "test", attempt=1)
    with pytest.raises(InvalidValue, match="not how a step ends"):
        index.end_step(run.id, "fit", StepStatus.RUNNING)


def test_deleting_a_run_deletes_its_steps(index: RunIndex) -> None:
    run = index.create_run(task="T")
    index.plan_steps(run.id, ["fit", "test"])
    assert index.delete_run(run.id)
    assert index.run_steps(run.id) == []


def test_evaluations_are_listed_under_their_run_not_among_runs(index: RunIndex) -> None:
    run = index.create_run(task="T", status=RunStatus.COMPLETED)
    evaluation = index.create_run(task="T", kind=EVALUATION, parent_id=run.id,
                                  parent_checkpoint="checkpoints/step-8.pt", overrides={"threshold": 0.7})
    fork = index.create_run(task="T", parent_id=run.id)
    assert {r.id for r in index.list_runs()} == {run.id, fork.id}
    assert {r.id for r in index.list_runs(evaluations=True)} == {run.id, fork.id, evaluation.id}
    (found,) = index.evaluations_of(run.id)
    assert found.id == evaluation.id and found.is_evaluation and not fork.is_evaluation
    assert found.overrides == {"threshold": 0.7}
    assert index.get_run(run.id).overrides == {}


def test_a_run_that_ends_failed_or_stopped_ends_its_running_step_the_same_way(index: RunIndex) -> None:
    for status, expected in (("failed", StepStatus.FAILED), ("stopped", StepStatus.STOPPED)):
        run = index.create_run(task="T", status=RunStatus.RUNNING)
        index.plan_steps(run.id, ["fit", "test"])
        index.start_step(run.id, "fit", attempt=1)
        index.update_run(run.id, status=status, error="boom" if status == "failed" else None)
        fit, test = index.run_steps(run.id)
        assert fit.status is expected and test.status is StepStatus.PENDING


def test_a_pipeline_reads_in_one_line() -> None:
    from workbench.runs.present import step_record, steps_text
    from workbench.store import RunStep

    steps = [
        RunStep("r", 0, "fit", StepStatus.COMPLETED, 1, 100.0, 162.0),
        RunStep("r", 1, "test", StepStatus.RUNNING, 2, 200.0),
        RunStep("r", 2, "evaluate"),
    ]
    assert steps_text(steps, now=205.0) == "fit ✓ 1m02s → test ● running 5s (attempt 2) → evaluate · pending"
    assert step_record(steps[0])["duration_s"] == 62.0 and step_record(steps[2])["started_at"] is None
