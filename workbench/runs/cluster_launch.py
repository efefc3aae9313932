"""Launching a run on a Slurm cluster (``workbench run TASK --on NAME``).

The launch check (:func:`check_placement`, called by ``workbench.runs.launch.prepare``)
judges the request against the cluster's declared resources (``[clusters.NAME]``), never
against this machine's devices. A launch then writes, in the run folder:

- ``cluster.json``: where the run goes (the cluster's table as launched, nodes, GPUs per
  node) and every attempt's Slurm job id;
- ``attempts/<n>/job.sh``: the batch script of attempt ``n`` — ``cd`` to the project, the
  cluster's ``setup`` lines, the training environment, then ``exec python -m
  workbench.runs.train RUN_DIR`` (``exec``: the trainer *is* the batch step, so the
  signals Slurm sends it reach the process that writes the checkpoint);
- ``attempts/<n>/context.json``: what the trainer reads at start (``cluster_context``);

and submits it with ``sbatch --parsable`` and an argument list (``workbench.runs.slurm``).
The job appends to the run's ``output.log``. The run's watcher (``cluster_watch``) follows
it from the launch host.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.project.clusters import Cluster
    from workbench.runs.spec import RunSpec
    from workbench.store import Run, RunIndex

__all__ = [
    "PLACEMENT_FILE",
    "Placement",
    "batch_script",
    "check_placement",
    "check_submission",
    "is_cluster_run",
    "jobs_of",
    "last_job",
    "read_placement",
    "record_submission",
    "sbatch_options",
    "submit_attempt",
    "write_attempt",
    "write_placement",
]

#: Where a cluster run's placement and job ids are kept in its folder.
PLACEMENT_FILE = "cluster.json"
_FORMAT = 1


@dataclass(frozen=True)
class Placement:
    """Where a cluster run goes.

    Attributes:
        cluster: The ``[clusters.NAME]`` table (as ``Cluster.to_dict``).
        nodes: Nodes asked for.
        gpus_per_node: GPUs asked for on each node.
    """

    cluster: dict[str, Any]
    nodes: int = 1
    gpus_per_node: int = 0

    @property
    def name(self) -> str:
        """The cluster's name."""
        return str(self.cluster.get("name", ""))


def check_placement(project: Project, on: str, nodes: int | None, gpus_per_node: int | None,
                    device: str | None, backend: str, nproc: int | None, precision: str) -> tuple[Placement, str, int]:
    """Check a launch to cluster ``on`` against its declared resources.

    Args:
        project: The project (its ``[clusters.*]`` tables).
        on: The cluster's name.
        nodes: ``--nodes`` (None: 1).
        gpus_per_node: ``--gpus-per-node`` (None: the cluster's ``gpus_per_node`` for a
            cuda run, else 0).
        device: ``--device`` (None or ``auto``: cuda where the cluster declares GPUs).
        backend: ``single`` or ``ddp``.
        nproc: ``--nproc`` (None: one per GPU for ddp on cuda, else the project default).
        precision: The precision.

    Returns:
        ``(placement, device, nproc)``.

    Raises:
        WorkbenchError: One line: an unknown cluster, more nodes or GPUs than it has, a
            device it cannot give.
    """
    cluster: Cluster | None = project.cluster(on)
    if cluster is None:
        known = ", ".join(c.name for c in project.clusters)
        raise WorkbenchError(f"unknown cluster {on!r}: " + (f"{project.file.name} declares {known}" if known else
                             f"{project.file.name} declares no [clusters.NAME] table (docs/clusters.md)"))
    nodes = 1 if nodes is None else nodes
    if nodes < 1:
        raise WorkbenchError(f"--nodes must be 1 or more, got {nodes}")
    if nodes > 1 and backend != "ddp":
        raise WorkbenchError(f"--nodes {nodes} needs --backend ddp (one process cannot span nodes)")
    declared = cluster.gpus_per_node
    device = device or "auto"
    if device == "auto":
        device = "cuda" if (gpus_per_node if gpus_per_node is not None else declared) else "cpu"
    if device == "mps" or device.startswith("cuda:"):
        raise WorkbenchError(f"--device {device} cannot be asked of cluster {cluster.name}: use cuda (Slurm "
                             "picks the node's GPUs) or cpu")
    gpus = gpus_per_node if gpus_per_node is not None else (declared if device == "cuda" else 0)
    if gpus < 0:
        raise WorkbenchError(f"--gpus-per-node must be 0 or more, got {gpus}")
    if gpus > declared:
        raise WorkbenchError(f"--gpus-per-node {gpus}: cluster {cluster.name} declares gpus_per_node = {declared}")
    if device == "cuda" and gpus == 0:
        raise WorkbenchError(f"--device cuda on cluster {cluster.name} needs GPUs: it declares gpus_per_node = "
                             f"{declared}" + ("; drop --gpus-per-node 0" if declared else " (use --device cpu)"))
    if device == "cpu" and precision == "16-mixed":
        raise WorkbenchError("--precision 16-mixed needs cuda; on cpu use 32 or bf16-mixed")
    if nproc is None:
        nproc = (gpus if device == "cuda" else project.defaults.nproc) if backend == "ddp" else 1
    if backend == "ddp" and device == "cuda" and nproc > gpus:
        raise WorkbenchError(f"--nproc {nproc} on cuda needs {nproc} GPUs per node; this run asks for {gpus} "
                             f"(--gpus-per-node, at most {declared} on {cluster.name})")
    if cluster.cpus_per_task is not None and backend == "ddp" and device == "cpu" and nproc > cluster.cpus_per_task:
        raise WorkbenchError(f"--nproc {nproc} CPU processes on cluster {cluster.name}, which gives "
                             f"cpus_per_task = {cluster.cpus_per_task}")
    return Placement(cluster.to_dict(), nodes, gpus), device, nproc


