"""Fixtures of the app tests: a copy of the quickstart project, and indexes filled by hand.

``filled_project`` writes runs with fixed ids, names, times and curves straight into the
run index (RunIndex and MetricWriter), so that screenshots are the same on every machine:
the app gets a fixed clock, ``TZ=UTC`` and ``HOME`` above the project (paths show as ``~``).
Live runs are recorded on another host, so the app's reconcile leaves them alone.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.projects import make_project

from workbench.store import MetricWriter, RunIndex

#: The app's "now" in every deterministic test: 2026-01-15 12:00:00 UTC.
NOW = 1768478400.0
PROBE = {"devices": ["cpu"], "default": "cpu", "torch": "test"}
OTHER_HOST = "lab-node-7"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """UTC times, ``~`` = tmp_path, and no user git config."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty copy of the quickstart project in a git repository."""
    return make_project(tmp_path)


# -- a hand-filled index ---------------------------------------------------------------------

#: (id, name, task, status, lr, hidden, steps done, total) — newest last.
RUNS = [
    ("2n0000000001", "quiet-lynx-1", "SineRegression", "completed", 0.01, 64, 120, 120),
    ("2n0000000002", "bold-yak-2", "MLPRegression", "stopped", 0.003, 64, 48, 120),
    ("2n0000000003", "wild-ibis-3", "SpiralClassification", "failed", 0.01, 128, 4, 120),
    ("2n0000000004", "pale-mole-4", "SineRegression", "interrupted", 0.01, 128, 85, 120),
    ("2n0000000005", "calm-heron-5", "MLPRegression", "running", 0.02, 64, 16, 120),
    ("2n0000000006", "brisk-otter-6", "SineRegression", "running", 0.003, 64, 74, 120),
]


def _curve(run: int, step: int) -> float:
    return 0.9 / (1 + step / (8 + 3 * run)) + 0.02 * math.sin(step / 3 + run) + 0.03


def fill_index(root: Path, runs: list[tuple[Any, ...]] = RUNS) -> dict[str, dict[str, Any]]:
    """Write ``runs`` (see RUNS) with curves, events and logs into ``root``'s index."""
    state = root / ".workbench"
    out: dict[str, dict[str, Any]] = {}
    with RunIndex(state / "index.db") as index:
        for n, (run_id, name, task, status, lr, hidden, steps, total) in enumerate(runs):
            created = NOW - 3600 + n * 600
            started = created + 4
            live = status in ("running", "queued")
            run_dir = state / "runs" / run_id
            (run_dir / "artifacts").mkdir(parents=True)
            (run_dir / "output.log").write_text(
                f"=== attempt 1 · {task} on cpu/single ===\n"
                + "".join(f"epoch {s // 12 + 1}  step {s}/{total}  loss {_curve(n, s):.4f}\n"
                          for s in range(0, steps + 1, 12)))
            row = index.create_run(
                id=run_id, name=name, task=task, status=status, created_at=created,
                started_at=started, ended_at=None if live else started + 60 * (n + 1),
                heartbeat_at=NOW - 1 if live else None, host=OTHER_HOST, device="cpu",
                backend="single", nproc=1, precision="32",
                config={"epochs": 10, "lr": lr, "hidden": hidden, "seed": 0},
                tags=["sweep-a"] if n % 2 else [], run_dir=str(run_dir),
                git_head=f"{'a1f3' if n % 3 else '9c2e'}{n}00000000000000000000000000000000000"[:40],
                git_branch="main", git_dirty=n % 2 == 0, snapshot_commit=None,
                step=steps, total_steps=total, epoch=steps // 12,
                error="RuntimeError: CUDA out of memory" if status == "failed" else None,
                traceback=("Traceback (most recent call last):\n  File \"tasks/spirals.py\", line 40, in "
                           "training_step\nRuntimeError: CUDA out of memory") if status == "failed" else None,
                exit_code=1 if status == "failed" else (0 if status == "completed" else None),
            )
            points = [("train/loss", _curve(n, s), s, started + s) for s in range(1, steps + 1)]
            points += [("val/loss", _curve(n, s) + 0.01, s, started + s) for s in range(12, steps + 1, 12)]
            points += [("val/acc", min(0.99, 0.5 + s / (200 + 20 * n)), s, started + s)
                       for s in range(12, steps + 1, 12)]
            index.add_metrics(run_id, points)
            index.add_artifacts(run_id, [{"path": "model.pt", "size": 52_000 + n, "kind": "weights",
                                          "created_at": started + 30}])
            out[run_id] = row
    with RunIndex(state / "index.db") as index:
        conn = index.connection
        with index.write():
            conn.execute("UPDATE events SET time = ?", (NOW - 60,))
            for run_id in out:
                conn.execute("INSERT INTO events (run_id, time, kind, message) VALUES (?, ?, ?, ?)",
                             (run_id, NOW - 3000, "launched", "on cpu/single"))
    return out


