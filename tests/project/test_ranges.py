"""Static config ranges: ``Annotated[int, Range(1, None)]`` read by discovery, refused at launch."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.project import (
    ConfigError,
    ConfigField,
    Discovery,
    Range,
    build_config,
    clear_discovery_cache,
    discover_paths,
    fields_of,
    resolve_config,
)

STEPS = "build_data = build_model = lambda self: None"

TASK = f'''
    from __future__ import annotations
    from dataclasses import dataclass, field
    from typing import Annotated, Optional
    import typing as t
    import workbench as wb
    from workbench import Range, Task

    @dataclass
    class Optim:
        lr: Annotated[float, Range(low=0.0, high=1.0)] = 0.1
        momentum: float = 0.9

    class T(Task):
        """A task with ranges."""

        @dataclass
        class Config:
            epochs: Annotated[int, Range(1, None)] = 10  # at least one
            seed: int = 0
            ratio: t.Annotated[float, wb.Range(-1, 1)] = 0.5
            warmup: "Annotated[int, Range(high=100)]" = 0
            limit: Annotated[Optional[int], "doc", Range(1, None)] = None
            scale: Annotated[float, Range(0, None)] = 1.0
            layers: Annotated[list[int], Range(1, None)] = field(default_factory=lambda: [64, 64])
            plain: Annotated[int, "no range here"] = 3
            optim: Annotated[Optim, "a nested dataclass"] = field(default_factory=Optim)
            rate: float = 0.5

        {STEPS}
'''


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def fields(discovery: Discovery, task: str = "T") -> dict[str, ConfigField]:
    return {f.name: f for f in discovery.get(task).config}


def refusal(fields_: list[ConfigField] | tuple[ConfigField, ...], *overrides: str, profile: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_config(list(fields_), overrides=overrides, profile=profile, task_name="T")
    return str(info.value)


# ----------------------------------------------------------------------------- the marker


def test_range_is_a_plain_value() -> None:
    assert Range(1, None) == Range(low=1) and hash(Range(1, None)) == hash(Range(low=1))
    assert (str(Range(1)), str(Range(high=10)), str(Range(0.0, 1.0)), str(Range())) == (
        ">= 1",
        "<= 10",
        ">= 0.0 and <= 1.0",
        "any number",
    )
    assert 1 in Range(1, 2) and 2 in Range(1, 2) and 3 not in Range(1, 2) and 0 not in Range(1, 2)
    assert math.inf in Range(0, None) and math.inf not in Range(0, 1) and -math.inf not in Range(0, None)
    assert math.nan not in Range() and "1" not in Range() and True not in Range()
    assert Range(-1, 1).to_dict() == {
        "low": -1, "high": 1, "low_open": False, "high_open": False, "finite": False, "text": ">= -1 and <= 1"
    }


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((5, 1), ValueError, "Range low 5 is above high 1"),
        ((math.nan, None), ValueError, "Range low must not be nan"),
        ((True, None), TypeError, "Range low must be a number or None, got True"),
        ((None, "10"), TypeError, "Range high must be a number or None, got '10'"),
    ],
)
def test_range_refuses_what_it_cannot_mean(args: tuple[Any, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Range(*args)


def test_workbench_range_loads_no_torch() -> None:
    code = "import sys, workbench; r = workbench.Range(1, None); print(r, sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ">= 1 []"
    assert workbench.Range is Range and "Range" in workbench.__all__


# ------------------------------------------------------------------------------ discovery


def test_discovery_reads_ranges_without_importing(tmp_path: Path) -> None:
    make(tmp_path, {"tasks/t.py": TASK})
    discovery = discover_paths(tmp_path)
    assert discovery.errors == ()
    got = fields(discovery)
    assert {name: (f.type, f.range) for name, f in got.items()} == {
        "epochs": ("int", Range(1, None)),
        "seed": ("int", None),
        "ratio": ("float", Range(-1, 1)),
        "warmup": ("int", Range(None, 100)),
        "limit": ("Optional[int]", Range(1, None)),
        "scale": ("float", Range(0, None)),
        "layers": ("list[int]", Range(1, None)),
        "plain": ("int", None),
        "optim.lr": ("float", Range(0.0, 1.0)),
        "optim.momentum": ("float", None),
        "rate": ("float", None),
    }
    assert got["epochs"].help == "at least one" and got["epochs"].default == 10
    assert got["epochs"].to_dict()["range"] == {
        "low": 1, "high": None, "low_open": False, "high_open": False, "finite": False, "text": ">= 1"
    }
    first = json.loads(json.dumps(discovery.to_dict()))["tasks"][0]["config"][0]
    assert (first["range"]["text"], first["range_source"]) == (">= 1", "declared")


def test_ranges_survive_the_disk_cache(tmp_path: Path) -> None:
    root = make(tmp_path / "p", {"tasks/t.py": TASK, "tasks/bad.py": BAD})
    cache = tmp_path / "cache"
    first = discover_paths(root, cache_dir=cache)
    clear_discovery_cache()  # as a new process: the summaries come from the JSON file
    second = discover_paths(root, cache_dir=cache)
    assert second is not first
    assert second.tasks == first.tasks and second.errors == first.errors
    assert fields(second)["optim.lr"].range == Range(0.0, 1.0)
    assert len(second.errors) == len(BAD_MESSAGES)


BAD = f'''
    from dataclasses import dataclass, field
    from typing import Annotated
    from workbench import Range, Task

    MAX = 10

    @dataclass
    class Optim:
        lr: Annotated[float, Range(0.0, 1.0)] = 0.1

    class Bad(Task):
        @dataclass
        class Config:
            a: Annotated[int, Range(5, 1)] = 5
            b: Annotated[int, Range(1, MAX)] = 1
            c: Annotated[int, Range(1, 2, 3)] = 1
            d: Annotated[int, Range(lo=1)] = 1
            e: Annotated[int, Range(1), Range(2)] = 2
            f: list[Annotated[int, Range(1, None)]] = field(default_factory=list)
            g: Annotated[int, Range(1, None)] = 0
            h: Annotated[list[int], Range(1, None)] = field(default_factory=lambda: [3, 0])
            i: Annotated[int, Range(True, None)] = 1
            j: Annotated[int, Range(1, low=2)] = 2
            optim: Optim = field(default_factory=lambda: Optim(lr=2.0))
            ok: Annotated[int, Range(1, None)] = 1

        {STEPS}
'''

BAD_MESSAGES = [
    (14, "config field 'a': cannot read Range(5, 1): Range low 5 is above high 1"),
    (15, "config field 'b': cannot read Range(1, MAX): Range bounds must be literal numbers or None"),
    (16, "config field 'c': cannot read Range(1, 2, 3): Range takes low, high, low_open, high_open and finite"),
    (17, "config field 'd': cannot read Range(lo=1): Range takes low, high, low_open, high_open and finite"),
    (18, "config field 'e': more than one Range in the annotation"),
    (19, "config field 'f': a Range is read only as Annotated[TYPE, Range(...)] around the whole type"),
    (20, "config field 'g': the default 0 is refused: must be >= 1"),
    (21, "config field 'h': the default 0 (at [1]) is refused: must be >= 1"),
    (22, "config field 'i': cannot read Range(True, None): Range low must be a number or None, got True"),
    (23, "config field 'j': cannot read Range(1, low=2): low is given twice"),
    (24, "config field 'optim.lr': the default 2.0 is refused: must be >= 0.0 and <= 1.0"),
]


def test_a_range_that_cannot_be_read_is_one_error_line_and_the_task_stays(tmp_path: Path) -> None:
    make(tmp_path, {"tasks/bad.py": BAD})
    discovery = discover_paths(tmp_path)
    assert [(e.file, e.line, e.message, e.kind) for e in discovery.errors] == [
        ("tasks/bad.py", line, message, "config") for line, message in BAD_MESSAGES
    ]
    assert str(discovery.errors[0]) == "tasks/bad.py:14: " + BAD_MESSAGES[0][1]
    task = discovery.get("Bad", launchable=True)
    got = {f.name: f.range for f in task.config}
    assert got["ok"] == Range(1, None) and got["optim.lr"] == Range(0.0, 1.0) and got["g"] == Range(1, None)
    assert all(got[name] is None for name in "abcdefij")  # unread: listed without a range
    # Config errors are not unreadable files in a "no such task" message.
    with pytest.raises(Exception, match="no task named 'Nope'; available: Bad$"):
        discovery.get("Nope")


def test_the_same_dataclass_in_many_tasks_is_reported_once(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/shared.py": """
                from dataclasses import dataclass
                from typing import Annotated
                from workbench import Range

                @dataclass
                class Common:
                    n: Annotated[int, Range(2, 1)] = 1
            """,
            "tasks/a.py": f"""
                from workbench import Task
                from tasks.shared import Common
                class A(Task):
                    Config = Common
                    {STEPS}
                class B(Task):
                    Config = Common
                    {STEPS}
            """,
        },
    )
    discovery = discover_paths(tmp_path)
    assert [str(e) for e in discovery.errors] == [
        "tasks/shared.py:7: config field 'n': cannot read Range(2, 1): Range low 2 is above high 1"
    ]
    assert [t.name for t in discovery.launchable] == ["A", "B"]


# ------------------------------------------------------------------------- the launch check


@pytest.fixture
def task_fields(tmp_path: Path) -> tuple[ConfigField, ...]:
    make(tmp_path, {"tasks/t.py": TASK})
    return discover_paths(tmp_path).get("T").config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=0", "epochs=0 is out of range: must be >= 1"),
        ("epochs=-5", "epochs=-5 is out of range: must be >= 1"),
        ("ratio=1.5", "ratio=1.5 is out of range: must be >= -1 and <= 1"),
        ("warmup=101", "warmup=101 is out of range: must be <= 100"),
        ("limit=0", "limit=0 is out of range: must be >= 1"),
        ("optim.lr=2", "optim.lr=2.0 is out of range: must be >= 0.0 and <= 1.0"),
        ("optim.lr=inf", "optim.lr=inf is out of range: must be >= 0.0 and <= 1.0"),
        ("scale=-inf", "scale=-inf is out of range: must be >= 0"),
        ("layers=[64, 0]", "layers[1]=0 is out of range: must be >= 1"),
        ("rate=nan", "rate=nan is not a number"),
        ("scale=nan", "scale=nan is not a number; it must be >= 0"),
        ("optim.momentum=-nan", "optim.momentum=nan is not a number"),
        ("seed=9223372036854775808", "seed=9223372036854775808 is out of range: integers must lie between "
         "-9223372036854775808 and 9223372036854775807 (SQLite's range)"),
        ("seed=-9223372036854775809", "seed=-9223372036854775809 is out of range: integers must lie between "
         "-9223372036854775808 and 9223372036854775807 (SQLite's range)"),
    ],
)
def test_out_of_range_values_are_refused_with_one_line(
    task_fields: tuple[ConfigField, ...], override: str, message: str
) -> None:
    assert refusal(task_fields, override) == message


def test_values_inside_the_range_pass(task_fields: tuple[ConfigField, ...]) -> None:
    config = resolve_config(
        list(task_fields),
        overrides=[
            "epochs=1",
            "ratio=-1",
            "ratio=1.0",
            "warmup=100",
            "limit=none",
            "scale=inf",  # no upper bound: inf is allowed
            "rate=-inf",  # no range at all
            "optim.lr=0",
            "seed=9223372036854775807",
            "plain=-9223372036854775808",
        ],
    )
    assert config["epochs"] == 1 and config["ratio"] == 1.0 and config["limit"] is None
    assert config["scale"] == math.inf and config["rate"] == -math.inf and config["optim"]["lr"] == 0.0
    assert config["seed"] == 2**63 - 1 and config["plain"] == -(2**63)


def test_a_profile_value_out_of_range_names_the_file_and_line(
    tmp_path: Path, task_fields: tuple[ConfigField, ...]
) -> None:
    profile = tmp_path / "fast.toml"
    profile.write_text("seed = 1\nepochs = 0\n[optim]\nlr = 1.5\n")
    assert refusal(task_fields, profile=profile).endswith("fast.toml:2: epochs=0 is out of range: must be >= 1")
    profile.write_text("epochs = 2\n[optim]\nlr = 1.5\n")
    assert refusal(task_fields, profile=profile).endswith(
        "fast.toml:3: optim.lr=1.5 is out of range: must be >= 0.0 and <= 1.0"
    )


def test_a_string_field_keeps_the_text_nan() -> None:
    fields_ = [ConfigField("name", "str", "x", True), ConfigField("anything", "Any", None, True)]
    assert resolve_config(fields_, overrides=["name=nan"])["name"] == "nan"
    assert refusal(fields_, "anything=nan") == "anything=nan is not a number"
    assert refusal(fields_, "anything={a = [1, nan]}") == "anything['a'][1]=nan is not a number"


# ---------------------------------------------------------------------------- the runtime side

RUNTIME = """
    from dataclasses import dataclass, field
    from typing import Annotated
    from workbench import Range

    @dataclass
    class Optim:
        lr: Annotated[float, Range(0.0, 1.0)] = 0.1

    @dataclass
    class TheConfig:
        epochs: Annotated[int, Range(1, None)] = 10
        limit: Annotated[int | None, Range(1, None)] = None
        optim: Annotated[Optim, "nested"] = field(default_factory=Optim)
"""


@pytest.mark.parametrize("future", [True, False])
def test_annotated_is_a_normal_hint_at_run_time(tmp_path: Path, future: bool) -> None:
    source = ("from __future__ import annotations\n" if future else "") + textwrap.dedent(RUNTIME)
    path = tmp_path / f"runtime_{future}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
        config = build_config(module.TheConfig, {"epochs": 3, "optim": {"lr": 0.5}})
        assert (config.epochs, config.limit, config.optim.lr) == (3, None, 0.5)
        assert [(f.name, f.type) for f in fields_of(module.TheConfig)] == [
            ("epochs", "int"),
            ("limit", "int | None"),
            ("optim.lr", "float"),
        ]
    finally:
        del sys.modules[path.stem]
    # The static side reads the same file the same way, and knows the ranges.
    make(tmp_path, {"tasks/t.py": source + f"\nfrom workbench import Task\nclass T(Task):\n    Config = TheConfig\n    {STEPS}\n"})
    static = fields(discover_paths(tmp_path))
    assert [(f.name, f.type, f.range) for f in static.values()] == [
        ("epochs", "int", Range(1, None)),
        ("limit", "int | None", Range(1, None)),
        ("optim.lr", "float", Range(0.0, 1.0)),
    ]
