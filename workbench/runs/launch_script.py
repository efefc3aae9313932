"""Launching a ``[scripts.NAME]`` table as a run: the same check, snapshot, spec and
supervisor as a task run (``workbench.runs.launch``), with a command instead of a task.

What a script run gets:

- the one launch check (:func:`prepare_script`): params typed by their defaults (``-s``,
  profiles and the app's form check them), the script's file inside the project, the
  interpreter, the name; nothing is written before it passes;
- a code snapshot, materialised in the run folder: the command's script argument (the
  first argument naming a file inside the project) is rewritten to its copy there, and the
  snapshot's folder comes first on ``PYTHONPATH`` (for ``python -m MODULE`` the working
  folder is kept off ``sys.path``, so the module is the snapshot's too, on Python 3.11+);
- ``python`` as the command's first word means ``[project] python``, else the interpreter
  the workbench runs under; the working folder is the project folder;
- a row of kind ``script`` whose ``command`` is the exact argument list, with secret params
  and secret-looking values (``--api-key X``, ``HF_TOKEN=X``) recorded as ``***``.

Secret params never reach ``run.toml`` or the index: the spec keeps them as ``{name}``
placeholders and the supervisor gets their values through its environment. Their value is
``-s NAME=...``, else ``$WORKBENCH_SECRET_<NAME>``, else the table's default; a restart
knows only the last two.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs._launching import (
    STOP_SIGNALS,
    LaunchRequest,
    PreparedLaunch,
    _code_dirty,
    _create_row,
    _drop_ref,
    _excluded,
    _fingerprint_data,
    _env,
)
from workbench.runs.liveness import process_create_time
from workbench.runs.locks import launch_lock
from workbench.runs.names import check_run_name
from workbench.runs.spec import RunSpec, check_round_trip, read_spec, run_dir_of, write_spec
from workbench.store import Run, RunIndex, RunStatus, new_run_id

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.project.scripts import Script

__all__ = [
    "SECRETS_ENV",
    "PreparedScript",
    "is_script",
    "latest_checkpoint",
    "launch_script",
    "prepare_script",
    "restart_script",
    "script_env",
    "start_script_supervisor",
]

#: The supervisor's environment variable that carries secret params (JSON), never stored.
SECRETS_ENV = "WORKBENCH_SECRETS"
_MASK = "***"


def is_script(project: Project, name: str) -> bool:
    """Whether ``name`` is one of the project's ``[scripts.NAME]`` tables."""
    return project.script(name) is not None


@dataclass
class PreparedScript(PreparedLaunch):
    """A checked script launch (a :class:`PreparedLaunch`, so the app's form reads it alike).

    Attributes:
        script: The table.
        secrets: Secret param values (never written anywhere).
        argument: The script argument's file, relative to the project ("" for none/a module).
        argument_index: Its place in the command (-1: no file to rewrite).
        module: The module after ``-m``, if that is how the command names its code.
        python: The interpreter ``python`` stands for.
    """

    script: Any = None
    secrets: dict[str, str] = field(default_factory=dict)
    argument: str = ""
    argument_index: int = -1
    module: str = ""
    python: str = ""

    def command(self, run_dir: Path) -> tuple[list[str], list[str]]:
        """``(what the supervisor runs, what is recorded)`` for a run in ``run_dir``: the
        first keeps secret params as ``{name}``, the second shows ``***``."""
        return _commands(self.script, self.config, run_dir / "code", self.argument, self.argument_index,
                         self.python)


def _commands(script: Script, config: dict[str, Any], code_dir: Path, argument: str, index: int,
              python: str) -> tuple[list[str], list[str]]:
    from workbench.attach import mask_secrets
    from workbench.project.scripts import render

    template = list(script.command)
    if index >= 0:  # the script argument: its copy in the snapshot
        template[index] = str(code_dir / argument).replace("{", "{{").replace("}", "}}")
    if template[0] in ("python", "python3"):
        template[0] = python.replace("{", "{{").replace("}", "}}")
    run = render(template, config, keep=script.secret, template=True)
    shown = mask_secrets(render(template, config, mask=script.secret))
    return run, shown