@pytest.fixture
def filled_project(tmp_path: Path) -> Path:
    """A quickstart copy (no git) whose index holds RUNS."""
    root = make_project(tmp_path, git=False)
    fill_index(root)
    return root


def log_point(root: Path, run_id: str, key: str, value: float, step: int) -> None:
    """Log one point the way a training process does (MetricWriter, flushed on close)."""
    with MetricWriter(root / ".workbench" / "index.db", run_id, flush_interval=0.05) as writer:
        writer.log(key, value, step)


def make_test_app(root: Path, **kwargs: Any) -> Any:
    """The app as the tests run it: fixed clock and probe, no automatic ticks."""
    from workbench.tui.app import make_app

    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("probe", PROBE)
    kwargs.setdefault("poll_interval", 0)
    return make_app(root, **kwargs)


async def settle(pilot: Any, ticks: int = 2, timeout: float = 90.0) -> None:
    """Run ticks until the app has read everything it wants: no tick, timer or worker pending.

    Generous on time: on a loaded machine a tick can take seconds, and a screenshot taken
    before the last read lands would differ from the committed one.

    Raises:
        AssertionError: ``timeout`` seconds passed first; the message says what was pending.
    """
    app = pilot.app
    deadline = time.monotonic() + timeout

    async def until(done: Any, waiting_for: Any) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"settle: still waiting after {timeout}s for {waiting_for()}")
            await pilot.pause(0.02)

    await pilot.pause(0.3)  # debounce timers (the launch form checks 0.25 s after a keystroke)
    for n in range(ticks):
        start = app.ticks
        await until(lambda: not app._in_flight, lambda: f"the tick in flight (before tick {n + 1} of {ticks})")
        app.tick()
        await until(lambda: app.ticks != start, lambda: f"tick {n + 1} of {ticks} to land")
    await until(lambda: not _pending(app), lambda: ", ".join(_pending(app)))
    try:
        await asyncio.wait_for(app.workers.wait_for_complete(), max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise AssertionError(f"settle: workers still running after {timeout}s: "
                             f"{[w.name for w in app.workers if w.is_running]}") from None
    for field in app.screen.query("Input"):
        field.cursor_blink = False  # a blinking cursor makes screenshots depend on timing
    await pilot.pause()
    await pilot.pause()


def _pending(app: Any) -> list[str]:
    """What the app is still doing or about to do (empty when it has settled)."""
    pending = []
    if app._in_flight:
        pending.append("a tick in flight")
    if app._again:
        pending.append("a tick asked for again")
    if app.discovery is None and not app.discovery_error:
        pending.append("task discovery")
    if _workers_busy(app):
        pending.append(f"workers {[w.name for w in app.workers if w.is_running]}")
    if _form_checking(app):
        pending.append("the launch form's check")
    if _tables_unsized(app):
        pending.append("a table's column widths (sized when the table next idles)")
    return pending


def _tables_unsized(app: Any) -> bool:
    """A DataTable that has rows or cells whose widths it has not measured yet.

    DataTable sizes its columns on its next Idle event; on a loaded machine a screenshot can
    come first, and shows every column at its header's width.
    """
    from textual.widgets import DataTable

    return any(table._require_update_dimensions or table._updated_cells
               for table in app.screen.query(DataTable))


def _form_checking(app: Any) -> bool:
    """A launch form whose last change still awaits its debounced check."""
    return any(getattr(screen, "checking", False) for screen in app.screen_stack)


def _workers_busy(app: Any) -> bool:
    return any(w.is_running for w in app.workers)


async def wait_until(pilot: Any, predicate: Any, timeout: float = 60.0, tick: bool = True) -> None:
    """Pause (ticking) until ``predicate()`` holds; fail with a clear message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        if tick and not pilot.app._in_flight:
            pilot.app.tick()
        await pilot.pause(0.1)


def stop_live_runs(root: Path) -> None:
    """Stop every run still live in ``root`` (so no test leaves processes behind)."""
    from workbench.runs import stop_run, wait_for

    path = root / ".workbench" / "index.db"
    if not path.exists():
        return
    with RunIndex(path) as index:
        for row in index.list_runs(status=["queued", "running"]):
            if row.host == OTHER_HOST:
                continue
            try:
                stop_run(index, row)
                wait_for(index, row.id, timeout=60)
            except Exception:
                pass
