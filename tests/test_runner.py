"""The standalone runner: ``python tasks/x.py fit|test|eval`` in a copy of the quickstart sample.

Each test starts a real Python process (torch's import alone takes seconds), so the
successful fit runs once per module and the other tests read its output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "sample_projects" / "quickstart"
SMALL = ["-s", "epochs=1", "-s", "samples=2000", "-q"]


def run(project: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *map(str, args)], cwd=project, capture_output=True,
                          text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runner") / "quickstart"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".workbench"))
    return root


@pytest.fixture(scope="module")
def fitted(project: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = project.parent / "fit-out"
    return run(project, "tasks/sine.py", "fit", *SMALL, "--out", out), out


def test_fit_trains_and_says_where_its_output_went(fitted) -> None:
    result, out = fitted
    assert result.returncode == 0, result.stderr
    assert re.search(r"^fit done: train/loss_epoch \d[\d.e-]*  val/loss \d", result.stdout, re.M), result.stdout
    assert f"output: {out}" in result.stdout
    assert "epoch 1/1" not in result.stderr  # -q: no progress lines


def test_fit_writes_metrics_weights_and_the_reproducibility_record(fitted) -> None:
    result, out = fitted
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if r["key"] == "train/loss"]
    assert [r["step"] for r in losses] == list(range(1, 64))  # 2000 samples, batches of 32
    assert {"train/loss_epoch", "val/loss", "lr"} <= {r["key"] for r in rows}
    assert (out / "artifacts" / "model.pt").stat().st_size > 0
    record = json.loads((out / "artifacts" / "reproducibility.json").read_text())
    assert record["config"]["samples"] == 2000 and record["config"]["epochs"] == 1
    assert record["seed"] == 0
    assert record["task"] == "sine.SineRegression"  # the script's name, not __main__
    assert record["model"]["class"] == "sine.MLP"
    assert record["model"]["args"] == {"inputs": 1, "hidden": 64, "outputs": 1, "layers": 2}


def test_test_with_the_fitted_weights_uses_them(project: Path, fitted) -> None:
    _, out = fitted
    weights = out / "artifacts" / "model.pt"
    result = run(project, "tasks/sine.py", "test", "-s", "samples=2000", "-q", "--weights", weights,
                 "--out", project.parent / "test-out")
    assert result.returncode == 0, result.stderr
    match = re.search(r"^test done: loss (\S+)$", result.stdout, re.M)
    assert match, result.stdout

    # The same numbers in this process: trained weights, not a freshly initialised model.
    sys.path.insert(0, str(project / "tasks"))
    try:
        import sine
    finally:
        sys.path.remove(str(project / "tasks"))
    task = sine.SineRegression({"samples": 2000}, device="cpu")
    assert float(match.group(1)) != pytest.approx(task.test()["loss"], rel=1e-3)
    task.load_weights(weights)
    assert float(match.group(1)) == pytest.approx(task.test()["loss"], rel=1e-3)


def test_test_accepts_a_workbench_checkpoint_and_tests_at_its_step(project: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(project / "tasks"))
    try:
        import sine
    finally:
        sys.path.remove(str(project / "tasks"))
    trained = sine.SineRegression({"samples": 2000, "epochs": 1}, device="cpu")
    trained.fit()
    checkpoint = tmp_path / "step-000000063.pt"
    torch.save(trained.checkpoint_state(), checkpoint)  # what a tracked run's checkpoints hold
    expected = trained.test()["loss"]

    result = run(project, "tasks/sine.py", "test", "-s", "samples=2000", "-q", "--weights", checkpoint,
                 "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    match = re.search(r"^test done: loss (\S+)$", result.stdout, re.M)
    assert match and float(match.group(1)) == pytest.approx(expected, rel=1e-3)
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rows if r["key"].startswith("test/")} == {63}  # the checkpoint's step

    fresh = sine.SineRegression({"samples": 2000}, device="cpu")
    fresh.load_weights(checkpoint)
    assert fresh.state.step == 63 and fresh.weights_loaded == str(checkpoint)
    assert fresh.test()["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("command", ["test", "eval"])
def test_test_without_weights_refuses_instead_of_testing_random_weights(project: Path, tmp_path: Path,
                                                                         command: str) -> None:
    result = run(project, "tasks/sine.py", command, "-q", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "needs the weights" in result.stderr
    assert "random weights" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    untrained = run(project, "tasks/sine.py", command, "-q", "-s", "samples=500", "--untrained",
                    "--out", tmp_path / "out")
    assert untrained.returncode == 0, untrained.stderr


def test_a_file_that_is_not_weights_is_one_line(project: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    result = run(project, "tasks/sine.py", "test", "-q", "--weights", bogus, "--out", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "not a weights file" in result.stderr


def test_a_value_of_the_wrong_type_is_one_line_on_stderr(project: Path, tmp_path: Path) -> None:
    result = run(project, "tasks/sine.py", "fit", "-s", "lr=abc", "-q", "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "lr: expected float, got 'abc'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_key_lists_the_valid_keys(project: Path, tmp_path: Path) -> None:
    result = run(project, "tasks/sine.py", "fit", "-s", "hiden=32", "-q", "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "unknown config key 'hiden'" in result.stderr
    valid = result.stderr.split("valid keys: ", 1)[1]
    for key in ("epochs", "lr", "batch_size", "hidden", "layers", "samples", "noise", "seed"):
        assert key in valid
    assert "Traceback" not in result.stderr


def test_a_framework_task_is_refused_with_a_clear_message(project: Path, tmp_path: Path) -> None:
    launcher = project / "tasks" / "launch_framework.py"
    launcher.write_text("from regression_framework import RegressionFramework\n\n"
                        "raise SystemExit(RegressionFramework.main())\n")
    try:
        result = run(project, launcher, "fit", "-q", "--out", tmp_path / "out")
    finally:
        launcher.unlink()
    assert result.returncode != 0
    assert "RegressionFramework is a framework task and cannot run by itself" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_task_from_another_file_runs_with_its_own_config(project: Path) -> None:
    # Without --out the output goes under the project's state folder.
    result = run(project, "tasks/regression_models.py", "fourier", "fit", "-s", "epochs=1",
                 "-s", "samples=800", "-q")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^fit done: .*val/loss \S+  val/mae \S+", result.stdout, re.M), result.stdout
    out = Path(re.search(r"^output: (.+)$", result.stdout, re.M).group(1))
    if not out.is_absolute():
        out = project / out
    assert out.parent == project / ".workbench" / "local"
    assert out.name.startswith("FourierRegression-")
    record = json.loads((out / "artifacts" / "reproducibility.json").read_text())
    assert record["task"] == "regression_models.FourierRegression"
    assert record["config"]["frequencies"] == 8 and record["config"]["lr"] == 0.02


# -- import roots: a task file imports the same modules on its own as in a tracked run ------

NETLIB = '''"""A helper module at the project root, imported by a task in tasks/."""
from torch import nn


def make(hidden: int = 8) -> nn.Module:
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
'''

LAZY_TASK = '''"""A task whose model comes from netlib.py at the project root."""
from torch import nn

from regression_framework import RegressionFramework


class RootedRegression(RegressionFramework):
    """Builds its model with netlib.make (imported when the model is built)."""

    def build_model(self) -> nn.Module:
        import netlib

        return netlib.make()


if __name__ == "__main__":
    raise SystemExit(RootedRegression.main())
'''

TOP_TASK = '''"""A task that imports netlib (at the project root) at its top, as most files do."""
from torch import nn

from workbench import Task  # noqa: F401  (first, as in every task file)
from netlib import make
from regression_framework import RegressionFramework


class TopRootedRegression(RegressionFramework):
    """Builds its model with netlib.make, imported at the top of the file."""

    def build_model(self) -> nn.Module:
        return make()


if __name__ == "__main__":
    raise SystemExit(TopRootedRegression.main())
'''


@pytest.fixture
def rooted(tmp_path: Path) -> Path:
    """A quickstart copy with netlib.py at its root and two task files that import it."""
    root = tmp_path / "quickstart"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".workbench"))
    (root / "netlib.py").write_text(NETLIB)
    (root / "tasks" / "rooted.py").write_text(LAZY_TASK)
    (root / "tasks" / "top_rooted.py").write_text(TOP_TASK)
    return root


def test_a_task_imports_a_module_at_the_project_root_standalone_and_tracked(rooted: Path, tmp_path: Path) -> None:
    # From another folder than the project: neither the cwd nor the script's folder holds netlib.
    standalone = run(tmp_path, rooted / "tasks" / "rooted.py", "fit", *SMALL, "--out", tmp_path / "out")
    assert standalone.returncode == 0, standalone.stderr
    assert "fit done" in standalone.stdout

    from support.projects import CLI, clean_env

    tracked = subprocess.run([*CLI, "run", "RootedRegression", "-s", "epochs=1", "-s", "samples=200",
                              "--device", "cpu", "--wait", "--json"], cwd=rooted, env=clean_env(tmp_path),
                             capture_output=True, text=True, timeout=240)
    assert tracked.returncode == 0, tracked.stdout + tracked.stderr
    assert json.loads(tracked.stdout)["status"] == "completed"


def test_import_roots_are_the_project_root_then_the_task_folder(rooted: Path, tmp_path: Path) -> None:
    from workbench.runner import import_roots

    assert import_roots(rooted / "tasks" / "rooted.py") == [rooted.resolve(), (rooted / "tasks").resolve()]
    lone = tmp_path / "lone" / "x.py"  # no workbench.toml above it
    lone.parent.mkdir()
    lone.write_text("")
    assert import_roots(lone) == [lone.parent.resolve()]


def test_a_task_importing_a_root_module_at_its_top_runs_standalone(rooted: Path, tmp_path: Path) -> None:
    result = run(tmp_path, rooted / "tasks" / "top_rooted.py", "fit", *SMALL, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