def _python(project: Project) -> str:
    """The interpreter a script's ``python`` means."""
    where = f"{project.file.name}: [project] python"
    if not project.python:
        return sys.executable
    path = Path(project.python).expanduser()
    if "/" in project.python or path.is_absolute():
        path = path if path.is_absolute() else project.root / path
        if not path.is_file() or not os.access(path, os.X_OK):
            raise WorkbenchError(f"{where}: {project.python!r} is not an executable file")
        return str(path)
    found = shutil.which(project.python)
    if not found:
        raise WorkbenchError(f"{where}: {project.python!r} is not on PATH")
    return found


def _secrets(script: Script, config: dict[str, Any], given: set[str]) -> dict[str, str]:
    from workbench.project.scripts import render

    out = {}
    for name in script.secret:
        value = config.get(name)
        if name not in given:
            value = os.environ.get(f"WORKBENCH_SECRET_{name.upper()}", value)
        out[name] = render(["{" + name + "}"], {name: value})[0] if not isinstance(value, str) else value
    return out


def prepare_script(project: Project, request: LaunchRequest, *, index: RunIndex | None = None,
                   probe: dict[str, Any] | None = None) -> PreparedScript:
    """Check a launch of the script ``request.task`` without writing anything.

    Raises:
        WorkbenchError: A bad param or profile, a backend, process count or precision a
            script cannot take, a missing script file or interpreter, a taken name.
    """
    from workbench.project import discover, find_profile, parse_override, resolve_config
    from workbench.project.scripts import script_argument
    from workbench.project.settings import normalize_device

    script = project.script(request.task)
    if script is None:
        raise WorkbenchError(f"no script named {request.task!r}")
    where = f"{project.file.name}:{script.line}" if script.line else project.file.name
    if request.backend not in (None, "single") or (request.nproc or 1) != 1:
        raise WorkbenchError(f"script {script.name} runs as one process (its command decides the rest); "
                             "leave out --backend and --nproc")
    if request.precision not in (None, "32"):
        raise WorkbenchError(f"script {script.name} chooses its own precision; leave out --precision "
                             "(make it a param if the script takes one)")
    try:
        device = normalize_device(request.device) if request.device is not None else project.defaults.device
    except ValueError as exc:
        raise WorkbenchError(f"bad --device: {exc}") from None
    profile_path = find_profile(project.root, request.profile) if request.profile else None
    config = resolve_config(script.fields, profile=profile_path, overrides=list(request.overrides),
                            task_name=script.name)
    given = {parse_override(o)[0] for o in request.overrides}
    secrets = _secrets(script, config, given)
    recorded = {k: (_MASK if k in script.secret else v) for k, v in config.items()}
    try:
        argument = script_argument(script.command, project.root)
    except ValueError as exc:
        raise WorkbenchError(f"{where}: [scripts.{script.name}] command: {exc}") from None
    python = _python(project)
    name = (request.name or "").strip() or None
    taken = index.run_names() if index is not None else set()
    if name is not None:
        check_run_name(name, taken, index.run_ids() if index is not None else ())
    elif index is not None:
        from workbench.runs.names import friendly_name

        name = friendly_name(len(taken) + 1, taken)
    task = next(t for t in discover(project).tasks if t.kind == "script" and t.name == script.name)
    profile = str(profile_path.relative_to(project.root)) if profile_path and \
        profile_path.is_relative_to(project.root) else str(profile_path or "")
    warnings = []
    if argument is None:
        warnings.append(f"script {script.name}: no argument of its command names a file in the project; "
                        "its code is not taken from the snapshot")
    # The config the form, the row and run.toml show: secrets masked (the command keeps
    # them as placeholders, so it needs no value of theirs).
    prepared = PreparedScript(task, recorded, device, "single", 1, "32", name, [t for t in request.tags if t],
                              profile, warnings, False, script=script, secrets=secrets,
                              argument=argument.path if argument else "",
                              argument_index=argument.index if argument and argument.path else -1,
                              module=argument.module if argument else "", python=python)
    fake = Path(project.runs_dir) / ("0" * 12)
    check_round_trip(_spec(project, prepared, "0" * 12, fake, ""))
    return prepared


