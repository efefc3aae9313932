"""The chaos campaign shared by ``tests/chaos/test_chaos.py`` (a short one) and
``scripts/chaos.py`` (100+ kills): real runs, SIGKILLed at random moments, resumed, checked.

Each run trains ``Chaos`` (``chaos_task.py``: a checkpoint every few steps, a slow
validation that leaves a marker file) in its own copy of the quickstart project, launched
and resumed through the ``workbench`` CLI. A driver thread per run kills, at a moment drawn
from a seeded RNG,

- a target: the training process (``trainer``), its supervisor (``supervisor``: the trainer
  lives on as an orphan that holds the run, so ``workbench resume`` must refuse), both at
  once (``both``: a machine crash, nobody writes an outcome), or an orphan's trainer
  (``orphan``);
- at a moment: mid-training after a random step (``random``), while the process starts and
  restores (``startup``, resumed attempts only), within milliseconds of a new checkpoint file
  (``checkpoint``), or during a validation (``validation``);

then resumes the run (``WORKBENCH_STALE_AFTER=0`` so that a run whose processes are all dead
is reconciled to ``interrupted`` at once: each run has its own project, so that window never
touches another run being launched). Once every run ended, :mod:`chaos_checks` holds each
to the promise against one uninterrupted run of the same config.

The decisions (targets, moments, steps, delays) come from ``random.Random`` seeded with the
campaign's seed and the run's number; timing on a shared machine does not repeat, so a seed
replays the same plan, not the same microseconds.
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaos_checks import check_run, final_state, git_state, leftover_processes, series_of
from chaos_driver import MOMENTS, TARGETS, TASK_FILE, Driver, Report, Settings
from support.projects import PATIENCE, clean_env, kill_run_processes, make_project, wb

from workbench.store import RunIndex

__all__ = ["MOMENTS", "TARGETS", "Report", "Settings", "probe_cache", "run_chaos"]


def probe_cache(state: Path) -> Path:
    """``devices.json`` from one real run of the device probe in ``state`` (made once)."""
    from workbench.runs.probe import probe_devices

    cache = state / "devices.json"
    if not cache.is_file():
        state.mkdir(parents=True, exist_ok=True)
        probe_devices(state)
    return cache

def _baseline(base: Path, probe: Path, settings: Settings) -> tuple[Path, str]:
    """Launch the uninterrupted run (in its own project); return the project and run id."""
    root = make_project(base, probe, {"tasks/chaos.py": TASK_FILE.read_text()})
    result = wb(root, "run", *settings.launch_args, env=clean_env(base))
    assert result.returncode == 0, f"the uninterrupted run did not launch: {result.stderr}"
    return root, json.loads(result.stdout)["id"]


def run_chaos(settings: Settings, workdir: Path, probe: Path, log: Any = None) -> Report:
    """Run a campaign in ``workdir``; return its report (failures listed, never raised).

    Args:
        settings: The campaign.
        workdir: An empty folder for the projects.
        probe: A ``devices.json`` from the device probe (:func:`probe_cache`).
        log: Called with a line as each run ends (e.g. ``print``), or None.
    """
    started = time.monotonic()
    report = Report(settings.seed)
    master = random.Random(settings.seed)
    # The first kill of runs 0, 1, 2... covers every target and every first-attempt moment.
    targets = master.sample(TARGETS, len(TARGETS))
    moments = master.sample(MOMENTS[:3], 3)
    base_root, base_id = _baseline(workdir / "baseline", probe, settings)
    drivers: dict[int, Driver] = {}
    started_runs, finished = [0], [0]
    count_lock = threading.Lock()
    cap = max(settings.runs, 4 * -(-settings.min_kills // max(1, settings.kills_per_run)))

    def next_number() -> int | None:
        """The next run's number, while runs are wanted: ``runs`` of them, and more until the
        kills made and planned in the runs under way reach ``min_kills`` (at most ``cap``)."""
        with count_lock:
            n = started_runs[0]
            planned = report.total_kills + settings.kills_per_run * (n - finished[0])
            if n >= cap or (n >= settings.runs and planned >= settings.min_kills):
                return None
            started_runs[0] += 1
            return n

    def worker() -> None:
        while (n := next_number()) is not None:
            driver = None
            try:
                driver = Driver(n, workdir / f"run-{n}", probe, settings, report)
                drivers[n] = driver
                driver.drive((targets[n % 3], moments[n % 3]))
            except Exception:  # noqa: BLE001 - every run's failure is reported with its history
                with report.lock:
                    report.failures.append(f"run {n} ({driver.run_id if driver else 'not launched'}): "
                                           f"{traceback.format_exc(limit=4).strip()}")
            finally:
                with count_lock:
                    finished[0] += 1
                if driver is not None:
                    driver.close()
                    report.histories[f"run {n} {driver.run_id}"] = driver.history
                    if log:
                        log(f"run {n} {driver.run_id}: " + "; ".join(driver.history))

    with ThreadPoolExecutor(max_workers=settings.parallel, thread_name_prefix="chaos") as pool:
        for _ in range(settings.parallel):
            pool.submit(worker)
    report.runs = len(drivers)
    _check_all(report, settings, [drivers[n] for n in sorted(drivers)], base_root, base_id, workdir)
    report.wall_s = time.monotonic() - started
    return report


def _check_all(report: Report, settings: Settings, drivers: list[Driver], base_root: Path, base_id: str,
               workdir: Path) -> None:
    """Hold every run to the promise; then make sure nothing is left running."""
    try:
        with RunIndex(base_root / ".workbench" / "index.db") as index:
            deadline = time.monotonic() + PATIENCE
            while (row := index.get_run(base_id)) is not None and row.status.is_live and time.monotonic() < deadline:
                time.sleep(0.2)
            assert row is not None and row.status == "completed", f"the uninterrupted run ended {row and row.status}"
            assert row.total_steps == settings.total, f"{row.total_steps} steps, expected {settings.total}"
            base = series_of(index, base_id)
        base_end = final_state(row.run_dir)
    except Exception as exc:  # noqa: BLE001
        report.failures.append(f"the uninterrupted run: {exc}")
        base, base_end = {}, ("", {})
    for driver in drivers:
        if not driver.run_id:
            continue
        name = f"run {driver.number} {driver.run_id}"
        report.failures += [f"{name}: {p}" for p in driver.problems]
        if base:
            with RunIndex(driver.root / ".workbench" / "index.db") as index:
                problems, checked = check_run(index, driver.run_id, driver.resumes, base, base_end, settings.total)
            report.points += checked
            report.failures += [f"{name}: {p}" for p in problems]
        report.failures += [f"{name}: git {d}" for d in driver.git_before.differences(git_state(driver.root, driver.env))]
    needles = [str(workdir)] + [d.run_id for d in drivers] + [base_id]
    for line in leftover_processes(needles):
        report.failures.append(f"process left behind: {line}")
    for root in [base_root] + [d.root for d in drivers]:
        kill_run_processes(root)
