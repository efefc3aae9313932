"""Runs across several machines: how the nodes of a DDP run find each other.

One code path serves both ways a run spans machines:

- **Without Slurm** (``workbench run TASK --backend ddp --nnodes 2 --node-rank K --rdzv
  HOST:PORT``, once on each machine): the launch with ``--node-rank 0`` is an ordinary
  local run — its row, snapshot, supervisor — whose folder holds ``nodes.json``; its
  supervisor starts ``torch.distributed.run`` as node 0 of the rendezvous. Every other
  launch (:func:`run_worker_node`) records nothing: no row, no snapshot; it starts the
  same ``torch.distributed.run`` as node K in the foreground, from a throw-away folder
  with the run's spec, and ends when training ends (only rank 0 records, as in every DDP
  run: DESIGN.md, "Who owns a run").
- **On Slurm** (``--on CLUSTER --nodes N``): the batch script starts one task per node with
  ``srun``; each is ``workbench.runs.cluster_job --slurm-rendezvous``, which reads the
  node's place from Slurm's environment (:func:`slurm_rendezvous`) and starts the same
  ``torch.distributed.run`` command.

The rendezvous is torchrun's *static* one: a c10d ``TCPStore`` served by node 0 at
``HOST:PORT`` (``--master-addr``/``--master-port``) with the node's rank given
(``--node-rank``), so global rank 0 — the one that records — is always on node 0, the
node that owns the run. (torchrun's dynamic ``c10d`` rendezvous numbers nodes by sorting
their host names and pids, so the node that owns the run could get rank 2.) The ranks
agree on stopping through the backend's all-reduce, as on one machine. No torch here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.runs._launching import LaunchRequest

__all__ = [
    "NODES_FILE",
    "Rendezvous",
    "check_nodes",
    "parse_endpoint",
    "read_rendezvous",
    "run_worker_node",
    "slurm_port",
    "slurm_rendezvous",
    "spans_machines",
    "torchrun_command",
    "write_rendezvous",
]

#: In a run folder: the rendezvous of a run across machines launched with ``--nnodes``.
NODES_FILE = "nodes.json"

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Rendezvous:
    """Where one node of a multi-node run stands.

    Attributes:
        nnodes: Machines (nodes) in the run.
        node_rank: This node's place, 0 to ``nnodes - 1``; node 0 serves the rendezvous and
            holds global rank 0.
        host: Node 0's address, as every node reaches it.
        port: The rendezvous port on node 0.
    """

    nnodes: int
    node_rank: int
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        """``HOST:PORT`` (an IPv6 address in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[IPV6]:PORT``) as ``(host, port)``.

    Raises:
        WorkbenchError: One line saying what a good endpoint looks like.
    """
    value = (text or "").strip()
    hint = f"--rdzv must be HOST:PORT, node 0's address and a free port (e.g. 10.0.0.5:29500); got {text!r}"
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep or not host or ":" not in host:
            raise WorkbenchError(hint)
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not _HOST.match(host):
            raise WorkbenchError(hint)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise WorkbenchError(f"--rdzv port must be a whole number from 1 to 65535; got {port!r} in {text!r}")
    return host, int(port)


def check_nodes(nnodes: int | None, node_rank: int | None, rdzv: str | None, *, backend: str,
                on: str | None = None, queued: bool = False) -> Rendezvous | None:
    """Check ``--nnodes``/``--node-rank``/``--rdzv`` (before anything is written).

    Args:
        nnodes: ``--nnodes`` (None: this machine alone).
        node_rank: ``--node-rank``.
        rdzv: ``--rdzv``.
        backend: The backend the run will have (the flag, else the project's default).
        on: ``--on`` (a cluster: Slurm places the nodes, ``--nodes``).
        queued: ``--queue``.

    Returns:
        The rendezvous, or None without ``--nnodes``.

    Raises:
        WorkbenchError: One line.
    """
    if nnodes is None:
        if node_rank is not None or rdzv is not None:
            raise WorkbenchError("--node-rank and --rdzv go with --nnodes N (a DDP run across N machines; "
                                 "docs/clusters.md)")
        return None
    if on:
        raise WorkbenchError("--nnodes is for machines without Slurm; on a cluster ask for --nodes N")
    if queued:
        raise WorkbenchError("--nnodes cannot wait in the run queue: every node must start together")
    if nnodes < 2:
        raise WorkbenchError(f"--nnodes must be 2 or more (the machines of the run), got {nnodes}; "
                             "one machine needs no --nnodes")
    if backend != "ddp":
        raise WorkbenchError(f"--nnodes {nnodes} needs --backend ddp (the backend is {backend})")
    if node_rank is None:
        raise WorkbenchError(f"--nnodes {nnodes} needs --node-rank K: 0 on the machine that records the run, "
                             f"1 to {nnodes - 1} on the others")
    if not 0 <= node_rank < nnodes:
        raise WorkbenchError(f"--node-rank must be from 0 to {nnodes - 1} with --nnodes {nnodes}, got {node_rank}")
    if rdzv is None:
        raise WorkbenchError(f"--nnodes {nnodes} needs --rdzv HOST:PORT: node 0's address and a free port, "
                             "the same on every node")
    host, port = parse_endpoint(rdzv)
    return Rendezvous(nnodes, node_rank, host, port)


def torchrun_command(python: str, nproc: int, run_dir: str | Path, rendezvous: Rendezvous | None = None,
                     ) -> list[str]:
    """The argument list that starts one node's ``nproc`` training processes.

    Args:
        python: The interpreter.
        nproc: Processes on this node (``--nproc``).
        run_dir: The run folder the trainers read.
        rendezvous: This node's place; None: one machine (``--standalone``).
    """
    where = ["--standalone"] if rendezvous is None else [
        f"--nnodes={rendezvous.nnodes}", f"--node-rank={rendezvous.node_rank}",
        f"--master-addr={rendezvous.host}", f"--master-port={rendezvous.port}"]
    return [python, "-m", "torch.distributed.run", *where, f"--nproc-per-node={nproc}", "--max-restarts=0",
            "-m", "workbench.runs.train", str(run_dir)]


def write_rendezvous(run_dir: Path, rendezvous: Rendezvous) -> None:
    """Record node 0's rendezvous in its run folder (its supervisor reads it)."""
    path = Path(run_dir) / NODES_FILE
    tmp = path.with_name(f".{NODES_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": 1, "nnodes": rendezvous.nnodes, "node_rank": rendezvous.node_rank,
                               "host": rendezvous.host, "port": rendezvous.port}), encoding="utf-8")
    os.replace(tmp, path)


