"""The run index: SQLite schema, reads and writes, and the metric writer.

This package is imported by the workbench process (CLI and TUI) and by training
processes alike, so it never imports torch or textual.
"""

from __future__ import annotations

from workbench.store._db import BUSY_TIMEOUT_S
from workbench.store._metrics import TIME_KEYED_PREFIX
from workbench.store._rollup import downsample
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
from workbench.store.ids import current_host, new_run_id
from workbench.store.index import RunIndex
from workbench.store.records import EVALUATION, Run, RunEvent, RunStatus, RunStep, StepStatus, StopMode
from workbench.store.writer import MetricWriter

__all__ = [
    "BUSY_TIMEOUT_S",
    "EVALUATION",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "TIME_KEYED_PREFIX",
    "AmbiguousRun",
    "InvalidValue",
    "MetricWriter",
    "MetricWriterError",
    "Run",
    "RunEvent",
    "RunIndex",
    "RunNotFound",
    "RunStatus",
    "RunStep",
    "SchemaTooNew",
    "StepStatus",
    "StopMode",
    "StoreError",
    "UnknownField",
    "current_host",
    "downsample",
    "new_run_id",
]
