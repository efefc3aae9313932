"""The store is imported by the CLI, the TUI and training processes: it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import workbench.store

MODULES = ["workbench.store", "workbench.store.index", "workbench.store.writer"]


@pytest.mark.parametrize("module", MODULES)
def test_importing_the_store_pulls_in_neither_torch_nor_textual(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('torch', 'textual', 'numpy', 'sqlite_utils') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_every_public_name_is_documented() -> None:
    for name in workbench.store.__all__:
        value = getattr(workbench.store, name)
        if callable(value):
            assert value.__doc__, f"workbench.store.{name} has no docstring"
    for cls in (workbench.store.RunIndex, workbench.store.MetricWriter):
        for attr, member in vars(cls).items():
            if not attr.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{attr} has no docstring"