def read_rendezvous(run_dir: str | Path) -> Rendezvous | None:
    """The rendezvous recorded in a run folder; None for a run on one machine."""
    path = Path(run_dir) / NODES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Rendezvous(int(data["nnodes"]), int(data["node_rank"]), str(data["host"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(f"cannot read {path}: {exc}") from None


def spans_machines(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` trains on several machines: an ``--nnodes`` run (its
    ``nodes.json``) or a Slurm job on several nodes (its ``cluster.json``). There a stop
    reaches only some ranks (Ctrl-C on one machine), so the trainer hands it to the loop
    at a batch's end, where the ranks agree (``workbench.runs.train._StopRelay``)."""
    folder = Path(run_dir)
    if (folder / NODES_FILE).is_file():
        return True
    try:
        return int(json.loads((folder / "cluster.json").read_text(encoding="utf-8")).get("nodes", 1)) > 1
    except (OSError, ValueError, TypeError, AttributeError):
        return False


# -- Slurm: each node's place from the job's environment -------------------------------


def slurm_port(job_id: str | int) -> int:
    """The rendezvous port of a Slurm job: one per job id (29500-38499), so that two jobs
    sharing a first node do not collide."""
    return 29500 + int(job_id) % 9000


def _hostnames(nodelist: str) -> list[str]:
    """``scontrol show hostnames NODELIST`` (expands ``node[01-03]``; no controller asked)."""
    from workbench.runs.slurm import hostnames

    return hostnames(nodelist)


def slurm_rendezvous(env: Mapping[str, str], hostnames: Callable[[str], Sequence[str]] | None = None) -> Rendezvous:
    """This node's place in a Slurm job's rendezvous, from the step's environment.

    One task per node (``srun --ntasks-per-node=1``): the node's rank is ``SLURM_NODEID``
    (the same as ``SLURM_PROCID`` then), the node count ``SLURM_JOB_NUM_NODES`` (or
    ``SLURM_NNODES``), node 0 is the first host of ``SLURM_JOB_NODELIST`` (expanded by
    ``scontrol show hostnames``), and the port is :func:`slurm_port` of ``SLURM_JOB_ID``.
    ``MASTER_ADDR``/``MASTER_PORT``, where set, win (a site's own wrapper).

    Raises:
        WorkbenchError: A variable is missing or the node list is empty (one line).
    """
    def need(*names: str) -> str:
        for name in names:
            if env.get(name, "").strip():
                return env[name].strip()
        raise WorkbenchError(f"{names[0]} is not set: is this a Slurm job step (srun)?")

    nnodes = int(need("SLURM_JOB_NUM_NODES", "SLURM_NNODES"))
    node_rank = int(need("SLURM_NODEID", "SLURM_PROCID"))
    host = env.get("MASTER_ADDR", "").strip()
    if not host:
        nodes = list((hostnames or _hostnames)(need("SLURM_JOB_NODELIST", "SLURM_NODELIST")))
        if not nodes:
            raise WorkbenchError(f"scontrol show hostnames {env.get('SLURM_JOB_NODELIST')!r} named no host")
        host = nodes[0]
    port = int(env["MASTER_PORT"]) if env.get("MASTER_PORT", "").strip().isdigit() else \
        slurm_port(need("SLURM_JOB_ID"))
    if not 0 <= node_rank < nnodes:
        raise WorkbenchError(f"SLURM_NODEID {node_rank} is not below the job's {nnodes} node(s)")
    return Rendezvous(nnodes, node_rank, host, port)


# -- a worker node without Slurm --------------------------------------------------------


def run_worker_node(project: Project, request: LaunchRequest, rendezvous: Rendezvous) -> int:
    """Train as node ``rendezvous.node_rank`` (> 0) of a run across machines, in the foreground.

    Nothing is recorded — no row, no snapshot ref, no run folder in the project: the
    node's trainers (ranks ``K * nproc`` …) record nothing, and rank 0 on node 0 records the
    run. The task is imported from this machine's working tree, which must hold the same
    code as node 0's. Ctrl-C (SIGINT or SIGTERM) asks every rank for a graceful stop.

    Returns:
        The exit status of the node's ``torch.distributed.run`` (0: training ended).

    Raises:
        WorkbenchError: The launch is refused (the same checks as any launch; one line).
    """
    import dataclasses
    import signal
    import tempfile
    import time

    from workbench.runs.cluster_context import CONTEXT_FORMAT, context_path
    from workbench.runs.launch import _spec, prepare
    from workbench.runs.numerics import training_env
    from workbench.runs.spec import write_spec

    prepared = prepare(project, request)
    with tempfile.TemporaryDirectory(prefix=f"workbench-node{rendezvous.node_rank}-") as folder:
        run_dir = Path(folder)
        spec = dataclasses.replace(_spec(project, prepared, "node" + "0" * 8, run_dir, ""),
                                   code_dir=str(project.root), sink="index")
        write_spec(run_dir, spec)
        write_rendezvous(run_dir, rendezvous)  # this node's place (spans_machines reads it)
        # What a non-zero rank reads at start, without opening any index (cluster_context).
        context = context_path(run_dir, 1)
        context.parent.mkdir(parents=True)
        context.write_text(json.dumps({"format": CONTEXT_FORMAT, "run": spec.id, "attempt": 1,
                                       "written_at": time.time(), "created_at": time.time(), "started_at": None,
                                       "name": spec.name, "parent_id": None, "steps": [], "spans": {}}))
        env = training_env(os.environ, deterministic=spec.deterministic, backend="ddp")
        env.update({"PYTHONUNBUFFERED": "1", "WORKBENCH_RUN_DIR": str(run_dir), "WORKBENCH_ATTEMPT": "1"})
        env.setdefault("PYTHONHASHSEED", "0")
        for leaky in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(leaky, None)
        command = [sys.executable, "-m", "workbench.runs.cluster_job", "--",
                   *torchrun_command(sys.executable, spec.nproc, run_dir, rendezvous)]
        print(f"node {rendezvous.node_rank} of {rendezvous.nnodes}: {spec.task} on {spec.device}/ddp x{spec.nproc}, "
              f"joining {rendezvous.endpoint} (Ctrl-C stops every node gracefully)", file=sys.stderr, flush=True)
        # Its own session: Ctrl-C reaches this process only, which asks cluster_job for a
        # graceful stop (a terminal's SIGINT to torchrun itself would tear the ranks down).
        child = subprocess.Popen(command, cwd=spec.project_root, env=env, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def forward(signum: int, frame: object) -> None:
            try:
                child.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass

        for sig in previous:
            signal.signal(sig, forward)
        try:
            code = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return code
