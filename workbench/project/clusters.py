"""``[clusters.NAME]`` tables of ``workbench.toml``: where runs may be sent beyond this machine.

Only the configuration is here: parsed and checked when the project loads, one line naming
file, line, table and key for anything wrong. Submitting to a cluster:
``workbench.runs.cluster_launch`` (``docs/clusters.md``).

Example::

    [clusters.lab]
    kind = "slurm"
    partition = "gpu"
    account = "ml"            # optional
    time = "04:00:00"
    gpus_per_node = 4
    cpus_per_task = 8
    setup = ["module load cuda/12.4", "source .venv/bin/activate"]
    sbatch = ["--qos=normal"]
    signal_lead = 120
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CLUSTER_KEYS", "KINDS", "Cluster", "parse_clusters"]

#: The kinds of cluster this workbench knows.
KINDS = ("slurm",)
#: The keys a ``[clusters.NAME]`` table may hold.
CLUSTER_KEYS = ("kind", "partition", "account", "time", "gpus_per_node", "cpus_per_task", "setup",
                "sbatch", "signal_lead")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Slurm's --time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (or "infinite"/"UNLIMITED").
_TIME = re.compile(r"^(\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?|\d+(:\d{1,2}(:\d{1,2})?)?)$")
_MAX_SIGNAL_LEAD = 65535  # what sbatch --signal accepts


@dataclass(frozen=True)
class Cluster:
    """One checked ``[clusters.NAME]`` table.

    Attributes:
        name: The table's name (what ``--on NAME`` will name).
        kind: ``slurm``.
        partition: The Slurm partition ("": the cluster's default).
        account: The Slurm account ("": none given).
        time: The time limit in Slurm's ``--time`` format ("": the partition's default).
        gpus_per_node: GPUs asked for on each node (0: none).
        cpus_per_task: CPUs per task (None: Slurm's default).
        setup: Shell lines run before the job's python, in order.
        sbatch: Extra ``sbatch`` arguments, each one argument (never split by a shell).
        signal_lead: Seconds of warning before a time limit or preemption.
        line: The line of the table in ``workbench.toml`` (0: unknown).
    """

    name: str
    kind: str = "slurm"
    partition: str = ""
    account: str = ""
    time: str = ""
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    setup: tuple[str, ...] = ()
    sbatch: tuple[str, ...] = ()
    signal_lead: int = 120
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {"name": self.name, "kind": self.kind, "partition": self.partition, "account": self.account,
                "time": self.time, "gpus_per_node": self.gpus_per_node, "cpus_per_task": self.cpus_per_task,
                "setup": list(self.setup), "sbatch": list(self.sbatch), "signal_lead": self.signal_lead}


def _text(value: Any) -> str:
    if isinstance(value, str) and value.strip() and "\n" not in value:
        return value.strip()
    raise ValueError(f"must be a non-empty string on one line; got {value!r}")


def _kind(value: Any) -> str:
    if value in KINDS:
        return str(value)
    raise ValueError(f"must be one of {', '.join(repr(k) for k in KINDS)}; got {value!r}")


def _time(value: Any) -> str:
    if isinstance(value, str) and (_TIME.match(value.strip()) or value.strip().lower() in ("infinite", "unlimited")):
        return value.strip()
    raise ValueError("must be a Slurm time limit such as \"04:00:00\", \"90\" (minutes) or \"2-00:00:00\";"
                     f" got {value!r}")


def _whole(low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
            return value
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"must be a whole number {bound}; got {value!r}")
    return check


def _lines(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() and "\n" not in v for v in value):
        return tuple(v.strip() for v in value)
    raise ValueError(f"must be a list of non-empty one-line strings; got {value!r}")


def _flags(value: Any) -> tuple[str, ...]:
    flags = _lines(value)
    for flag in flags:
        if not flag.startswith("-"):
            raise ValueError(f"must be a list of sbatch options, each one argument such as \"--qos=normal\"; "
                             f"got {flag!r} (a value goes with its option: \"--qos=normal\", not two items)")
    return flags


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "kind": _kind, "partition": _text, "account": _text, "time": _time,
    "gpus_per_node": _whole(0), "cpus_per_task": _whole(1), "setup": _lines, "sbatch": _flags,
    "signal_lead": _whole(0, _MAX_SIGNAL_LEAD),
}


def parse_clusters(table: Any, fail: Callable[[tuple[str, ...], str], Exception],
                   line_of: Callable[[tuple[str, ...]], int | None]) -> tuple[Cluster, ...]:
    """Check the ``[clusters]`` table of ``workbench.toml``.

    Args:
        table: The parsed ``clusters`` value.
        fail: Makes the exception for a key path (it names file and line).
        line_of: The line of a key path.

    Returns:
        The clusters, in file order.

    Raises:
        Exception: Whatever ``fail`` makes, for the first problem found.
    """
    if not isinstance(table, dict):
        raise fail(("clusters",), f"[clusters] must hold tables ([clusters.NAME]); got {table!r}")
    out = []
    for name, body in table.items():
        where = f"[clusters.{name}]"
        if not _NAME.match(name):
            raise fail(("clusters", name), f"{where}: a cluster's name is letters, digits, '.', '_' and '-'")
        if not isinstance(body, dict):
            raise fail(("clusters", name), f"{where} must be a table; got {body!r}")
        if "kind" not in body:
            raise fail(("clusters", name), f"{where} needs kind = \"slurm\" (the only kind known)")
        values: dict[str, Any] = {}
        for key, value in body.items():
            if key not in _CHECKS:
                close = difflib.get_close_matches(key, CLUSTER_KEYS, n=1)
                raise fail(("clusters", name, key),
                           f"unknown key '{key}' in {where}; valid keys: {', '.join(CLUSTER_KEYS)}"
                           + (f"; did you mean '{close[0]}'?" if close else ""))
            try:
                values[key] = _CHECKS[key](value)
            except ValueError as exc:
                raise fail(("clusters", name, key), f"{where} {key} {exc}") from None
        out.append(Cluster(name=name, line=line_of(("clusters", name)) or 0, **values))
    return tuple(out)
