"""Runs: launching, stopping and reconciling run processes (no torch in this process).

See DESIGN.md, "Three kinds of process": the workbench process launches; each run has a
supervisor (``workbench.runs.supervisor``) and one or more training processes
(``workbench.runs.train``); the run index is the only channel between them.
"""

from __future__ import annotations

from workbench.runs.control import remove_run, stop_run
from workbench.runs.launch import LaunchRequest, PreparedLaunch, launch, prepare, run_dir_of, wait_for
from workbench.runs.probe import ProbeError, check_device, probe_devices
from workbench.runs.resume import compare_replay, fork_run, replay_summary, resume_run
from workbench.runs.spec import RunSpec, read_spec, write_spec

__all__ = [
    "LaunchRequest",
    "PreparedLaunch",
    "ProbeError",
    "RunSpec",
    "check_device",
    "compare_replay",
    "fork_run",
    "launch",
    "prepare",
    "probe_devices",
    "read_spec",
    "remove_run",
    "replay_summary",
    "resume_run",
    "run_dir_of",
    "stop_run",
    "wait_for",
    "write_spec",
]
