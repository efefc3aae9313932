"""The app never imports torch or the user's code; the CLI imports textual only to open it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from workbench.cli import cli

REPO = Path(__file__).resolve().parents[2]

_BUILD_AND_RUN = """
import asyncio, json, sys
from pathlib import Path
from workbench.tui.app import make_app

async def main():
    app = make_app(Path(sys.argv[1]), probe={"devices": ["cpu"], "default": "cpu"}, poll_interval=0)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.discovery is not None and app.runs.complete:
                break
        await pilot.press("n")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        tasks = [t.name for t in app.discovery.tasks]
    user = [m for m in sys.modules if m.split(".")[0] in ("tasks", "sine", "spirals", "regression_models",
                                                         "regression_framework")]
    print(json.dumps({"torch": "torch" in sys.modules, "user": user, "tasks": tasks}))

asyncio.run(main())
"""


def test_the_app_imports_neither_torch_nor_user_code(project: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _BUILD_AND_RUN, str(project)], capture_output=True,
                            text=True, timeout=120, cwd=project)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert "SineRegression" in found["tasks"]  # discovery ran, statically
    assert found["torch"] is False
    assert found["user"] == []


def test_workbench_help_does_not_import_textual() -> None:
    code = ("import sys; from click.testing import CliRunner; from workbench.cli import cli; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext', 'plotext')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tui_command_is_listed_and_documented() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert "tui" in result.output
    assert "terminal app" in runner.invoke(cli, ["tui", "--help"]).output


def test_no_command_and_tui_build_the_app_through_make_app(project: Path, monkeypatch) -> None:
    opened: list[Path] = []

    class FakeApp:
        def run(self) -> None:
            opened.append(Path("ran"))

    import workbench.tui.app as app_module

    def fake_make_app(root: Path) -> FakeApp:
        opened.append(Path(root))
        return FakeApp()

    monkeypatch.setattr(app_module, "make_app", fake_make_app)
    runner = CliRunner()
    assert runner.invoke(cli, ["--project", str(project)]).exit_code == 0
    assert runner.invoke(cli, ["--project", str(project), "tui"]).exit_code == 0
    assert opened == [project.resolve(), Path("ran"), project.resolve(), Path("ran")]
