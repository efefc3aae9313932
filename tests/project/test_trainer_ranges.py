"""The trainer's ranges, open and finite bounds, and one refusal for the CLI, the form and the runner.

A top-level ``Config`` field the trainer reads (``epochs``, ``lr`` ...) and that declares no
``Range`` gets the trainer's (``workbench.project.ranges.TRAINER_RANGES``). The launch
check (``runs.prepare``) and the standalone runner (``python tasks/sine.py fit``) must
refuse the same values with the same line, and write nothing.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.errors import WorkbenchError
from workbench.project import (
    TRAINER_RANGES,
    ConfigError,
    ConfigField,
    Range,
    clear_discovery_cache,
    discover,
    discover_paths,
    fields_of,
    load_project,
    resolve_config,
)
from workbench.runs import LaunchRequest, launch, prepare
from workbench.store import RunIndex

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_projects" / "quickstart"
STEPS = "build_data = build_model = lambda self: None"


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def refusal(fields: Any, *overrides: str, profile: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_config(list(fields), overrides=overrides, profile=profile, task_name="T")
    assert "\n" not in str(info.value)
    return str(info.value)


# ------------------------------------------------------------------ open and finite bounds


def test_open_and_finite_ranges() -> None:
    positive = Range(0, None, low_open=True, finite=True)
    assert str(positive) == "> 0 and finite"
    assert 1e-300 in positive and 0 not in positive and 0.0 not in positive and -1 not in positive
    assert math.inf not in positive and 1e308 in positive
    below_one = Range(0, 1, high_open=True)
    assert str(below_one) == ">= 0 and < 1" and 0 in below_one and 0.999 in below_one and 1 not in below_one
    assert str(Range(finite=True)) == "finite" and -math.inf not in Range(finite=True) and -1e308 in Range(finite=True)
    assert math.inf in Range(0, None)  # without finite, an unbounded side admits inf
    assert Range(0, None, low_open=True) != Range(0, None)
    assert positive.to_dict() == {
        "low": 0, "high": None, "low_open": True, "high_open": False, "finite": True, "text": "> 0 and finite"
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"low_open": True}, ValueError, "Range low_open needs a low bound"),
        ({"low": 1, "high_open": True}, ValueError, "Range high_open needs a high bound"),
        ({"low": 1, "high": 1, "low_open": True}, ValueError, r"Range holds no value: > 1 and <= 1"),
        ({"low": 0, "finite": 1}, TypeError, "Range finite must be True or False, got 1"),
    ],
)
def test_a_range_that_means_nothing_is_refused(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Range(**kwargs)
    assert Range(1, 1) == Range(1, 1)  # a closed single value is fine


FLAGS = f'''
    from dataclasses import dataclass
    from typing import Annotated
    from workbench import Range, Task

    class T(Task):
        @dataclass
        class Config:
            rate: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.5
            decay: Annotated[float, Range(0, None, finite=True)] = 0.0
            bad: Annotated[float, Range(0, None, finite=yes)] = 0.0
            worse: Annotated[float, Range(0, None, finite="no")] = 0.0
            empty: Annotated[int, Range(high_open=True)] = 0
            edge: Annotated[float, Range(0, None, low_open=True)] = 0.0

        {STEPS}
'''


def test_discovery_reads_the_flags_and_the_cache_keeps_them(tmp_path: Path) -> None:
    root = make(tmp_path / "p", {"tasks/t.py": FLAGS})
    cache = tmp_path / "cache"
    first = discover_paths(root, cache_dir=cache)
    assert [str(e) for e in first.errors] == [
        "tasks/t.py:10: config field 'bad': cannot read Range(0, None, finite=yes): Range finite must be True or False",
        "tasks/t.py:11: config field 'worse': cannot read Range(0, None, finite='no'): "
        "Range finite must be True or False, got 'no'",
        "tasks/t.py:12: config field 'empty': cannot read Range(high_open=True): Range high_open needs a high bound",
        "tasks/t.py:13: config field 'edge': the default 0.0 is refused: must be > 0",
    ]
    got = {f.name: f.range for f in first.get("T").config}
    assert got["rate"] == Range(0, 1, low_open=True, high_open=True)
    assert got["decay"] == Range(0, None, finite=True) and got["bad"] is None
    clear_discovery_cache()  # as a new process: the summaries come from the JSON file
    second = discover_paths(root, cache_dir=cache)
    assert second is not first and second.tasks == first.tasks and second.errors == first.errors
    fields = second.get("T").config
    assert refusal(fields, "rate=1") == "rate=1.0 is out of range: must be > 0 and < 1"
    assert refusal(fields, "decay=inf") == "decay=inf is out of range: must be >= 0 and finite"


# ------------------------------------------------------------------------- the trainer's table

TRAINER_TASK = f'''
    from dataclasses import dataclass, field
    from typing import Annotated, Optional
    from workbench import Range, Task

    @dataclass
    class Optim:
        lr: float = 0.1  # nested: the trainer never reads config.optim.lr
        epochs: int = 0

    class T(Task):
        @dataclass
        class Config:
            epochs: int = 5
            lr: float = 1e-3
            batch_size: int = 32
            accumulate_grad_batches: int = 1
            gradient_clip_val: Optional[float] = None
            weight_decay: float = 0.0
            seed: int = 0
            hidden: int = 0
            optim: Optim = field(default_factory=Optim)

        {STEPS}

    class Own(Task):
        """Declares its own range for a field the trainer reads: it replaces the trainer's."""

        @dataclass
        class Config:
            epochs: Annotated[int, Range(1, 10)] = 5
            lr: Annotated[float, Range(0, None)] = 0.0

        {STEPS}
