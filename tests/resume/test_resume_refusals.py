"""Resume refusals (completed, running, no checkpoint) and fork, with real runs."""

from __future__ import annotations

import pytest
from resume_checks import assert_replay_matched, assert_resumed_exactly, assert_same_end, restored_event, restored_events
from resume_helpers import events_of
from resume_scenarios import FORK_LR, RUNNING_HOLD, TOTAL

#: The first test to wait on the campaign waits for most of it (every scenario runs at
#: once): more than the default per-test timeout on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _assert_refused(out: dict, *words: str) -> str:
    """Non-zero exit, one line on stderr that contains ``words``, nothing on stdout."""
    resume = out["resume"]
    assert resume["rc"] != 0, resume
    lines = resume["stderr"].strip().splitlines()
    assert len(lines) == 1, resume["stderr"]
    for word in words:
        assert word in lines[0], lines[0]
    assert out["id"] in lines[0]
    assert "Traceback" not in resume["stderr"] and not resume["stdout"].strip()
    return lines[0]


@pytest.mark.scenarios("refuse-completed", "baseline-datamodule")
def test_resuming_a_completed_run_is_refused_and_changes_nothing(campaign) -> None:
    out = campaign.result("refuse-completed")
    assert out["before"]["row"].status == "completed"
    _assert_refused(out, "completed", "fork")
    assert out["after"] == out["before"]


@pytest.mark.scenarios("refuse-no-checkpoint")
def test_resuming_a_run_without_a_checkpoint_is_refused_and_changes_nothing(campaign) -> None:
    out = campaign.result("refuse-no-checkpoint")
    assert out["first"].status == "interrupted", out["first"].error
    assert not [f for f in out["files"] if f.startswith("step-")], out["files"]
    _assert_refused(out, "no checkpoint")
    assert out["after"] == out["before"]


@pytest.mark.scenarios("refuse-running", "baseline-datamodule")
def test_resuming_a_running_run_is_refused_then_it_stops_and_resumes(campaign) -> None:
    out = campaign.result("refuse-running")
    before, after = out["before"]["row"], out["after"]["row"]
    assert before.status == "running"
    _assert_refused(out, "running")
    # The heartbeat moves on while it runs; what a resume would change does not.
    for field in ("status", "attempt", "ended_at", "exit_code", "error", "pid", "supervisor_pid"):
        assert getattr(after, field) == getattr(before, field), field
    assert out["after"]["events"] == out["before"]["events"]
    assert out["after"]["aside"] == out["before"]["aside"] == []
    # Stopped gracefully after the epoch's last batch (before its validation), then resumed:
    # it validates that epoch and goes on.
    assert out["stopped"].status == "stopped" and out["stopped"].step == RUNNING_HOLD
    assert_resumed_exactly(out["later"], [RUNNING_HOLD], campaign.result("baseline-datamodule"), TOTAL)


@pytest.mark.scenarios("fork", "baseline-datamodule")
def test_fork_starts_a_linked_run_from_the_checkpoint_with_the_new_config(campaign) -> None:
    out = campaign.result("fork")
    parent = out["parent"]
    # An unknown checkpoint: refused, the available ones listed, no run created.
    bad = out["bad"]
    assert bad["rc"] != 0
    available = sorted(f.removesuffix(".pt") for f in out["parent_files"] if f.startswith("step-"))
    assert available == ["step-000000045", "step-000000048"]
    for name in available:
        assert name in bad["stderr"], bad["stderr"]
    assert len(bad["stderr"].strip().splitlines()) == 1, bad["stderr"]
    # No run came of it (the only fork of this parent other scenarios start is killed at 50).
    assert not [r for r in out["created_meanwhile"]
                if r["parent"] == parent and r["config"]["kill_phase"] != "batch"], out["created_meanwhile"]
    # The fork: a new run, linked to its parent, from the newest checkpoint (step 48).
    assert out["fork"]["rc"] == 0, out["fork"]["stderr"]
    record, show = out["record"], out["show"]
    assert record["id"] != parent and record["status"] == "completed"
    assert show["parent"] == parent
    assert show["config"]["lr"] == FORK_LR and show["config"]["epochs"] == 4
    restored = restored_event(show)
    assert restored["data"]["step"] == TOTAL and restored["data"]["fork"]
    launched = events_of(show, "launched")
    assert len(launched) == 1 and parent in launched[0]["message"]
    # It continued from step 48 for one more epoch, with the new learning rate.
    metrics = out["metrics"]
    assert [p["step"] for p in metrics["train/loss"]] == list(range(TOTAL + 1, TOTAL + 17))
    assert [(p["step"], p["value"]) for p in metrics["lr"]] == [(TOTAL + 16, FORK_LR)]
    assert show["progress"]["step"] == TOTAL + 16


@pytest.mark.scenarios("fork-killed", "fork", "baseline-datamodule")
def test_a_fork_killed_before_its_first_checkpoint_resumes_from_its_start(campaign) -> None:
    out, fork = campaign.result("fork-killed"), campaign.result("fork")
    first = out["first"]
    assert first["status"] == "interrupted" and first["parent"] == out["parent"], first
    assert not [f for f in out["files_after_kill"] if f.startswith("step-")], out["files_after_kill"]
    assert out["resume"]["rc"] == 0, out["resume"]
    show = out["show"]
    assert show["status"] == "completed" and show["attempt"] == 2 and show["parent"] == out["parent"]
    restored = restored_events(show)
    assert [(e["data"]["checkpoint"], e["data"]["step"], e["data"]["fork"]) for e in restored] == \
        [("fork-start.pt", TOTAL, True)] * 2
    assert restored[1]["data"]["set_aside"] > 0  # step 49 was logged before the kill
    assert_replay_matched(out, restored[1]["data"]["set_aside"])
    # It ends as the fork that was never killed.
    for key in ("train/loss", "train/loss_epoch", "val/loss", "lr"):
        assert [(p["step"], p["value"]) for p in out["metrics"][key]] == \
            [(p["step"], p["value"]) for p in fork["metrics"][key]], key
    assert_same_end(show["run_dir"], fork["record"]["run_dir"])
