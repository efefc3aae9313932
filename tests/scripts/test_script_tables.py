"""Bad ``[scripts.NAME]`` tables: one line naming file, table and key; nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.projects import QUICKSTART, wb

from workbench.project import ProjectError, load_project
from workbench.project.scripts import render

GOOD = '''
[scripts.lm]
command = ["python", "scripts/lm.py", "--lr", "{lr}"]
[scripts.lm.params]
lr = 0.1
'''

BAD = {
    "unknown placeholder": (GOOD.replace('"{lr}"]', '"{lr}", "{epochs}"]'),
                            "[scripts.lm] command: unknown placeholder {epochs}"),
    "default of the wrong type": (GOOD.replace("lr = 0.1", 'lr = { default = "fast", type = "float" }'),
                                  "[scripts.lm] params.lr.default: default 'fast' is not of its declared type float"),
    "mixed list": (GOOD.replace("lr = 0.1", 'lr = [1, "a"]'), "[scripts.lm] params.lr: default [1, 'a']"),
    "pattern that does not compile": (GOOD + '[scripts.lm.capture]\npattern = "(?P<loss>[0-9"\n',
                                      "[scripts.lm] capture.pattern: does not compile"),
    "command not a list": (GOOD.replace('["python", "scripts/lm.py", "--lr", "{lr}"]', '"python scripts/lm.py"'),
                           "[scripts.lm] command: must be a list of strings"),
    "step not a group": (GOOD + '[scripts.lm.capture]\npattern = "loss (?P<loss>[0-9.]+)"\nstep = "batch"\n',
                         "[scripts.lm] capture.step: must be \"auto\" or a named group"),
}


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "lm.py").write_text("print('x')\n")
    (tmp_path / "workbench.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_table_is_one_line_naming_file_table_and_key(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    root = _write(tmp_path, text)
    with pytest.raises(ProjectError) as raised:
        load_project(root)
    message = str(raised.value)
    assert "\n" not in message and "workbench.toml:" in message and expected in message, message


def test_the_cli_says_it_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    root = _write(tmp_path, GOOD.replace('"{lr}"]', '"{lr}", "{epochs}"]'))
    done = wb(root, "run", "lm")
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "unknown placeholder {epochs}" in done.stderr and "Traceback" not in done.stderr
    assert not (root / ".workbench" / "runs").exists()


def test_a_missing_script_file_is_refused_at_launch_and_nothing_is_written(tmp_path: Path) -> None:
    root = _write(tmp_path, GOOD.replace("scripts/lm.py", "scripts/gone.py"))
    done = wb(root, "run", "lm")
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "workbench.toml:2: [scripts.lm] command: script file 'scripts/gone.py' does not exist" in done.stderr
    runs = root / ".workbench" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
    assert not (root / ".workbench" / "index.db").exists() or "lm" not in wb(root, "ls").stdout


def test_tasks_lists_scripts_beside_tasks(tmp_path: Path) -> None:
    done = wb(QUICKSTART, "tasks")
    assert done.returncode == 0, done.stderr
    assert "2 script(s) in workbench.toml" in done.stdout.splitlines()[0]
    assert "wordlm (script)" in done.stdout and "epochs: int = 3" in done.stdout
    assert "logged (script)" in done.stdout
    assert "SineRegression" in done.stdout


def test_placeholders_are_substituted_into_an_argument_list() -> None:
    values = {"lr": 0.5, "layers": [64, 32], "flag": True, "name": "a b; rm -rf /"}
    assert render(["--lr={lr}", "{layers}", "--l={layers}", "{flag}", "{name}", "{{lr}}"], values) == \
        ["--lr=0.5", "64", "32", "--l=64,32", "true", "a b; rm -rf /", "{lr}"]
    assert render(["--t", "{token}"], {"token": "x"}, mask=["token"]) == ["--t", "***"]
    kept = render(["{{x}}", "{a}", "{token}"], {"a": "{b}"}, keep=["token"], template=True)
    assert render(kept, {"token": "s"}) == ["{x}", "{b}", "s"]
