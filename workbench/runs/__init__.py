"""Runs: launching, stopping and reconciling run processes (no torch in this process).

See DESIGN.md, "Three kinds of process" and "Who owns a run": the workbench process
launches; each run has a supervisor (``workbench.runs.supervisor``, its owner) and one or
more training processes (``workbench.runs.train``). State travels through the run index
(status, progress, metrics, events, stop requests); files carry what is naturally a file
(``run.toml``, ``output.log``, checkpoints). ``docs/run-index.md`` lists every channel.
"""

from __future__ import annotations

from workbench.runs.control import StopResult, remove_run, stop_run, wait_for
from workbench.runs.launch import LaunchRequest, PreparedLaunch, launch, prepare
from workbench.runs.liveness import reconcile
from workbench.runs.probe import ProbeError, check_device, probe_devices
from workbench.runs.resume import compare_replay, fork_run, replay_summary, resume_run
from workbench.runs.spec import RunSpec, read_spec, run_dir_of, write_spec

__all__ = [
    "LaunchRequest",
    "PreparedLaunch",
    "ProbeError",
    "RunSpec",
    "StopResult",
    "check_device",
    "compare_replay",
    "fork_run",
    "launch",
    "prepare",
    "probe_devices",
    "read_spec",
    "reconcile",
    "remove_run",
    "replay_summary",
    "resume_run",
    "run_dir_of",
    "stop_run",
    "wait_for",
    "write_spec",
]
