"""workbench.toml: finding the project, reading it, and every error a user can make."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.project import (
    LaunchDefaults,
    Project,
    ProjectError,
    ProjectNotFound,
    find_project_root,
    load_project,
)


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "workbench.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(root: Path) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(root)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages show paths relative to the working folder: make that the temp folder.
    monkeypatch.chdir(tmp_path)


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    write(root, "")
    project = load_project(root)
    assert project.root == root.resolve()
    assert project.name == "quickstart"
    assert project.task_globs == ("tasks/**/*.py",)
    assert project.state_dir == root.resolve() / ".workbench"
    assert project.index_path == root.resolve() / ".workbench" / "index.db"
    assert project.runs_dir == root.resolve() / ".workbench" / "runs"
    assert project.defaults == LaunchDefaults("auto", "single", 1, "32")
    assert project.snapshot.max_file_bytes == 10 * 1024 * 1024
    assert project.snapshot.exclude == ()


def test_full_file_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
[project]
name = "demo"
tasks = ["tasks/*.py", "more/**/*.py", "tasks/*.py"]
state_dir = "var/wb"

[defaults]
device = "CUDA:1"
backend = "ddp"
nproc = 4
precision = 32

[snapshot]
max_file_size_mb = 0.5
exclude = ["data/**", "*.ckpt"]
""",
    )
    project = load_project(tmp_path)
    assert project.name == "demo"
    assert project.task_globs == ("tasks/*.py", "more/**/*.py")
    assert project.state_dir == tmp_path.resolve() / "var" / "wb"
    assert project.defaults == LaunchDefaults("cuda:1", "ddp", 4, "32")
    assert project.snapshot.max_file_bytes == 512 * 1024
    assert project.snapshot.exclude == ("data/**", "*.ckpt")
    assert project.to_dict()["defaults"]["precision"] == "32"


def test_single_glob_string_and_absolute_state_dir(tmp_path: Path) -> None:
    elsewhere = tmp_path / "scratch"
    write(tmp_path / "p", f'[project]\ntasks = "src/*.py"\nstate_dir = "{elsewhere.as_posix()}"\n')
    project = load_project(tmp_path / "p")
    assert project.task_globs == ("src/*.py",)
    assert project.state_dir == elsewhere.resolve()


