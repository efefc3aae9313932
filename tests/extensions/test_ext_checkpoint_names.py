"""checkpoint_names: the one place that names checkpoint files, readable without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from workbench.checkpoint_names import (
    best_file,
    checkpoint_folder,
    is_partial,
    step_file,
    step_files,
    step_of,
)
from workbench.extensions.checkpoint import list_checkpoints, remove_partial, save_atomic


@pytest.mark.parametrize("step", [0, 1, 120, 999_999_999, 12_345_678_901])
def test_a_step_file_name_gives_its_step_back(step: int) -> None:
    assert step_of(step_file(step)) == step


@pytest.mark.parametrize("name", ["best.pt", "fork-start.pt", "step-12.pth", "step-.pt", "xstep-1.pt",
                                  ".step-000000001-abc.tmp"])
def test_other_names_hold_no_step(name: str) -> None:
    assert step_of(name) is None


def test_step_files_are_newest_first_and_skip_everything_else(tmp_path: Path) -> None:
    folder = checkpoint_folder(tmp_path)
    folder.mkdir()
    for step in (3, 120, 40):
        (folder / step_file(step)).write_bytes(b"")
    (folder / "best.pt").write_bytes(b"")
    (folder / ".step-000000200-x.tmp").write_bytes(b"")
    assert [step for step, _ in step_files(folder)] == [120, 40, 3]
    assert step_files(tmp_path / "missing") == []


def test_the_temporary_files_a_save_writes_are_recognised_as_partial(tmp_path: Path, monkeypatch) -> None:
    folder = checkpoint_folder(tmp_path)
    made: list[Path] = []
    real_mkstemp = tempfile.mkstemp

    def watching_mkstemp(*args, **kwargs):  # the real mkstemp; only its name is noted
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(Path(name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", watching_mkstemp)
    for target in (folder / step_file(7), best_file(folder)):
        save_atomic({"format": 1}, target)
    assert len(made) == 2 and all(is_partial(p.name) for p in made)
    assert not any(is_partial(p.name) for p in folder.iterdir())  # renamed into place
    for p in made:  # a process killed before the rename leaves these behind
        p.write_bytes(b"partial")
    assert sorted(remove_partial(folder)) == sorted(made)
    assert [step for step, _ in list_checkpoints(folder)] == [7]
    assert torch.load(best_file(folder), weights_only=True) == {"format": 1}


@pytest.mark.parametrize("module", ["workbench.checkpoint_names", "workbench.configtypes"])
def test_the_leaf_modules_load_neither_torch_nor_the_project_layer(module: str) -> None:
    code = (f"import {module}, sys, json\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('torch', 'workbench')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not any(m == "torch" or m.startswith("torch.") for m in loaded)
    assert loaded <= {"workbench", "workbench.errors", module}
