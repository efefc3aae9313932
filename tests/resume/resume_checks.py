"""What "resumed exactly" means, as assertions shared by the fault-injection tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from resume_helpers import events_of, step_files

REPLAY = re.compile(r"^replay matched (\d+)/(\d+) points$")
#: Metrics that measure time, not training: they never repeat exactly.
TIMING = ("_per_s",)


def final_checkpoint(run_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """The run's newest step checkpoint: its file name and contents."""
    files = step_files(run_dir)
    assert files, f"no step checkpoint in {run_dir}"
    return files[-1].name, torch.load(files[-1], map_location="cpu", weights_only=True)


def assert_tensors_equal(a: Any, b: Any, where: str) -> None:
    """``a`` and ``b`` hold the same structure with ``torch.equal`` tensors and equal values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_tensors_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tensors_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_end(run_dir: str | Path, base_dir: str | Path) -> None:
    """The run's final checkpoint has the baseline's weights, optimiser and scheduler."""
    name, state = final_checkpoint(run_dir)
    base_name, base = final_checkpoint(base_dir)
    assert name == base_name, f"the run ended at {name}, the uninterrupted one at {base_name}"
    for part in ("model", "optimizer", "scheduler"):
        assert_tensors_equal(state[part], base[part], part)
    assert state["state"]["step"] == base["state"]["step"]


def assert_same_curves(metrics: dict[str, list[dict]], base: dict[str, list[dict]], steps: range) -> None:
    """One ``train/loss`` point per step, and every curve equal to the baseline's."""
    assert [p["step"] for p in metrics["train/loss"]] == list(steps)
    # Timing metrics and the supervisor's system samples (sys/*, keyed by time) measure the
    # machine, not training: they never repeat.
    keys = {k for k in base if not k.endswith(TIMING) and not k.startswith("sys/")}
    assert keys <= set(metrics), f"missing curves: {sorted(keys - set(metrics))}"
    for key in sorted(keys):
        got = [(p["step"], p["value"]) for p in metrics[key]]
        want = [(p["step"], p["value"]) for p in base[key]]
        assert got == want, f"{key} differs from the uninterrupted run's"


def restored_events(show: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``restored`` events of a run, oldest first."""
    return events_of(show, "restored")


def restored_event(show: dict[str, Any]) -> dict[str, Any]:
    """The one ``restored`` event of a run resumed once."""
    restored = restored_events(show)
    assert len(restored) == 1, f"expected one restored event, got {restored}"
    return restored[0]


def assert_replay_matched(out: dict[str, Any], set_aside: int) -> int:
    """Every resume writes one replay event: "replay matched N/N points" (N > 0) when points
    were set aside; when none were, it matched whatever the attempt logged again at the
    checkpoint's own step, or says that nothing was replayed. Returns N."""
    replays = events_of(out["show"], "replay")
    assert len(replays) == 1, f"expected one replay event, got {replays} ({set_aside} point(s) set aside)"
    if not set_aside and replays[0]["message"].startswith("replay: nothing replayed"):
        return 0
    match = REPLAY.match(replays[0]["message"])
    assert match, f"the replay did not match: {replays[0]['message']!r}"
    matched, compared = int(match.group(1)), int(match.group(2))
    assert matched == compared > 0
    assert replays[0]["message"] in out["resume"]["stdout"], "resume --wait does not print the replay result"
    return matched


def assert_resumed_exactly(out: dict[str, Any], restored_steps: list[int], base: dict[str, Any],
                           total: int) -> None:
    """A run resumed (once per entry of ``restored_steps``) that ended as the uninterrupted
    ``base`` run did.

    The last ``workbench resume --wait`` succeeded; attempt ``n + 1`` started from
    ``step-<restored_steps[n]>.pt``; the curves have one point per step and equal the
    baseline's; the replay of the points set aside matched; the final weights, optimiser
    and scheduler are bit-for-bit the baseline's.
    """
    resume, show = out["resume"], out["show"]
    assert resume["rc"] == 0, f"resume --wait exited {resume['rc']}: {resume['stdout']}{resume['stderr']}"
    assert show["status"] == "completed", (show["status"], show["error"])
    assert show["attempt"] == len(restored_steps) + 1
    restored = restored_events(show)
    assert [e["data"]["checkpoint"] for e in restored] == [f"step-{s:09d}.pt" for s in restored_steps], \
        [e["message"] for e in restored]
    assert [e["data"]["step"] for e in restored] == restored_steps
    assert not any(e["data"]["fork"] for e in restored)
    assert_replay_matched(out, sum(e["data"]["set_aside"] for e in restored))
    assert_same_curves(out["metrics"], base["metrics"], range(1, total + 1))
    assert_same_end(show["run_dir"], base["record"]["run_dir"])
