"""``workbench init``: make an existing repository a workbench project, without running its code.

:func:`init_project` looks at the folder statically: it finds the files that define
``workbench.Task`` subclasses (for ``[project] tasks``) and the argparse scripts (read with
:mod:`ast` by :mod:`workbench.project._argparse_scan`), then writes a commented
``workbench.toml`` with a ``[scripts.NAME]`` table proposed for each script, adds
``.workbench/`` to ``.gitignore`` and, when asked, a task template. Every check is made
before anything is written: a refusal leaves the folder as it was.

Nothing here imports torch or the user's code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.project._argparse_scan import ArgparseScript, ScriptFlag, scan_argparse
from workbench.project.errors import ProjectError
from workbench.project.settings import PROJECT_FILE

__all__ = ["TEMPLATES", "InitResult", "ProposedScript", "init_project", "project_file_text", "propose_script",
           "task_globs"]

#: What ``--template`` can write: name -> path relative to the project root.
TEMPLATES = {"task": "tasks/my_task.py"}

_MAX_FILES = 3000  # .py files looked at; a bigger tree is cut short (and the result says so)
_MAX_BYTES = 1024 * 1024
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist", "venv", "env", "wandb",
              "lightning_logs", "mlruns", "outputs"}
_TEST_DIRS = {"tests", "test", "testing"}
_SECRET = re.compile(r"(token|key|password|secret|passwd|credential)", re.IGNORECASE)
_IGNORED = (".workbench", ".workbench/", "/.workbench", "/.workbench/")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ProposedScript:
    """A ``[scripts.NAME]`` table proposed for an argparse script.

    Attributes:
        name: The table's name (what ``workbench run NAME`` launches).
        path: The script, relative to the project root.
        text: The table as commented TOML.
        problem: Why the table is written commented out ("" when it is live).
    """

    name: str
    path: str
    text: str
    problem: str = ""


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_project` wrote.

    Attributes:
        file: The ``workbench.toml`` written.
        task_globs: The ``[project] tasks`` globs.
        task_files: The files found defining tasks.
        scripts: The scripts proposed.
        template: The template written, if any.
        gitignore: ``created``, ``added`` or ``present`` (``.workbench/`` was listed already).
        truncated: The tree had more Python files than were looked at.
    """

    file: Path
    task_globs: tuple[str, ...]
    task_files: tuple[str, ...]
    scripts: tuple[ProposedScript, ...] = ()
    template: Path | None = None
    gitignore: str = "present"
    truncated: bool = False


# -- looking at the folder -----------------------------------------------------------------


def _python_files(root: Path) -> Iterator[tuple[str, Path]]:
    """The ``.py`` files below ``root`` (relative POSIX path, path), skipping hidden folders,
    virtual environments, caches and build output, sorted for a stable result."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                         and not d.endswith(".egg-info") and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            if name.endswith(".py"):
                path = here / name
                yield path.relative_to(root).as_posix(), path


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _task_files(root: Path, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidates that define ``workbench.Task`` subclasses, found by static discovery."""
    if not candidates:
        return ()
    import glob

    from workbench.project.discovery import discover_paths

    found = discover_paths(root, [glob.escape(rel) for rel in candidates])
    return tuple(sorted({task.file for task in found.tasks if task.kind == "task"}))


def task_globs(task_files: Sequence[str]) -> tuple[str, ...]:
    """Globs that cover ``task_files``: ``folder/**/*.py`` per folder, a file at the root by
    name; a folder inside another one's glob is left out."""
    globs: dict[str, str] = {}
    for rel in task_files:
        parent = PurePosixPath(rel).parent
        globs[str(parent)] = rel if str(parent) == "." else f"{parent}/**/*.py"
    folders = [f for f in globs if f != "."]
    kept = [f for f in folders if not any(f != o and f.startswith(o + "/") for o in folders)]
    out = [globs[f] for f in sorted(kept)]
    out += sorted(rel for rel in task_files if str(PurePosixPath(rel).parent) == ".")
    return tuple(out)


def _is_test_file(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name in ("conftest.py", "setup.py")
            or any(p in _TEST_DIRS for p in parts[:-1]))


# -- proposing a script's table ------------------------------------------------------------


