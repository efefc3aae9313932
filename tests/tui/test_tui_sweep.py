"""Sweeps in the app: the launch form turned into a sweep, and the sweep view (keys pressed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, make_test_app, settle, stop_live_runs, wait_until
from test_tui_launch import open_form, set_field

from workbench.store import RunIndex
from workbench.tui.screens.launch import LaunchForm


def _text(form: LaunchForm, selector: str) -> str:
    return str(form.query_one(selector).render())


async def _checked(pilot: Any) -> None:
    """Let the form's debounced check run and land."""
    await pilot.pause(0.4)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def put(pilot: Any, form: LaunchForm, name: str, text: str) -> None:
    """Set a field's text at once (as a paste would): the form reacts as to typing, for fewer keys."""
    form.query_one(f"#cfg-{[f.name for f in form.fields].index(name)}").value = text
    await pilot.pause()


def _index_empty(root: Path) -> bool:
    path = root / ".workbench" / "index.db"
    if not path.exists():
        return True
    with RunIndex(path) as index:
        return not index.list_runs() and not index.list_sweeps()


# -- the launch form -------------------------------------------------------------------------


async def test_the_form_counts_a_grid_and_names_a_bad_item(project: Path) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, ticks=1)
        form = await open_form(pilot, "SineRegression")
        assert not form.query_one("#sweep-row").display and not form.query_one("#sweep-note").display
        # A grid: a comma list and a bracketed list multiply.
        await set_field(pilot, form, "lr", "1e-4, 1e-3, 1e-2")
        await put(pilot, form, "hidden", "[16, 32]")
        await _checked(pilot)
        assert form.is_sweep
        note = _text(form, "#sweep-note")
        assert "grid: lr 3 × hidden 2 = 6 runs" in note, note
        assert form.query_one("#sweep-row").display and form.query_one("#parallel").display
        assert not form.query_one("#trials").display  # a grid needs no trial count
        assert str(form.query_one("#launch").label) == "Start sweep"
        assert "start the sweep" in _text(form, "#launch-status")
        request = form.sweep_request()
        assert list(request.params) == ["lr=1e-4,1e-3,1e-2", "hidden=16,32"] and request.random is None
        # A distribution needs a count: the trials field appears, 10 by default.
        await put(pilot, form, "lr", "loguniform(1e-5, 1e-1)")
        await _checked(pilot)
        assert form.query_one("#trials").display
        assert "random search: 10 trials" in _text(form, "#sweep-note")
        form.query_one("#trials").value = "3"
        await _checked(pilot)
        assert "random search: 3 trials drawing lr, hidden" in _text(form, "#sweep-note")
        assert form.sweep_request().random == 3
        # A sweep's trials run with the project's precision (and backend, processes): said plainly.
        form.query_one("#precision").value = "bf16-mixed"
        await _checked(pilot)
        assert "a sweep runs every trial with the project's backend single" in _text(form, "#launch-status")
        form.query_one("#precision").value = "32"
        # A bad item names itself, in the form's words (no -g), beside the field and below.
        await put(pilot, form, "lr", "1e-3,abc")
        await _checked(pilot)
        lr = [f.name for f in form.fields].index("lr")
        assert "item 2 (abc) is refused: expected float, got 'abc'" in _text(form, f"#err-{lr}")
        status = _text(form, "#launch-status")
        assert "lr: item 2 (abc) is refused" in status and "-g" not in status
        assert form.query_one("#launch").disabled
        await pilot.press("enter")  # refused: nothing starts
        await pilot.pause(0.3)
        assert isinstance(app.screen, LaunchForm)
        # A bad bound of a distribution, and a value out of the field's range.
        await put(pilot, form, "lr", "loguniform(0, 1)")
        await pilot.pause()
        assert "a log scale needs bounds above 0" in _text(form, f"#err-{lr}")
        await put(pilot, form, "lr", "1e-3")
        await put(pilot, form, "hidden", "16, 0")
        await _checked(pilot)
        assert "hidden: item 2 (0) is refused" in _text(form, "#launch-status")
        # One value again: a plain launch.
        await put(pilot, form, "hidden", "16")
        await _checked(pilot)
        assert not form.is_sweep and str(form.query_one("#launch").label) == "Launch"
        assert not form.query_one("#sweep-row").display
        await pilot.press("escape")
    assert _index_empty(project)



