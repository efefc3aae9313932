"""``run.toml``: written by a TOML library, read back before launch, every format loads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runs_helpers import index_of, make_project, wb

from workbench.errors import WorkbenchError
from workbench.project import load_project
from workbench.runs import LaunchRequest, prepare
from workbench.runs.spec import RunSpec, check_round_trip, dump_spec, load_spec, read_spec, write_spec


def _spec(**changes: object) -> RunSpec:
    values = dict(id="2nqa0000abcd", task="SineRegression", task_file="tasks/sine.py", task_module="tasks.sine",
                  config={"lr": 0.01}, device="cpu", backend="single", nproc=1, precision="32",
                  project_root="/p", index="/p/.workbench/index.db", code_dir="/p/.workbench/runs/x/code")
    values.update(changes)
    return RunSpec(**values)  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str) or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


_keys = st.text(min_size=1, max_size=12)
_scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False), st.text(max_size=20),
)
_values = st.recursive(
    st.one_of(_scalars, st.none()),
    lambda inner: st.one_of(
        st.lists(st.one_of(_scalars), max_size=4),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.dictionaries(_keys, _values, max_size=6),
    name=st.text(max_size=30),
    tags=st.lists(st.text(max_size=12), max_size=4),
    profile=st.text(max_size=20),
    resume_from=st.one_of(st.just(""), st.text(max_size=30)),
)
def test_any_spec_round_trips(config: dict, name: str, tags: list, profile: str, resume_from: str) -> None:
    spec = _spec(config=config, name=name, tags=tags, profile=profile, resume_from=resume_from)
    back = load_spec(dump_spec(spec))
    assert back == spec
    check_round_trip(spec)  # and the launch check agrees


def test_none_in_a_nested_table_is_kept_by_the_unset_rule() -> None:
    spec = _spec(config={"optim": {"momentum": None, "lr": 0.1}, "note": None})
    text = dump_spec(spec)
    assert "unset" in text and "momentum" not in text.split("unset")[0]
    assert load_spec(text).config == {"optim": {"momentum": None, "lr": 0.1}, "note": None}


def test_a_none_inside_a_list_is_refused_in_one_line() -> None:
    with pytest.raises(WorkbenchError, match="None inside a list"):
        check_round_trip(_spec(config={"layers": [1, None]}))


def test_nan_and_inf_and_astral_characters_round_trip() -> None:
    spec = _spec(config={"a": math.inf, "b": -math.inf, "c": math.nan}, tags=["🚀", "𝔘nicode"], name="🚀-run")
    back = load_spec(dump_spec(spec))
    assert back.tags == ["🚀", "𝔘nicode"] and back.name == "🚀-run"
    assert back.config["a"] == math.inf and back.config["b"] == -math.inf and math.isnan(back.config["c"])


def test_the_first_waves_hand_written_spec_still_loads(tmp_path: Path) -> None:
    # Exactly what the first wave's writer produced (json.dumps strings, no format key).
    (tmp_path / "run.toml").write_text(
        '# The launch spec of this run, written by workbench. Do not edit.\n'
        'id = "2nq9zz00abcd"\ntask = "SineRegression"\ntask_file = "tasks/sine.py"\n'
        'task_module = "tasks.sine"\ndevice = "cpu"\nbackend = "single"\nnproc = 1\nprecision = "32"\n'
        'project_root = "/p"\nindex = "/p/.workbench/index.db"\ncode_dir = "/p/code"\nname = "old"\n'
        'tags = ["a", "b"]\nprofile = ""\nsnapshot = "abc"\nresume_from = ""\n\n'
        '[config]\n"lr" = 0.01\n"hidden" = 64\n"optim" = {"beta" = 0.9}\n', encoding="utf-8")
    spec = read_spec(tmp_path)
    assert spec.name == "old" and spec.tags == ["a", "b"]
    assert spec.config == {"lr": 0.01, "hidden": 64, "optim": {"beta": 0.9}}
    write_spec(tmp_path, spec)
    assert read_spec(tmp_path) == spec


def test_a_spec_from_a_newer_workbench_is_refused(tmp_path: Path) -> None:
    write_spec(tmp_path, _spec())
    path = tmp_path / "run.toml"
    path.write_text(path.read_text().replace("format = 2", "format = 99"))
    with pytest.raises(WorkbenchError, match="newer workbench"):
        read_spec(tmp_path)


def test_prepare_refuses_a_launch_whose_spec_cannot_round_trip(tmp_path: Path) -> None:
    root = make_project(tmp_path, None)
    project = load_project(root)
    with pytest.raises(WorkbenchError, match="run.toml cannot hold"):
        prepare(project, LaunchRequest("SineRegression", tags=["\udc80"]), probe={"devices": ["cpu"]})
    assert not (root / ".workbench" / "runs").exists() or not any((root / ".workbench" / "runs").iterdir())


@pytest.mark.slow
def test_a_run_tagged_with_an_emoji_completes(project: Path) -> None:
    result = wb(project, "run", "SineRegression", "-s", "epochs=1", "-s", "samples=64", "--tag", "🚀",
                "--name", "rocket", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "completed" and record["tags"] == ["🚀"]


@pytest.mark.slow
def test_a_supervisor_that_cannot_read_its_spec_marks_the_run_failed(project: Path) -> None:
    result = wb(project, "run", "SineRegression", "-s", "epochs=1", "-s", "samples=64", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    run_dir = Path(record["run_dir"])
    with index_of(project) as index:
        from workbench.runs import wait_for

        wait_for(index, record["id"], timeout=120)
        # A new attempt whose spec was damaged meanwhile (as a crash mid-write would leave it).
        index.update_run(record["id"], status="queued", ended_at=None, error=None)
    (run_dir / "run.toml").write_text('id = "unterminated\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "workbench.runs.supervisor", str(run_dir),
                           "--index", str(project / ".workbench" / "index.db"), "--run-id", record["id"]],
                          cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    with index_of(project) as index:
        run = index.get_run(record["id"])
        assert run is not None and run.status == "failed", run
        assert "run.toml" in (run.error or "") and "unreadable" in (run.error or "")
