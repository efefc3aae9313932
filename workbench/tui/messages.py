"""The app's messages: facts (``RunLaunched``) and requests (``StopRequested``).

Workers post facts back to the event loop; screens post requests up to the app, which does
the work in a thread and answers with a fact. Messages that can fire many times a second
define ``can_replace`` so that a newer one replaces an older one still in the queue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from workbench.store import Run, RunEvent
from workbench.tui._watcher import PollResult

__all__ = [
    "ActionRefused",
    "BatchDone",
    "BatchRequested",
    "ChartCursorMoved",
    "CodeDiffRead",
    "CompareValuesRead",
    "DeleteRequested",
    "DevicesProbed",
    "ExportDone",
    "FirstPageRead",
    "ForkRequested",
    "IndexPolled",
    "IndexReplaced",
    "LaunchChecked",
    "LaunchFailed",
    "LaunchRequested",
    "ResumeRequested",
    "RunDeleted",
    "RunDetailsRead",
    "RunHighlighted",
    "RunLaunched",
    "RunOpenRequested",
    "RunResumed",
    "RunStopped",
    "RunVerified",
    "StopRequested",
    "TaskLaunchRequested",
    "TasksDiscovered",
    "VerifyRequested",
    "ViewRead",
]


# -- facts from workers ---------------------------------------------------------------------


@dataclass
class FirstPageRead(Message):
    """The newest runs were read at start-up, before the rest of the index."""

    rows: list[Run]


@dataclass
class ViewRead(Message):
    """The saved view was read at start-up (before the first page of runs).

    Attributes:
        view: The view (``workbench.tui._persist.SavedView``), or None: none saved or unreadable.
        notice: Why it could not be read (empty when it could, or when there is none).
        dropped: The runs it named that no longer exist (left out of ``view``).
    """

    view: Any
    notice: str = ""
    dropped: list[str] = field(default_factory=list)


@dataclass
class IndexPolled(Message):
    """A refresh tick read what changed in the run index since the last one.

    Attributes:
        result: What the tick read.
        opening: Which opening of the index it read (see ``IndexReplaced``).
        asked: Which opening the app's caches held when it asked.
    """

    result: PollResult
    opening: int = 1
    asked: int = 1


@dataclass
class IndexReplaced(Message):
    """The run index file was deleted or replaced under the app, which opened the new one.

    Attributes:
        path: The index file.
        deleted: True when the file was gone (a new, empty index was made), False when
            another file took its place.
    """

    path: str
    deleted: bool
    opening: int = 0


@dataclass
class TasksDiscovered(Message):
    """Task discovery finished (its errors are listed, not raised)."""

    discovery: Any
    error: str = ""
    profiles: list[str] = dataclasses.field(default_factory=list)


@dataclass
class DevicesProbed(Message):
    """The device probe answered (or failed, with a one-line reason)."""

    probe: dict[str, Any] | None
    error: str = ""


@dataclass
class LaunchChecked(Message):
    """The launch form's current values were checked with ``prepare`` (nothing written).

    Attributes:
        serial: Which edit of the form was checked; older answers are ignored.
        error: The one-line reason the launch would be refused, or "".
        field: The config field the error names, when it names one.
        name: The run name a launch would get.
        config: The resolved config.
        profile: The profile the form named.
        profile_values: The profile's values over the defaults (dotted keys), when read.
        warnings: What the launch check would let through but warns about, one line each.
    """

    serial: int
    error: str = ""
    field: str | None = None
    name: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    profile: str | None = None
    profile_values: dict[str, Any] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LaunchChecked)


@dataclass
class RunLaunched(Message):
    """A run was launched: its row as the index holds it now (status queued)."""

    row: Run


@dataclass
class LaunchFailed(Message):
    """A launch was refused or failed; nothing was started."""

    message: str


@dataclass
class RunStopped(Message):
    """A stop request was recorded for a run (see ``workbench.runs.StopResult``)."""

    run_id: str
    outcome: str
    text: str


@dataclass
class RunResumed(Message):
    """A run was resumed or forked: the row of the run that is now starting."""

    row: Run
    forked_from: str | None = None


@dataclass
class RunDeleted(Message):
    """A run was deleted with its files."""

    run_id: str


@dataclass
class ActionRefused(Message):
    """An action could not be done; ``reason`` is one line for the user."""

    action: str
    reason: str


@dataclass
class RunDetailsRead(Message):
    """The run screen's slow-changing parts: events, artifacts, last metric values."""

    run_id: str
    events: list[RunEvent]
    artifacts: list[dict[str, Any]]
    last: dict[str, float]
    steps: list[Any] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CompareValuesRead(Message):
    """Metric rows for the compare screen: ``values[run_id][key]`` holds last, best, at-step."""

    values: dict[str, dict[str, dict[str, Any]]]
    at_step: dict[str, int]
    data: dict[str, str | None] = field(default_factory=dict)


