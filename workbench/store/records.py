"""Typed records of the run index: :class:`Run` and :class:`RunStatus`.

The store hands these to every layer above it (runs, the CLI, the app); nothing above the
store passes raw row dicts around. A rule such as "which statuses are live" lives here,
once.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVALUATION", "Run", "RunEvent", "RunStatus", "RunStep", "StepStatus", "StopMode"]

#: The ``kind`` of a run that tests or evaluates another run's checkpoint (its ``parent_id``).
EVALUATION = "evaluation"


class RunStatus(str, enum.Enum):
    """Where a run is in its life.

    ``queued -> running -> completed | failed | stopped | interrupted | pruned``.
    ``queued`` and ``running`` are *live*; the others are *final* for their attempt.
    ``failed``, ``stopped`` and ``interrupted`` can be resumed from their last
    checkpoint; ``completed`` and ``pruned`` (a sweep trial stopped for being poor)
    cannot.
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"

    def __str__(self) -> str:
        return self.value

    @property
    def is_live(self) -> bool:
        """Whether a process owns the run now (or is about to)."""
        return self in _LIVE

    @property
    def is_final(self) -> bool:
        """Whether the run's current attempt has ended."""
        return self not in _LIVE

    @property
    def is_resumable(self) -> bool:
        """Whether ``workbench resume`` may start a new attempt of the run."""
        return self in _RESUMABLE

    @classmethod
    def parse(cls, value: str | RunStatus) -> RunStatus:
        """The status named ``value``.

        Raises:
            ValueError: No status has that name (the message lists them).
        """
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(status.value for status in cls)
            raise ValueError(f"unknown run status {value!r}; one of {names}") from None

    @classmethod
    def live(cls) -> tuple[RunStatus, ...]:
        """The live statuses, for queries."""
        return tuple(_LIVE)


_LIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
_RESUMABLE = frozenset({RunStatus.FAILED, RunStatus.STOPPED, RunStatus.INTERRUPTED})


