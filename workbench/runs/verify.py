"""``workbench verify``: prove that a run resumes exactly, by replaying it from a checkpoint.

A scratch attempt (``.workbench/runs/<id>/verify/<n>/``) imports the run's own code
snapshot, restores one of its checkpoints and trains to the end with the run's config,
device and precision; every point it logs and its final weights are compared bit for bit
with what the run recorded. The run's own points, checkpoints and status are never
touched; the verdict is an event on the run (``verified``), shown by ``show`` and the app.
The replay reads the data from where the run read it (the ``[data]`` paths): when their
fingerprint is no longer the one recorded at launch, the verdict carries a warning.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.errors import WorkbenchError
from workbench.runs.locks import trainer_alive
from workbench.runs.numerics import latest_numerics, training_env
from workbench.runs.resume import NONDETERMINISTIC_SUFFIXES
from workbench.runs.sampler import is_system_key
from workbench.runs.spec import read_spec, run_dir_of
from workbench.store import Run, RunIndex

if TYPE_CHECKING:
    from workbench.project import Project

__all__ = ["Verification", "data_changes", "verify_run"]



@dataclass
class Verification:
    """What a replay found.

    Attributes:
        from_step: The checkpoint's step the replay started from.
        compared: How many recorded points the replay logged again.
        matched: How many of them were bit-for-bit equal.
        first_divergence: The first point that differed: key, step, recorded, replayed.
        weights: ``equal``, or where the final weights first differ.
        missing: Recorded points after the checkpoint that the replay never logged.
        error: Why the replay could not finish, if it could not.
        warnings: What may explain a difference without being one (the data changed
            since the run).
    """

    from_step: int
    compared: int = 0
    matched: int = 0
    first_divergence: dict[str, Any] | None = None
    weights: str = ""
    missing: int = 0
    error: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every point and the final weights matched."""
        return (not self.error and self.compared > 0 and self.matched == self.compared
                and self.weights == "equal" and self.missing == 0)

    @property
    def summary(self) -> str:
        """One line: ``verified: exact from step 700 (1,200 points, final weights equal)``,
        followed by ``; warning: …`` for each warning."""
        return "; ".join([self._verdict(), *(f"warning: {w}" for w in self.warnings)])

    def _verdict(self) -> str:
        if self.error:
            return f"verify from step {self.from_step} could not finish: {self.error}"
        if self.exact:
            return (f"verified: exact from step {self.from_step} ({self.compared:,} points and the "
                    "final weights, bit for bit)")
        parts = [f"verify from step {self.from_step}: NOT exact"]
        if self.first_divergence:
            d = self.first_divergence
            parts.append(f"first divergence at step {d['step']} ({d['key']}: recorded {d['recorded']!r}, "
                         f"replayed {d['replayed']!r})")
        parts.append(f"{self.matched:,}/{self.compared:,} points matched")
        if self.missing:
            parts.append(f"{self.missing:,} recorded point(s) never replayed")
        if self.weights and self.weights != "equal":
            parts.append(f"final weights differ at {self.weights}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``verified`` event's data and ``verify --json``)."""
        return {"exact": self.exact, "from_step": self.from_step, "compared": self.compared,
                "matched": self.matched, "first_divergence": self.first_divergence,
                "weights": self.weights, "missing": self.missing, "error": self.error,
                "seconds": round(self.seconds, 3), "warnings": list(self.warnings), "summary": self.summary}


def _checkpoint(run: Run, run_dir: Path, from_step: int | None) -> tuple[int, Path, Path]:
    files = step_files(checkpoint_folder(run_dir))  # newest first
    if len(files) < 2:
        raise WorkbenchError(f"run {run.id} has {len(files)} step checkpoint(s); verify replays from an earlier "
                             "checkpoint to its last one, so it needs two (keep more with Checkpoint(keep=N))")
    final_step, final = files[0]
    earlier = [(s, p) for s, p in files[1:]]
    if from_step is None:
        step, path = earlier[-1]  # the oldest kept: the longest replay
    else:
        chosen = [(s, p) for s, p in earlier if s == from_step]
        if not chosen:
            have = ", ".join(str(s) for s, _ in reversed(earlier))
            raise WorkbenchError(f"run {run.id} has no checkpoint at step {from_step} before its last one; "
                                 f"it has: {have}")
        step, path = chosen[0]
    if run.step is not None and final_step != run.step:
        raise WorkbenchError(f"run {run.id}'s last checkpoint is at step {final_step}, but it ended at step "
                             f"{run.step}; there is no final state to compare with")
    return step, path, final


def _refusals(run: Run, spec: Any, probe: dict[str, Any] | None) -> None:
    if run.status.is_live or trainer_alive(run.run_dir):
        raise WorkbenchError(f"run {run.id} is still running; verify a run that has ended")
    if spec.backend == "ddp":
        raise WorkbenchError(f"run {run.id} ran with DDP; verify replays single-process runs only (for now)")
    if probe is not None and spec.device not in ("auto", "cpu"):
        devices = probe.get("devices", ["cpu"])
        wanted = spec.device if ":" in spec.device else f"{spec.device}:0"
        if spec.device not in devices and wanted not in devices:
            raise WorkbenchError(f"run {run.id} ran on {spec.device}, which this machine does not have "
                                 f"({', '.join(devices)}); verify it where it ran")


def _recorded(index: RunIndex, run_id: str, after: int) -> dict[tuple[str, int], float]:
    out = {}
    for key in index.metric_keys(run_id):
        if key.endswith(NONDETERMINISTIC_SUFFIXES) or is_system_key(key):
            continue
        for step, value, _ in index.metrics_after(run_id, after, [key]).get(key, []):
            out[(key, step)] = value
    return out


def _replayed(path: Path, after: int) -> dict[tuple[str, int], float]:
    out: dict[tuple[str, int], float] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            point = json.loads(line)
        except ValueError:
            continue
        if point["step"] > after:
            value = point["value"]
            out[(point["key"], int(point["step"]))] = math.nan if value is None else float(value)
    return out


def data_changes(run_dir: Path, project_root: Path, state_dir: Path) -> str | None:
    """Whether the run's ``[data]`` paths hold other data now than at launch.

    The fingerprint is taken again over the paths and with the hashing size the run
    recorded (the project's ``[data]`` may have changed since), through the hash cache.

    Returns:
        One line (``the data changed since the run: 3 files differ (data/a.csv, …)``), or
        None when the data is the same, or the run recorded no fingerprint.
    """
    from workbench.runs.fingerprint import ManifestCache, changed_files, fingerprint_data, read_data_record

    try:
        recorded = read_data_record(run_dir)
    except ValueError as exc:
        return f"the run's data fingerprint cannot be read ({exc}); the data is not checked"
    if recorded is None:
        return None
    now = fingerprint_data([Path(p) for p in recorded.paths], root=project_root, labels=recorded.labels,
                           hash_below_bytes=recorded.hash_below_bytes,
                           cache=ManifestCache.for_state_dir(state_dir))
    if now.digest == recorded.digest:
        return None
    changed = changed_files(recorded, now)
    shown = ", ".join(changed[:3]) + (", …" if len(changed) > 3 else "")
    return (f"the data changed since the run: {len(changed):,} file(s) differ ({shown}); "
            f"a difference may come from the data, not the code")


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def verify_run(project: Project, index: RunIndex, run: Run, *, from_step: int | None = None,
               probe: dict[str, Any] | None = None, keep_scratch: bool = False) -> Verification:
    """Replay ``run`` from a checkpoint and compare; record the verdict as an event.

    Args:
        project: The project.
        index: Its run index.
        run: The run (ended).
        from_step: The checkpoint to start from (default: the oldest one kept).
        probe: The device probe's answer, to refuse a device this machine lacks.
        keep_scratch: Leave the scratch folder (default: removed once compared).

    Raises:
        WorkbenchError: The run cannot be verified here (one line says why).
    """
    run_dir = Path(run.run_dir or run_dir_of(project, run.id))
    spec = read_spec(run_dir)
    _refusals(run, spec, probe)
    step, start, final = _checkpoint(run, run_dir, from_step)
    changed = data_changes(run_dir, Path(spec.project_root), project.state_dir)
    scratch_root = run_dir / "verify"
    scratch = scratch_root / time.strftime("%Y%m%d-%H%M%S")
    scratch.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    # The numerics the run trained with (threads, MKL_CBWR, deterministic mode), as a resume
    # would reuse them; without them a replay on this CPU may differ in the last bits.
    env = training_env(os.environ, deterministic=spec.deterministic, backend=spec.backend,
                       record=latest_numerics(run_dir))
    env.update(PYTHONUNBUFFERED="1", PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED", "0"))
    with (scratch / "output.log").open("wb") as log:
        done = subprocess.run([sys.executable, "-m", "workbench.runs.train_verify", str(run_dir), str(scratch),
                               str(start), str(final)], cwd=spec.project_root, stdin=subprocess.DEVNULL,
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    result: dict[str, Any] = {}
    try:
        result = json.loads((scratch / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {"ok": False, "error": f"the replay process exited with {done.returncode}; see "
                                        f"{scratch / 'output.log'}"}
    verdict = Verification(from_step=step, seconds=time.monotonic() - began, warnings=[changed] if changed else [])
    if not result.get("ok"):
        verdict.error = result.get("error") or "the replay failed"
        keep_scratch = True
    else:
        recorded = _recorded(index, run.id, step)
        replayed = _replayed(scratch / "metrics.jsonl", step)
        for (key, at), value in sorted(recorded.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if (key, at) not in replayed:
                verdict.missing += 1
                continue
            verdict.compared += 1
            if _same(value, replayed[(key, at)]):
                verdict.matched += 1
            elif verdict.first_divergence is None:
                verdict.first_divergence = {"key": key, "step": at, "recorded": value,
                                            "replayed": replayed[(key, at)]}
        verdict.weights = str(result.get("weights") or "")
    index.add_event(run.id, "verified", verdict.summary, verdict.to_dict())
    index.update_run(run.id)  # watchers see the new event
    if not keep_scratch:
        shutil.rmtree(scratch, ignore_errors=True)
        if scratch_root.is_dir() and not any(scratch_root.iterdir()):
            scratch_root.rmdir()
    else:
        verdict.details["scratch"] = str(scratch)
    return verdict
