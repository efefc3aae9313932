"""Runs that repeat: deterministic mode, its environment, its record, and its reuse.

The end-to-end tests launch the same small task three times at once in deterministic mode
while a CPU-burning process of the test's own competes for the cores, and compare the
final weights with ``torch.equal``; then fork one of them with a doctored numerics record
and check that the fork took the record's settings over and said what differs. The rest
checks the pieces without a training process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from runs_helpers import git_env, index_of, kill_run_processes, make_project, wait_ended, wb

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.errors import WorkbenchError
from workbench.project.settings import load_project
from workbench.runs.launch import LaunchRequest, prepare
from workbench.runs.numerics import (
    DETERMINISTIC_ENV,
    NUMERICS_ENV_VAR,
    NumericsSettings,
    latest_numerics,
    numerics_changes,
    numerics_path,
    numerics_summary,
    numerics_to_reuse,
    training_env,
    write_numerics,
)

SMALL = ("-s", "samples=2000", "-s", "epochs=2", "--device", "cpu")
#: Seconds the background load may last at most (it is stopped as soon as the runs end).
BURN_SECONDS = 240


def _burner() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy for at most ``BURN_SECONDS``."""
    code = f"import time\nend = time.monotonic() + {BURN_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def _threads_env(root: Path) -> dict[str, str]:
    """The tests' environment without its ``OMP_NUM_THREADS=1``: torch's own thread count
    (two on a 2-core machine), where runs did not repeat before deterministic mode."""
    env = git_env(root.parent)
    env.pop("OMP_NUM_THREADS", None)
    return env


