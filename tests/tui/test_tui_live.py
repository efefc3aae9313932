"""Live behaviour: incremental ticks and a logged point reaching the chart (no processes)."""

from __future__ import annotations

from pathlib import Path

from conftest import log_point, make_test_app, settle

from workbench.store import RunIndex
from workbench.tui._state import SeriesCache
from workbench.store import downsample
from workbench.tui._watcher import PollRequest, SeriesKey, Watcher
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.run_table import RunTable

LIVE = "2n0000000006"  # brisk-otter-6, running, 74 steps of train/loss


def test_a_tick_reads_only_what_changed(filled_project: Path) -> None:
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        watcher = Watcher(index)
        first = watcher.poll(PollRequest(since=0.0))
        assert len(first.runs) == 6
        assert watcher.poll(PollRequest(since=first.since)).runs == []
        index.update_run(LIVE, step=75)
        changed = watcher.poll(PollRequest(since=first.since))
        assert [r.id for r in changed.runs] == [LIVE]
        # A curve is extended from the last step the app has, never read again whole.
        tail = watcher.poll(PollRequest(since=changed.since, tails=[(SeriesKey(LIVE, "train/loss"), 70)]))
        assert [(t.after_step, [p[0] for p in t.points]) for t in tail.tails] == [(70, [71.0, 72.0, 73.0, 74.0])]


def test_series_cache_loads_once_then_extends_live_runs() -> None:
    cache = SeriesCache()
    owner = object()
    key = SeriesKey("r1", "loss")
    assert cache.want(owner, {key: 80})
    loads, tails = cache.plan(live={"r1"})
    assert loads == [(key, 80)] and tails == []
    from workbench.tui._watcher import SeriesLoad, SeriesTail

    cache.apply([SeriesLoad(key, 80, [(float(s), 1.0 / (s + 1)) for s in range(10)], 9)], [])
    loads, tails = cache.plan(live={"r1"})
    assert loads == [] and tails == [(key, 9)]
    assert cache.plan(live=set()) == ([], [])  # an ended run costs nothing per tick
    cache.apply([], [SeriesTail(key, 9, [(10.0, 0.05)], 10)])
    assert cache.data[key].points[-1] == (10.0, 0.05) and cache.data[key].last_step == 10
    cache.apply([], [SeriesTail(key, 3, [(4.0, 9.9)], 4)])  # an answer to an old request
    assert cache.data[key].last_step == 10


def test_downsample_keeps_spikes() -> None:
    points = [(float(i), 1.0) for i in range(10_000)]
    points[5_432] = (5432.0, 50.0)
    points[7_001] = (7001.0, -3.0)
    small = downsample(points, 90)
    assert len(small) <= 90
    values = [v for _, v in small]
    assert max(values) == 50.0 and min(values) == -3.0 and small[-1] == points[-1]


async def test_a_logged_point_reaches_the_chart(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, ticks=3)
        table = app.screen.query_one(RunTable)
        assert table.current == LIVE
        chart = app.screen.query_one(MetricChart)
        assert chart.key == "train/loss" and chart.run_ids == [LIVE]
        data = app.series.data[SeriesKey(LIVE, "train/loss")]
        assert data.last_step == 74
        request = app.build_request()
        assert request.loads == [] and (SeriesKey(LIVE, "train/loss"), 74) in request.tails
        log_point(filled_project, LIVE, "train/loss", 0.0123, 75)
        await settle(pilot, ticks=1)
        assert app.series.data[SeriesKey(LIVE, "train/loss")].points[-1] == (75.0, 0.0123)
        assert app.runs.rows[LIVE].heartbeat_at is not None
