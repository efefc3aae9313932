"""Metric points: upserts, incremental reads, downsampled series, points set aside."""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right

import pytest

from workbench.store import InvalidValue, RunIndex


def _rollup(index: RunIndex, run_id: str) -> list[tuple]:
    return index.connection.execute(
        "SELECT * FROM metrics_rollup WHERE run_id = ? ORDER BY key, level, block", (run_id,)
    ).fetchall()


def _assert_rollup_exact(index: RunIndex, run_id: str) -> None:
    """The summaries kept incrementally equal the ones rebuilt from the points."""
    kept = _rollup(index, run_id)
    index.rebuild_summaries(run_id)
    assert kept == _rollup(index, run_id)


def _dominant_points(points: list[tuple[int, float]], reach: float) -> set[tuple[int, float]]:
    """Points that are the maximum or the minimum of every point within ``reach`` steps."""
    steps = [s for s, _ in points]
    out = set()
    for pick in (max, min):
        for step, value in sorted(points, key=lambda p: p[1], reverse=pick is max)[:300]:
            lo, hi = bisect_left(steps, step - reach), bisect_right(steps, step + reach)
            if pick(v for _, v in points[lo:hi]) == value:
                out.add((step, value))
    return out


@pytest.fixture
def run_id(memory_index: RunIndex) -> str:
    return memory_index.create_run(task="t").id


def test_a_step_logged_twice_keeps_the_newest_value(memory_index: RunIndex, run_id: str) -> None:
    memory_index.add_metrics(run_id, [("loss", 1.0, 0), ("loss", 2.0, 1)], attempt=1)
    memory_index.add_metrics(run_id, [("loss", 5.0, 1), ("loss", 3.0, 2)], attempt=2)
    memory_index.add_metrics(run_id, [("loss", 7.0, 2), ("loss", 8.0, 2)], attempt=2)
    assert [(s, v) for s, v, _ in memory_index.points(run_id, "loss")] == [(0, 1.0), (1, 5.0), (2, 8.0)]
    attempts = memory_index.connection.execute(
        "SELECT attempt FROM metrics WHERE run_id = ? ORDER BY step", (run_id,)
    ).fetchall()
    assert [a for (a,) in attempts] == [1, 2, 2]
    _assert_rollup_exact(memory_index, run_id)


def test_a_step_repeated_within_one_large_batch_keeps_the_last(memory_index: RunIndex, run_id: str) -> None:
    batch = [("loss", float(s), s) for s in range(1000)]
    batch[500] = ("loss", -1.0, 3)  # step 3 again, later in the same batch
    batch.append(("loss", 77.0, 999))
    memory_index.add_metrics(run_id, batch)
    values = dict((s, v) for s, v, _ in memory_index.points(run_id, "loss"))
    assert len(values) == 999  # step 500 was replaced by the second step 3
    assert values[3] == -1.0 and values[999] == 77.0
    _assert_rollup_exact(memory_index, run_id)


def test_keys_and_last_values(memory_index: RunIndex, run_id: str) -> None:
    other = memory_index.create_run(task="t").id
    memory_index.add_metrics(other, [("zzz", 1.0, 0)])
    memory_index.add_metrics(run_id, [("val/acc", 0.5, 10), ("loss", 2.0, 3), ("loss", 1.0, 7), ("loss", 9.0, 5)])
    assert memory_index.metric_keys(run_id) == ["loss", "val/acc"]
    assert memory_index.last_metrics(run_id) == {"loss": 1.0, "val/acc": 0.5}
    assert memory_index.metric_keys("nothing") == []