class StopMode(str, enum.Enum):
    """How a stop request asks a run to end: after a checkpoint, or at once."""

    GRACEFUL = "graceful"
    KILL = "kill"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Run:
    """One run as the index holds it.

    Attributes mirror the ``runs`` table (see ``docs/run-index.md``). ``config`` is a
    plain mapping (treat it as read-only), ``tags`` a tuple, ``status`` a
    :class:`RunStatus`, ``git_dirty`` a bool or ``None``, ``kind`` how the run came in
    (``task``, ``script``, ``attached`` or ``evaluation``), ``command`` its command line
    (attached and script runs) and ``overrides`` the ``-s KEY=VALUE`` overrides as given
    (an evaluation's eval-time overrides). ``sweep_id`` names the sweep the run belongs to;
    ``priority``, ``queued_at`` and ``assigned_device`` are its place in the run queue and
    the device the queue gave it.
    """

    id: str
    status: RunStatus
    created_at: float
    updated_at: float
    name: str | None = None
    task: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    supervisor_pid: int | None = None
    supervisor_create_time: float | None = None
    pid: int | None = None
    pgid: int | None = None
    host: str | None = None
    device: str | None = None
    backend: str | None = None
    nproc: int | None = None
    precision: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    profile: str | None = None
    run_dir: str | None = None
    git_head: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    snapshot_commit: str | None = None
    parent_id: str | None = None
    parent_checkpoint: str | None = None
    attempt: int = 1
    step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    traceback: str | None = None
    status_reason: str | None = None
    stop_requested_at: float | None = None
    stop_mode: StopMode | None = None
    stop_reason: str | None = None
    kind: str = "task"
    command: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    sweep_id: str | None = None
    priority: int = 0
    queued_at: float | None = None
    assigned_device: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        """Decode a ``runs`` row (JSON columns as text, ``git_dirty`` as 0/1).

        Columns this class does not know (written by a newer workbench) are ignored.
        """
        return cls._decode({name: row[name] for name in _FIELD_NAMES if name in row})

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Run]:
        """:meth:`from_row` of a query's rows (``names``: its columns), without a mapping per row."""
        known = [(name, i) for i, name in enumerate(names) if name in _FIELD_SET]
        return [cls._decode({name: row[i] for name, i in known}) for row in rows]

    @classmethod
    def _decode(cls, values: dict[str, Any]) -> Run:
        status = values["status"]
        values["status"] = _STATUSES.get(status) or RunStatus.parse(status)
        values["config"] = _json_dict(values.get("config"))
        values["tags"] = _json_tuple(values.get("tags"))
        if values.get("git_dirty") is not None:
            values["git_dirty"] = bool(values["git_dirty"])
        values["command"] = _json_tuple(values.get("command"))
        values["kind"] = values.get("kind") or "task"
        values["priority"] = int(values.get("priority") or 0)
        values["overrides"] = _json_dict(values.get("overrides"))
        if values.get("stop_mode") is not None:
            values["stop_mode"] = StopMode(values["stop_mode"])
        if not _REQUIRED.issubset(values):
            return cls(**values)  # (raises, naming what is missing)
        for name, factory in _FACTORIES:
            if name not in values:
                values[name] = factory()
        # Rows come by the thousand (the app loads every run at start): fill the instance's
        # fields directly rather than through the frozen dataclass's __init__, which sets
        # each of its ~50 fields with object.__setattr__ (3x the cost).
        run = object.__new__(cls)
        run.__dict__.update(_DEFAULTS, **values)
        return run

    # -- what people ask of a run ---------------------------------------------------

    @property
    def label(self) -> str:
        """The name people know the run by (its name, else its id)."""
        return self.name or self.id

    @property
    def is_evaluation(self) -> bool:
        """Whether the run tests or evaluates another run's checkpoint (``parent_id``)."""
        return self.kind == EVALUATION

    @property
    def is_live(self) -> bool:
        """Shorthand for ``run.status.is_live``."""
        return self.status.is_live

    @property
    def stop_requested(self) -> bool:
        """Whether a stop request is recorded and the run is still live."""
        return self.stop_requested_at is not None and self.status.is_live

    def with_changes(self, **changes: Any) -> Run:
        """A copy with some fields changed (the index is not touched)."""
        return dataclasses.replace(self, **changes)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Run))
_FIELD_SET = frozenset(_FIELD_NAMES)
_STATUSES = {status.value: status for status in RunStatus}


def _json_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {} if value == "{}" else json.loads(value)
    return dict(value or {})


def _json_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return () if value == "[]" else tuple(json.loads(value) or ())
    return tuple(value or ())


#: Each field's default, and the fields made by a factory, for :meth:`Run.from_row`.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Run) if f.default is not dataclasses.MISSING}
_FACTORIES = [(f.name, f.default_factory) for f in dataclasses.fields(Run)
              if f.default_factory is not dataclasses.MISSING]
_REQUIRED = frozenset(f.name for f in dataclasses.fields(Run)
                      if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


@dataclass(frozen=True)
class RunEvent:
    """One lifecycle event of a run (``launched``, ``started``, ``checkpoint``, ...).

    Attributes:
        id: The event's id (increasing).
        run_id: The run.
        time: Unix seconds.
        kind: The kind of event.
        message: One line for people.
        data: What the event carries (JSON-decoded), or ``None``.
    """

    id: int
    run_id: str
    time: float
    kind: str
    message: str = ""
    data: Any = None


class StepStatus(str, enum.Enum):
    """Where one step of a run's pipeline is: ``pending -> running -> completed | failed |
    stopped | interrupted``."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RunStep:
    """One atomic step of a run's pipeline (``fit``, ``test``, ``evaluate``).

    Attributes:
        run_id: The run.
        position: Its place in the pipeline (0 first).
        name: The step's name.
        status: A :class:`StepStatus`.
        attempt: The attempt that last ran it (None: not run yet).
        started_at: When that attempt started it.
        ended_at: When it ended.
        error: Why it failed, if it did.
    """

    run_id: str
    position: int
    name: str
    status: StepStatus = StepStatus.PENDING
    attempt: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