@pytest.mark.slow
async def test_a_real_sweep_starts_from_the_form(project: Path) -> None:
    """Two tiny runs, started from the form as `workbench sweep start` starts them, waited for."""
    from workbench.tui.screens.sweep import SweepScreen
    from workbench.tui.widgets.run_table import RunTable

    app = make_test_app(project, poll_interval=0.3)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, ticks=1)
            form = await open_form(pilot, "SineRegression")
            await put(pilot, form, "epochs", "1")
            await put(pilot, form, "samples", "200")
            await set_field(pilot, form, "lr", "1e-3,1e-2")
            form.query_one("#run-name").value = "lrs"
            form.query_one("#parallel").focus()
            await pilot.press("2")
            await _checked(pilot)
            assert "grid: lr 2 values: 2 runs; at most 2 at once" in _text(form, "#sweep-note")
            assert "ready" in _text(form, "#launch-status"), _text(form, "#launch-status")
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, LaunchForm), timeout=60)
            with RunIndex(project / ".workbench" / "index.db") as index:
                (sweep,) = index.list_sweeps()
                trials = index.runs_of_sweep(sweep.id)
            assert (sweep.name, sweep.kind, sweep.parallel, sweep.task) == ("lrs", "grid", 2, "SineRegression")
            assert [t.name for t in trials] == ["lrs-1", "lrs-2"]
            assert [(t.config["lr"], t.config["epochs"], t.config["samples"]) for t in trials] == \
                [(1e-3, 1, 200), (1e-2, 1, 200)]
            assert {t.snapshot_commit for t in trials} == {sweep.snapshot_commit}  # one snapshot
            assert app.screen.query_one(RunTable).current == trials[0].id
            ids = [t.id for t in trials]
            await wait_until(pilot, lambda: all(app.runs.rows[i].status not in ("queued", "running") for i in ids),
                             timeout=240, tick=False)
            assert [app.runs.rows[i].status.value for i in ids] == ["completed", "completed"], \
                [app.runs.rows[i].error for i in ids]
            await pilot.press("w")
            await settle(pilot, ticks=1)
            assert isinstance(app.screen, SweepScreen)
            rows = _rows(app.screen)
            assert sorted(r[1] for r in rows) == ["lrs-1", "lrs-2"] and rows[0][-1].endswith("★")
            assert "2 trials: 2 completed" in str(app.screen.query_one("#sweep-counts").render())
            assert "· done" in str(app.screen.query_one("#sweep-header").render())  # not 'running' forever
    finally:
        stop_live_runs(project)

# -- the sweep view over a hand-filled index ---------------------------------------------------

SWEEP_ID = "2n00000000sw"
#: A run of no sweep, then five trials of sweep "lr" (see conftest.RUNS for the fields).
SWEEP_RUNS = [
    ("2n0000000001", "quiet-lynx-1", "SineRegression", "completed", 0.01, 64, 120, 120),
    ("2n00000000s1", "lr-1", "SineRegression", "completed", 0.001, 32, 120, 120),
    ("2n00000000s2", "lr-2", "SineRegression", "completed", 0.001, 64, 120, 120),
    ("2n00000000s3", "lr-3", "SineRegression", "failed", 0.01, 32, 30, 120),
    ("2n00000000s4", "lr-4", "SineRegression", "running", 0.01, 64, 60, 120),
    ("2n00000000s5", "lr-5", "SineRegression", "queued", 0.1, 32, 0, 120),
]
#: The last val/loss of each trial (lr-5 waits: none); best first: lr-2, lr-4, lr-1, lr-3, lr-5.
LAST_VAL = {"2n00000000s1": (0.30, 120), "2n00000000s2": (0.12, 120), "2n00000000s3": (0.80, 24),
            "2n00000000s4": (0.20, 60)}
BEST_FIRST = ["lr-2", "lr-4", "lr-1", "lr-3", "lr-5"]


def fill_sweep(root: Path) -> None:
    """SWEEP_RUNS in the index, the last five as the trials of a grid sweep named ``lr``."""
    from conftest import fill_index

    fill_index(root, SWEEP_RUNS)
    with RunIndex(root / ".workbench" / "index.db") as index:
        index.create_sweep(id=SWEEP_ID, name="lr", task="SineRegression", kind="grid", created_at=NOW - 3000,
                           spec={"params": ["lr=0.001,0.01,0.1", "hidden=32,64"], "keys": ["lr", "hidden"],
                                 "varied": ["lr", "hidden"], "fixed": ["epochs=10"], "trials": 5},
                           parallel=2, metric="val/loss", direction="min", snapshot_commit="a4f73e80b1" + "0" * 30,
                           status="running")
        for run_id, *_ in SWEEP_RUNS[1:]:
            index.update_run(run_id, sweep_id=SWEEP_ID)
        index.update_run("2n00000000s5", queued_at=NOW - 60, status_reason="waiting for a slot (sweep lr: 2 of 2)")
        for run_id, (value, step) in LAST_VAL.items():
            index.add_metrics(run_id, [("val/loss", value, step, NOW - 600 + step)])


