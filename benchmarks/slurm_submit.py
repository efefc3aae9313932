"""Benchmark: submitting a run to Slurm (``workbench run --on``) against a bare ``sbatch``.

In a fresh copy of the quickstart project with a ``[clusters.here]`` table for the local
Slurm (``scripts/slurm_up.sh``), it times, alternately so that both see the same load:

* **workbench run --on** = the wall time of ``workbench run SineRegression --on here
  --json`` as a user runs it (interpreter start, the launch check against the cluster's
  declared resources, the code snapshot, ``run.toml``, ``context.json`` and ``job.sh``,
  ``sbatch --parsable``, the row and events, the watcher started), until it returns with
  the job accepted by Slurm;
* **bare sbatch** = the wall time of ``sbatch --parsable`` of a one-line script.

Both submit with ``--hold`` (the cluster table's ``sbatch`` list for the workbench runs),
so no job runs and loads the machine while it measures; every job is cancelled at the end,
and the runs' watchers are ended. It prints the medians and the ratio (the machine is
shared and noisy: the ratio, not the seconds, is the figure), the in-process share
(``workbench.runs.launch.launch`` without the interpreter's start) and ``workbench --help``
(the interpreter's and the CLI's start alone).

Where Slurm is not up it says so in one line and exits 0 (``scripts/slurm_up.sh`` brings
one up; ``SLURM_CONF`` is read from ``/var/tmp/workbench-slurm/env`` when unset).

Usage: python benchmarks/slurm_submit.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.projects import CLI, clean_env, kill_run_processes, make_project  # noqa: E402

CLUSTER = """
[clusters.here]
kind = "slurm"
partition = "debug"
time = "10:00"
sbatch = ["--hold"]
"""


def _slurm_env() -> dict[str, str] | str:
    """The variables that reach the local Slurm, or why there is none."""
    env: dict[str, str] = {}
    saved = Path(os.environ.get("WORKBENCH_SLURM_STATE", "/var/tmp/workbench-slurm")) / "env"
    if "SLURM_CONF" not in os.environ and saved.is_file():
        for line in saved.read_text().splitlines():
            if line.startswith("export SLURM_CONF="):
                env["SLURM_CONF"] = line.split("=", 1)[1].strip()
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "sbatch/sinfo are not on PATH (scripts/slurm_up.sh installs and starts a one-node Slurm)"
    try:
        probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, env={**os.environ, **env}, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s (is slurmctld up? scripts/slurm_up.sh)"
    if probe.returncode != 0:
        return f"sinfo failed: {(probe.stderr.strip().splitlines() or ['?'])[-1]} (run scripts/slurm_up.sh)"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Submissions of each kind.")
    args = parser.parse_args()
    found = _slurm_env()
    if isinstance(found, str):
        print(f"skipped: no Slurm here: {found}")
        return 0
    jobs: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        env = clean_env(base, **found)
        os.environ.update(env)
        root = make_project(base)
        (root / "workbench.toml").write_text((root / "workbench.toml").read_text() + CLUSTER)
        script = base / "one-line.sh"
        script.write_text("#!/bin/bash\ntrue\n")
        workbench_s: list[float] = []
        bare_s: list[float] = []
        inproc_s: list[float] = []
        help_s: list[float] = []
        try:
            for i in range(args.runs):
                start = time.perf_counter()  # the CLI's own start, for the share of the total
                subprocess.run([*CLI, "--help"], cwd=root, env=env, capture_output=True)
                help_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                done = subprocess.run([*CLI, "run", "SineRegression", "--on", "here", "--json"], cwd=root, env=env,
                                      capture_output=True, text=True)
                workbench_s.append(time.perf_counter() - start)
                if done.returncode != 0:
                    print(f"workbench run --on failed: {done.stderr.strip()}")
                    return 1
                run_dir = Path(json.loads(done.stdout)["run_dir"])
                jobs += [str(j["job_id"]) for j in json.loads((run_dir / "cluster.json").read_text())["jobs"]]
                start = time.perf_counter()
                bare = subprocess.run(["sbatch", "--parsable", "--hold", "--output=/dev/null", str(script)],
                                      cwd=base, env=env, capture_output=True, text=True)
                bare_s.append(time.perf_counter() - start)
                if bare.returncode != 0:
                    print(f"sbatch failed: {bare.stderr.strip()}")
                    return 1
                jobs.append(bare.stdout.strip().split(";")[0])
            from workbench.project import load_project
            from workbench.runs.launch import LaunchRequest, launch
            from workbench.store import RunIndex

            project = load_project(root)
            with RunIndex(project.index_path) as index:
                for _ in range(args.runs):
                    start = time.perf_counter()
                    run = launch(project, LaunchRequest("SineRegression", on="here"), index=index)
                    inproc_s.append(time.perf_counter() - start)
                    jobs += [str(j["job_id"]) for j in
                             json.loads((Path(run.run_dir or "") / "cluster.json").read_text())["jobs"]]
        finally:
            if jobs:
                subprocess.run(["scancel", *jobs], env=env, capture_output=True)
            kill_run_processes(root)
    wb, sb, ip = statistics.median(workbench_s), statistics.median(bare_s), statistics.median(inproc_s)
    hp = statistics.median(help_s)
    print(f"runs of each: {args.runs} (jobs held, then cancelled)")
    print(f"workbench run --on (CLI, until the job is accepted): median {wb * 1000:.0f} ms "
          f"(min {min(workbench_s) * 1000:.0f})")
    print(f"  in-process launch() (no interpreter start):         median {ip * 1000:.0f} ms")
    print(f"  workbench --help (interpreter and CLI start alone): median {hp * 1000:.0f} ms")
    print(f"bare sbatch --parsable of a one-line script:          median {sb * 1000:.0f} ms "
          f"(min {min(bare_s) * 1000:.0f})")
    print(f"ratio workbench / bare sbatch: {wb / sb:.1f}x (in-process: {ip / sb:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