def _spec(project: Project, prepared: PreparedScript, run_id: str, run_dir: Path, snapshot: str) -> RunSpec:
    script = prepared.script
    command, _ = prepared.command(run_dir)
    return RunSpec(
        id=run_id, task=script.name, task_file=prepared.argument, task_module=prepared.module,
        config=prepared.config, device=prepared.device, backend="single", nproc=1, precision="32",
        project_root=str(project.root), index=str(project.index_path), code_dir=str(run_dir / "code"),
        name=prepared.name or "", tags=list(prepared.tags), profile=prepared.profile, snapshot=snapshot,
        max_log_bytes=project.max_log_bytes, deterministic=False, kind="script", command=command,
        script={**script.to_dict(), "module": prepared.module},
    )


def launch_script(project: Project, request: LaunchRequest, *, index: RunIndex | None = None,
                  probe: dict[str, Any] | None = None, start: bool = True) -> Run:
    """Launch a script run: check, snapshot the code, write ``run.toml``, start the supervisor.

    Returns:
        The new run (status ``queued``, kind ``script``).
    """
    own_index = index is None
    index = index if index is not None else RunIndex(project.index_path)
    try:
        prepared = prepare_script(project, request, index=index, probe=probe)
        run_id = new_run_id()
        run_dir = run_dir_of(project, run_id)
        try:
            row = _create(project, index, prepared, run_id, run_dir, pick_name=not (request.name or "").strip())
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            _drop_ref(project, run_id)
            raise
        if start:
            start_script_supervisor(project, index, row, prepared.secrets)
        return index.get_run(run_id) or row
    finally:
        if own_index:
            index.close()


def _create(project: Project, index: RunIndex, prepared: PreparedScript, run_id: str, run_dir: Path,
            pick_name: bool) -> Run:
    from workbench.snapshot import materialise, take_snapshot

    run_dir.mkdir(parents=True)
    with launch_lock(run_dir):
        data = _fingerprint_data(project, run_dir)
        snap = take_snapshot(project.root, run_id, state_dir=project.state_dir,
                             max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
        code_dir = run_dir / "code"
        materialise(snap, snap.git_dir, code_dir)
        if prepared.argument and not (code_dir / prepared.argument).is_file():
            raise WorkbenchError(f"{prepared.argument} is not in the code snapshot (ignored by git, or larger "
                                 "than [snapshot] max_file_size_mb?); a script runs from its snapshot")
        spec = _spec(project, prepared, run_id, run_dir, snap.commit)
        write_spec(run_dir, spec)
        (run_dir / "artifacts").mkdir()
        _, shown = prepared.command(run_dir)
        row = _create_row(
            index, pick_name,
            id=run_id, name=prepared.name, task=spec.task, kind="script", command=shown,
            status=RunStatus.QUEUED, device=prepared.device, backend="single", nproc=1, precision="32",
            config=prepared.config, tags=list(prepared.tags), profile=prepared.profile or None,
            run_dir=str(run_dir), git_head=snap.head, git_branch=snap.branch,
            git_dirty=_code_dirty(project, snap), snapshot_commit=snap.commit,
        )
    for warning in [*prepared.warnings, *(data.warnings if data else ())]:
        index.add_event(run_id, "warning", warning)
    if data is not None:
        index.add_event(run_id, "data", data.summary, data.event_data())
    excluded = [f"{path} ({why})" for path, why in _excluded(project, snap)]
    index.add_event(run_id, "launched", f"script {spec.task}: {' '.join(shown)}",
                    {"snapshot": snap.commit, "excluded": excluded[:200], "command": shown})
    if excluded:
        index.add_event(run_id, "snapshot-excluded", f"{len(excluded)} file(s) left out of the code snapshot",
                        {"files": excluded[:200]})
    return row


def start_script_supervisor(project: Project, index: RunIndex, run: Run, secrets: dict[str, str]) -> int:
    """Start a script run's supervisor (as ``launch.start_supervisor`` does), with the secret
    params in its environment only. Returns its pid."""
    run_dir = Path(run.run_dir or run_dir_of(project, run.id))
    env = _env()
    if secrets:
        env[SECRETS_ENV] = json.dumps(secrets)
    log = open(run_dir / "supervisor.log", "ab")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.runs.supervisor", str(run_dir),
             "--index", str(project.index_path), "--run-id", run.id],
            cwd=str(project.root), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        log.close()
    index.update_run(run.id, supervisor_pid=proc.pid, supervisor_create_time=process_create_time(proc.pid))
    return proc.pid


