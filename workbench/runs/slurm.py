"""Slurm's commands, as argument lists: ``sbatch --parsable``, ``scontrol show job``,
``sacct`` and ``scancel``. No shell ever sees a value; every failure is one line.

Why not submitit (``docs/clusters.md``): submitit runs a pickled callable inside its own
Python wrapper that installs its own handlers for Slurm's warning signal (it requeues on a
"timeout" only late in the allocation, and needs ``preempt_send_user_signal`` for
preemption). Our training process must get the signal itself and write its checkpoint, and
the job only has to start ``python -m workbench.runs.train RUN_DIR``: a generated batch
script with ``exec`` and ``sbatch --parsable`` do that with nothing in between.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.errors import WorkbenchError

__all__ = [
    "ACTIVE_STATES",
    "JobState",
    "SlurmError",
    "cancel",
    "hostnames",
    "job_state",
    "max_array_size",
    "parse_sacct",
    "parse_scontrol",
    "requeue",
    "sacct_state",
    "start_now",
    "submit",
    "try_submit",
]

#: States of a job that has not ended (it may still run or start).
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                           "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                           "RESV_DEL_HOLD", "SPECIAL_EXIT"})

_TIMEOUT = 30.0


class SlurmError(WorkbenchError):
    """A Slurm command failed or is missing (one line)."""


@dataclass(frozen=True)
class JobState:
    """What Slurm says about a job.

    Attributes:
        job_id: The job id.
        state: ``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELLED``,
            ``TIMEOUT``, ``PREEMPTED``, ``NODE_FAIL``, ``OUT_OF_MEMORY`` …
        reason: Why it waits (``Resources``, ``Priority`` …; "" for ``None``).
        nodes: Its node list ("" while pending).
        exit_code: The batch step's exit code, if known.
        signal: The signal that ended the batch step (0: none), if known.
        source: ``scontrol`` or ``sacct``.
        restarts: How many times Slurm requeued the job (``Restarts=``; a requeued job
            keeps its id and runs its batch script again).
    """

    job_id: str
    state: str
    reason: str = ""
    nodes: str = ""
    exit_code: int | None = None
    signal: int | None = None
    source: str = "scontrol"
    restarts: int = 0

    @property
    def active(self) -> bool:
        """Whether the job has not ended."""
        return self.state in ACTIVE_STATES

    @property
    def pending(self) -> bool:
        """Whether it waits to start."""
        return self.state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING")

    def describe(self) -> str:
        """``PENDING (Resources)``, ``RUNNING on node1`` …"""
        if self.pending:
            return f"{self.state} ({self.reason})" if self.reason else self.state
        return f"{self.state} on {self.nodes}" if self.nodes and self.active else self.state


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SlurmError(f"{name} is not on PATH: is this a Slurm login node? (docs/clusters.md)")
    return path


def _run(args: Sequence[str], timeout: float = _TIMEOUT, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([_tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=cwd, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer within {timeout:g} s (is slurmctld up?)") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {args[0]}: {exc}") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def submit(script: str, options: Sequence[str], cwd: str | None = None) -> str:
    """``sbatch --parsable OPTIONS SCRIPT``; returns the job id.

    Raises:
        SlurmError: sbatch refused (its own message, one line) or is missing.
    """
    result = _run(["sbatch", "--parsable", *options, script], cwd=cwd)
    if result.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {_first_line(result.stderr) or f'exit code {result.returncode}'}")
    job = result.stdout.strip().split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch said {result.stdout.strip()!r}, not a job id")
    return job


def try_submit(options: Sequence[str], cwd: str | None = None) -> None:
    """``sbatch --test-only OPTIONS --wrap=true``: whether Slurm would take such a job, without
    submitting one (a partition, account or limit it refuses).

    Raises:
        SlurmError: sbatch refused (its own message, one line) or is missing.
    """
    result = _run(["sbatch", "--test-only", *options, "--wrap=true"], cwd=cwd)
    if result.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {_first_line(result.stderr) or f'exit code {result.returncode}'}")


_PAIR = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z:/_]*)=(\S*)")


def _exit_pair(text: str) -> tuple[int | None, int | None]:
    code, _, sig = text.partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        return None, None


def hostnames(nodelist: str) -> list[str]:
    """``scontrol show hostnames NODELIST``: ``node[01-02],gpu7`` as its hosts, in order.

    Raises:
        SlurmError: scontrol failed (one line).
    """
    result = _run(["scontrol", "show", "hostnames", nodelist])
    if result.returncode != 0:
        raise SlurmError(f"scontrol show hostnames {nodelist}: {_first_line(result.stderr) or result.returncode}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def parse_scontrol(text: str) -> JobState | None:
    """A job from ``scontrol show job -o JOB`` (one line of ``Key=Value``); None if absent."""
    for line in text.splitlines():
        fields = dict(_PAIR.findall(line))
        if "JobId" in fields and "JobState" in fields:
            reason = fields.get("Reason", "")
            nodes = fields.get("NodeList", "")
            code, sig = _exit_pair(fields.get("ExitCode", ""))
            restarts = fields.get("Restarts", "0")
            return JobState(fields["JobId"], fields["JobState"], "" if reason == "None" else reason,
                            "" if nodes in ("(null)", "None") else nodes, code, sig,
                            restarts=int(restarts) if restarts.isdigit() else 0)
    return None


def job_state(job_id: str) -> JobState | None:
    """The job as the controller knows it; None once it has forgotten it (``MinJobAge``
    after its end) or never knew it.

    Raises:
        SlurmError: The controller cannot be reached.
    """
    result = _run(["scontrol", "show", "job", "-o", str(job_id)])
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return None
        raise SlurmError(f"scontrol show job {job_id}: {_first_line(result.stderr) or result.returncode}")
    return parse_scontrol(result.stdout)


def parse_sacct(text: str, job_id: str) -> JobState | None:
    """The job's own line from ``sacct -n -P -X -o JobID,State,ExitCode,Reason,NodeList``."""
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or parts[0] != str(job_id):
            continue
        state = parts[1].split()[0] if parts[1] else ""  # "CANCELLED by 0" -> CANCELLED
        code, sig = _exit_pair(parts[2])
        reason = parts[3] if len(parts) > 3 and parts[3] != "None" else ""
        nodes = parts[4] if len(parts) > 4 and parts[4] not in ("None assigned", "(null)") else ""
        return JobState(str(job_id), state, reason, nodes, code, sig, "sacct")
    return None


