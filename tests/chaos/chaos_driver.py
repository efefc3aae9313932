"""One run under chaos: launched, SIGKILLed at moments drawn from its RNG, resumed after
each kill, waited for (see :mod:`chaos_lib` for the campaign and what is checked)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from chaos_checks import GitState, git_state
from support.projects import PATIENCE, clean_env, make_project, wb

from workbench.checkpoint_names import checkpoint_folder, step_files, step_of
from workbench.runs.liveness import STALE_AFTER_ENV
from workbench.runs.locks import trainer_alive
from workbench.runs.outcome import read_outcome
from workbench.store import Run, RunIndex

__all__ = ["MOMENTS", "TARGETS", "TASK_FILE", "Driver", "Report", "Settings"]

TASK_FILE = Path(__file__).resolve().with_name("chaos_task.py")
TASK = "Chaos"
VALIDATING = "validating"  # chaos_task.VALIDATING (that module imports torch)
TARGETS = ("trainer", "supervisor", "both")
MOMENTS = ("random", "checkpoint", "validation", "startup")
#: Seconds between looks at a run folder while waiting for a checkpoint or a validation
#: (a kill follows within a few milliseconds; whether the trainer still lives is asked
#: every ``ALIVE_EVERY`` looks, which cost more).
WATCH = 0.003
ALIVE_EVERY = 16


@dataclass(frozen=True)
class Settings:
    """One campaign.

    Attributes:
        seed: Seeds every decision.
        runs: Runs to launch (at least).
        kills_per_run: Kills planned per run (fewer happen when a run completes first).
        min_kills: Keep launching runs until this many kills happened (the long version).
        parallel: Runs driven at once.
        samples, batch_size, epochs, every: The task's config (a checkpoint every ``every`` steps).
        step_sleep, val_sleep: Seconds each training and validation step sleeps.
    """

    seed: int
    runs: int = 3
    kills_per_run: int = 2
    min_kills: int = 0
    parallel: int = 3
    samples: int = 512
    batch_size: int = 16
    epochs: int = 3
    every: int = 5
    step_sleep: float = 0.03
    val_sleep: float = 0.25

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.samples // self.batch_size)

    @property
    def total(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def launch_args(self) -> list[str]:
        """``workbench run`` arguments of every run (deterministic mode: the default on a
        CPU, said anyway; ``OMP_NUM_THREADS=1`` comes with the environment)."""
        values = {"samples": self.samples, "batch_size": self.batch_size, "epochs": self.epochs,
                  "every": self.every, "step_sleep": self.step_sleep, "val_sleep": self.val_sleep}
        return [TASK, "--device", "cpu", "--deterministic", "--json",
                *(a for k, v in values.items() for a in ("-s", f"{k}={v}"))]


@dataclass
class Report:
    """What a campaign did and found."""

    seed: int
    runs: int = 0
    kills: Counter = field(default_factory=Counter)  # by target
    moments: Counter = field(default_factory=Counter)  # by moment
    missed: int = 0  # planned kills that found the run completed
    resumes: int = 0
    reconciled: int = 0  # resumes of a run whose processes were all dead (no outcome written)
    refusals: int = 0  # resumes refused while an orphan trainer lived, as they must be
    orphans_finished: int = 0  # orphans left to complete on their own
    points: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # checkpoint file written -> SIGKILL sent
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    histories: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    def summary(self) -> str:
        """The figures, a few lines (the test and the script print them)."""
        by_target = ", ".join(f"{t} {self.kills[t]}" for t in (*TARGETS, "orphan"))
        by_moment = ", ".join(f"{m} {self.moments[m]}" for m in MOMENTS)
        lat = sorted(self.latencies_ms)
        latency = (f"; checkpoint file written -> killed: median {lat[len(lat) // 2]:.0f} ms, max {lat[-1]:.0f} ms"
                   if lat else "")
        return "\n".join([
            f"chaos seed {self.seed}: {self.runs} runs, {self.total_kills} kills ({by_target}),"
            f" {self.missed} planned kill(s) missed (run already completed)",
            f"  moments: {by_moment}{latency}",
            f"  {self.resumes} resumes ({self.reconciled} of runs with every process dead),"
            f" {self.refusals} resume(s) refused while an orphan trained, {self.orphans_finished} orphan(s)"
            f" completed on their own",
            f"  {self.points} points checked; {len(self.failures)} failure(s); {self.wall_s:.1f} s"
            f" (replay: CHAOS_SEED={self.seed})",
        ])

def _dirty(root: Path, env: dict[str, str]) -> None:
    """Leave a user's work in progress in the project, which runs must not touch: a staged
    change, an unstaged change and an untracked file."""
    import subprocess

    with (root / "configs" / "fast.toml").open("a") as fh:
        fh.write("# staged by the user\n")
    subprocess.run(["git", "add", "configs/fast.toml"], cwd=root, env=env, check=True, capture_output=True)
    with (root / "workbench.toml").open("a") as fh:
        fh.write("# being edited\n")
    (root / "notes.txt").write_text("not committed\n")


def _lives(proc: psutil.Process) -> bool:
    """Whether the process runs (a zombie does not; psutil tells a reused pid apart)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: list[psutil.Process]) -> None:
    """Wait until these processes exited (zombies count as gone: their parent may be one
    that never reaps, and ``psutil.wait_procs`` would wait for them in vain)."""
    deadline = time.monotonic() + PATIENCE
    while any(_lives(p) for p in procs):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {[p.pid for p in procs]} still run after {PATIENCE:g}s")
        time.sleep(0.02)