def _launch(root: Path, *args: str) -> str:
    done = wb(root, "run", "SineRegression", *SMALL, *args, "--json", env=_threads_env(root))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def _final_weights(run_dir: str) -> dict[str, torch.Tensor]:
    files = step_files(checkpoint_folder(run_dir))
    assert files, f"no step checkpoint in {run_dir}"
    _, newest = max(files)
    return torch.load(newest, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> Iterator[tuple[Path, list]]:
    """Three deterministic runs of one task, launched together under extra CPU load."""
    root = make_project(tmp_path_factory.mktemp("determinism"), probe_cache)
    burner = _burner()
    try:
        ids = [_launch(root, "--deterministic") for _ in range(3)]
        rows = wait_ended(root, ids)
    finally:
        burner.kill()
        burner.wait()
    yield root, [rows[i] for i in ids]
    kill_run_processes(root)


def test_deterministic_runs_end_with_equal_weights_under_load(repeated: tuple[Path, list]) -> None:
    _, rows = repeated
    assert [r.status.value for r in rows] == ["completed"] * 3, [(r.status, r.error) for r in rows]
    first = _final_weights(rows[0].run_dir)
    for row in rows[1:]:
        other = _final_weights(row.run_dir)
        assert first.keys() == other.keys()
        differing = [k for k in first if not torch.equal(first[k], other[k])]
        assert not differing, f"run {row.id} ended with other weights than {rows[0].id}: {differing}"


def test_a_run_records_its_numerics(repeated: tuple[Path, list]) -> None:
    root, rows = repeated
    record = json.loads(numerics_path(rows[0].run_dir, 1).read_text())
    assert record["deterministic"] is True and record["settings"]["deterministic"] is True
    assert record["threads"] >= 1 and record["interop_threads"] >= 1
    assert "OMP_NUM_THREADS" not in record["env"]
    for key, value in DETERMINISTIC_ENV.items():
        assert record["env"][key] == value
    assert record["build"]["blas_info"] and record["parallel"]["backend"]
    with index_of(root) as index:
        events = [e for e in index.events(rows[0].id) if e.kind == "numerics"]
    assert len(events) == 1 and events[0].data["threads"] == record["threads"]
    assert events[0].message == numerics_summary(record)
    assert "deterministic" in events[0].message and f"MKL_CBWR={DETERMINISTIC_ENV['MKL_CBWR']}" in events[0].message


def test_a_fork_reuses_the_recorded_numerics_and_says_what_differs(repeated: tuple[Path, list]) -> None:
    root, rows = repeated
    parent = rows[1]
    path = numerics_path(parent.run_dir, 1)
    record = json.loads(path.read_text())
    # As if the parent had run elsewhere: one thread, MKL's AUTO branch, another CPU.
    record.update(threads=1, cpu_capability="SSE42")
    record["env"]["MKL_CBWR"] = "AUTO"
    path.write_text(json.dumps(record))
    done = wb(root, "fork", parent.id, "-s", "epochs=3", "--json", env=_threads_env(root))
    assert done.returncode == 0, done.stderr
    fork = wait_ended(root, [json.loads(done.stdout)["id"]]).popitem()[1]
    assert fork.status.value == "completed", fork.error
    got = json.loads(numerics_path(fork.run_dir, 1).read_text())
    assert got["threads"] == 1 and got["env"]["MKL_CBWR"] == "AUTO"
    assert got["settings"]["reused_from"] == f"run {parent.id} attempt 1"
    with index_of(root) as index:
        changed = [e for e in index.events(fork.id) if e.kind == "numerics-changed"]
    assert len(changed) == 1 and "cpu_capability 'SSE42' ->" in changed[0].message
    assert not any("threads" in c.split()[0] for c in changed[0].data["changes"])  # threads were kept


# --- the pieces, without a training process ---------------------------------------------


def test_deterministic_env_is_set_unless_the_user_set_it() -> None:
    env = training_env({"MKL_CBWR": "AUTO", "PATH": "/bin"}, deterministic=True)
    assert env["MKL_CBWR"] == "AUTO" and env["PATH"] == "/bin"
    assert all(env[k] == v for k, v in DETERMINISTIC_ENV.items() if k != "MKL_CBWR")
    assert NumericsSettings.from_env(env) == NumericsSettings(True)
    plain = training_env({"PATH": "/bin"}, deterministic=False)
    assert not any(k in plain for k in DETERMINISTIC_ENV)
    assert NumericsSettings.from_env(plain).deterministic is False


def test_ddp_starts_one_thread_per_process_unless_told() -> None:
    assert training_env({}, deterministic=False, backend="ddp")["OMP_NUM_THREADS"] == "1"
    assert training_env({"OMP_NUM_THREADS": "3"}, deterministic=False, backend="ddp")["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in training_env({}, deterministic=True)


def test_a_reused_record_replaces_the_numerics_environment_exactly() -> None:
    record = {"threads": 3, "interop_threads": 2, "env": {"MKL_CBWR": "AUTO", "OMP_DYNAMIC": "FALSE"},
              "source": "attempt 1"}
    env = training_env({"MKL_CBWR": "COMPATIBLE", "KMP_AFFINITY": "compact", "OMP_NUM_THREADS": "8",
                        "HOME": "/root"}, deterministic=True, record=record)
    assert {k: v for k, v in env.items() if k != NUMERICS_ENV_VAR} == {
        "MKL_CBWR": "AUTO", "OMP_DYNAMIC": "FALSE", "HOME": "/root"}
    assert NumericsSettings.from_env(env) == NumericsSettings(True, 3, 2, "attempt 1")


def test_the_latest_earlier_record_is_reused_else_the_parents(tmp_path: Path) -> None:
    run, parent = tmp_path / "run", tmp_path / "parent"
    assert numerics_to_reuse(run, 1) is None
    write_numerics(parent, 2, {"threads": 4})
    assert numerics_to_reuse(run, 1, parent, "p1") == {"threads": 4, "source": "run p1 attempt 2"}
    write_numerics(run, 1, {"threads": 1})
    write_numerics(run, 2, {"threads": 2})
    write_numerics(run, 3, {"threads": 3})
    assert numerics_to_reuse(run, 3, parent) == {"threads": 2, "source": "attempt 2"}
    (numerics_path(run, 2)).write_text("{not json")
    assert latest_numerics(run, before=3) == {"threads": 1, "source": "attempt 1"}


def test_numerics_changes_name_what_differs() -> None:
    before = {"threads": 2, "cpu_capability": "AVX512", "parallel": {"mkl": "2024.2"},
              "env": {"MKL_CBWR": "COMPATIBLE"}, "host": "a"}
    assert numerics_changes(before, {**before, "host": "b"}) == []
    now = {**before, "threads": 4, "parallel": {"mkl": "2025.0"}, "env": {}}
    assert numerics_changes(before, now) == ["threads 2 -> 4", "parallel.mkl '2024.2' -> '2025.0'",
                                             "MKL_CBWR COMPATIBLE -> unset"]


def _project(tmp_path: Path, defaults: str = "") -> Path:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.py").write_text(
        '"""A task."""\nfrom dataclasses import dataclass\nfrom workbench import Task\n\n'
        'class T(Task):\n    """A task."""\n\n    @dataclass\n    class Config:\n        epochs: int = 1\n\n'
        '    def build_data(self):\n        return []\n\n    def build_model(self):\n        return None\n')
    (tmp_path / "workbench.toml").write_text(f"[defaults]\n{defaults}\n")
    return tmp_path


@pytest.mark.parametrize(("defaults", "device", "asked", "expected"), [
    ("", "cpu", None, True),                       # on for CPU runs by default
    ("", "auto", None, True),                      # auto is the CPU on a machine without GPUs
    ("", "cuda", None, False),                     # off elsewhere unless asked for
    ("", "cuda", True, True),
    ("deterministic = false", "cpu", None, False),  # the project's default
    ("deterministic = false", "cpu", True, True),   # a launch's choice wins
    ("deterministic = true", "cpu", False, False),
])
def test_launch_resolves_deterministic(tmp_path: Path, defaults: str, device: str, asked: bool | None,
                                       expected: bool) -> None:
    project = load_project(_project(tmp_path, defaults))
    probe = {"devices": ["cpu", "cuda:0"] if device == "cuda" else ["cpu"], "default": "cpu"}
    prepared = prepare(project, LaunchRequest("T", device=device, deterministic=asked), probe=probe)
    assert prepared.deterministic is expected


def test_project_deterministic_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match=r"workbench.toml:2: defaults.deterministic must be true or false"):
        load_project(_project(tmp_path, 'deterministic = "yes"'))
