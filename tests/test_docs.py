"""The user docs keep up with the code: every public name has a docstring, every stage,
fixture and built-in extension is described in docs/tasks.md."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PUBLIC_MODULES = [
    "workbench", "workbench.core", "workbench.extensions", "workbench.project", "workbench.store",
    "workbench.snapshot", "workbench.runs", "workbench.sinks", "workbench.errors",
]


def public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if not name.startswith("__"):
                yield module_name, name, getattr(module, name)


#: The public classes and functions (constants carry no docstring of their own).
DOCUMENTABLE = [(m, n, obj) for m, n, obj in public_names() if inspect.isclass(obj) or inspect.isfunction(obj)]


def _member_function(member: object) -> object | None:
    """The function behind a class member that the docs describe, or None."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member if inspect.isfunction(member) else None


def test_the_public_api_is_found() -> None:
    # Guards the parametrisation below: an empty list would make it vacuous.
    assert len(DOCUMENTABLE) > 50
    assert all(n in {name for _, name, _ in DOCUMENTABLE} for n in ("Task", "RunIndex", "MetricWriter"))


@pytest.mark.parametrize("module_name,name,obj", DOCUMENTABLE, ids=lambda v: v if isinstance(v, str) else "")
def test_public_names_have_docstrings(module_name: str, name: str, obj: object) -> None:
    assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            function = _member_function(member)
            if attr.startswith("_") or function is None:
                continue
            assert inspect.getdoc(function), f"{module_name}.{name}.{attr} has no docstring"


def _stages() -> list:
    from workbench.core.stages import DEFAULT_STAGES

    return list(DEFAULT_STAGES.specs.values())


def _extensions() -> list[str]:
    import workbench.extensions as ext

    return [name for name in ext.__all__ if inspect.isclass(obj := getattr(ext, name))
            and any(a.startswith(("before_", "after_")) for a in vars(obj))]


HOOKABLE_STAGES = [spec.name for spec in _stages() if spec.hookable]
FIXTURES = [(spec.name, fixture) for spec in _stages() for fixture in spec.enter + spec.exit]
EXTENSIONS = _extensions()


def test_the_stages_fixtures_and_extensions_are_found() -> None:
    # Guards the parametrisations below: an empty list would make them vacuous.
    assert {"fit", "epoch", "batch", "validate"} <= set(HOOKABLE_STAGES)
    assert {("batch", "loss"), ("session", "model"), ("validate", "metrics")} <= set(FIXTURES)
    assert {"Checkpoint", "MetricLogger", "Progress"} <= set(EXTENSIONS)


@pytest.mark.parametrize("stage", HOOKABLE_STAGES)
def test_every_stage_is_documented(stage: str) -> None:
    assert f"`{stage}`" in (DOCS / "tasks.md").read_text(), f"stage {stage} is not in docs/tasks.md"


@pytest.mark.parametrize("stage,fixture", FIXTURES)
def test_every_fixture_is_documented(stage: str, fixture: str) -> None:
    assert f"`{fixture}`" in (DOCS / "tasks.md").read_text(), f"fixture {fixture} of {stage} is not in docs/tasks.md"


@pytest.mark.parametrize("name", EXTENSIONS)
def test_every_builtin_extension_is_documented(name: str) -> None:
    # The name itself in backticks, alone or called: `Progress` or `Progress(...)`, not `ProgressInfo`.
    assert re.search(rf"`{name}[`(]", (DOCS / "tasks.md").read_text()), f"extension {name} is not in docs/tasks.md"


@pytest.mark.parametrize("page", ["getting-started.md", "tasks.md"])
def test_docs_pages_exist(page: str) -> None:
    assert (DOCS / page).read_text().strip()