@dataclass
class CodeDiffRead(Message):
    """A code diff was read from git (ANSI-coloured text, or an error line)."""

    key: tuple[str, ...]
    text: str
    error: str = ""


# -- requests and UI facts ------------------------------------------------------------------


@dataclass
class RunHighlighted(Message):
    """The cursor of a run table moved to a run."""

    run_id: str | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunHighlighted)


@dataclass
class RunOpenRequested(Message):
    """Enter on a run: open its run screen."""

    run_id: str


@dataclass
class TaskLaunchRequested(Message):
    """Enter on a task (or ``n``): open the launch form for it."""

    task: str


@dataclass
class LaunchRequested(Message):
    """The launch form was submitted with a request that passed its checks."""

    request: Any


@dataclass
class StopRequested(Message):
    """The user confirmed stopping a run (``kill``: at once, without a checkpoint)."""

    run_id: str
    kill: bool = False


@dataclass
class VerifyRequested(Message):
    """The user asked to verify that a run resumes exactly (``workbench verify``)."""

    run_id: str


@dataclass
class RunVerified(Message):
    """A verification ended: ``text`` is its verdict (or why it could not run)."""

    run_id: str
    ok: bool
    text: str


@dataclass
class ResumeRequested(Message):
    """The user asked to resume a run."""

    run_id: str


@dataclass
class ForkRequested(Message):
    """The user asked to fork a run with edited config from a checkpoint.

    Attributes:
        code: ``snapshot`` (the parent's code) or ``worktree`` (the working tree now).
        device: Another device than the parent's, or None.
        precision: Another precision than the parent's, or None.
        name: The fork's name (None: a friendly one is picked).
        tags: The fork's tags (None: the parent's).
    """

    run_id: str
    overrides: list[str]
    checkpoint: str | None = None
    code: str = "snapshot"
    device: str | None = None
    precision: str | None = None
    name: str | None = None
    tags: list[str] | None = None


@dataclass
class DeleteRequested(Message):
    """The user confirmed deleting a run."""

    run_id: str


@dataclass
class ChartCursorMoved(Message):
    """The cursor on a chart moved: the x it is at and each run's value there."""

    x: float | None
    values: dict[str, float] = dataclasses.field(default_factory=dict)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ChartCursorMoved)


@dataclass
class BatchRequested(Message):
    """Do one action to several runs (the marked ones), after one confirmation.

    Attributes:
        action: ``stop``, ``kill``, ``resume``, ``delete`` or ``tag``.
        run_ids: The runs it applies to (those it does not apply to were left out).
        add: Tags to add (``tag``).
        remove: Tags to remove (``tag``).
    """

    action: str
    run_ids: list[str]
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


@dataclass
class BatchDone(Message):
    """A batch action ended: what it did to each run.

    Attributes:
        action: As in :class:`BatchRequested`.
        done: The runs it was done to.
        rows: Their rows afterwards (resumed or retagged runs), for the cache.
        failed: ``(run id, why)`` of the runs it failed for.
    """

    action: str
    done: list[str]
    rows: list[Run] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ExportDone(Message):
    """Runs were exported (``workbench export``'s work) into ``folder``, or it failed (``error``)."""

    folder: str
    runs: int = 0
    points: int = 0
    error: str = ""
