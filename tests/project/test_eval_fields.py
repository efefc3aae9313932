"""Static discovery of a task's ``eval_fields`` and ``steps`` class attributes (read, never imported)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from workbench.project import clear_discovery_cache, discover_paths

TASKS = '''
from dataclasses import dataclass, field
from workbench import Task


@dataclass
class Optim:
    lr: float = 0.1
    momentum: float = 0.9


class Base(Task):
    """Declares both."""
    eval_fields = ("threshold", "optim", "nope")
    steps = ("fit", "test")
    build_data = build_model = lambda self: None

    @dataclass
    class Config:
        threshold: float = 0.5
        steps: int = 3  # a config field named like the attribute is not the attribute
        optim: Optim = field(default_factory=Optim)


class Inherits(Base):
    """Takes both from Base."""


class OneString(Base):
    """A string where a tuple was meant."""
    eval_fields = "threshold"
    steps: tuple = ("fit", "predict")


class Plain(Task):
    """Declares neither."""
    build_data = build_model = lambda self: None
'''


def _discover(root: Path, cache: Path | None = None):
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "tasks" / "t.py").write_text(textwrap.dedent(TASKS), encoding="utf-8")
    return discover_paths(root, cache_dir=cache)


def test_eval_fields_and_steps_are_read_and_inherited(tmp_path: Path) -> None:
    found = _discover(tmp_path)
    tasks = {t.name: t for t in found.tasks}

    assert tasks["Base"].eval_fields == ("threshold", "optim")  # a group name stands for its fields
    assert tasks["Base"].steps == ("fit", "test")
    assert tasks["Inherits"].eval_fields == ("threshold", "optim")
    assert tasks["Inherits"].steps == ("fit", "test")
    assert tasks["Plain"].eval_fields == () and tasks["Plain"].steps == ()
    assert tasks["Base"].to_dict()["eval_fields"] == ["threshold", "optim"]


def test_bad_declarations_are_listed_once_not_raised(tmp_path: Path) -> None:
    found = _discover(tmp_path)
    tasks = {t.name: t for t in found.tasks}
    messages = [e.message for e in found.errors]

    assert tasks["OneString"].eval_fields == ()
    assert tasks["OneString"].steps == ("fit", "predict")
    assert sum("'nope' is not a config field" in m for m in messages) == 1, messages
    assert any("one string, not a tuple" in m and "('threshold',)" in m for m in messages), messages
    assert any("unknown step 'predict'" in m for m in messages), messages
    assert all(e.kind == "config" for e in found.errors)


def test_the_disk_cache_keeps_them(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _discover(tmp_path / "p", cache)
    clear_discovery_cache()  # the next discovery reads the summaries back from disk
    again = _discover(tmp_path / "p", cache)

    assert [(t.eval_fields, t.steps) for t in again.tasks] == [(t.eval_fields, t.steps) for t in first.tasks]
    assert (cache / "discovery-v1.json").is_file()
