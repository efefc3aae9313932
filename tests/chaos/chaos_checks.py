"""What the chaos test asserts about each run once the killing is over, as functions that
return what they found wrong (a list of lines) rather than raising: a campaign reports every
broken promise of every run at once, with the seed that replays it.

The promise (docs/resume.md): a run killed anywhere and resumed ends ``completed``, with one
point per step on every per-step curve (no gap, no duplicate), curves and final weights equal
to an uninterrupted run's, no process left behind, and the user's git state untouched.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import psutil

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.runs.locks import trainer_alive
from workbench.runs.outcome import read_outcome
from workbench.runs.resume import NONDETERMINISTIC_SUFFIXES
from workbench.store import TIME_KEYED_PREFIX, RunIndex, RunStatus

__all__ = ["GitState", "Series", "check_run", "final_state", "git_state", "leftover_processes", "series_of"]


@dataclass(frozen=True)
class GitState:
    """What a user sees of their repository: HEAD, the branch, the status, the index file."""

    head: str
    branch: str
    status: str
    index: bytes

    def differences(self, other: GitState) -> list[str]:
        """What changed from ``self`` to ``other``, one line each."""
        changed = [f"{name}: {getattr(self, name)!r} -> {getattr(other, name)!r}"
                   for name in ("head", "branch", "status") if getattr(self, name) != getattr(other, name)]
        if self.index != other.index:
            changed.append(f".git/index changed ({len(self.index)} -> {len(other.index)} bytes)")
        return changed


def git_state(root: Path, env: dict[str, str]) -> GitState:
    """The repository's state, read without changing it (``--no-optional-locks``: a plain
    ``git status`` may rewrite ``.git/index`` to refresh its stat cache)."""
    index = (root / ".git" / "index").read_bytes()  # before git runs at all

    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=root, env=env, check=True,
                              capture_output=True, text=True).stdout

    return GitState(head=git("rev-parse", "HEAD").strip(), branch=git("symbolic-ref", "HEAD").strip(),
                    status=git("status", "--porcelain=v1", "--untracked-files=all"), index=index)


#: A run's curves: key -> [(step, value)].
Series = dict[str, list[tuple[int, float]]]


def series_of(index: RunIndex, run_id: str) -> Series:
    """Every per-step curve of a run, as the index holds it now (``sys/*`` is sampled against
    time beside the processes: outside every per-step promise, DESIGN.md "Who owns a run")."""
    return {key: [(step, value) for step, value, _ in index.points(run_id, key)]
            for key in index.metric_keys(run_id) if not key.startswith(TIME_KEYED_PREFIX)}


def final_state(run_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """The run's newest step checkpoint: its file name and contents (loaded weights-only)."""
    import torch

    files = step_files(checkpoint_folder(run_dir))
    if not files:
        raise FileNotFoundError(f"no step checkpoint in {run_dir}")
    path = files[0][1]
    return path.name, torch.load(path, map_location="cpu", weights_only=True)


def _tensor_differences(a: Any, b: Any, where: str) -> list[str]:
    import torch

    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        return [] if same else [f"{where} differs"]
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            return [f"{where}: keys differ"]
        return [d for key in a for d in _tensor_differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [f"{where}: lengths differ"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _tensor_differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _timing(key: str) -> bool:
    return key.endswith(NONDETERMINISTIC_SUFFIXES)


def _check_curves(series: Series, base: Series, total: int) -> tuple[list[str], int]:
    """Every curve has the baseline's steps (one point per step for a per-step key, no
    duplicate) and, timing metrics aside, the baseline's values. Returns the problems and
    how many points were checked."""
    problems, checked = [], 0
    if set(series) != set(base):
        problems.append(f"curves {sorted(series)} != the uninterrupted run's {sorted(base)}")
    every_step = list(range(1, total + 1))
    for key in sorted(set(series) & set(base)):
        steps = [s for s, _ in series[key]]
        checked += len(steps)
        if len(set(steps)) != len(steps) or steps != sorted(steps):
            problems.append(f"{key}: duplicate or unordered steps")
        if [s for s, _ in base[key]] == every_step and steps != every_step:
            missing = sorted(set(every_step) - set(steps))
            problems.append(f"{key} is logged every step, but {len(steps)} point(s) for {total} steps"
                            f" (missing {missing[:10]}{'...' if len(missing) > 10 else ''})")
        elif steps != [s for s, _ in base[key]]:
            problems.append(f"{key}: steps {steps[:10]}... != the uninterrupted run's")
        elif not _timing(key) and series[key] != base[key]:
            first = next(s for (s, v), (_, w) in zip(series[key], base[key]) if v != w)
            problems.append(f"{key} differs from the uninterrupted run's from step {first}")
    return problems, checked


def _check_history(index: RunIndex, run_id: str, attempt: int, resumes: int) -> list[str]:
    """Set-aside points belong to earlier attempts and lie at or after a restored checkpoint;
    every replay matched; no point went missing before a checkpoint; one ``resumed`` event
    per resume."""
    problems = []
    events = index.events(run_id)
    restored = [e.data["step"] for e in events if e.kind == "restored" and e.data]
    resumed = [e for e in events if e.kind == "resumed"]
    if len(resumed) != resumes:
        problems.append(f"{len(resumed)} 'resumed' event(s) for {resumes} resume(s)")
    if len(restored) > resumes:
        problems.append(f"{len(restored)} 'restored' event(s) for {resumes} resume(s)")
    for point in index.aside_points(run_id):
        if point["key"].startswith(TIME_KEYED_PREFIX):
            continue
        if point["attempt"] >= attempt:
            problems.append(f"set aside: {point['key']} step {point['step']} of attempt {point['attempt']}"
                            f" (the run ended in attempt {attempt})")
        if not any(step <= point["step"] for step in restored):  # at its step: a copy, kept for the replay
            problems.append(f"set aside: {point['key']} step {point['step']}, before every restored checkpoint")
    for event in events:
        if event.kind == "points-missing":
            problems.append(f"points-missing event: {event.message}")
        if event.kind == "replay" and event.data and (
                event.data.get("matched") != event.data.get("compared") or event.data.get("first_divergence")):
            problems.append(f"replay event: {event.message}")
    return problems


def check_run(index: RunIndex, run_id: str, resumes: int, base: Series, base_end: tuple[str, dict[str, Any]],
              total: int) -> tuple[list[str], int]:
    """Everything the promise says about one run that the chaos killed and resumed.

    Args:
        index: The run's index.
        run_id: The run.
        resumes: How many times the chaos resumed it.
        base: The uninterrupted run's curves.
        base_end: The uninterrupted run's final checkpoint (:func:`final_state`).
        total: The steps of a whole run.

    Returns:
        The problems found (empty: the promise was kept) and how many points were checked.
    """
    row = index.get_run(run_id)
    if row is None:
        return [f"run {run_id} is not in the index"], 0
    if row.status is not RunStatus.COMPLETED:
        return [f"status {row.status} ({row.error or 'no error'}), not completed"], 0
    problems, checked = _check_curves(series_of(index, run_id), base, total)
    problems += _check_history(index, run_id, row.attempt, resumes)
    outcome = read_outcome(Path(row.run_dir), row.attempt)
    if outcome is None or outcome.status is not RunStatus.COMPLETED:
        problems.append(f"attempts/{row.attempt}/outcome.json: {outcome}")
    if trainer_alive(row.run_dir):
        problems.append("its trainer lock is still held")
    try:
        name, state = final_state(row.run_dir)
    except FileNotFoundError as exc:
        return [*problems, str(exc)], checked
    if name != base_end[0]:
        problems.append(f"ended at {name}, the uninterrupted run at {base_end[0]}")
    for part in ("model", "optimizer", "scheduler"):
        problems += _tensor_differences(state.get(part), base_end[1].get(part), f"final {part}")
    if state["state"]["step"] != base_end[1]["state"]["step"]:
        problems.append(f"final step {state['state']['step']} != {base_end[1]['state']['step']}")
    return problems, checked


def leftover_processes(needles: Iterable[str], wait: float = 30.0) -> list[str]:
    """Processes (not zombies, not this one) whose command line contains one of ``needles``
    (project folders, run ids), after waiting up to ``wait`` seconds for them to go.

    Returns:
        ``"PID: COMMAND LINE"`` of each one still there.
    """
    needles = [n for n in needles if n]
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            if proc.info["pid"] == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            line = " ".join(proc.info["cmdline"] or [])
            if any(n in line for n in needles):
                found.append(f"{proc.info['pid']}: {line}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