def _last_brute_force(index: RunIndex, run_id: str) -> dict[str, float]:
    rows = index.connection.execute(
        "SELECT key, value FROM metrics m WHERE run_id = ?"
        " AND step = (SELECT max(step) FROM metrics WHERE run_id = m.run_id AND key = m.key)", (run_id,)
    ).fetchall()
    return {key: math.nan if value is None else value for key, value in rows}


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_last_values_of_many_runs_follow_relogs_set_asides_and_huge_steps(memory_index: RunIndex) -> None:
    """The last values come from the summaries' top level; after every kind of write they are
    the points' own last values, for each run of one query."""
    rng = random.Random(11)
    runs = [memory_index.create_run(task="t").id for _ in range(4)]
    for round_ in range(30):
        run_id = rng.choice(runs)
        key = rng.choice(["loss", "val/acc", "sys/cpu_percent"])
        start = rng.choice([rng.randrange(-50, 5_000), 2**40 + rng.randrange(0, 2**35)])  # beyond one top block
        batch = [(key, rng.choice([rng.uniform(-5, 5), math.nan]), s) for s in range(start, start + rng.randrange(1, 300))]
        if rng.random() < 0.3:
            rng.shuffle(batch)
        memory_index.add_metrics(run_id, batch, attempt=1 + round_ // 10)
        if rng.random() < 0.15:
            memory_index.set_aside_after(run_id, rng.randrange(0, 5_000))
        together = memory_index.last_metrics_of([*runs, "no-such-run"])
        assert together["no-such-run"] == {}
        for each in runs:
            assert _same(together[each], _last_brute_force(memory_index, each))
            assert _same(memory_index.last_metrics(each), together[each])


def test_last_values_of_points_written_around_the_summaries(memory_index: RunIndex, run_id: str) -> None:
    with memory_index.write() as conn:
        conn.executemany("INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?)",
                         [(run_id, "loss", s, float(s), 0.0) for s in range(100)])
    assert memory_index.last_metrics_of([run_id]) == {run_id: {"loss": 99.0}}


def test_metrics_after_returns_only_new_points(memory_index: RunIndex, run_id: str) -> None:
    memory_index.add_metrics(run_id, [("loss", float(s), s) for s in range(5)] + [("acc", 0.1, 0)])
    first = memory_index.metrics_after(run_id)
    assert [s for s, _, _ in first["loss"]] == [0, 1, 2, 3, 4] and len(first["acc"]) == 1
    seen = {key: points[-1][0] for key, points in first.items()}
    assert memory_index.metrics_after(run_id, seen) == {}
    memory_index.add_metrics(run_id, [("loss", 5.0, 5), ("new", 1.0, 0)])
    second = memory_index.metrics_after(run_id, seen)
    assert {k: [s for s, _, _ in v] for k, v in second.items()} == {"loss": [5], "new": [0]}
    assert memory_index.metrics_after(run_id, 3, keys=["loss"])["loss"][0][0] == 4


def test_series_of_a_short_metric_is_returned_whole(memory_index: RunIndex, run_id: str) -> None:
    memory_index.add_metrics(run_id, [("loss", s * 2.0, s) for s in range(100)])
    assert memory_index.series(run_id, "loss", max_points=100) == [(s, s * 2.0) for s in range(100)]
    assert memory_index.series(run_id, "missing") == []


@pytest.mark.parametrize("max_points", [300, 1000])
def test_series_keeps_a_one_point_spike_in_100k(memory_index: RunIndex, run_id: str, max_points: int) -> None:
    rng = random.Random(1)
    values = [rng.uniform(0.9, 1.1) for _ in range(100_000)]
    values[61_234] = 50.0
    values[80_001] = -50.0
    memory_index.add_metrics(run_id, [("loss", v, s) for s, v in enumerate(values)])
    series = memory_index.series(run_id, "loss", max_points=max_points)
    assert len(series) <= max_points
    assert [s for s, _ in series] == sorted({s for s, _ in series})
    assert (61_234, 50.0) in series and (80_001, -50.0) in series
    assert series[-1] == (99_999, values[-1])
    assert all(values[s] == v for s, v in series)  # real points, at their real steps


def test_series_extremes_match_a_brute_force_downsample(memory_index: RunIndex, run_id: str) -> None:
    rng = random.Random(7)
    steps = sorted(rng.sample(range(0, 1_500_000), 20_000))
    points = [(s, rng.gauss(0, 1)) for s in steps]
    for start in range(0, len(points), 997):  # written in uneven batches, like a writer
        memory_index.add_metrics(run_id, [("x", v, s) for s, v in points[start : start + 997]])
    series = memory_index.series(run_id, "x", max_points=600)
    assert len(series) <= 600
    assert [s for s, _ in series] == sorted({s for s, _ in series})
    # A point that dominates everything within two buckets of it is the extreme of its
    # bucket however the bucket edges fall, so it must be drawn.
    bucket = 1_500_000 / 200
    dominant = _dominant_points(points, 2 * bucket)
    assert len(dominant) > 40
    assert dominant <= set(series)
    _assert_rollup_exact(memory_index, run_id)


def test_series_along_time(memory_index: RunIndex, run_id: str) -> None:
    points = [("loss", float(s % 7), s, 1000.0 + s * 0.5) for s in range(20_000)]
    points[12_345] = ("loss", 99.0, 12_345, 1000.0 + 12_345 * 0.5)
    memory_index.add_metrics(run_id, points)
    series = memory_index.series(run_id, "loss", max_points=300, x="time")
    assert len(series) <= 300
    assert [t for t, _ in series] == sorted(t for t, _ in series)
    assert (1000.0 + 12_345 * 0.5, 99.0) in series
    with pytest.raises(InvalidValue):
        memory_index.series(run_id, "loss", x="epoch")


def test_nan_values_come_back_as_nan_and_do_not_hide_extremes(memory_index: RunIndex, run_id: str) -> None:
    points = [("loss", math.nan if s % 10 == 0 else float(s), s) for s in range(10_000)]
    memory_index.add_metrics(run_id, points)
    assert math.isnan(memory_index.points(run_id, "loss")[0][1])
    series = memory_index.series(run_id, "loss", max_points=90)
    assert (9_999, 9_999.0) in series and (1, 1.0) in series
    _assert_rollup_exact(memory_index, run_id)


def test_rollup_stays_exact_through_relogs_and_out_of_order_batches(memory_index: RunIndex, run_id: str) -> None:
    rng = random.Random(3)
    for _ in range(40):
        start = rng.randrange(0, 20_000)
        batch = [("a", rng.uniform(-5, 5), s) for s in range(start, start + rng.randrange(1, 900))]
        if rng.random() < 0.3:
            rng.shuffle(batch)
        memory_index.add_metrics(run_id, batch)
    _assert_rollup_exact(memory_index, run_id)


def test_set_aside_moves_later_points_and_their_spikes(memory_index: RunIndex, run_id: str) -> None:
    points = [("loss", 1.0, s) for s in range(5_000)] + [("acc", 0.5, s) for s in range(0, 5_000, 100)]
    points[4_321] = ("loss", 1e6, 4_321)  # logged by the attempt that is being set aside
    memory_index.add_metrics(run_id, points, attempt=1)
    moved = memory_index.set_aside_after(run_id, 2_999)
    assert moved == 2_000 + 20
    assert memory_index.points(run_id, "loss")[-1][0] == 2_999
    aside = memory_index.aside_points(run_id, "loss")
    later = [row for row in aside if row["step"] > 2_999]
    assert len(later) == 2_000 and {row["attempt"] for row in aside} == {1}
    # The point at the checkpoint's own step stays on the curve, and a copy is kept aside
    # (a resumed attempt that logs it again is compared with it).
    assert [row["step"] for row in aside if row["step"] <= 2_999] == [2_999]
    assert any(row["step"] == 4_321 and row["value"] == 1e6 for row in aside)
    assert all(row["set_aside_at"] > 0 for row in aside)
    # The resumed attempt logs the steps again; the old spike is not in the chart.
    memory_index.add_metrics(run_id, [("loss", 2.0, s) for s in range(3_000, 5_000)], attempt=2)
    series = memory_index.series(run_id, "loss", max_points=300)
    assert max(v for _, v in series) == 2.0
    assert len(memory_index.points(run_id, "loss")) == 5_000
    _assert_rollup_exact(memory_index, run_id)
    assert memory_index.set_aside_after(run_id, 10_000) == 0


def test_points_written_with_plain_sql_still_chart_and_can_be_summarised(memory_index: RunIndex, run_id: str) -> None:
    with memory_index.write() as conn:
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?)",
            [(run_id, "loss", s, 9.0 if s == 4_444 else 1.0, 0.0) for s in range(50_000)],
        )
    series = memory_index.series(run_id, "loss", max_points=300)
    assert 0 < len(series) <= 300 and (4_444, 9.0) in series
    memory_index.rebuild_summaries(run_id)
    assert _rollup(memory_index, run_id)
    summarised = memory_index.series(run_id, "loss", max_points=300)
    assert 0 < len(summarised) <= 300 and (4_444, 9.0) in summarised
