"""The layers stay light: the workbench process never imports torch, textual or user code.

Complements the import-linter contracts in pyproject.toml (run by `make test`): those check
static imports; these check what a real interpreter has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEADLESS = ["workbench", "workbench.cli", "workbench.project", "workbench.store", "workbench.snapshot",
            "workbench.runs", "workbench.errors", "workbench.sinks"]


def loaded_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running ``code``."""
    probe = code + "\nimport sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_modules_import_neither_torch_nor_textual(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    assert "torch" not in loaded
    assert "textual" not in loaded


def test_workbench_help_imports_neither_torch_nor_textual() -> None:
    code = (
        "import sys\n"
        "from workbench.cli import cli\n"
        "try:\n"
        "    cli.main(args=['--help'], prog_name='workbench', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    loaded = loaded_after(code)
    assert "torch" not in loaded and "textual" not in loaded


def test_workbench_task_is_loaded_on_first_use() -> None:
    loaded = loaded_after("import workbench\nworkbench.Task")
    assert "torch" in loaded  # the training core does need torch, and loads it on demand


def test_tasks_command_imports_no_user_code(tmp_path) -> None:
    (tmp_path / "workbench.toml").write_text('[project]\nname = "p"\n')
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "boom.py").write_text(
        "raise SystemExit('user code was imported')\nfrom workbench import Task\n"
        "class Boom(Task):\n    'Never imported.'\n"
    )
    code = (
        "from workbench.cli import cli\n"
        f"cli.main(args=['--project', {str(tmp_path)!r}, 'tasks', '--json'], prog_name='workbench', standalone_mode=False)\n"
    )
    out = subprocess.run([sys.executable, "-c", code + "import sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Boom" in out.stdout
    assert "torch" not in json.loads(out.stdout.strip().splitlines()[-1])
