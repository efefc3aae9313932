"""The app's caches, filter and formatting, without a terminal."""

from __future__ import annotations

from pathlib import Path

from workbench.runs import present
from workbench.runs.filter import parse_filter
from workbench.store import Run
from workbench.tui._state import LogCache, RunCache, SeriesCache
from workbench.tui._watcher import LogChunk, SeriesKey, SeriesLoad, SeriesTail, read_log
from workbench.tui.colors import RunColors, palette


def _row(run_id: str, status: str = "completed", **extra) -> Run:
    return Run.from_row({"id": run_id, "name": f"run-{run_id}", "task": "Sine", "status": status,
                         "created_at": float(run_id), "updated_at": float(run_id),
                         "config": {"lr": 0.01 * int(run_id), "optim": {"beta": 0.9}},
                         "tags": ["a"] if int(run_id) % 2 else [], **extra})


def test_run_cache_keeps_counts_view_and_cursor_order() -> None:
    cache = RunCache(clock=lambda: 100.0)
    cache.apply([_row("1"), _row("2", "running"), _row("3", "failed")])
    assert cache.view == ["3", "2", "1"]
    assert cache.counts() == {"completed": 1, "running": 1, "failed": 1}
    assert cache.live_ids() == ["2"]
    cache.apply([_row("2", "completed")])
    assert cache.counts() == {"completed": 2, "failed": 1} and cache.live_ids() == []
    cache.set_sort("status")
    assert cache.view[0] == "3"
    cache.set_filter("status:completed lr>0.015")
    assert cache.view == ["2"]
    cache.remove("2")
    assert cache.view == [] and cache.counts() == {"completed": 1, "failed": 1}


def test_filter_terms() -> None:
    rows = [_row(str(i)) for i in range(1, 6)]
    keep = lambda text: [r.id for r in rows if parse_filter(text).matches(r)]  # noqa: E731
    assert keep("run-3") == ["3"]
    assert keep("tag:a") == ["1", "3", "5"]
    assert keep("lr>=0.03") == ["3", "4", "5"]
    assert keep("config.optim.beta=0.9 lr<0.02") == ["1"]
    assert keep("status:comp,fail") == ["1", "2", "3", "4", "5"]
    broken = parse_filter("colour:red")
    assert broken.problems and "unknown field" in broken.problems[0]
    # A term that cannot match anything says why instead of silently hiding every run.
    assert "no status 'foo'" in parse_filter("status:foo").problems[0]
    assert "compares numbers" in parse_filter("lr>abc").problems[0]
    assert not parse_filter("status:run lr>1e-3 name=abc").problems


def test_formatting() -> None:
    assert present.seconds(247) == "4m07s" and present.seconds(3 * 3600 + 720) == "3h12m"
    assert present.progress_bar(_row("1", "running", step=62, total_steps=100)) == "██▌   62%"
    assert present.progress_bar(_row("1", "running", step=7)) == "step 7"
    assert present.progress_bar(_row("1", "running", step=7, total_steps=-5)) == "step 7"
    assert present.progress_text(_row("1", "running", step=62, total_steps=100)) == " 62% 62/100"
    assert present.git_short(_row("1", git_head="a1f3c0ffee", git_dirty=1)) == "a1f3*"
    assert present.metric(0.041234) == "0.0412" and present.metric(1.2e-5) == "1.2e-05"
    assert present.metric(float("nan")) == "nan" and present.metric(None) == "—"
    assert present.headline_key(["train/loss", "val/loss", "lr"]) == "val/loss"
    assert present.headline_key(["acc"]) == "acc"
    assert present.better_is_higher("val/acc") and not present.better_is_higher("val/loss")
    assert present.flatten_config({"a": 1, "b": {"c": 2}}) == {"a": 1, "b.c": 2}
    assert present.age(1000.0, 1000.0 + 7200) == "2h ago"


def test_log_reads_whole_lines_and_follows(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    path.write_text("one\ntwo\npart")
    cache = LogCache()
    first = read_log("r", path, -1)
    assert first is not None and first.text == "one\ntwo\n"
    cache.apply([first])
    assert cache.lines("r") == ["one", "two"]
    with path.open("a") as fh:
        fh.write("ial\nthree\n")
    cache.apply([read_log("r", path, first.next_offset)])
    assert cache.lines("r") == ["one", "two", "partial", "three"]
    assert read_log("r", path, cache.logs["r"].offset) is None
    lines, total = cache.new_lines("r", 2)
    assert lines == ["partial", "three"] and total == 4
    cache.apply([LogChunk("r", 0, "stale\n", 6)])  # an answer to an older request
    assert cache.lines("r")[-1] == "three"


def test_run_colours_are_stable_and_theme_based() -> None:
    colors = RunColors()
    first = colors.hex("a")
    colors.hex("b")
    assert colors.hex("a") == first and colors.slot("b") == 1
    dark = colors.hex("a")
    colors.set_theme({"primary": "#ff0000", "background": "#ffffff"})
    assert colors.hex("a") != dark and colors.slot("a") == 0  # a light theme: darker colours, same slot
    assert len(palette({"background": "#000000"})) >= 8


def test_a_curves_array_follows_its_points_through_tails_and_thinning() -> None:
    """The drawing array a curve keeps is extended by a tail, not made again, and is always
    the curve's points (after a tail, after the curve is thinned, after a new load)."""
    cache = SeriesCache()
    key = SeriesKey("r", "loss")
    cache.apply([SeriesLoad(key, 10, [(1.0, 0.5), (2.0, 0.4)], 2)], [])
    data = cache.data[key]
    assert data.xy().tolist() == [[1.0, 0.5], [2.0, 0.4]]
    kept = data.xy()
    assert data.xy() is kept  # made once per version
    last = 2
    for step in range(3, 40):
        cache.apply([], [SeriesTail(key, last, [(float(step), 1.0 / step)], step)])
        last = step
        assert data.xy().tolist() == [list(p) for p in data.points], step
    assert len(data.points) <= 20  # thinned on the way (twice the width at most)
    cache.apply([SeriesLoad(key, 10, [(5.0, 0.1)], 5)], [])
    assert cache.data[key].xy().tolist() == [[5.0, 0.1]]