'''

EXPECTED = {
    "epochs": (Range(1, None), "trainer"),
    "lr": (Range(0, None, low_open=True, finite=True), "trainer"),
    "batch_size": (Range(1, None), "trainer"),
    "accumulate_grad_batches": (Range(1, None), "trainer"),
    "gradient_clip_val": (Range(0, None), "trainer"),
    "weight_decay": (Range(0, None, finite=True), "trainer"),
    "seed": (None, ""),
    "hidden": (None, ""),
    "optim.lr": (None, ""),
    "optim.epochs": (None, ""),
}


def test_the_table_is_what_the_trainer_reads() -> None:
    # Every name the core Task reads from its config has an entry, except seed (any
    # 64-bit integer seeds random, numpy and torch), and nothing else is in the table
    # but batch_size (every DataLoader refuses < 1).
    text = (REPO / "workbench" / "core" / "task.py").read_text(encoding="utf-8")
    read = set(re.findall(r'getattr\(self\.config, "(\w+)"', text))
    assert read == {"epochs", "seed", "accumulate_grad_batches", "gradient_clip_val", "lr", "weight_decay"}
    assert set(TRAINER_RANGES) == (read - {"seed"}) | {"batch_size"}


def test_discovery_gives_the_trainer_ranges_and_says_so(tmp_path: Path) -> None:
    make(tmp_path, {"tasks/t.py": TRAINER_TASK})
    discovery = discover_paths(tmp_path)
    assert discovery.errors == ()
    assert {f.name: (f.range, f.range_source) for f in discovery.get("T").config} == EXPECTED
    own = {f.name: (f.range, f.range_source) for f in discovery.get("Own").config}
    assert own == {"epochs": (Range(1, 10), "declared"), "lr": (Range(0, None), "declared")}
    as_dict = next(f for f in discovery.get("T").to_dict()["config"] if f["name"] == "lr")
    assert (as_dict["range"]["text"], as_dict["range_source"]) == ("> 0 and finite", "trainer")


def test_fields_of_gives_the_same_ranges_at_run_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same file, imported (Task itself is replaced: torch is not needed to read a Config).
    source = textwrap.dedent(TRAINER_TASK).replace("from workbench import Range, Task", "from workbench import Range\nclass Task: pass")
    (tmp_path / "trainer_task_mod.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("trainer_task_mod")
    try:
        assert {f.name: (f.range, f.range_source) for f in fields_of(module.T.Config)} == EXPECTED
        assert [(f.name, f.range, f.range_source) for f in fields_of(module.Own.Config)] == [
            ("epochs", Range(1, 10), "declared"),
            ("lr", Range(0, None), "declared"),
        ]
    finally:
        del sys.modules["trainer_task_mod"]


def test_fields_of_reads_a_range_when_another_hint_cannot_be_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "unresolved_mod.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations
            from dataclasses import dataclass
            from typing import TYPE_CHECKING, Annotated
            from workbench import Range

            if TYPE_CHECKING:
                from somewhere import Thing

            @dataclass
            class Config:
                hidden: Annotated[int, Range(1, None)] = 4
                thing: Thing | None = None
                epochs: int = 1
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("unresolved_mod")
    try:
        got = {f.name: (f.range, f.range_source) for f in fields_of(module.Config)}
    finally:
        del sys.modules["unresolved_mod"]
    assert got == {"hidden": (Range(1, None), "declared"), "thing": (None, ""), "epochs": (Range(1, None), "trainer")}


def test_a_default_outside_the_trainer_range_is_refused_at_launch() -> None:
    fields = [ConfigField("epochs", "int", 0, True, range=TRAINER_RANGES["epochs"], range_source="trainer")]
    assert refusal(fields) == "epochs=0 is out of range: must be >= 1 (the task's default; set a value with -s epochs=VALUE)"
    assert resolve_config(fields, overrides=["epochs=2"]) == {"epochs": 2}


def test_a_range_without_a_source_is_declared_and_no_range_has_no_source() -> None:
    assert ConfigField("a", "int", range=Range(1)).range_source == "declared"
    assert ConfigField("a", "int", range_source="trainer").range_source == ""


# --------------------------------------------------------------------- the sample project


@pytest.fixture(scope="module")
def sample_fields() -> tuple[ConfigField, ...]:
    return discover(load_project(SAMPLE)).get("SineRegression").config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=-1", "epochs=-1 is out of range: must be >= 1"),
        ("epochs=0", "epochs=0 is out of range: must be >= 1"),
        ("lr=nan", "lr=nan is not a number; it must be > 0 and finite"),
        ("lr=inf", "lr=inf is out of range: must be > 0 and finite"),
        ("lr=1e400", "lr=1e400 (too large for a float: read as inf) is out of range: must be > 0 and finite"),
        ("lr=0", "lr=0.0 is out of range: must be > 0 and finite"),
        ("lr=-1e-3", "lr=-0.001 is out of range: must be > 0 and finite"),
        ("batch_size=0", "batch_size=0 is out of range: must be >= 1"),
        ("hidden=0", "hidden=0 is out of range: must be >= 1"),
        ("samples=9", "samples=9 is out of range: must be >= 10"),
        ("noise=inf", "noise=inf is out of range: must be >= 0 and finite"),
    ],
)
def test_sine_refuses_what_the_trainer_cannot_use(
    sample_fields: tuple[ConfigField, ...], override: str, message: str
) -> None:
    assert refusal(sample_fields, override) == message


def test_sine_accepts_the_edges(sample_fields: tuple[ConfigField, ...]) -> None:
    config = resolve_config(list(sample_fields), overrides=["epochs=1", "lr=1e-300", "batch_size=1", "layers=0",
                                                            "samples=10", "noise=0", "seed=-5"])
    assert (config["epochs"], config["lr"], config["batch_size"], config["seed"]) == (1, 1e-300, 1, -5)


def test_a_profile_value_out_of_the_trainer_range_names_the_file_and_line(
    tmp_path: Path, sample_fields: tuple[ConfigField, ...]
) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_text("hidden = 8\nlr = 1e400\n", encoding="utf-8")  # TOML reads 1e400 as inf
    assert refusal(sample_fields, profile=profile).endswith("bad.toml:2: lr=inf is out of range: must be > 0 and finite")
    profile.write_text("epochs = -1\n", encoding="utf-8")
    assert refusal(sample_fields, profile=profile).endswith("bad.toml:1: epochs=-1 is out of range: must be >= 1")


def test_the_sample_tasks_have_the_same_ranges_imported_as_discovered() -> None:
    """Standalone and tracked read the same ranges (this imports torch: the sample's tasks use it)."""
    discovery = discover(load_project(SAMPLE))
    sys.path.insert(0, str(SAMPLE / "tasks"))
    try:
        for task in (t for t in discovery.launchable if t.kind == "task"):  # not [scripts.*]
            module = importlib.import_module(task.module.rpartition(".")[2])
            runtime = fields_of(getattr(module, task.name).Config)
            assert [(f.name, f.range, f.range_source) for f in runtime] == [
                (f.name, f.range, f.range_source) for f in task.config
            ], task.name
            assert any(f.range_source == "declared" for f in task.config), task.name  # the sample declares some
    finally:
        sys.path.remove(str(SAMPLE / "tasks"))
        for name in ("sine", "spirals", "regression_models", "regression_framework"):
            sys.modules.pop(name, None)


# ----------------------------------------------------- the launch check and the standalone runner


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "quickstart"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".workbench"))
    return root


def _tree(root: Path) -> dict[str, int]:
    """Every file and its size, but the index (SQLite's own files change on open and close)."""
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("index.db")
    }


@pytest.mark.parametrize("override", ["epochs=0", "lr=1e400", "batch_size=0"])
def test_the_launch_check_refuses_in_one_line_and_writes_nothing(project_copy: Path, override: str) -> None:
    project = load_project(project_copy)
    discover(project)  # the discovery cache may be written: it is not the launch's
    with RunIndex(project.index_path) as index:
        before = _tree(project_copy)
        with pytest.raises(WorkbenchError) as prepared:
            prepare(project, LaunchRequest("SineRegression", [override]), index=index, probe={})
        with pytest.raises(WorkbenchError) as launched:
            launch(project, LaunchRequest("SineRegression", [override]), index=index, probe={}, start=False)
        assert str(prepared.value) == str(launched.value) and "\n" not in str(prepared.value)
        assert str(prepared.value).startswith(override.partition("=")[0] + "=")
        assert index.run_ids() == set()
    assert _tree(project_copy) == before
    assert not project.runs_dir.exists() or not any(project.runs_dir.iterdir())


def test_the_cli_refuses_the_same_line(project_copy: Path) -> None:
    result = CliRunner().invoke(cli, ["--project", str(project_copy), "run", "SineRegression", "-s", "epochs=0"])
    assert result.exit_code != 0
    assert "epochs=0 is out of range: must be >= 1" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_the_standalone_runner_refuses_the_same_values(project_copy: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    before = _tree(project_copy)
    for override, message in [
        ("epochs=0", "epochs=0 is out of range: must be >= 1"),
        ("lr=1e400", "lr=1e400 (too large for a float: read as inf) is out of range: must be > 0 and finite"),
    ]:
        out = subprocess.run([sys.executable, "tasks/sine.py", "fit", "-s", override], cwd=project_copy,
                             capture_output=True, text=True, timeout=180, env=env)
        assert out.returncode != 0
        assert out.stderr.splitlines() == [f"error: {message}"] and out.stdout == ""
    assert _tree(project_copy) == before  # no output folder


def test_workbench_tasks_shows_each_range_and_whose(project_copy: Path) -> None:
    result = CliRunner().invoke(cli, ["--project", str(project_copy), "tasks"])
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    sine = lines[next(i for i, line in enumerate(lines) if line.startswith("SineRegression")):]
    assert "epochs: int = 5  (>= 1; the trainer's)" in sine
    assert "lr: float = 0.003  (> 0 and finite; the trainer's)" in sine
    assert "hidden: int = 64  (>= 1)" in sine
    assert "seed: int = 0" in sine