def test_load_project_accepts_the_file_itself(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "x"\n')
    assert load_project(path).root == tmp_path.resolve()


def test_find_project_root_walks_up(tmp_path: Path) -> None:
    write(tmp_path / "proj", "")
    deep = tmp_path / "proj" / "tasks" / "sub"
    deep.mkdir(parents=True)
    (deep / "x.py").write_text("")
    assert find_project_root(deep) == (tmp_path / "proj").resolve()
    assert find_project_root(deep / "x.py") == (tmp_path / "proj").resolve()


def test_find_project_root_not_found_names_start_and_fixes(tmp_path: Path) -> None:
    start = tmp_path / "nowhere"
    start.mkdir()
    with pytest.raises(ProjectNotFound) as info:
        find_project_root(start)
    message = str(info.value)
    assert str(start.resolve()) in message
    assert "--project DIR" in message
    assert "create workbench.toml" in message
    assert isinstance(info.value, ProjectError) and isinstance(info.value, WorkbenchError)


def test_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    message = error_of(tmp_path / "empty")
    assert message.startswith("empty/workbench.toml: no such file")
    assert "--project DIR" in message


def test_syntax_error_keeps_tomllib_message_with_path_and_line(tmp_path: Path) -> None:
    write(tmp_path, '[project]\nname = "x"\ntasks = [\n"a",\n\nstate_dir ==\n')
    message = error_of(tmp_path)
    assert message.startswith("workbench.toml:")
    assert "invalid TOML" in message
    assert "(at line" in message  # tomllib's own position is kept


def test_syntax_error_line_matches_tomllib(tmp_path: Path) -> None:
    write(tmp_path, '[project]\nname = "x"\nbroken line here\n')
    assert error_of(tmp_path).startswith("workbench.toml:3: invalid TOML: ")


def test_unknown_key_names_line_and_valid_keys(tmp_path: Path) -> None:
    write(tmp_path, '# settings\n\n[project]\nname = "x"\n\n\ntaks = ["t/*.py"]\n')
    assert error_of(tmp_path) == (
        "workbench.toml:7: unknown key 'taks' in [project]; valid keys: name, tasks, state_dir, max_log_size_mb, python, index; "
        "did you mean 'tasks'?"
    )


def test_unknown_key_in_defaults_and_snapshot(tmp_path: Path) -> None:
    write(tmp_path, "[defaults]\ndevice = 'cpu'\nprecison = '32'\n")
    message = error_of(tmp_path)
    assert message.startswith("workbench.toml:3: unknown key 'precison' in [defaults]")
    assert "valid keys: device, backend, nproc, precision" in message
    write(tmp_path, "[snapshot]\nmax_size = 3\n")
    assert "workbench.toml:2: unknown key 'max_size' in [snapshot]; valid keys: max_file_size_mb, exclude" in error_of(
        tmp_path
    )


def test_unknown_key_in_dotted_and_inline_form(tmp_path: Path) -> None:
    write(tmp_path, 'project.name = "x"\nproject.statedir = "s"\n')
    assert error_of(tmp_path).startswith("workbench.toml:2: unknown key 'statedir' in [project]")
    write(tmp_path, '\ndefaults = { device = "cpu", procs = 2 }\n')
    assert error_of(tmp_path).startswith("workbench.toml:2: unknown key 'procs' in [defaults]")


def test_unknown_section(tmp_path: Path) -> None:
    write(tmp_path, "[project]\n\n[defautls]\ndevice = 'cpu'\n")
    assert error_of(tmp_path) == (
        "workbench.toml:3: unknown section 'defautls'; valid sections: project, defaults, snapshot, data, queue, sweep, scripts, clusters; "
        "did you mean 'defaults'?"
    )


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    write(tmp_path, 'project = "x"\n')
    assert error_of(tmp_path) == "workbench.toml:1: [project] must be a table; got 'x'"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[defaults]\nbackend = 'dpp'", "workbench.toml:2: defaults.backend must be one of single, ddp; got 'dpp'"),
        ("[defaults]\ndevice = 'gpu'", "workbench.toml:2: defaults.device must be auto, cpu, cuda, cuda:N or mps; got 'gpu'"),
        ("[defaults]\ndevice = 'cuda:x'", "workbench.toml:2: defaults.device must be auto, cpu, cuda, cuda:N or mps; got 'cuda:x'"),
        ("[defaults]\ndevice = 0", "workbench.toml:2: defaults.device must be auto, cpu, cuda, cuda:N or mps; got 0"),
        ("[defaults]\nnproc = 0", "workbench.toml:2: defaults.nproc must be a whole number >= 1; got 0"),
        ("[defaults]\nnproc = 2.0", "workbench.toml:2: defaults.nproc must be a whole number >= 1; got 2.0"),
        ("[defaults]\nnproc = true", "workbench.toml:2: defaults.nproc must be a whole number >= 1; got True"),
        ("[defaults]\nprecision = 16", "workbench.toml:2: defaults.precision must be one of '32', 'bf16-mixed', '16-mixed'; got 16"),
        ("[project]\nname = ''", "workbench.toml:2: project.name must be a non-empty string; got ''"),
        ("[project]\nname = 3", "workbench.toml:2: project.name must be a non-empty string; got 3"),
        ("[project]\ntasks = []", "workbench.toml:2: project.tasks must be a glob or a list of globs"),
        ("[project]\ntasks = [3]", "workbench.toml:2: project.tasks must be a glob or a list of globs"),
        ("[project]\ntasks = '/abs/*.py'", "workbench.toml:2: project.tasks must be a glob"),
        ("[project]\ntasks = '../other/*.py'", "workbench.toml:2: project.tasks must be a glob"),
        ("[project]\nstate_dir = '../outside'", "workbench.toml:2: project.state_dir must be a folder inside the project (or an absolute path); got '../outside'"),
        ("[project]\nstate_dir = '.'", "workbench.toml:2: project.state_dir must be a folder inside the project"),
        ("[snapshot]\nmax_file_size_mb = -1", "workbench.toml:2: snapshot.max_file_size_mb must be a number of MiB >= 0; got -1"),
        ("[snapshot]\nmax_file_size_mb = '10'", "workbench.toml:2: snapshot.max_file_size_mb must be a number of MiB >= 0; got '10'"),
        ("[snapshot]\nexclude = [1]", "workbench.toml:2: snapshot.exclude must be a list of glob patterns"),
    ],
)
def test_bad_values(tmp_path: Path, body: str, expected: str) -> None:
    write(tmp_path, body + "\n")
    assert error_of(tmp_path).startswith(expected)


def test_bad_value_line_is_found_after_other_tables(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[project]\nname = "x"\n\n[snapshot]\nexclude = []\n\n[defaults]\n'
        'device = "cpu"\nnproc = 2\n\n\nbackend = "dpp"\n',
    )
    assert error_of(tmp_path) == "workbench.toml:12: defaults.backend must be one of single, ddp; got 'dpp'"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    assert error_of(tmp_path) == "workbench.toml: not UTF-8 text; save it as UTF-8"


def test_path_outside_working_folder_is_shown_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "p", "[defaults]\nnproc = -3\n")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert error_of(tmp_path / "p").startswith(f"{(tmp_path / 'p' / 'workbench.toml').resolve()}:2: defaults.nproc")


def test_project_built_by_hand_has_absolute_paths(tmp_path: Path) -> None:
    project = Project(root=tmp_path, name="x")
    assert project.state_dir == tmp_path.resolve() / ".workbench"
    assert project.index_path == tmp_path.resolve() / ".workbench" / "index.db"
    assert project.file == tmp_path.resolve() / "workbench.toml"


def test_a_workbench_toml_that_is_a_folder_is_named_as_such(tmp_path: Path) -> None:
    from workbench.project import ProjectError, ProjectNotFound, find_project_root, load_project

    (tmp_path / "workbench.toml").mkdir()
    with pytest.raises(ProjectNotFound, match="is not a file"):
        find_project_root(tmp_path)
    with pytest.raises(ProjectError, match="not a file"):
        load_project(tmp_path)
