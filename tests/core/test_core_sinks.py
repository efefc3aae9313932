"""The metric sinks (in memory, a JSON-lines file, the run index's writer) and their protocol."""

from __future__ import annotations

import inspect
import json

import pytest
from core_tasks import make_task

from workbench.core import MetricSink, TaskError
from workbench.sinks import JsonlSink, MemorySink
from workbench.store import MetricWriter, RunIndex


def test_memory_sink_keeps_points_in_order_per_key() -> None:
    sink = MemorySink()
    sink.log("loss", 1.0, 1)
    sink.log("acc", 0.5, 1)
    sink.log("loss", 0.8, 2)
    assert sink.series("loss") == [(1, 1.0), (2, 0.8)]
    assert sink.series("acc") == [(1, 0.5)]
    assert sink.series("missing") == []


def test_memory_sink_keeps_the_newest_value_for_a_repeated_step() -> None:
    sink = MemorySink()
    sink.log("loss", 1.0, 1)
    sink.log("loss", 0.9, 1)
    assert sink.series("loss") == [(1, 0.9)]


def test_memory_sink_replaces_a_step_logged_again_after_later_ones() -> None:
    # A resumed attempt logs steps 2 and 3 again: the curve must not get duplicates.
    sink = MemorySink()
    for step, value in [(1, 1.0), (2, 0.9), (3, 0.8), (2, 0.7), (3, 0.6), (4, 0.5)]:
        sink.log("loss", value, step)
    assert sink.series("loss") == [(1, 1.0), (2, 0.7), (3, 0.6), (4, 0.5)]


def test_jsonl_sink_writes_one_parseable_line_per_point(tmp_path) -> None:
    path = tmp_path / "deep" / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.log("train/loss", 0.25, 1)
    sink.log("val/loss", 0.5, 1)
    sink.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    sink.log("train/loss", float("nan"), 2)
    sink.close()
    sink.log("ignored", 1.0, 3)  # after close: dropped, not an error
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["key"], r["step"]) for r in rows] == [("train/loss", 1), ("val/loss", 1), ("train/loss", 2)]
    assert rows[0]["value"] == 0.25 and isinstance(rows[0]["time"], float)


def test_jsonl_sink_appends_to_an_existing_file(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    for value in (1.0, 2.0):
        sink = JsonlSink(path)
        sink.log("x", value, 1)
        sink.close()
    assert [json.loads(line)["value"] for line in path.read_text().splitlines()] == [1.0, 2.0]


def _sinks(tmp_path):
    run_id = RunIndex(tmp_path / "index.db").create_run(task="t").id
    return [MemorySink(), JsonlSink(tmp_path / "m.jsonl"), MetricWriter(tmp_path / "index.db", run_id)]


def test_every_sink_satisfies_the_metric_sink_protocol_with_its_signatures(tmp_path) -> None:
    for sink in _sinks(tmp_path):
        try:
            assert isinstance(sink, MetricSink), type(sink).__name__
            assert list(inspect.signature(sink.log).parameters) == ["key", "value", "step"], type(sink).__name__
            for name in ("flush", "close"):
                assert not inspect.signature(getattr(sink, name)).parameters, f"{type(sink).__name__}.{name}"
        finally:
            sink.close()


def test_a_task_refuses_a_sink_without_the_protocol_when_it_is_made() -> None:
    class LogOnly:
        def log(self, key: str, value: float, step: int) -> None:
            pass

    with pytest.raises(TaskError, match="sink=LogOnly is not a metric sink"):
        make_task(sink=LogOnly())
