"""The check a trial of a grid or random sweep makes of its sweep's metric, in its training process.

An Optuna study's controller watches its trials and warns at the first validation when a
trial logs ``val/`` keys but not the study's metric (``sweep_controller``). A grid or random
sweep has no controller: its trials make the same check themselves, once, at the end of
their first epoch (after its validation), and leave the same ``warning`` event on the run
(shown by ``workbench show``, ``sweep show`` and the app) and a line in its output. The run
goes on: the sweep's table only lacks that column for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["sweep_metric_check"]


def sweep_metric_check(index: Any, run_id: str, writer: Any) -> Callable[[], None] | None:
    """The check to run at the end of the trial's first epoch, or None when there is none.

    None for a run outside a sweep, a trial of an Optuna study (its controller checks), a
    sweep without a metric, and a metric of the test stage (logged after the fit).

    Args:
        index: The run index (a :class:`~workbench.store.RunIndex`) of rank 0.
        run_id: The run.
        writer: Its metric writer: flushed first, so that the keys of the epoch are in the index.
    """
    run = index.get_run(run_id)
    if run is None or not run.sweep_id:
        return None
    sweep = index.get_sweep(run.sweep_id)
    if sweep is None or sweep.kind == "optuna" or not sweep.metric or sweep.metric.startswith("test/"):
        return None
    metric = sweep.metric

    def check() -> None:
        from workbench.runs.sampler import is_system_key
        from workbench.runs.sweep_controller import metric_missing

        writer.flush()
        keys = [k for k in index.metric_keys(run_id) if not is_system_key(k)]
        if metric in keys:
            return
        if any(e.kind == "warning" and (e.data or {}).get("missing_metric") == metric
               for e in index.events(run_id)):
            return  # said by an earlier attempt
        message = metric_missing(metric, keys)
        index.add_event(run_id, "warning", message + " (check the sweep's --metric)",
                        {"missing_metric": metric, "keys": keys})
        print(f"warning: {message}", flush=True)

    return check