def script_env(spec: RunSpec, run_dir: Path, attempt: int, base: dict[str, str]) -> dict[str, str]:
    """The environment of a script run's process: ``base``, plus where its artifacts go, the
    variables ``workbench.init()`` attaches with, and the snapshot first on ``PYTHONPATH``."""
    env = dict(base)
    env.pop(SECRETS_ENV, None)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach output.log (and the capture) as they are printed
    env["WORKBENCH_RUN_DIR"] = str(run_dir)
    env["WORKBENCH_ATTEMPT"] = str(attempt)
    env["WORKBENCH_ARTIFACTS"] = str(run_dir / "artifacts")
    env["PYTHONPATH"] = os.pathsep.join([spec.code_dir, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    if (spec.script or {}).get("module"):
        env["PYTHONSAFEPATH"] = "1"  # python -m: the module comes from the snapshot, not the project
    return env


def latest_checkpoint(run_dir: Path, glob: str) -> Path | None:
    """The newest file (by modification time) matching ``glob`` in the run folder."""
    if not glob:
        return None
    found = [p for p in Path(run_dir).glob(glob) if p.is_file() and not p.name.endswith(".tmp")]
    return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None


def restart_script(project: Project, index: RunIndex, run: Run, spec: RunSpec, status: RunStatus, *,
                   start: bool = True) -> Run:
    """A new attempt of a script run with the same snapshot and params: it starts over, or,
    when its table declared ``resume`` and ``checkpoints`` and a checkpoint exists, it is
    given the newest one.

    Returns:
        The run (status ``queued``, attempt one more).
    """
    from workbench.project.scripts import render

    run_dir = Path(run.run_dir or run_dir_of(project, run.id))
    table = spec.script or {}
    checkpoint = latest_checkpoint(run_dir, table.get("checkpoints", "")) if table.get("resume") else None
    spec = read_spec(run_dir)
    spec.resume_from = str(checkpoint) if checkpoint else ""
    write_spec(run_dir, spec)
    secrets: dict[str, str] = {}
    current = project.script(spec.task)
    for name in table.get("secret", []):
        default = current.params.get(name, "") if current is not None else ""
        value = os.environ.get(f"WORKBENCH_SECRET_{name.upper()}", default)
        secrets[name] = value if isinstance(value, str) else render(["{x}"], {"x": value})[0]
    attempt = (run.attempt or 1) + 1
    index.update_run(run.id, status=RunStatus.QUEUED, attempt=attempt, ended_at=None, exit_code=None,
                     signal=None, error=None, traceback=None, heartbeat_at=time.time(),
                     stop_requested_at=None, stop_mode=None, stop_reason=None, status_reason=None)
    how = f"resumed from {checkpoint.name}" if checkpoint else "restarted (scripts start over)"
    index.add_event(run.id, "resumed" if checkpoint else "restarted", f"attempt {attempt} (after {status}): {how}",
                    {"attempt": attempt, "previous_status": status.value,
                     "checkpoint": str(checkpoint) if checkpoint else None})
    run = index.get_run(run.id) or run
    if start:
        start_script_supervisor(project, index, run, secrets)
    return index.get_run(run.id) or run
