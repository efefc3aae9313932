"""Several extensions at once: every one of them is called, as often as its stage runs."""

from __future__ import annotations

from collections import Counter

from ext_tasks import make_task

from workbench.extensions import GradientStats, MetricLogger, NanGuard, Progress, default_extensions
from workbench.sinks import MemorySink

HOOKS = ["before_setup", "after_setup", "before_fit", "after_fit", "before_epoch", "after_epoch",
         "before_batch", "after_batch", "before_validate", "after_validate",
         "before_validate_batch", "after_validate_batch", "before_teardown", "after_teardown"]


def _counting_class() -> type:
    def make(hook):
        def method(self):
            self.count[hook] += 1
        method.__doc__ = f"Count {hook}."
        return method

    namespace = {hook: make(hook) for hook in HOOKS}
    namespace["__init__"] = lambda self: setattr(self, "count", Counter())
    return type("Counting", (), namespace)


Counting = _counting_class()

# 2 epochs of 32 samples in batches of 8; 12 validation samples in batches of 5.
EXPECTED = {"before_setup": 1, "after_setup": 1, "before_fit": 1, "after_fit": 1,
            "before_epoch": 2, "after_epoch": 2, "before_batch": 8, "after_batch": 8,
            "before_validate": 2, "after_validate": 2, "before_validate_batch": 6,
            "after_validate_batch": 6, "before_teardown": 1, "after_teardown": 1}


def test_five_counting_extensions_are_each_called_for_every_stage() -> None:
    counters = [Counting() for _ in range(5)]
    make_task(epochs=2, samples=32, batch_size=8, extensions=counters).fit()
    for counter in counters:
        assert dict(counter.count) == EXPECTED


def test_five_builtin_extensions_side_by_side_each_do_their_work() -> None:
    sink = MemorySink()
    updates = []

    class Reporter:
        def start(self, info): pass
        def update(self, info): updates.append(info.step)
        def epoch_end(self, info): updates.append(("epoch", info.epoch))
        def finish(self, info): pass

    counter = Counting()
    extensions = [MetricLogger(), NanGuard(), GradientStats(every=1), Progress(Reporter(), interval=0), counter]
    make_task(epochs=2, samples=32, batch_size=8, sink=sink, extensions=extensions).fit()
    assert dict(counter.count) == EXPECTED
    assert len(sink.series("train/loss")) == 8
    assert len(sink.series("grad_norm/total")) == 8
    assert len(sink.series("val/loss")) == 2
    assert updates == [1, 2, 3, 4, ("epoch", 1), 5, 6, 7, 8, ("epoch", 2)]


def test_the_default_extensions_attach_and_run_together(tmp_path) -> None:
    sink = MemorySink()
    task = make_task(epochs=1, run_dir=tmp_path, sink=sink)
    for ext in default_extensions():
        task.attach(ext)
    task.fit()
    assert (tmp_path / "artifacts" / "reproducibility.json").is_file()
    assert len(sink.series("train/loss")) == 4 and len(sink.series("val/loss")) == 1