# -- the run folder's cluster.json ------------------------------------------------------


def is_cluster_run(run_dir: str | Path | None) -> bool:
    """Whether the run in ``run_dir`` was launched to a cluster."""
    return bool(run_dir) and (Path(str(run_dir)) / PLACEMENT_FILE).is_file()


def _read(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / PLACEMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"cannot read {Path(run_dir) / PLACEMENT_FILE}: {exc}") from None


def _write(run_dir: Path, data: dict[str, Any]) -> None:
    path = Path(run_dir) / PLACEMENT_FILE
    tmp = path.with_name(f".{PLACEMENT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def write_placement(run_dir: Path, placement: Placement) -> None:
    """Write a new run's ``cluster.json`` (no jobs yet)."""
    _write(run_dir, {"format": _FORMAT, "cluster": placement.cluster, "nodes": placement.nodes,
                     "gpus_per_node": placement.gpus_per_node, "jobs": []})


def read_placement(run_dir: Path) -> Placement:
    """A cluster run's placement."""
    data = _read(run_dir)
    return Placement(dict(data["cluster"]), int(data.get("nodes", 1)), int(data.get("gpus_per_node", 0)))


def jobs_of(run_dir: Path) -> list[dict[str, Any]]:
    """Every attempt's job: ``{"attempt", "job_id", "submitted_at"}``, oldest first."""
    return list(_read(run_dir).get("jobs", []))


def last_job(run_dir: Path, attempt: int | None = None) -> str | None:
    """The job id of ``attempt`` (default: the newest attempt submitted)."""
    jobs = [j for j in jobs_of(run_dir) if attempt is None or int(j["attempt"]) == attempt]
    return str(jobs[-1]["job_id"]) if jobs else None


def _record_job(run_dir: Path, attempt: int, job_id: str) -> None:
    data = _read(run_dir)
    data.setdefault("jobs", []).append({"attempt": int(attempt), "job_id": str(job_id), "submitted_at": time.time()})
    _write(run_dir, data)


# -- the batch script and the submission ------------------------------------------------


def _cluster_of(project: Project | None, placement: Placement) -> Cluster:
    """The cluster's table now in ``workbench.toml`` (fixed setup lines apply to a resume),
    else as it was at launch."""
    from workbench.project.clusters import Cluster

    current = project.cluster(placement.name) if project is not None else None
    if current is not None:
        return current
    data = dict(placement.cluster)
    data["setup"] = tuple(data.get("setup", ()))
    data["sbatch"] = tuple(data.get("sbatch", ()))
    return Cluster(**data)


def batch_script(spec: RunSpec, cluster: Cluster, run_dir: Path, attempt: int, env: dict[str, str],
                 nodes: int = 1) -> str:
    """The text of attempt ``attempt``'s batch script.

    Args:
        spec: The run's spec.
        cluster: The cluster (its ``setup`` lines).
        run_dir: The run folder.
        attempt: The attempt.
        env: Variables to export (``None`` values are unset) before the trainer starts.
        nodes: Nodes of the job: above 1, ``srun`` starts one ``cluster_job
            --slurm-rendezvous`` per node, each its node's ``torch.distributed.run``
            (``workbench.runs.cluster_nodes``).
    """
    python = "python" if cluster.setup else sys.executable  # setup lines pick the node's python
    train = [python, "-m", "workbench.runs.train", str(run_dir)]
    if nodes > 1:
        train = ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
                 "--export=ALL", *([f"--cpus-per-task={cluster.cpus_per_task}"] if cluster.cpus_per_task else []),
                 python, "-m", "workbench.runs.cluster_job", "--slurm-rendezvous", str(spec.nproc), str(run_dir)]
    elif spec.backend == "ddp":
        # cluster_job forwards a stop to torchrun's workers only (torchrun dies of SIGINT itself).
        train = [python, "-m", "workbench.runs.cluster_job", "--", python, "-m", "torch.distributed.run",
                 "--standalone", f"--nproc-per-node={spec.nproc}", "--max-restarts=0", "-m",
                 "workbench.runs.train", str(run_dir)]
    lines = ["#!/bin/bash",
             f"# Written by workbench: run {spec.id}, attempt {attempt}, on cluster {cluster.name}.",
             "set -e",
             f"cd {shlex.quote(spec.project_root)}",
             "# A job Slurm requeued (time limit or preemption) runs this again as the next attempt.",
             f"export WORKBENCH_ATTEMPT=$(({int(attempt)} + ${{SLURM_RESTART_COUNT:-0}}))",
             f"echo \"=== attempt $WORKBENCH_ATTEMPT · $(date '+%Y-%m-%d %H:%M:%S') · slurm job $SLURM_JOB_ID on "
             f"$(hostname) · {spec.task} on {spec.device}/{spec.backend} ===\""]
    lines += ["# the cluster's setup lines", *cluster.setup] if cluster.setup else []
    for name, value in sorted(env.items()):
        if name == "WORKBENCH_ATTEMPT":
            continue  # above: this attempt, or a later one after a requeue
        lines.append(f"unset {name}" if value is None else f"export {name}={shlex.quote(value)}")
    lines.append("exec " + " ".join(shlex.quote(part) for part in train))
    return "\n".join(lines) + "\n"


