"""Static task discovery: which classes are tasks, their docs, abstractness and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.project import (
    Discovery,
    TaskInfo,
    TaskNotFound,
    discover,
    discover_paths,
    load_project,
)

REPO = Path(__file__).resolve().parents[2]

# The framework's Task has abstract build_data/build_model: a concrete task defines both.
STEPS = "build_data = build_model = lambda self: None"


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def found(root: Path, globs: tuple[str, ...] = ("tasks/**/*.py",)) -> Discovery:
    return discover_paths(root, globs)


def names(discovery: Discovery) -> list[str]:
    return [t.name for t in discovery.tasks]


def fields(task: TaskInfo) -> dict[str, object]:
    return {f.name: f.default for f in task.config}


def test_every_way_of_naming_workbench_task(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/a.py": f"""
                from workbench import Task
                class A(Task):
                    '''Plain import.'''
                    {STEPS}
            """,
            "tasks/b.py": f"""
                import workbench
                class B(workbench.Task):
                    {STEPS}
            """,
            "tasks/c.py": f"""
                import workbench as wb
                class C(wb.Task):
                    {STEPS}
            """,
            "tasks/d.py": f"""
                from workbench.core import Task as Base
                from workbench.core.task import Task
                class D(Base):
                    {STEPS}
                class E(Task):
                    {STEPS}
            """,
            "tasks/not_tasks.py": """
                from torch import nn
                from mylib import Task
                class Net(nn.Module):
                    pass
                class Plain:
                    pass
                class Other(Task):
                    '''Task from another library: not ours.'''
            """,
        },
    )
    discovery = found(tmp_path)
    assert names(discovery) == ["A", "B", "C", "D", "E"]
    assert discovery.errors == ()
    a = discovery.get("A")
    assert (a.file, a.line, a.summary, a.bases, a.abstract) == ("tasks/a.py", 2, "Plain import.", ("Task",), False)
    assert discovery.get("C").bases == ("wb.Task",)
    assert a.qualname == "tasks.a.A" and a.module == "tasks.a"


def test_docstring_summary_and_full_doc(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/s.py": f'''
                from workbench import Task
                class Sine(Task):
                    """
                    Fit a sine wave.

                    Longer text: a second paragraph.
                    """
                    {STEPS}
                class NoDoc(Task):
                    {STEPS}
            '''
        },
    )
    discovery = found(tmp_path)
    sine = discovery.get("Sine")
    assert sine.summary == "Fit a sine wave."
    assert sine.doc == "Fit a sine wave.\n\nLonger text: a second paragraph."
    assert discovery.get("NoDoc").summary == "" and discovery.get("NoDoc").doc == ""


def test_inheritance_within_a_file(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/x.py": f"""
                from workbench import Task
                class Framework(Task):
                    abstract = True
                    {STEPS}
                class Middle(Framework):
                    pass
                class Model(Middle):
                    '''Concrete.'''
            """
        },
    )
    discovery = found(tmp_path)
    assert names(discovery) == ["Framework", "Middle", "Model"]
    assert [t.abstract for t in discovery.tasks] == [True, False, False]  # the flag is not inherited


def test_inheritance_across_files_every_import_form(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/__init__.py": "from .base import Framework as Reexported\n",
            "tasks/base.py": f"""
                import abc
                from workbench import Task
                class Framework(Task):
                    '''How to train.'''
                    abstract = True
                    {STEPS}
            """,
            "tasks/absolute.py": "from tasks.base import Framework\nclass Absolute(Framework):\n    pass\n",
            "tasks/relative.py": "from .base import Framework\nclass Relative(Framework):\n    pass\n",
            "tasks/sibling.py": "from base import Framework\nclass Sibling(Framework):\n    pass\n",
            "tasks/sub/deeper.py": "from ..base import Framework as F\nclass Deeper(F):\n    pass\n",
            "tasks/module.py": "import tasks.base as tb\nimport tasks.base\nclass ViaModule(tb.Framework):\n    pass\nclass ViaFull(tasks.base.Framework):\n    pass\n",
            "tasks/package.py": "from tasks import Reexported\nclass ViaPackage(Reexported):\n    pass\n",
            "tasks/star.py": "from tasks.base import *\nclass ViaStar(Framework):\n    pass\n",
            "tasks/second.py": "from tasks.absolute import Absolute\nclass Grandchild(Absolute):\n    pass\n",
        },
    )
    discovery = found(tmp_path)
    assert discovery.errors == ()
    assert sorted(names(discovery)) == sorted(
        ["Framework", "Absolute", "Relative", "Sibling", "Deeper", "ViaModule", "ViaFull", "ViaPackage", "ViaStar", "Grandchild"]
    )
    assert [t.name for t in discovery.tasks if t.abstract] == ["Framework"]
    assert discovery.get("Deeper").file == "tasks/sub/deeper.py"


def test_imported_base_found_by_name_when_the_module_is_elsewhere(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/frameworks.py": f"from workbench import Task\nclass Trainer(Task):\n    abstract = True\n    {STEPS}\n",
            "tasks/model.py": "from mylib.frameworks import Trainer\nfrom mylib import Helper\nclass Model(Trainer):\n    pass\nclass NotTask(Helper):\n    pass\n",
        },
    )
    assert names(found(tmp_path)) == ["Trainer", "Model"]


def test_abstract_methods_along_the_chain(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/base.py": """
                import abc
                from abc import abstractmethod
                from workbench import Task
                class Framework(Task):
                    def build_data(self):
                        return None
                    @abc.abstractmethod
                    def build_model(self): ...
                    @abstractmethod
                    def head(self): ...
            """,
            "tasks/models.py": """
                from tasks.base import Framework
                class HalfDone(Framework):
                    def build_model(self):
                        return None
                class Done(HalfDone):
                    def head(self):
                        return None
                class ExplicitlyAbstract(Done):
                    abstract = True
                class NotFlagged(ExplicitlyAbstract):
                    pass
                class FlagFalseButMissing(Framework):
                    abstract = False
                class ReAbstract(Done):
                    @abc.abstractmethod
                    def head(self): ...
            """,
            "tasks/lazy.py": "from workbench import Task\nclass NoSteps(Task):\n    pass\n",
        },
    )
    discovery = found(tmp_path)
    state = {t.name: (t.abstract, t.abstract_methods) for t in discovery.tasks}
    assert state == {
        "Framework": (True, ("build_model", "head")),
        "HalfDone": (True, ("head",)),
        "Done": (False, ()),
        "ExplicitlyAbstract": (True, ()),
        "NotFlagged": (False, ()),
        "FlagFalseButMissing": (True, ("build_model", "head")),
        "ReAbstract": (True, ("head",)),
        # The framework's own Task declares build_data and build_model abstract.
        "NoSteps": (True, ("build_data", "build_model")),
    }
    assert [t.name for t in discovery.launchable] == ["Done", "NotFlagged"]


def test_config_fields_types_defaults_and_help(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/t.py": f"""
                from dataclasses import dataclass, field
                from pathlib import Path
                from typing import ClassVar, Literal, Optional
                from workbench import Task
                class T(Task):
                    @dataclass
                    class Config:
                        lr: float = 1e-3  # learning rate
                        layers: list[int] = field(default_factory=lambda: [64, 64])
                        tags: list[str] = field(default_factory=list)
                        opts: dict[str, int] = field(default_factory=dict)
                        shape: tuple[int, ...] = ()
                        maybe: int | None = None
                        old: Optional[int] = field(default=-3)
                        opt: Literal["adam", "sgd"] = "adam"
                        '''Which optimiser.'''
                        data: Path = Path("data")
                        required: int
                        quoted: "int" = 2
                        hidden: int = field(default=5, init=False)
                        registry: ClassVar[dict] = {{}}
                        inf: float = float("inf")
                    {STEPS}
            """
        },
    )
    task = found(tmp_path).get("T")
    by_name = {f.name: f for f in task.config}
    assert list(by_name) == ["lr", "layers", "tags", "opts", "shape", "maybe", "old", "opt", "data", "required", "quoted", "inf"]
    assert [(f.type, f.default) for f in task.config[:8]] == [
        ("float", 0.001),
        ("list[int]", [64, 64]),
        ("list[str]", []),
        ("dict[str, int]", {}),
        ("tuple[int, ...]", ()),
        ("int | None", None),
        ("Optional[int]", -3),
        ("Literal['adam', 'sgd']", "adam"),
    ]
    assert by_name["lr"].help == "learning rate"
    assert by_name["opt"].help == "Which optimiser."
    assert (by_name["data"].has_default, by_name["data"].default_source) == (True, "Path('data')")
    assert (by_name["required"].has_default, by_name["required"].required) == (False, True)
    assert by_name["quoted"].type == "int"
    assert by_name["inf"].default_source == "float('inf')"
    assert task.has_config


def test_config_inherited_and_merged(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/framework.py": f"""
                from dataclasses import dataclass
                from workbench import Task
                class Framework(Task):
                    abstract = True
                    @dataclass
                    class Config:
                        epochs: int = 4
                        lr: float = 5e-3
                        seed: int = 0
                    {STEPS}
                class Same(Framework):
                    '''No Config: the framework's.'''
                class Grand(Same):
                    @dataclass
                    class Config(Same.Config):
                        extra: bool = True
            """,
            "tasks/models.py": """
                from dataclasses import dataclass
                from framework import Framework
                class Model(Framework):
                    @dataclass
                    class Config(Framework.Config):
                        hidden: int = 64
                        lr: float = 2e-2
                class Replaced(Framework):
                    @dataclass
                    class Config:
                        only: str = "x"
                class Child(Model):
                    pass
            """,
        },
    )
    discovery = found(tmp_path)
    assert fields(discovery.get("Same")) == {"epochs": 4, "lr": 5e-3, "seed": 0}
    assert fields(discovery.get("Grand")) == {"epochs": 4, "lr": 5e-3, "seed": 0, "extra": True}
    model = discovery.get("Model")
    # dataclass semantics: the overriding `lr` keeps its place, new fields come last
    assert [(f.name, f.default) for f in model.config] == [("epochs", 4), ("lr", 2e-2), ("seed", 0), ("hidden", 64)]
    assert fields(discovery.get("Replaced")) == {"only": "x"}
    assert fields(discovery.get("Child")) == fields(model)


def test_no_config_anywhere(tmp_path: Path) -> None:
    make(tmp_path, {"tasks/t.py": f"from workbench import Task\nclass T(Task):\n    {STEPS}\n"})
    assert found(tmp_path).get("T").config == ()


def test_nested_dataclass_fields_are_flattened_with_dotted_names(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/t.py": f"""
                import dataclasses
                from dataclasses import dataclass, field
                from workbench import Task

                @dataclass
                class Schedule:
                    warmup: int = 100

                @dataclasses.dataclass(frozen=True)
                class OptimConfig:
                    lr: float = 0.1
                    momentum: float = 0.9
                    schedule: Schedule = field(default_factory=Schedule)

                class NotADataclass:
                    x: int = 1

                class T(Task):
                    @dataclass
                    class Config:
                        optim: OptimConfig = field(default_factory=OptimConfig)
                        tuned: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.5))
                        called: "OptimConfig" = OptimConfig(momentum=0.0)
                        other: NotADataclass = field(default_factory=NotADataclass)
                        epochs: int = 3
                    {STEPS}
            """
        },
    )
    task = found(tmp_path).get("T")
    assert fields(task) == {
        "optim.lr": 0.1,
        "optim.momentum": 0.9,
        "optim.schedule.warmup": 100,
        "tuned.lr": 0.5,
        "tuned.momentum": 0.9,
        "tuned.schedule.warmup": 100,
        "called.lr": 0.1,
        "called.momentum": 0.0,
        "called.schedule.warmup": 100,
        "other": None,
        "epochs": 3,
    }
    other = next(f for f in task.config if f.name == "other")
    assert (other.type, other.default_source) == ("NotADataclass", "NotADataclass()")


def test_config_alias_to_module_level_dataclass(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/t.py": f"""
                from dataclasses import dataclass
                from workbench import Task
                @dataclass
                class SineConfig:
                    lr: float = 0.1
                class T(Task):
                    Config = SineConfig
                    {STEPS}
            """
        },
    )
    assert fields(found(tmp_path).get("T")) == {"lr": 0.1}


def test_broken_file_is_an_error_entry_and_the_rest_still_list(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/good.py": f"from workbench import Task\nclass Good(Task):\n    {STEPS}\n",
            "tasks/broken.py": "from workbench import Task\n\nclass Broken(Task)\n    pass\n",
        },
    )
    (tmp_path / "tasks" / "nul.py").write_bytes(b"x = 1\0\n")
    discovery = found(tmp_path)
    assert names(discovery) == ["Good"]
    assert [(e.file, e.line) for e in discovery.errors] == [("tasks/broken.py", 3), ("tasks/nul.py", 0)]
    assert str(discovery.errors[0]) == "tasks/broken.py:3: syntax error: expected ':'"
    assert "null bytes" in discovery.errors[1].message
    with pytest.raises(TaskNotFound, match=r"could not be read: tasks/broken.py:3"):
        discovery.get("Broken")


def test_name_clash_keeps_both_and_reports_it(tmp_path: Path) -> None:
    body = f"from workbench import Task\n\nclass Sine(Task):\n    {STEPS}\n"
    make(tmp_path, {"tasks/a.py": body, "tasks/b.py": body})
    discovery = found(tmp_path)
    assert [(t.name, t.file) for t in discovery.tasks] == [("Sine", "tasks/a.py"), ("Sine", "tasks/b.py")]
    assert [str(e) for e in discovery.errors] == [
        "tasks/b.py:3: task name 'Sine' is also defined at tasks/a.py:3; tasks are addressed by name, so rename one"
    ]
    with pytest.raises(TaskNotFound, match=r"ambiguous: defined at tasks/a.py:3 and tasks/b.py:3"):
        discovery.get("Sine")
    assert discovery.get("tasks/b.py:Sine").file == "tasks/b.py"
    assert discovery.get("tasks.a.Sine").file == "tasks/a.py"


def test_get_suggests_and_lists_launchable_tasks(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/t.py": f"""
                from workbench import Task
                class Framework(Task):
                    abstract = True
                    {STEPS}
                class SineRegression(Framework):
                    pass
                class Spirals(Framework):
                    pass
            """
        },
    )
    discovery = found(tmp_path)
    with pytest.raises(TaskNotFound) as info:
        discovery.get("SineRegresion")
    assert str(info.value) == "no task named 'SineRegresion'; did you mean 'SineRegression'?; available: SineRegression, Spirals"
    with pytest.raises(TaskNotFound, match="did you mean 'Spirals'"):
        discovery.get("spirals")
    assert discovery.get("Framework").abstract
    with pytest.raises(TaskNotFound, match=r"task 'Framework' at tasks/t.py:2 is abstract and cannot be launched; launchable tasks: SineRegression, Spirals"):
        discovery.get("Framework", launchable=True)


def test_files_sorted_deduplicated_and_caches_and_hidden_skipped(tmp_path: Path) -> None:
    task = f"from workbench import Task\nclass {{}}(Task):\n    {STEPS}\n"
    make(
        tmp_path,
        {
            "tasks/b.py": task.format("B"),
            "tasks/a.py": task.format("A"),
            "tasks/notes.txt": "class X(Task): pass",
            "tasks/__pycache__/a.cpython-311.py": task.format("Cached"),
            "tasks/.hidden/h.py": task.format("Hidden"),
            "other/o.py": task.format("O"),
        },
    )
    discovery = found(tmp_path, ("tasks/**/*.py", "tasks/*.py", "tasks/*", "other/*.py"))
    assert discovery.files == ("other/o.py", "tasks/a.py", "tasks/b.py")
    assert names(discovery) == ["O", "A", "B"]


def test_discover_uses_project_globs_and_skips_state_dir(tmp_path: Path) -> None:
    task = f"from workbench import Task\nclass {{}}(Task):\n    {STEPS}\n"
    make(
        tmp_path,
        {
            "workbench.toml": '[project]\ntasks = ["**/*.py"]\nstate_dir = "state"\n',
            "src/t.py": task.format("T"),
            "state/runs/r1/code/src/t.py": task.format("T"),
        },
    )
    discovery = discover(load_project(tmp_path))
    assert [t.file for t in discovery.tasks] == ["src/t.py"]
    assert discovery.errors == ()


def test_edits_are_seen_on_the_next_discovery(tmp_path: Path) -> None:
    path = make(tmp_path, {"tasks/t.py": f"from workbench import Task\nclass First(Task):\n    {STEPS}\n"}) / "tasks" / "t.py"
    assert names(found(tmp_path)) == ["First"]
    path.write_text(f"from workbench import Task\nclass Renamed(Task):\n    {STEPS}\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert names(found(tmp_path)) == ["Renamed"]
    path.write_text("class Broken(:\n")
    assert found(tmp_path).errors[0].file == "tasks/t.py"


def test_to_dict_is_json(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "tasks/t.py": f"""
                from dataclasses import dataclass
                from workbench import Task
                class T(Task):
                    '''Doc.'''
                    @dataclass
                    class Config:
                        shape: tuple[int, int] = (2, 3)
                        lr: float = 0.1
                    {STEPS}
            """,
            "tasks/bad.py": "def (\n",
        },
    )
    data = json.loads(json.dumps(found(tmp_path).to_dict()))
    assert data["files"] == ["tasks/bad.py", "tasks/t.py"]
    assert data["errors"] == [{"file": "tasks/bad.py", "line": 1, "message": data["errors"][0]["message"], "kind": "file"}]
    (task,) = data["tasks"]
    assert {k: task[k] for k in ("name", "qualname", "file", "line", "summary", "abstract", "bases")} == {
        "name": "T",
        "qualname": "tasks.t.T",
        "file": "tasks/t.py",
        "line": 3,
        "summary": "Doc.",
        "abstract": False,
        "bases": ["Task"],
    }
    assert task["config"][0] == {
        "name": "shape",
        "type": "tuple[int, int]",
        "default": [2, 3],
        "has_default": True,
        "default_source": "",
        "help": "",
        "range": None,
        "range_source": "",
    }


def test_sample_project_without_importing_torch() -> None:
    """The workbench process must never import torch, textual or the user's code."""
    script = textwrap.dedent(
        f"""
        import sys, json
        from workbench.project import discover, load_project
        discovery = discover(load_project({str(REPO / 'sample_projects' / 'quickstart')!r}))
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual', 'tasks', 'sine', 'regression_framework'))
        print(json.dumps({{"bad": bad, "tasks": [t.name for t in discovery.launchable], "errors": len(discovery.errors)}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    result = json.loads(out.stdout)
    assert result["bad"] == []
    assert result["errors"] == 0
    assert "SineRegression" in result["tasks"]
