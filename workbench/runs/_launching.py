"""What a task launch and a script launch share: the request, the checked launch, and the
steps that snapshot, fingerprint and record a new run (``workbench.runs.launch`` and
``workbench.runs.launch_script`` build on it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.store import InvalidValue, Run, RunIndex

if TYPE_CHECKING:
    from workbench.project import Project, TaskInfo
    from workbench.runs.fingerprint import DataFingerprint
    from workbench.snapshot import Snapshot

__all__ = ["STOP_SIGNALS", "LaunchRequest", "PreparedLaunch"]


#: Signals that ask a run to stop (see ``workbench.runs.supervisor``).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


@dataclass
class LaunchRequest:
    """What the user asked for. ``None`` means the project's default.

    Attributes:
        task: The task's name.
        overrides: ``KEY=VALUE`` config overrides.
        profile: A config profile name (in ``configs/``) or path.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        backend: ``single`` or ``ddp``.
        nproc: Training processes for ``ddp``.
        precision: ``32``, ``bf16-mixed`` or ``16-mixed``.
        name: A unique human name for the run.
        tags: Free-form tags.
        deterministic: Deterministic mode (runs that repeat bit for bit); None: the
            project's ``[defaults] deterministic``, else on for CPU runs.
        steps: The pipeline's steps in order (``fit``, ``test``, ``evaluate``); empty: the
            task's ``steps``, else ``fit`` alone.
        on: A ``[clusters.NAME]`` to submit to (None: this machine); see
            ``workbench.runs.cluster_launch``.
        nodes: Nodes to ask the cluster for (None: 1).
        gpus_per_node: GPUs per node to ask for (None: the cluster's ``gpus_per_node`` for
            a cuda run, else 0).
    """

    task: str
    overrides: Sequence[str] = ()
    profile: str | None = None
    device: str | None = None
    backend: str | None = None
    nproc: int | None = None
    precision: str | None = None
    name: str | None = None
    tags: Sequence[str] = ()
    deterministic: bool | None = None
    steps: Sequence[str] = ()
    on: str | None = None
    nodes: int | None = None
    gpus_per_node: int | None = None


@dataclass
class PreparedLaunch:
    """A checked launch: the task, its resolved config and where it will run."""

    task: TaskInfo
    config: dict[str, Any]
    device: str
    backend: str
    nproc: int
    precision: str
    name: str | None
    tags: list[str] = field(default_factory=list)
    profile: str = ""
    warnings: list[str] = field(default_factory=list)
    deterministic: bool = True
    steps: list[str] = field(default_factory=lambda: ["fit"])
    placement: Any = None  # a cluster run's cluster_launch.Placement; None: this machine


def _drop_ref(project: Project, run_id: str) -> None:
    from workbench.snapshot import SnapshotError, delete_ref

    try:
        delete_ref(project.root, run_id, state_dir=project.state_dir)
    except SnapshotError:
        pass


def _fingerprint_data(project: Project, run_dir: Path) -> DataFingerprint | None:
    """Fingerprint the ``[data]`` paths into ``data.json`` (None when there are none)."""
    from workbench.runs.fingerprint import ManifestCache, fingerprint_data, write_data_record

    if not project.data.paths:
        return None
    data = fingerprint_data(project.data_paths, root=project.root, labels=project.data.paths,
                            hash_below_bytes=project.data.hash_below_bytes,
                            cache=ManifestCache.for_state_dir(project.state_dir))
    write_data_record(run_dir, data)
    return data


def _excluded(project: Project, snap: Snapshot) -> list[tuple[str, str]]:
    """What the snapshot left out and why; a ``[data]`` path is named as such."""
    if not project.data.paths:
        return list(snap.excluded)
    inside = {p.relative_to(project.root).as_posix() for p in project.data_paths
              if project.root in p.parents}
    named = {f"{snap.prefix}/{rel}" if snap.prefix else rel for rel in inside}
    return [(path, "a [data] path: fingerprinted, not snapshotted")
            if path.rstrip("/") in named else (path, why) for path, why in snap.excluded]


def _code_dirty(project: Project, snap: Snapshot) -> bool:
    """Whether the recorded code differs from HEAD (``Snapshot.code_dirty``).

    The snapshot layer also calls a working tree dirty when the only difference is untracked
    files it left out (a data folder): the code the run got is then HEAD's, so it is not.
    """
    return snap.dirty if snap.code_dirty is None else snap.code_dirty


def _create_row(index: RunIndex, pick_name: bool, **fields: Any) -> Run:
    """Add the run's row. A friendly name picked for the run may have been taken meanwhile
    by a launch in another process: then pick another (a name the user gave is refused)."""
    from workbench.runs.names import friendly_name

    for _ in range(20):
        try:
            return index.create_run(**fields)
        except InvalidValue as exc:
            if not pick_name or "named" not in str(exc):
                raise
            taken = index.run_names()
            fields["name"] = friendly_name(len(taken) + 1, taken)
    return index.create_run(**fields)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONHASHSEED", "0")
    return env