def sbatch_options(spec: RunSpec, cluster: Cluster, placement: Placement, run_dir: Path, attempt: int) -> list[str]:
    """``sbatch`` options for one attempt (an argument list)."""
    label = spec.name or spec.task
    options = [f"--job-name=wb-{label}-{spec.id}"[:120], f"--chdir={spec.project_root}",
               f"--output={run_dir / 'output.log'}", "--open-mode=append", f"--nodes={placement.nodes}",
               "--ntasks-per-node=1", "--requeue", "--export=ALL"]
    if cluster.partition:
        options.append(f"--partition={cluster.partition}")
    if cluster.account:
        options.append(f"--account={cluster.account}")
    if cluster.time:
        options.append(f"--time={cluster.time}")
    if placement.gpus_per_node:
        options.append(f"--gpus-per-node={placement.gpus_per_node}")
    if cluster.cpus_per_task:
        options.append(f"--cpus-per-task={cluster.cpus_per_task}")
    if cluster.signal_lead:
        # B: the batch step (our exec'd trainer, or cluster_job) gets SIGUSR1 this long before
        # the time limit: the trainer checkpoints, ends stopped and requeues the job, whose
        # next run is the next attempt (workbench.runs.cluster_requeue). On several nodes the
        # srun step's tasks get it (one cluster_job per node, which tells its node's ranks).
        where = "" if placement.nodes > 1 else "B:"
        options.append(f"--signal={where}USR1@{cluster.signal_lead}")
    return [*options, *cluster.sbatch]