def sacct_state(job_id: str) -> JobState | None:
    """The job from Slurm's accounting; None where there is none (no slurmdbd: "Slurm
    accounting storage is disabled") or it does not know the job. Never raises."""
    try:
        result = _run(["sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "JobID,State,ExitCode,Reason,NodeList"])
    except SlurmError:
        return None
    return parse_sacct(result.stdout, job_id) if result.returncode == 0 else None


def cancel(job_id: str, signal: str | None = None, batch: bool = False, full: bool = False) -> None:
    """``scancel [--signal=SIG] [--batch|--full] JOB``.

    Args:
        job_id: The job.
        signal: A signal name (``INT``, ``KILL``); None cancels the job (SIGTERM, then
            SIGKILL after ``KillWait``).
        batch: Signal the batch step itself (our ``exec``'d trainer), not only job steps.
        full: Signal the batch step and its children (torchrun's workers).

    Raises:
        SlurmError: scancel failed (a job that already ended is not an error).
    """
    args = ["scancel"]
    if signal:
        args.append(f"--signal={signal}")
    if full:
        args.append("--full")
    elif batch:
        args.append("--batch")
    result = _run([*args, str(job_id)])
    if result.returncode != 0 and "already completing or completed" not in result.stderr \
            and "Invalid job id" not in result.stderr:
        raise SlurmError(f"scancel {job_id}: {_first_line(result.stderr) or result.returncode}")


def max_array_size() -> int | None:
    """``MaxArraySize`` from ``scontrol show config``: an array's task indexes must be below
    it. None when the controller does not say (the submission then decides).

    Raises:
        SlurmError: scontrol is missing (one line).
    """
    try:
        result = _run(["scontrol", "show", "config"])
    except SlurmError as exc:
        if "not on PATH" in str(exc):
            raise
        return None
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return None


def requeue(job_id: str) -> None:
    """``scontrol requeue JOB``: back to pending, its batch script to run again (the job
    must have been submitted with ``--requeue``). Slurm makes a requeued job wait about two
    minutes before it may start again (``BeginTime``): see :func:`start_now`.

    Raises:
        SlurmError: scontrol refused (one line).
    """
    result = _run(["scontrol", "requeue", str(job_id)])
    if result.returncode != 0:
        raise SlurmError(f"scontrol requeue {job_id}: {_first_line(result.stderr) or result.returncode}")


def start_now(job_id: str) -> None:
    """``scontrol update JobId=JOB StartTime=now``: a requeued job may start at once (the
    watcher calls it once it has recorded the new attempt). Never raises: at worst the job
    starts when Slurm's own delay is over."""
    try:
        _run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])
    except SlurmError:
        pass