@dataclass(frozen=True)
class _Spot:
    """Where a run was when it was killed: words for the history, and the file whose
    appearance the kill followed (a checkpoint), if any."""

    where: str
    written: float | None = None  # when the checkpoint file was last written (its mtime)


@dataclass
class _Attempt:
    """The processes of the attempt being driven (``supervisor`` is None for an orphan)."""

    number: int
    trainer: psutil.Process
    supervisor: psutil.Process | None
    start_step: int
    fresh: bool  # nothing was killed in it yet


class Driver:
    """Launches one run, kills and resumes it as its RNG says, and waits for its end."""

    def __init__(self, number: int, base: Path, probe: Path, settings: Settings, report: Report) -> None:
        self.number = number
        self.settings = settings
        self.report = report
        self.rng = random.Random(f"{settings.seed}:{number}")
        self.env = clean_env(base)
        self.env0 = clean_env(base, **{STALE_AFTER_ENV: "0"})
        self.root = make_project(base, probe, {"tasks/chaos.py": TASK_FILE.read_text()})
        _dirty(self.root, self.env)
        self.git_before: GitState = git_state(self.root, self.env)
        self.run_id = ""
        self.run_dir = Path()
        self.resumes = 0
        self.history: list[str] = []
        self.problems: list[str] = []  # broken promises seen while driving (the run goes on)
        self.index: RunIndex | None = None

    # -- reading the run --------------------------------------------------------------

    def row(self) -> Run:
        assert self.index is not None
        row = self.index.get_run(self.run_id)
        assert row is not None, f"run {self.run_id} vanished from the index"
        return row

    def _wait(self, what: Any, message: str, every: float = 0.05) -> Any:
        deadline = time.monotonic() + PATIENCE
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {PATIENCE:g}s waiting for {message}")
            time.sleep(every)

    def _checkpoints(self) -> set[str]:
        try:
            return {n for n in os.listdir(checkpoint_folder(self.run_dir)) if step_of(n) is not None}
        except FileNotFoundError:
            return set()

    def _newest_step(self) -> int:
        files = step_files(checkpoint_folder(self.run_dir))
        return files[0][0] if files else 0

    def _attempt(self, number: int) -> _Attempt | None:
        """Wait until attempt ``number`` has its supervisor and training process; None when
        the run ended (completed) before it could be seen."""
        def ready() -> tuple[psutil.Process, psutil.Process] | str | None:
            row = self.row()
            if row.attempt == number and not row.status.is_live:
                return str(row.status)
            if row.attempt != number or not row.pid or not row.supervisor_pid:
                return None
            try:
                trainer, supervisor = psutil.Process(row.pid), psutil.Process(row.supervisor_pid)
                if self.run_dir.name not in " ".join(trainer.cmdline()) or "runs.train" not in " ".join(trainer.cmdline()):
                    return None  # the previous attempt's pid, or not exec'd yet
                return trainer, supervisor
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                return None

        found = self._wait(ready, f"attempt {number} of run {self.run_id} to start")
        if isinstance(found, str):
            if found != "completed":
                raise AssertionError(f"attempt {number} ended {found} before it was seen")
            return None
        return _Attempt(number, found[0], found[1], self._newest_step() if number > 1 else 0, True)

    # -- moments: each waits for its moment and returns where the run is, or None when
    # -- the training process ended first -----------------------------------------------

    def _spread(self, start: int, kills_left: int) -> float:
        """The steps left per planned kill: moments are drawn within about twice that."""
        return max(1.0, (self.settings.total - start) / (kills_left + 1))

    def _at_random_step(self, att: _Attempt, kills_left: int) -> _Spot | None:
        start = self.row().step or att.start_step
        target = start + self.rng.randint(1, max(1, int(2 * self._spread(start, kills_left))))
        delay = self.rng.uniform(0, 0.25)

        def reached() -> bool:  # a first attempt must have a checkpoint to resume from
            return not _lives(att.trainer) or ((self.row().step or 0) >= target
                                               and (att.number > 1 or bool(self._checkpoints())))

        self._wait(reached, f"run {self.run_id} to reach step {target}")
        time.sleep(delay)
        return _Spot(f"step {target} + {delay * 1000:.0f} ms (row at step {self.row().step})")

    def _at_startup(self, att: _Attempt) -> _Spot | None:
        delay = self.rng.uniform(0, 3.0)
        time.sleep(delay)
        return _Spot(f"{delay:.2f} s after its processes appeared (row at step {self.row().step})")

    def _at_checkpoint(self, att: _Attempt, kills_left: int) -> _Spot | None:
        nth = self.rng.randint(1, max(1, round(2 * self._spread(att.start_step, kills_left) / self.settings.every)))
        seen = self._checkpoints()
        new: list[str] = []
        for look in itertools.count():
            if look % ALIVE_EVERY == 0 and not _lives(att.trainer):
                break
            now = self._checkpoints()
            new += sorted(now - seen)
            seen = now
            if len(new) >= nth:
                try:
                    written = (checkpoint_folder(self.run_dir) / new[-1]).stat().st_mtime
                except FileNotFoundError:
                    written = None
                return _Spot(f"new checkpoint #{nth} ({new[-1]})", written)
            time.sleep(WATCH)
        return None

    def _at_validation(self, att: _Attempt) -> _Spot | None:
        delay = self.rng.uniform(0, 0.5 * self.settings.val_sleep)
        marker = self.run_dir / VALIDATING
        for look in itertools.count():
            if look % ALIVE_EVERY == 0 and not _lives(att.trainer):
                return None
            if marker.exists():
                break
            time.sleep(WATCH)
        time.sleep(delay)
        try:
            step = marker.read_text().strip()
        except FileNotFoundError:
            step = "?"  # the validation was over already: the kill lands just after it
        return _Spot(f"{delay * 1000:.0f} ms into the validation after step {step}")

    # -- killing and resuming ------------------------------------------------------------

    def _kill(self, target: str, att: _Attempt, moment: str, spot: _Spot) -> bool:
        """SIGKILL the target's processes; False when there was nothing left to kill."""
        procs = [p for p in {"trainer": [att.trainer], "orphan": [att.trainer], "supervisor": [att.supervisor],
                             "both": [att.supervisor, att.trainer]}[target] if p is not None]
        if not _lives(att.trainer):
            return False  # the run ended just now
        delivered = 0
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks the pid was not reused
                delivered += 1
            except psutil.NoSuchProcess:
                pass
        sent = time.time()
        if not delivered:
            return False
        with self.report.lock:
            self.report.kills[target] += 1
            self.report.moments[moment] += 1
            if spot.written is not None:  # from its last write, before fsync and rename: an upper bound
                self.report.latencies_ms.append((sent - spot.written) * 1000)
        self.history.append(f"attempt {att.number}: killed {target} at {moment}: {spot.where}")
        _wait_gone(procs)
        return True

    def _recover(self, att: _Attempt, target: str) -> _Attempt | None:
        """After a kill: an orphan goes on; otherwise wait for the supervisor's last words
        and resume. Returns the attempt to drive next, or None when the run completed."""
        if att.supervisor is not None and target == "trainer":
            _wait_gone([att.supervisor])  # it writes the outcome, then exits
        if target == "supervisor" and _lives(att.trainer) and not trainer_alive(self.run_dir):
            # Killed while its trainer was starting, before it took trainer.lock: until it
            # does, nothing shows that it lives (a queued run with a dead owner).
            self.history.append(f"attempt {att.number}: the orphan had not taken its lock yet")
            self._wait(lambda: not _lives(att.trainer) or trainer_alive(self.run_dir),
                       f"the orphan of run {self.run_id} to take its lock")
        if _lives(att.trainer):
            self._check_orphan_refusal()
            return _Attempt(att.number, att.trainer, None, self.row().step or att.start_step, False)
        row = self.row()
        if target == "trainer" and att.supervisor is not None:  # its supervisor said how it ended
            outcome = read_outcome(self.run_dir, att.number)
            if row.status != "interrupted" or outcome is None or outcome.status != row.status \
                    or outcome.signal != signal.SIGKILL:
                self.problems.append(f"attempt {att.number}, trainer SIGKILLed under a live supervisor: row "
                                     f"{row.status} (signal {row.signal}), attempts/{att.number}/outcome.json {outcome}")
        if row.status == "completed":
            self.history.append(f"attempt {att.number}: had completed already")
            return None
        (self.run_dir / VALIDATING).unlink(missing_ok=True)  # the killed validation's marker
        result = wb(self.root, "resume", self.run_id, "--json", env=self.env0)
        if result.returncode != 0:
            raise AssertionError(f"workbench resume after the kill exited {result.returncode} "
                                 f"(the row was {row.status}): {result.stderr.strip()}")
        self.resumes += 1
        with self.report.lock:
            self.report.resumes += 1
            self.report.reconciled += row.status.is_live
        self.history.append(f"resumed from {row.status}" + (" (reconciled)" if row.status.is_live else ""))
        return self._attempt(att.number + 1)

    def _check_orphan_refusal(self) -> None:
        """A resume must refuse while the orphan trains (unless it completed meanwhile).

        Asked in this process (``resume_run``, what ``workbench resume`` calls): a CLI start
        takes longer than many an orphan has left to live. tests/runs checks the CLI's words.
        """
        from workbench.errors import WorkbenchError
        from workbench.project import load_project
        from workbench.runs import resume_run

        assert self.index is not None
        try:
            resume_run(load_project(self.root), self.index, self.row())
        except WorkbenchError as exc:
            if "still trains" in str(exc):
                with self.report.lock:
                    self.report.refusals += 1
                return
            if "completed" in str(exc) and self.row().status == "completed":
                return
            raise AssertionError(f"resume while an orphan trainer lives refused for another reason: {exc}") from None
        raise AssertionError("resume started a new attempt while an orphan trainer still held the run")

    # -- the plan ---------------------------------------------------------------------

    def _choose(self, att: _Attempt, first: tuple[str, str] | None) -> tuple[str, str]:
        target, moment = first or (self.rng.choice(TARGETS), self.rng.choice(MOMENTS))
        if att.supervisor is None:
            target = "orphan"
        if moment == "startup" and not (att.fresh and att.number > 1):
            moment = "random"  # a first attempt has no checkpoint yet; an orphan started long ago
        return target, moment

    def drive(self, first: tuple[str, str]) -> None:
        """Launch the run, kill it ``kills_per_run`` times (each at a moment drawn then),
        resume it after each, and wait until it ended and its processes are gone.

        Args:
            first: The target and moment of the first kill.
        """
        result = wb(self.root, "run", *self.settings.launch_args, env=self.env)
        if result.returncode != 0:
            raise AssertionError(f"workbench run exited {result.returncode}: {result.stderr.strip()}")
        record = json.loads(result.stdout)
        self.run_id, self.run_dir = record["id"], Path(record["run_dir"])
        self.index = RunIndex(self.root / ".workbench" / "index.db")
        att = self._attempt(1)
        planned, made, spared = self.settings.kills_per_run, 0, False
        for k in range(planned):
            if att is None:
                break
            target, moment = self._choose(att, first if k == 0 else None)
            if target == "orphan" and self.rng.random() < 0.3:
                spared = True  # this orphan completes the run on its own
                break
            wait = {"random": lambda: self._at_random_step(att, planned - k),
                    "startup": lambda: self._at_startup(att),
                    "checkpoint": lambda: self._at_checkpoint(att, planned - k),
                    "validation": lambda: self._at_validation(att)}[moment]
            spot = wait()
            if spot is None or not self._kill(target, att, moment, spot):
                self.history.append(f"attempt {att.number}: {target} at {moment} missed: the run had ended")
                att = None
                break
            made += 1
            att = self._recover(att, target)
        orphan = att is not None and att.supervisor is None
        if orphan:
            self.history.append(f"attempt {att.number}: the orphan is left to finish")
        with self.report.lock:
            self.report.missed += 0 if spared else planned - made
            self.report.orphans_finished += orphan
        self._settle()

    def _settle(self) -> None:
        """Wait until the run ended and its last processes exited."""
        self._wait(lambda: not self.row().status.is_live, f"run {self.run_id} to end", every=0.2)
        row = self.row()
        procs = []
        for pid in (row.pid, row.supervisor_pid):
            try:
                proc = psutil.Process(pid) if pid else None
                if proc is not None and self.run_id in " ".join(proc.cmdline()):
                    procs.append(proc)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                pass
        _wait_gone(procs)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None