def _value(value: Any) -> str:
    """A TOML value on one line (lists inline)."""
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def _comment(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _script_name(rel: str, taken: set[str]) -> str:
    path = PurePosixPath(rel)

    def clean(word: str) -> str:
        word = _NAME_CHARS.sub("_", word).strip("_-") or "script"
        return word if re.match(r"^[A-Za-z_]", word) else "_" + word

    name = clean(path.stem)
    if name in taken and str(path.parent) != ".":
        name = clean(f"{path.parent.name}-{path.stem}")
    base, n = name, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _placeholder_default(flag: ScriptFlag) -> Any:
    if flag.kind == "list":
        return []
    return {"int": 0, "float": 0.0}.get(flag.type, "")


def propose_script(script: ArgparseScript, name: str) -> ProposedScript:
    """The ``[scripts.NAME]`` table for one argparse script, as commented TOML.

    Flags with a literal default become ``{param}`` placeholders with that default; a
    required flag or a positional gets an empty default to fill in; switches
    (``store_true``) and flags whose default is computed at run time are left out of the
    command and listed in a comment; secret-looking params are marked ``secret`` and their
    defaults are not copied into the file.

    Args:
        script: The script's flags, read statically.
        name: The table's name.

    Returns:
        The proposal; its ``problem`` is set (and the table commented out) when the table
        would not load.
    """
    positional = [f for f in script.flags if f.kind in ("value", "list") and not f.option]
    options = [f for f in script.flags if f.kind in ("value", "list") and f.option]
    command = ["python", script.path]
    params: list[str] = []
    secret: list[str] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for flag in [*positional, *options]:
        if flag.dest in seen or flag.dest == "checkpoint":
            left_out.append(f"{flag.label} (its name is taken)")
            continue
        if flag.default is None and not flag.required:
            left_out.append(f"{flag.label} (no default: the script's own None)")
            continue
        if _SECRET.search(flag.dest) and not flag.required:
            left_out.append(f"{flag.label} (secret-looking: the script's own default is used, and not copied here)")
            continue
        seen.add(flag.dest)
        command += ([flag.option] if flag.option else []) + ["{" + flag.dest + "}"]
        notes = [flag.help] if flag.help else []
        if flag.choices:
            notes.append("one of: " + ", ".join(str(c) for c in flag.choices))
        value = flag.default
        if _SECRET.search(flag.dest):
            secret.append(flag.dest)
            value = _placeholder_default(flag)
            notes.insert(0, f"secret, required by the script: give it at launch (-s {flag.dest}=...)")
        elif value is None:
            value = _placeholder_default(flag)
            notes.insert(0, f"required by the script: set it here or at launch (-s {flag.dest}=...)")
        line = f"{flag.dest} = {_value(value)}"
        if notes:
            line = f"{line:<24}  # {_comment('; '.join(notes))}"
        params.append(line)
    switches = [f for f in script.flags if f.kind == "switch"]
    left_out += [f"{f.label} ({f.problem})" for f in script.flags if f.kind == "skip"]

    lines = [f"# {script.path}: argparse, read statically (nothing was run)"]
    if script.subcommands:
        lines.append("# it has sub-commands: only its top-level flags were read; add the sub-command to command")
    lines += [f"[scripts.{name}]", f"command = {_value(command)}"]
    if script.summary:
        lines.append(f"summary = {_value(_comment(script.summary, 120))}")
    if secret:
        lines.append(f"secret = {_value(secret)}            # recorded as ***, never stored nor shown")
    if switches:
        lines.append("# switches, left out (add one to command to use it): "
                     + ", ".join(f"{f.option} ({'off' if not f.default else 'on'} by default)" for f in switches))
    lines += [f"# left out of command: {_comment(item, 200)}" for item in left_out]
    if params:
        lines += [f"[scripts.{name}.params]", *params]
    text = "\n".join(lines) + "\n"
    problem = _check_table(name, text)
    if problem:
        text = "".join(f"# {line}\n" if line and not line.startswith("#") else f"{line}\n"
                       for line in text.splitlines())
        text = f"# (commented out: {problem})\n{text}"
    return ProposedScript(name, script.path, text, problem)


def _check_table(name: str, text: str) -> str:
    """Why the table would not load ("" when it loads), checked by the real parser."""
    from workbench.project._toml import tomllib
    from workbench.project.scripts import parse_scripts

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return f"not valid TOML: {exc}"

    def fail(key: tuple[str, ...], message: str) -> Exception:
        return ValueError(message)

    try:
        parse_scripts(data.get("scripts", {}), fail, lambda key: None)
    except ValueError as exc:
        return str(exc)
    return ""


# -- the file ------------------------------------------------------------------------------


def project_file_text(name: str, globs: Sequence[str], task_files: Sequence[str],
                      scripts: Sequence[ProposedScript], data_folder: bool = False) -> str:
    """The commented ``workbench.toml`` that ``workbench init`` writes.

    Args:
        name: The project's name.
        globs: ``[project] tasks`` (empty: the default, ``tasks/**/*.py``).
        task_files: The task files found (named in a comment).
        scripts: The proposed script tables.
        data_folder: A ``data/`` folder exists (the ``[data]`` example names it).

    Returns:
        The file's text.
    """
    found = (f"found in {len(task_files)} file(s): {_comment(', '.join(task_files), 60)}" if task_files
             else "none found yet: subclasses of workbench.Task go here")
    lines = [
        "# workbench.toml: written by `workbench init`. Every key is optional; an unknown key is an error.",
        "# The settings: docs/getting-started.md. Scripts and workbench.init(): docs/scripts.md.",
        "",
        "[project]",
        f"name = {_value(name)}",
        f"tasks = {_value(list(globs) or ['tasks/**/*.py'])}  # where tasks live ({found})",
        '# state_dir = ".workbench"            # run data (index.db, runs/): kept out of git',
        '# python = ""                         # what a script\'s "python" means (default: the workbench\'s own)',
        "",
        "[defaults]                             # launch settings a run does not choose itself",
        'device = "auto"                        # auto | cpu | cuda | cuda:N | mps',
        '# backend = "single"                   # single | ddp (with nproc > 1)',
        "# nproc = 1",
        '# precision = "32"                     # "32" | "bf16-mixed" | "16-mixed"',
        "# deterministic = true                 # runs that repeat bit for bit (default: on for the CPU)",
        "",
        "# [snapshot]                           # each run records the code it ran as a git snapshot",
        "# max_file_size_mb = 10                # untracked files larger than this are left out",
        "# exclude = []                         # more glob patterns left out",
        "",
        "# [data]                               # what runs read: fingerprinted at launch, never snapshotted",
        f"# paths = [\"data/\"]{'                   # a data/ folder is here' if data_folder else ''}",
        "",
        "# Scripts launched as runs with no change to their code: `workbench run NAME -s lr=0.01`.",
        "# Each {placeholder} in command is a param below, typed by its default.",
    ]
    if not scripts:
        lines += [
            "# No argparse script was found; an example:",
            "# [scripts.train]",
            '# command = ["python", "train.py", "--lr", "{lr}"]',
            '# summary = "Train the model"',
            "# [scripts.train.params]",
            "# lr = 0.1",
        ]
    text = "\n".join(lines) + "\n"
    for script in scripts:
        text += "\n" + script.text
    return text


def _gitignore_state(root: Path) -> str:
    path = root / ".gitignore"
    if not path.exists():
        return "created"
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    return "present" if any(line in _IGNORED for line in lines) else "added"


def _add_to_gitignore(root: Path, state: str) -> None:
    if state == "present":
        return
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    sep = "" if not text or text.endswith("\n") else "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"{sep}# workbench: run data (index, run folders)\n.workbench/\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_writable(root: Path, force: bool, template: str | None) -> None:
    target = root / PROJECT_FILE
    if target.is_dir():
        raise ProjectError(f"{target} is a folder; {PROJECT_FILE} must be a file: move the folder away")
    if target.exists() and not force:
        raise ProjectError(f"{target} exists already; nothing was written (pass --force to overwrite it)")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ProjectError(f"cannot write in {root} (permission denied); nothing was written")
    ignore = root / ".gitignore"
    if ignore.exists() and (ignore.is_dir() or not os.access(ignore, os.W_OK)):
        raise ProjectError(f"cannot write {ignore}; nothing was written")
    if template is not None:
        path = root / TEMPLATES[template]
        if path.exists() and not force:
            raise ProjectError(f"{path} exists already; nothing was written (pass --force to overwrite it)")
        folder = next((p for p in path.parents if p.exists()), root)
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ProjectError(f"cannot write {path} ({folder} is not a writable folder); nothing was written")


def init_project(root: Path | str, *, template: str | None = None, force: bool = False) -> InitResult:
    """Write ``workbench.toml`` (and ``.gitignore``, and a template) into a repository.

    Args:
        root: The folder to make a project.
        template: ``"task"`` writes :data:`TEMPLATES`'s task file too.
        force: Overwrite an existing ``workbench.toml`` (and template file).

    Returns:
        What was written.

    Raises:
        ProjectError: ``root`` is not a writable folder, ``workbench.toml`` exists and
            ``force`` is off, or an unknown template (one line; nothing written).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ProjectError(f"{root} is not a folder" + (" (it does not exist)" if not root.exists() else ""))
    root = root.resolve()
    if template is not None and template not in TEMPLATES:
        raise ProjectError(f"unknown template {template!r}; templates: {', '.join(TEMPLATES)}")
    _check_writable(root, force, template)

    candidates: list[str] = []
    argparse_files: list[tuple[str, str]] = []
    truncated = False
    for count, (rel, path) in enumerate(_python_files(root)):
        if count >= _MAX_FILES:
            truncated = True
            break
        text = _read(path)
        if text is None:
            continue
        if "Task" in text and "class " in text:
            candidates.append(rel)
        if "argparse" in text and not _is_test_file(rel):
            argparse_files.append((rel, text))
    tasks = _task_files(root, candidates)
    globs = list(task_globs(tasks))
    if template is not None and "tasks/**/*.py" not in globs:
        globs.append("tasks/**/*.py")

    taken = set()
    proposals = []
    for rel, text in argparse_files:
        if rel in tasks:  # a task file's command line is the task's own (python tasks/x.py fit)
            continue
        script = scan_argparse(rel, text)
        if script is not None:
            proposals.append(propose_script(script, _script_name(rel, taken)))

    text = project_file_text(root.name, globs, tasks, proposals, data_folder=(root / "data").is_dir())
    gitignore = _gitignore_state(root)
    written: Path | None = None
    try:
        if template is not None:
            written = root / TEMPLATES[template]
            written.parent.mkdir(parents=True, exist_ok=True)
            written.write_text(TASK_TEMPLATE, encoding="utf-8")
        _add_to_gitignore(root, gitignore)
        _write_atomic(root / PROJECT_FILE, text)
    except OSError as exc:
        raise ProjectError(f"cannot write in {root}: {exc.strerror or exc}") from None
    return InitResult(root / PROJECT_FILE, tuple(globs), tasks, tuple(proposals), written, gitignore, truncated)


TASK_TEMPLATE = '''"""A template task: fit a straight line to noisy points (trains in about a second on a CPU).

Rename the class, give it a docstring (the app shows it), and replace build_data and
build_model with your own. Run it on its own:

    python tasks/my_task.py fit -s epochs=3

or from the workbench, which records the run with its code snapshot, curves and checkpoints:

    workbench run MyTask -s lr=0.05
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task


class MyTask(Task):
    """Fit y = 3x + 1 from noisy samples (mean squared error)."""

    # The settings: typed, with defaults. `-s name=value` and the app's launch form set them.
    # epochs, lr and batch_size mean something to the trainer; the rest are yours.
    @dataclass
    class Config:
        epochs: int = 5
        lr: float = 0.05
        batch_size: int = 32
        samples: int = 2000
        noise: float = 0.1
        seed: int = 0

    def build_data(self) -> DataModule:
        """The training and validation data (a DataModule, or a (train, val) tuple)."""
        c = self.config
        g = torch.Generator().manual_seed(c.seed)

        def points(n: int) -> TensorDataset:
            x = torch.rand(n, 1, generator=g) * 2 - 1
            return TensorDataset(x, 3 * x + 1 + c.noise * torch.randn(n, 1, generator=g))

        return DataModule(train=points(c.samples), val=points(c.samples // 10), batch_size=c.batch_size,
                          seed=c.seed)

    def build_model(self) -> nn.Module:
        """The model to train."""
        return nn.Linear(1, 1)

    def build_criterion(self) -> nn.Module:
        """The loss (the default training step computes it from the model's output and the target)."""
        return nn.MSELoss()


if __name__ == "__main__":
    raise SystemExit(MyTask.main())
'''
