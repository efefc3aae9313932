"""Fault injection: runs killed (SIGKILL) at chosen and random points — during a batch,
during a checkpoint write, during validation — with their machine, with a truncated last
checkpoint, and a stopped DDP run; each resumed with ``workbench resume RUN --wait`` ends
bit for bit where an uninterrupted run ends, with one continuous curve and a matched replay.

The runs are real (supervisor, training processes, SQLite index, checkpoint files); they
run concurrently in the session's campaign (see conftest.py and resume_scenarios.py).
"""

from __future__ import annotations

import signal

import pytest
from resume_checks import assert_resumed_exactly, final_checkpoint
from resume_helpers import events_of
from resume_scenarios import DDP_HOLD, DDP_TOTAL, KILLS, MACHINE_CRASH, TOTAL, TRUNCATE_HOLD

#: The first test to wait on the campaign waits for most of it (every scenario runs at
#: once): more than the default per-test timeout on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _kill_param(name: str) -> object:
    kill = KILLS[name]
    return pytest.param(name, id=name, marks=pytest.mark.scenarios(name, f"baseline-{kill.loader}"))


@pytest.mark.parametrize("name", [_kill_param(n) for n in KILLS])
def test_sigkill_then_resume_ends_as_if_uninterrupted(campaign, name: str) -> None:
    out = campaign.result(name)
    kill = out["kill"]
    for attempt, row in enumerate(out["killed"], 1):
        assert row.status == "interrupted", (attempt, row.status, row.error)
        assert row.signal == signal.SIGKILL and row.attempt == attempt
    for earlier in out["earlier_resumes"]:  # a resumed attempt that was killed: --wait says so
        assert earlier["rc"] != 0 and "interrupted" in earlier["stdout"], earlier
    assert_resumed_exactly(out, kill.restored_steps, campaign.result(f"baseline-{kill.loader}"), TOTAL)
    # A save killed half-way leaves its temporary file; the next attempt removes it.
    crashed = [i for i, f in enumerate(kill.faults) if f.phase == "checkpoint"]
    for i in crashed:
        partial = [f for f in out["files_after_kill"][i] if f.endswith("-crashed.tmp")]
        assert len(partial) == 1, out["files_after_kill"][i]
    assert not [f for f in out["files_after_resume"] if f.endswith(".tmp")], out["files_after_resume"]
    assert len(events_of(out["show"], "checkpoint-removed")) == len(crashed)


@pytest.mark.scenarios("machine-crash", "baseline-datamodule")
def test_machine_crash_is_reconciled_to_interrupted_and_resumes(campaign) -> None:
    out = campaign.result("machine-crash")
    # Supervisor and training process are gone, and neither wrote an outcome ...
    assert out["before"].status == "running" and out["before"].ended_at is None
    # ... until a reader that considers every heartbeat stale looks at the run list.
    assert [r["status"] for r in out["listed"]] == ["interrupted"]
    assert out["reconciled"].status == "interrupted"
    assert events_of(out["show"], "interrupted"), "no interrupted event"
    assert_resumed_exactly(out, MACHINE_CRASH.restored_steps, campaign.result("baseline-datamodule"), TOTAL)


@pytest.mark.scenarios("truncated", "baseline-datamodule")
def test_truncated_last_checkpoint_falls_back_to_the_previous_one(campaign) -> None:
    out = campaign.result("truncated")
    assert out["held"] == TRUNCATE_HOLD
    assert out["stopped"].status == "stopped", out["stopped"].error
    assert out["truncated"] == f"step-{TRUNCATE_HOLD:09d}.pt" == out["files"][-1]
    skipped = events_of(out["show"], "checkpoint-skipped")
    assert len(skipped) == 1 and out["truncated"] in skipped[0]["message"], skipped
    previous = int(out["files"][-2].removeprefix("step-").removesuffix(".pt"))
    assert previous == 20
    assert_resumed_exactly(out, [previous], campaign.result("baseline-datamodule"), TOTAL)


@pytest.mark.scenarios("ddp-stopped", "baseline-ddp")
def test_ddp_stop_and_resume_ends_as_if_uninterrupted(campaign) -> None:
    out = campaign.result("ddp-stopped")
    base = campaign.result("baseline-ddp")
    assert base["record"]["backend"] == "ddp" and base["record"]["nproc"] == 2
    assert final_checkpoint(base["record"]["run_dir"])[0] == f"step-{DDP_TOTAL:09d}.pt"
    assert out["held"] == DDP_HOLD
    assert out["stopped"].status == "stopped", out["stopped"].error
    assert f"step-{DDP_HOLD:09d}.pt" in out["files"]
    assert out["show"]["backend"] == "ddp" and out["show"]["nproc"] == 2
    assert_resumed_exactly(out, [DDP_HOLD], base, DDP_TOTAL)
