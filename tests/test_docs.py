"""The user docs keep up with the code: every public name has a docstring, every stage,
fixture and built-in extension is described in docs/tasks.md."""

from __future__ import annotations

import importlib
import inspect
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


@pytest.mark.parametrize("module_name,name,obj", list(public_names()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_public_names_have_docstrings(module_name: str, name: str, obj: object) -> None:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # constants
    assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not inspect.isfunction(member):
                continue
            assert inspect.getdoc(member), f"{module_name}.{name}.{attr} has no docstring"


def test_every_stage_and_fixture_is_documented() -> None:
    from workbench.core.stages import DEFAULT_STAGES

    text = (DOCS / "tasks.md").read_text()
    for spec in DEFAULT_STAGES.specs.values():
        if spec.hookable:
            assert f"`{spec.name}`" in text, f"stage {spec.name} is not in docs/tasks.md"
        for fixture in spec.enter + spec.exit:
            assert f"`{fixture}`" in text, f"fixture {fixture} of {spec.name} is not in docs/tasks.md"


def test_every_builtin_extension_is_documented() -> None:
    import workbench.extensions as ext

    text = (DOCS / "tasks.md").read_text()
    for name in ext.__all__:
        obj = getattr(ext, name)
        if inspect.isclass(obj) and any(a.startswith(("before_", "after_")) for a in vars(obj)):
            assert f"`{name}" in text, f"extension {name} is not in docs/tasks.md"


@pytest.mark.parametrize("page", ["getting-started.md", "tasks.md"])
def test_docs_pages_exist(page: str) -> None:
    assert (DOCS / page).read_text().strip()
