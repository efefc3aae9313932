"""Errors raised by the run index, each shown to the user as one line."""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = [
    "AmbiguousRun",
    "InvalidValue",
    "MetricWriterError",
    "RunNotFound",
    "SchemaTooNew",
    "StoreError",
    "UnknownField",
    "damaged_index_advice",
]


def damaged_index_advice(path: str) -> str:
    """What a user can do about an index file that cannot be read or written."""
    return (f"restore {path} from a backup, recover it with `sqlite3 {path} .recover`, or move it "
            "aside and rebuild it from the run folders with `workbench index rebuild`")


class StoreError(WorkbenchError):
    """Base class of the run index's errors."""


class SchemaTooNew(StoreError):
    """The index was written by a newer workbench than this one.

    Attributes:
        found: The schema version recorded in the file.
        known: The newest schema version this code knows.
    """

    def __init__(self, path: str, found: int, known: int) -> None:
        self.path = path
        self.found = found
        self.known = known
        super().__init__(
            f"index.db was written by a newer workbench (schema {found}, this one knows "
            f"{known}); upgrade workbench"
        )


class RunNotFound(StoreError, LookupError):
    """No run matches the reference the user gave."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no run matches {ref!r}; `workbench ls` lists runs")


class AmbiguousRun(StoreError, LookupError):
    """A run reference is a prefix of several run ids.

    Attributes:
        ref: What the user typed.
        candidates: The ids of the matching runs (newest first).
    """

    def __init__(self, ref: str, candidates: list[str]) -> None:
        self.ref = ref
        self.candidates = candidates
        shown = ", ".join(candidates[:5])
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        super().__init__(
            f"{ref!r} matches {len(candidates)} runs ({shown}{more}); give a full run id"
        )


class UnknownField(StoreError, ValueError):
    """A write named a column that the table does not have."""


class InvalidValue(StoreError, ValueError):
    """A write gave a value that the index refuses (a bad status, an unsafe path, ...)."""


class MetricWriterError(StoreError):
    """The metric writer's background thread failed to write some points."""
