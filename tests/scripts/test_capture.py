"""The output-line parser of script runs (``workbench.runs.capture``): pure, no processes."""

from __future__ import annotations

import re

import pytest

from workbench.runs.capture import Capture, parse_line

# pytorch/examples' word_language_model, verbatim shapes.
TRAIN = "| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.21 | loss  7.63 | ppl  2065.36"
END = "| end of epoch   1 | time: 12.34s | valid loss  5.80 | valid ppl   330.25"
ISSUE_PATTERN = r"\| epoch +(?P<epoch>\d+) .* lr (?P<lr>[\d.]+) .* loss +(?P<loss>[\d.]+)"


def test_word_lm_training_line() -> None:
    assert parse_line(TRAIN) == {"epoch": 1.0, "lr": 20.0, "ms/batch": 45.21, "loss": 7.63, "ppl": 2065.36}


def test_word_lm_end_of_epoch_line() -> None:
    assert parse_line(END + "\n") == {"epoch": 1.0, "time": 12.34, "valid_loss": 5.80, "valid_ppl": 330.25}


@pytest.mark.parametrize("line", ["-" * 89, "Exiting from training early", "", "=== attempt 1 · x ===",
                                  "stop: killing the training process", "| a | b |", "ratio: high"])
def test_lines_without_values(line: str) -> None:
    assert parse_line(line) == {}


def test_guild_conventions() -> None:
    assert parse_line("loss: 0.25") == {"loss": 0.25}
    assert parse_line("  val/acc: 9.1e-01") == {"val/acc": 0.91}
    assert parse_line("step=3 loss=0.5, acc=0.75 lr=1e-3") == {"step": 3.0, "loss": 0.5, "acc": 0.75, "lr": 0.001}
    assert parse_line("loss=nan") != {}  # a NaN is a point the user wants to see
    assert parse_line("path=/tmp/x name=abc") == {}


def test_pattern_first_then_conventions() -> None:
    pattern = re.compile(ISSUE_PATTERN)
    assert parse_line(TRAIN, pattern) == {"epoch": 1.0, "lr": 20.0, "loss": 7.63}
    assert parse_line(END, pattern)["valid_loss"] == 5.80  # not matched: the conventions still read it


def test_auto_step_counts_lines_that_gave_points() -> None:
    capture = Capture()
    points = [capture.feed(line) for line in ["starting", TRAIN, "-" * 89, END, TRAIN]]
    assert points[0] == [] and points[2] == []
    assert {s for _, _, s in points[1]} == {1}
    assert ("valid_loss", 5.80, 2) in points[3]
    assert {s for _, _, s in points[4]} == {3}


def test_step_from_a_named_group() -> None:
    capture = Capture(r"\|\s+(?P<batch>\d+)/ *\d+ batches .* loss +(?P<loss>[\d.]+)", step="batch")
    assert capture.feed(TRAIN) == [("loss", 7.63, 200)]
    assert capture.feed("loss: 1.5") == [("loss", 1.5, 200)]  # no batch on the line: the last step


def test_explicit_step_key_sets_the_step() -> None:
    capture = Capture()
    assert capture.feed("step: 10") == []
    assert capture.feed("loss: 2.0") == [("loss", 2.0, 10)]
    assert capture.feed("step=20 loss=1.0") == [("loss", 1.0, 20)]
    assert capture.feed("acc: 0.5") == [("acc", 0.5, 20)]
