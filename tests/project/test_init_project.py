"""`workbench init`: a repository that never saw the workbench gets a commented workbench.toml
(task globs found, a [scripts.NAME] table per argparse script read with ast), .workbench/ in
.gitignore, and a task template on request; nothing is ever run or imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.project import discover, load_project
from workbench.project._argparse_scan import scan_argparse
from workbench.project.init import init_project, task_globs
from workbench.project.scripts import render

TRAIN = '''"""Train the word-level language model."""
import argparse
import os

raise SystemExit("user code was run")


def get_args():
    parser = argparse.ArgumentParser(description="Word-level LSTM language model")
    parser.add_argument("data", help="corpus folder")
    parser.add_argument("--lr", type=float, default=20, help="initial lr (default %(default)s)")
    parser.add_argument("--epochs", type=int, default="6")
    parser.add_argument("--model", choices=["LSTM", "GRU"], default="LSTM")
    parser.add_argument("--layers", nargs="+", type=int, default=[64, 64])
    parser.add_argument("--tied", action="store_true")
    parser.add_argument("--resume", type=str)
    parser.add_argument("--api-key", default="s3cret")
    parser.add_argument("--workers", default=os.cpu_count())
    parser.add_argument("-v", "--verbose", action="count", default=0)
    group = parser.add_argument_group("seeding")
    group.add_argument("--seed", type=int, default=1111)
    return parser.parse_args()
'''

TASK = '''raise SystemExit("user code was imported")
from workbench import Task


class Tiny(Task):
    """A task found statically."""

    def build_data(self):
        return None

    def build_model(self):
        return None
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "wordlm"
    (root / "models").mkdir(parents=True)
    (root / "train.py").write_text(TRAIN)
    (root / "models" / "tiny.py").write_text(TASK)
    (root / "tests").mkdir()
    (root / "tests" / "test_train.py").write_text("import argparse\nargparse.ArgumentParser().parse_args()\n")
    (root / ".gitignore").write_text("__pycache__/")  # no newline at the end
    return root


def test_init_writes_a_project_that_loads_with_the_script_proposed(repo: Path) -> None:
    result = init_project(repo)

    project = load_project(repo)
    assert result.task_files == ("models/tiny.py",) and project.task_globs == ("models/**/*.py",)
    (script,) = project.scripts
    assert script.name == "train" and script.summary == "Word-level LSTM language model"
    assert dict(script.params) == {"data": "", "lr": 20.0, "epochs": 6, "model": "LSTM", "layers": [64, 64],
                                   "seed": 1111}
    assert dict(script.types)["lr"] == "float" and dict(script.types)["layers"] == "list[int]"
    assert render(script.command, script.params) == [
        "python", "train.py", "", "--lr", "20.0", "--epochs", "6", "--model", "LSTM", "--layers", "64", "64",
        "--seed", "1111"]
    text = (repo / "workbench.toml").read_text()
    assert "s3cret" not in text  # a secret-looking default is never copied into the file
    for why in ("--tied (off by default)", "--resume (no default", "--api-key (secret-looking",
                "--workers (its default is computed", "--verbose (action 'count')"):
        assert why in text
    assert "tests/test_train.py" not in text  # test files are not scripts
    assert (repo / ".gitignore").read_text() == "__pycache__/\n# workbench: run data (index, run folders)\n.workbench/\n"
    assert [t.name for t in discover(project).tasks] == ["Tiny", "train"]


def test_init_refuses_to_overwrite_and_writes_nothing(repo: Path) -> None:
    (repo / "workbench.toml").write_text("# mine\n")

    done = CliRunner().invoke(cli, ["init", str(repo), "--template", "task"])

    assert done.exit_code != 0
    assert done.output.strip().splitlines() == [
        f"error: {repo / 'workbench.toml'} exists already; nothing was written (pass --force to overwrite it)"]
    assert (repo / "workbench.toml").read_text() == "# mine\n"
    assert (repo / ".gitignore").read_text() == "__pycache__/"
    assert not (repo / "tasks").exists()


def test_force_overwrites_and_never_duplicates_the_ignore_line(repo: Path) -> None:
    init_project(repo)
    result = init_project(repo, force=True)

    assert result.gitignore == "present"
    assert (repo / ".gitignore").read_text().count(".workbench/") == 1
    load_project(repo)


def test_a_missing_gitignore_is_created(tmp_path: Path) -> None:
    result = init_project(tmp_path)

    assert result.gitignore == "created" and (tmp_path / ".gitignore").read_text().endswith(".workbench/\n")
    project = load_project(tmp_path)
    assert project.task_globs == ("tasks/**/*.py",) and project.scripts == ()


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "absent", "is not a folder (it does not exist)"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is not a folder"),
])
def test_bad_folders_are_one_line(tmp_path: Path, make, message: str) -> None:
    target = make(tmp_path)

    done = CliRunner().invoke(cli, ["init", str(target)])

    assert done.exit_code == 2 and len(done.output.strip().splitlines()) == 1 and message in done.output


def test_an_unwritable_gitignore_is_one_line_and_nothing_is_written(repo: Path) -> None:
    (repo / ".gitignore").unlink()
    (repo / ".gitignore").mkdir()  # writable by no one, root included

    done = CliRunner().invoke(cli, ["init", str(repo)])

    assert done.exit_code == 2 and "cannot write" in done.output and len(done.output.strip().splitlines()) == 1
    assert not (repo / "workbench.toml").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        done = CliRunner().invoke(cli, ["init", str(tmp_path)])
    finally:
        tmp_path.chmod(0o755)
    assert done.exit_code == 2 and "permission denied" in done.output


def test_the_command_imports_neither_torch_nor_user_code(repo: Path) -> None:
    probe = ("import sys, json\nfrom workbench.cli import cli\n"
             f"cli.main(args=['init', {str(repo)!r}], prog_name='workbench', standalone_mode=False)\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "[scripts.train]" in done.stdout
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "torch" not in loaded and "textual" not in loaded


@pytest.mark.slow
def test_the_task_template_is_found_and_trains_in_a_second(tmp_path: Path) -> None:
    result = init_project(tmp_path, template="task")

    assert result.template == tmp_path / "tasks" / "my_task.py"
    found = discover(load_project(tmp_path))
    assert [t.name for t in found.launchable] == ["MyTask"] and not found.errors
    done = subprocess.run([sys.executable, "tasks/my_task.py", "fit", "-s", "epochs=2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fit done" in done.stdout


def test_globs_cover_each_folder_once() -> None:
    assert task_globs(["a/x.py", "a/b/y.py", "c/z.py", "top.py"]) == ("a/**/*.py", "c/**/*.py", "top.py")


def test_the_scanner_reads_types_as_argparse_converts_them() -> None:
    source = '''
from argparse import ArgumentParser as AP
p = AP()
p.add_argument("--ratio", type=float, default=1)
p.add_argument("--n", type=int, default="3")
p.add_argument("--sizes", nargs=2, type=float, default=[1, 2.5])
p.add_argument("--flag", default=True)
p.add_argument("--path", type=Path, default="out")
p.add_argument("--bad", type=int, default="x")
sub = p.add_subparsers()
p.parse_args()
'''
    script = scan_argparse("s.py", source)

    assert script is not None and script.subcommands
    flags = {f.dest: f for f in script.flags}
    assert (flags["ratio"].type, flags["ratio"].default) == ("float", 1.0)
    assert (flags["n"].type, flags["n"].default) == ("int", 3)
    assert (flags["sizes"].kind, flags["sizes"].default) == ("list", [1.0, 2.5])
    assert flags["flag"].kind == "skip" and flags["path"].default == "out" and flags["bad"].kind == "skip"


def test_a_file_that_does_not_parse_arguments_is_not_a_script() -> None:
    assert scan_argparse("lib.py", "import argparse\ndef parser():\n    return argparse.ArgumentParser()\n") is None
    assert scan_argparse("broken.py", "import argparse\nparse_args(\n") is None
