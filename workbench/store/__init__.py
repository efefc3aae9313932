"""The run index: SQLite schema, reads and writes, and the metric writer.

This package is imported by the workbench process (CLI and TUI) and by training
processes alike, so it never imports torch or textual.
"""

from __future__ import annotations

from workbench.store._db import BUSY_TIMEOUT_S
from workbench.store._process import current_host, pid_alive, process_create_time
from workbench.store._schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION, STATUSES
from workbench.store.errors import (
    AmbiguousRun,
    InvalidValue,
    MetricWriterError,
    RunNotFound,
    SchemaTooNew,
    StoreError,
    UnknownField,
)
from workbench.store.ids import new_run_id
from workbench.store.index import INTERRUPTED_ERROR, RunIndex
from workbench.store.writer import MetricWriter

__all__ = [
    "BUSY_TIMEOUT_S",
    "INTERRUPTED_ERROR",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "AmbiguousRun",
    "InvalidValue",
    "MetricWriter",
    "MetricWriterError",
    "RunIndex",
    "RunNotFound",
    "SchemaTooNew",
    "StoreError",
    "UnknownField",
    "current_host",
    "new_run_id",
    "pid_alive",
    "process_create_time",
]
