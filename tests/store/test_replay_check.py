"""The replay check of a resumed attempt, over a real index (NaN points included)."""

from __future__ import annotations

import math

from workbench.runs.resume import compare_replay, replay_summary
from workbench.store import RunIndex


def test_the_replay_check_compares_what_the_attempt_logged_again_nan_included(index: RunIndex) -> None:
    run = index.create_run(task="T")
    nan = float("nan")
    index.add_metrics(run.id, [("loss", 1.0, 1, 0.0), ("loss", 0.5, 2, 0.0), ("loss", nan, 3, 0.0),
                               ("acc", nan, 3, 0.0), ("loss", 0.25, 4, 0.0)], attempt=1)
    index.set_aside_after(run.id, 2)  # a resume from the checkpoint at step 2
    index.update_run(run.id, attempt=2)
    index.add_metrics(run.id, [("loss", 0.5, 2, 1.0), ("loss", nan, 3, 1.0), ("acc", 0.7, 3, 1.0)], attempt=2)

    result = compare_replay(index, run.id, 2)

    assert result is not None and (result["matched"], result["compared"]) == (2, 3)  # step 4 not replayed yet
    first = result["first_divergence"]
    assert (first["key"], first["step"], first["replayed"]) == ("acc", 3, 0.7) and math.isnan(first["before"])
    assert replay_summary(result) == ("replay matched 2/3 points; first diverged at step 3 "
                                      "(acc: nan before, 0.7 replayed)")