@pytest.fixture
def sweep_project(tmp_path: Path) -> Path:
    """A quickstart copy (no git) whose index holds SWEEP_RUNS and the sweep ``lr``."""
    from support.projects import make_project

    root = make_project(tmp_path, git=False)
    fill_sweep(root)
    return root


async def _open_sweep(pilot: Any, settled: bool = False) -> Any:
    from workbench.tui.screens.sweep import SweepScreen
    from workbench.tui.widgets.run_table import RunTable

    app = pilot.app
    if not settled:
        await settle(pilot, ticks=2)
    table = app.screen.query_one(RunTable)
    table.select("2n00000000s5")  # the newest run: a trial
    await pilot.press("w")
    await settle(pilot, ticks=1)
    assert isinstance(app.screen, SweepScreen)
    return app.screen


def _rows(screen: Any) -> list[list[str]]:
    from textual.widgets import DataTable

    table = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def test_the_sweep_view_ranks_counts_opens_and_stops(sweep_project: Path) -> None:
    from workbench.tui.screens.confirm import ConfirmScreen
    from workbench.tui.screens.help import key_sections
    from workbench.tui.screens.run import RunScreen
    from workbench.tui.screens.sweep import SweepScreen
    from workbench.tui.widgets.run_table import RunTable

    app = make_test_app(sweep_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, ticks=2)
        table = app.screen.query_one(RunTable)
        # The run table marks the trials of a sweep; a run of none is not marked, and w says why.
        lines = {app.runs.rows[i].name: table.render_line(1 + n).text for n, i in enumerate(app.runs.view)}
        assert "⊞ SineRegress" in lines["lr-1"] and "⊞" not in lines["quiet-lynx-1"]
        table.select("2n0000000001")
        await pilot.press("w")
        assert not isinstance(app.screen, SweepScreen)
        main_keys = dict(key_sections(app.screen)[0][1])  # what ? lists
        assert main_keys["w"].startswith("Open the sweep of the selected run")
        screen = await _open_sweep(pilot, settled=True)
        # Trials best first by the sweep's metric (min), varied parameters as columns, the other run left out.
        from textual.widgets import DataTable

        columns = [str(c.label) for c in screen.query_one(DataTable).columns.values()]
        assert columns == ["#", "name", "status", "lr", "hidden", "val/loss"]
        rows = _rows(screen)
        assert [r[1] for r in rows] == BEST_FIRST
        assert rows[0][3:] == ["0.001", "64", "0.12 ★"] and rows[-1][5] == "—"
        counts = str(screen.query_one("#sweep-counts").render())
        assert "5 trials: 1 queued, 1 running, 2 completed, 1 failed" in counts, counts
        assert "best val/loss 0.12 (min) lr-2: lr=0.001 hidden=64" in counts
        header = str(screen.query_one("#sweep-header").render())
        assert "Sweep lr" in header and "grid" in header and "running" in header
        assert screen.query_one("#sweep-chart-1").run_ids == ["2n00000000s2", "2n00000000s4", "2n00000000s1",
                                                               "2n00000000s3"]  # the best with values
        # Enter opens the trial under the cursor (the second: lr-4); Esc comes back.
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == "2n00000000s4"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        # s stops the sweep after a confirmation: the waiting trial ends without starting.
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        assert "1 waiting trial(s) will not start; 1 running" in str(app.screen.detail)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.runs.rows["2n00000000s5"].status == "stopped", timeout=30)
        await settle(pilot, ticks=1)
        assert "stopped" in str(screen.query_one("#sweep-header").render())
        assert "1 stopped" in str(screen.query_one("#sweep-counts").render())
        with RunIndex(sweep_project / ".workbench" / "index.db") as index:
            assert index.get_sweep(SWEEP_ID).status == "stopped"
            assert index.get_run("2n00000000s4").stop_requested_at is not None  # asked, on its host


def test_the_sweep_screen_keys_are_documented() -> None:
    from test_tui_docs import DOC, SHOWN
    from textual.binding import Binding

    from workbench.tui.screens.sweep import SweepScreen

    bindings = [b for b in SweepScreen.BINDINGS if isinstance(b, Binding)]
    assert {b.key for b in bindings} == {"escape", "enter", "s", "r"}
    for binding in bindings:
        assert f"`{SHOWN.get(binding.key, binding.key)}`" in DOC.split("### Sweep screen", 1)[1]
        assert (getattr(SweepScreen, f"action_{binding.action}").__doc__ or "").strip()


def test_sweep_screen_snapshot(snap_compare, sweep_project: Path) -> None:
    async def ready(pilot: Any) -> None:
        await _open_sweep(pilot)
        await settle(pilot, ticks=1)

    assert snap_compare(make_test_app(sweep_project), terminal_size=(120, 36), run_before=ready)
