"""ReproducibilityRecord: seed, versions, config and how the model was built, as a file."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys

import torch
from ext_tasks import Regression, make_task
from torch import nn

from workbench.extensions import ReproducibilityRecord


class Widened(nn.Module):
    def __init__(self, inputs: int, width: int, *, activation: str = "relu") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, x):
        return self.net(x)


class WithArgs(Regression):
    def build_model(self):
        return Widened(4, 5, activation="tanh")


def test_the_record_is_written_to_artifacts_with_seed_versions_config_and_model(tmp_path) -> None:
    task = make_task(WithArgs, seed=7, lr=0.5, run_dir=tmp_path, extensions=[ReproducibilityRecord()])
    task.fit()
    record = json.loads((tmp_path / "artifacts" / "reproducibility.json").read_text())
    assert record["seed"] == 7
    assert record["config"] == dataclasses.asdict(task.config)
    assert record["config"]["lr"] == 0.5
    assert record["model"] == {"class": f"{__name__}.Widened",
                               "args": {"inputs": 4, "width": 5, "activation": "tanh"}}
    assert record["task"] == f"{__name__}.WithArgs"
    env = record["environment"]
    assert env["torch"] == torch.__version__
    assert env["python"] == platform.python_version()
    assert record["device"] == "cpu" and record["precision"] == "32" and record["backend"] == "single"
    assert record["argv"] == sys.argv


def test_without_a_run_folder_the_record_is_kept_in_memory() -> None:
    record = ReproducibilityRecord()
    task = make_task(extensions=[record])
    task.evaluate()
    assert record.record["seed"] == 0
    assert record.record["model"]["class"] == "torch.nn.modules.container.Sequential"