def check_submission(project: Project, placement: Placement) -> None:
    """Ask Slurm (``sbatch --test-only``) whether it takes a job of ``placement`` now, for
    launches that submit later (an Optuna study's trials): its refusal is one line before
    anything is written.

    Raises:
        WorkbenchError: sbatch refused (Slurm's own reason).
    """
    from types import SimpleNamespace

    from workbench.runs.slurm import try_submit

    probe: Any = SimpleNamespace(name="check", task="check", id="check", project_root=str(project.root))
    options = sbatch_options(probe, _cluster_of(project, placement), placement, Path(os.devnull), 1)
    options = [o for o in options if not o.startswith(("--output=", "--open-mode="))]
    try_submit(options, cwd=str(project.root))


def _training_variables(spec: RunSpec, run_dir: Path, attempt: int, parent: Run | None) -> dict[str, Any]:
    """The variables the trainer needs beyond the submitting environment (``--export=ALL``)."""
    from workbench.runs.numerics import numerics_to_reuse, training_env

    base = dict(os.environ)
    env = training_env(base, deterministic=spec.deterministic, backend=spec.backend,
                       record=numerics_to_reuse(run_dir, attempt, parent.run_dir if parent else None,
                                                parent.id if parent else ""))
    out: dict[str, Any] = {k: v for k, v in env.items() if base.get(k) != v}
    out.update({k: None for k in base if k not in env})
    out.update({"PYTHONUNBUFFERED": "1", "WORKBENCH_RUN_DIR": str(run_dir), "WORKBENCH_ATTEMPT": str(attempt),
                "WORKBENCH_SINK": "journal"})
    out.setdefault("PYTHONHASHSEED", base.get("PYTHONHASHSEED") or "0")
    for leaky in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if leaky in base:
            out[leaky] = None
    return out


def write_attempt(project: Project | None, index: RunIndex, run: Run, spec: RunSpec,
                  attempt: int) -> tuple[Path, list[str], str]:
    """Write attempt ``attempt``'s ``context.json`` and ``job.sh``; nothing is submitted.

    Returns:
        ``(script, sbatch options, cluster name)``.
    """
    from workbench.runs.cluster_context import write_context

    run_dir = Path(run.run_dir or "")
    placement = read_placement(run_dir)
    cluster = _cluster_of(project, placement)
    folder = run_dir / "attempts" / str(attempt)
    folder.mkdir(parents=True, exist_ok=True)
    write_context(index, run, run_dir, attempt)
    parent = index.get_run(run.parent_id) if run.parent_id else None
    script = folder / "job.sh"
    script.write_text(batch_script(spec, cluster, run_dir, attempt, _training_variables(spec, run_dir, attempt, parent),
                                   nodes=placement.nodes), encoding="utf-8")
    script.chmod(0o755)
    return script, sbatch_options(spec, cluster, placement, run_dir, attempt), cluster.name


def record_submission(index: RunIndex, run: Run, attempt: int, job: str, cluster: str, note: str = "") -> None:
    """Record that Slurm accepted attempt ``attempt`` of ``run`` as job ``job`` (``cluster.json``,
    the row's ``status_reason`` and a ``submitted`` event). ``job`` may be an array task,
    ``JOBID_TASK``: squeue, scontrol and scancel take it as it is."""
    run_dir = Path(run.run_dir or "")
    placement = read_placement(run_dir)
    _record_job(run_dir, attempt, job)
    index.update_run(run.id, status_reason=f"slurm job {job}: submitted")
    index.add_event(run.id, "submitted", f"slurm job {job} on cluster {cluster} (attempt {attempt}){note}",
                    {"job_id": job, "cluster": cluster, "attempt": attempt, "nodes": placement.nodes,
                     "gpus_per_node": placement.gpus_per_node})


def submit_attempt(project: Project | None, index: RunIndex, run: Run, spec: RunSpec, attempt: int) -> str:
    """Write attempt ``attempt``'s context and batch script, submit it, record the job.

    The row is not changed here except for the event and ``status_reason`` after Slurm
    accepted the job; a refusal raises before anything is recorded in the index.

    Returns:
        The Slurm job id.

    Raises:
        WorkbenchError: sbatch refused (one line: Slurm's own reason).
    """
    from workbench.runs.slurm import submit

    script, options, cluster = write_attempt(project, index, run, spec, attempt)
    job = submit(str(script), options, cwd=spec.project_root)
    record_submission(index, run, attempt, job, cluster)
    return job
