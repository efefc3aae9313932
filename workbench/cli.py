"""The ``workbench`` command: a thin click layer over plain functions.

It never imports torch, textual or the user's code (``workbench --help`` answers at
once); bad input is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from workbench.errors import WorkbenchError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A click group that turns a WorkbenchError into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


class _State:
    """What every command needs: the project, found once, lazily."""

    def __init__(self, project_dir: Path | None) -> None:
        self.project_dir = project_dir
        self._project: Any = None

    @property
    def project(self) -> Any:
        """The project (``workbench.toml`` loaded), or a one-line error."""
        if self._project is None:
            from workbench.project import find_project_root, load_project

            start = self.project_dir or Path.cwd()
            if self.project_dir is not None and not (start / "workbench.toml").is_file():
                from workbench.project import ProjectNotFound

                raise ProjectNotFound(
                    f"{start} has no workbench.toml; point --project at a project folder "
                    "or create workbench.toml there"
                )
            self._project = load_project(find_project_root(start))
        return self._project


pass_state = click.make_pass_decorator(_State)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The shared ``--json`` flag: a stable, documented shape instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (shapes in docs/cli.md).")(fn)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (default: the nearest parent with workbench.toml).")
@click.version_option(package_name="workbench", prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None) -> None:
    """Workbench: launch, watch, compare and resume PyTorch runs from the terminal."""
    ctx.obj = _State(project_dir.resolve() if project_dir else None)
    if ctx.invoked_subcommand is None:
        _open_app(ctx.obj)


def _open_app(state: _State) -> None:
    """Open the terminal app on the project (textual is imported only here, when it opens)."""
    import importlib

    # Imported by name so that the import-linter contract "only the tui imports textual"
    # keeps holding for everything else in this module; `workbench --help` stays textual-free.
    make_app = importlib.import_module("workbench.tui.app").make_app
    make_app(state.project.root).run()


@cli.command("tui")
@pass_state
def tui_cmd(state: _State) -> None:
    """Open the terminal app (the same as `workbench` with no command)."""
    _open_app(state)


@cli.command("tasks")
@json_option
@pass_state
def tasks_cmd(state: _State, as_json: bool) -> None:
    """List the tasks the project defines (found statically; nothing is imported)."""
    from workbench.project import discover

    project = state.project
    found = discover(project)
    if as_json:
        _print_json({"project": project.name, **found.to_dict()})
        return
    globs = ", ".join(project.task_globs)
    click.echo(f"{project.name}: {len(found.launchable)} task(s) in {len(found.files)} file(s) ({globs})")
    for task in found.tasks:
        label = click.style(task.name, bold=True)
        if task.abstract:
            label += click.style(" (framework: not launchable)", dim=True)
        click.echo(f"\n{label}  {click.style(task.location, dim=True)}")
        if task.summary:
            click.echo(f"  {task.summary}")
        if task.bases and task.bases not in (("Task",), ("workbench.Task",)):
            click.echo(f"  builds on: {', '.join(task.bases)}")
        for field in task.config:
            default = (f" = {field.default!r}" if not field.default_source else f" = {field.default_source}") \
                if field.has_default else click.style(" (required)", fg="yellow")
            click.echo(f"    {field.name}: {field.type}{default}")
    if found.errors:
        click.echo(click.style(f"\n{len(found.errors)} problem(s):", fg="red"))
        for error in found.errors:
            click.echo(f"  {error}")



# -- runs -------------------------------------------------------------------------------

STATUS_COLOURS = {"queued": "cyan", "running": "blue", "completed": "green", "failed": "red",
                  "stopped": "yellow", "interrupted": "magenta"}


def _index(project: Any) -> Any:
    from workbench.store import RunIndex

    return RunIndex(project.index_path)


def _status(status: str) -> str:
    return click.style(status, fg=STATUS_COLOURS.get(status), bold=status in ("failed", "running"))


def _when(ts: float | None) -> str:
    import time as _time

    return _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(ts)) if ts else "-"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    value = int(value)
    if value < 60:
        return f"{value}s"
    if value < 3600:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value // 3600}h{value % 3600 // 60:02d}m"


def _progress(row: dict[str, Any]) -> str:
    step, total = row.get("step"), row.get("total_steps")
    if step is None:
        return "-"
    if total:
        return f"{100 * step / total:3.0f}% {step}/{total}"
    return str(step)


def _record(index: Any, row: dict[str, Any], artifacts: bool = False) -> dict[str, Any]:
    from workbench.runs.records import run_record

    count = len(index.artifacts(row["id"])) if artifacts else None
    return run_record(row, index.last_metrics(row["id"]), count)


def _reconcile(index: Any) -> None:
    from workbench.runs.control import reconcile

    reconcile(index)


def _resolve(index: Any, ref: str) -> dict[str, Any]:
    _reconcile(index)
    return index.resolve_run(ref)


@cli.command("run")
@click.argument("task")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set a config field; the value is a TOML literal (lr=1e-3, layers=[64,64]).")
@click.option("--profile", help="A config profile: a name in configs/ or a TOML file.")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps (default from workbench.toml).")
@click.option("--backend", type=click.Choice(["single", "ddp"]), help="One process, or DDP.")
@click.option("--nproc", type=int, help="Processes for --backend ddp.")
@click.option("--precision", help="32, bf16-mixed or 16-mixed.")
@click.option("--name", help="A unique name for the run.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@json_option
@pass_state
def run_cmd(state: _State, task: str, overrides: tuple[str, ...], profile: str | None,
            device: str | None, backend: str | None, nproc: int | None, precision: str | None,
            name: str | None, tags: tuple[str, ...], follow: bool, wait: bool, as_json: bool) -> None:
    """Launch TASK as a background run."""
    from workbench.runs import LaunchRequest, launch

    project = state.project
    with _index(project) as index:
        row = launch(project, LaunchRequest(task, overrides, profile, device, backend, nproc, precision,
                                            name, tags), index=index)
        label = f"{row['id']}" + (f" ({row['name']})" if row.get("name") else "")
        if not as_json:
            click.echo(f"launched run {label}: {row['task']} on {row['device']}/{row['backend']}", err=follow)
            excluded = _last_event(index, row["id"], "snapshot-excluded")
            if excluded:
                files = (excluded.get("data") or {}).get("files") or []
                shown = ", ".join(files[:3]) + (f", … ({len(files) - 3} more)" if len(files) > 3 else "")
                click.echo(f"  {excluded['message']}: {shown}", err=True)
        if follow:
            row = _follow(index, row["id"])
        elif wait:
            row = _wait(index, row["id"])
        if as_json:
            _print_json(_record(index, row))
        elif follow or wait:
            _print_outcome(index, row)
        else:
            click.echo(f"  watch it: workbench logs --follow {row['id']}  ·  workbench show {row['id']}")
    if (follow or wait) and row["status"] != "completed":
        sys.exit(1)


def _wait(index: Any, run_id: str) -> dict[str, Any]:
    """Wait for the run's end; Ctrl-C detaches (the run goes on), as with --follow."""
    from workbench.runs import wait_for

    try:
        return wait_for(index, run_id)
    except KeyboardInterrupt:
        click.echo(f"detached; the run goes on (workbench show {run_id})", err=True)
        sys.exit(130)


def _print_outcome(index: Any, row: dict[str, Any]) -> None:
    metrics = index.last_metrics(row["id"])
    shown = "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())
                      if k.startswith(("val/", "train/loss_epoch", "test/")))
    click.echo(f"run {row['id']} {_status(row['status'])}" + (f": {shown}" if shown else ""))
    if row.get("error"):
        click.echo(f"  error: {row['error']}")


def _follow(index: Any, run_id: str) -> dict[str, Any]:
    """A live progress bar from the index until the run ends; Ctrl-C detaches."""
    import time as _time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    row = index.get_run(run_id)
    bar = Progress(TextColumn("{task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"), console=console)
    try:
        with bar:
            handle = bar.add_task("run", total=None, label=f"{row['task']} {row['status']}", metrics="")
            while True:
                _reconcile(index)
                row = index.get_run(run_id)
                metrics = index.last_metrics(run_id)
                shown = "  ".join(f"{k} {metrics[k]:.4g}" for k in ("train/loss", "val/loss") if k in metrics)
                epoch = f" epoch {row['epoch']}" if row.get("epoch") else ""
                bar.update(handle, total=row.get("total_steps"), completed=row.get("step") or 0,
                           label=f"{row['task']} {row['status']}{epoch}", metrics=shown)
                if row["status"] not in ("queued", "running"):
                    break
                _time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(f"detached; the run goes on (workbench logs --follow {run_id})")
        sys.exit(130)
    return row


@cli.command("ls")
@click.option("--status", type=click.Choice(list(STATUS_COLOURS)), help="Only runs with this status.")
@click.option("--task", help="Only runs of this task.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many runs (0: all).")
@json_option
@pass_state
def ls_cmd(state: _State, status: str | None, task: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    from workbench.runs.records import duration

    with _index(state.project) as index:
        _reconcile(index)
        rows = index.list_runs(status=status, task=task, limit=limit or None)
        if as_json:
            _print_json([_record(index, r) for r in rows])
            return
        if not rows:
            click.echo("no runs yet; start one with: workbench run TASK")
            return
        header = f"{'ID':<13} {'NAME':<16} {'TASK':<22} {'STATUS':<12} {'PROGRESS':<16} {'DEVICE':<12} {'STARTED':<19} DURATION"
        click.echo(click.style(header, bold=True))
        for r in rows:
            status_text = _status(r["status"]) + " " * max(0, 12 - len(r["status"]))
            device = f"{r.get('device')}/{r.get('backend')}" + (f"x{r['nproc']}" if (r.get("nproc") or 1) > 1 else "")
            click.echo(f"{r['id']:<13} {(r.get('name') or '-')[:16]:<16} {r['task'][:22]:<22} {status_text} "
                       f"{_progress(r):<16} {device[:12]:<12} {_when(r.get('started_at')):<19} "
                       f"{_seconds(duration(r))}")


@cli.command("show")
@click.argument("run")
@json_option
@pass_state
def show_cmd(state: _State, run: str, as_json: bool) -> None:
    """Show one run: status, config, git, metrics, events (RUN: id, id prefix or name)."""
    from workbench.runs.records import duration, flatten_config, iso

    with _index(state.project) as index:
        row = _resolve(index, run)
        if as_json:
            record = _record(index, row, artifacts=True)
            record["events"] = [{"time": iso(e["time"]), "kind": e["kind"], "message": e.get("message") or "",
                                 "data": e.get("data")} for e in index.events(row["id"])]
            record["traceback"] = row.get("traceback")
            _print_json(record)
            return
        name = f"  ({row['name']})" if row.get("name") else ""
        click.echo(f"run {click.style(row['id'], bold=True)}{name}  {_status(row['status'])}")
        lines = [
            ("task", row["task"]),
            ("where", f"{row.get('device')} / {row.get('backend')} x{row.get('nproc') or 1}, precision {row.get('precision')}"),
            ("times", f"created {_when(row.get('created_at'))}, started {_when(row.get('started_at'))}, "
                      f"ended {_when(row.get('ended_at'))} ({_seconds(duration(row))})"),
            ("attempt", str(row.get("attempt"))),
            ("progress", f"{_progress(row)}, epoch {row.get('epoch') or '-'}"),
        ]
        if row.get("snapshot_commit"):
            head = (row.get("git_head") or "none")[:10]
            branch = row.get("git_branch") or "detached HEAD"
            dirty = click.style(" (uncommitted changes)", fg="yellow") if row.get("git_dirty") else ""
            lines.append(("git", f"HEAD {head} on {branch}{dirty}; snapshot {row['snapshot_commit'][:10]}"))
        replay = _last_event(index, row["id"], "replay")
        if replay:
            lines.append(("replay", replay["message"]))
        artifacts = index.artifacts(row["id"])
        lines.append(("folder", f"{row.get('run_dir')} ({len(artifacts)} artifact(s))"))
        if row.get("tags"):
            lines.append(("tags", ", ".join(row["tags"])))
        if row.get("parent_id"):
            lines.append(("parent", row["parent_id"]))
        lines.append(("config", " ".join(f"{k}={v}" for k, v in flatten_config(row.get("config") or {}).items())))
        for label, value in lines:
            click.echo(f"  {label:<9} {value}")
        metrics = index.last_metrics(row["id"])
        if metrics:
            click.echo("  metrics")
            for key, value in sorted(metrics.items()):
                click.echo(f"    {key:<28} {value:.6g}")
        if row.get("error"):
            click.echo(click.style(f"  error    {row['error']}", fg="red"))
        events = index.events(row["id"])
        if events:
            click.echo("  events")
            for event in events[-12:]:
                click.echo(f"    {_when(event['time'])}  {event['kind']:<16} {event.get('message') or ''}")


@cli.command("metrics")
@click.argument("run")
@click.option("--key", "keys", multiple=True, help="Only this metric (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: key,step,value,time rows; json: {key: [{step, value, time}, ...]}.")
@pass_state
def metrics_cmd(state: _State, run: str, keys: tuple[str, ...], fmt: str) -> None:
    """Print a run's metric points (every step of every key)."""
    import csv

    with _index(state.project) as index:
        row = _resolve(index, run)
        known = index.metric_keys(row["id"])
        for key in keys:
            if key not in known:
                from workbench.errors import WorkbenchError

                raise WorkbenchError(f"run {row['id']} has no metric {key!r}; it has: {', '.join(known) or 'none'}")
        chosen = list(keys) or known
        if fmt == "json":
            _print_json({k: [{"step": s, "value": v, "time": t} for s, v, t in index.points(row["id"], k)]
                         for k in chosen})
            return
        writer = csv.writer(sys.stdout)
        writer.writerow(["key", "step", "value", "time"])
        for key in chosen:
            for step, value, wall in index.points(row["id"], key):
                writer.writerow([key, step, repr(value), f"{wall:.3f}"])


@cli.command("logs")
@click.argument("run")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the run ends.")
@pass_state
def logs_cmd(state: _State, run: str, follow: bool) -> None:
    """Print a run's output (stdout and stderr of every attempt)."""
    import time as _time

    with _index(state.project) as index:
        row = _resolve(index, run)
        path = Path(row["run_dir"]) / "output.log"
        position = 0
        try:
            while True:
                if path.is_file():
                    with path.open("rb") as fh:
                        fh.seek(position)
                        chunk = fh.read()
                        position += len(chunk)
                    if chunk:
                        sys.stdout.write(chunk.decode("utf-8", "replace"))
                        sys.stdout.flush()
                if not follow:
                    break
                _reconcile(index)
                current = index.get_run(row["id"])
                if current is None or current["status"] not in ("queued", "running"):
                    follow = False  # one more read picks up the last lines
                    continue
                _time.sleep(0.3)
        except KeyboardInterrupt:
            pass


@cli.command("stop")
@click.argument("run")
@pass_state
def stop_cmd(state: _State, run: str) -> None:
    """Stop a run gracefully: it finishes its batch, saves, and ends as 'stopped'."""
    from workbench.runs import stop_run

    with _index(state.project) as index:
        row = _resolve(index, run)
        if stop_run(index, row):
            click.echo(f"stop requested for run {row['id']}; it ends after the current batch")
        else:
            row = index.get_run(row["id"])
            click.echo(f"run {row['id']}'s processes were already gone; it is now {row['status']}")


@cli.command("rm")
@click.argument("run")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def rm_cmd(state: _State, run: str, yes: bool) -> None:
    """Delete a run: its index rows, its folder and its code snapshot ref."""
    from workbench.runs import remove_run

    project = state.project
    with _index(project) as index:
        row = _resolve(index, run)
        if not yes:
            if not sys.stdin.isatty():
                from workbench.errors import WorkbenchError

                raise WorkbenchError(f"not deleting run {row['id']} without confirmation: pass --yes")
            click.confirm(f"delete run {row['id']} ({row['task']}, {row['status']}) and its files?", abort=True)
        remove_run(project, index, row)
        click.echo(f"deleted run {row['id']}")


@cli.command("artifacts")
@click.argument("run")
@json_option
@pass_state
def artifacts_cmd(state: _State, run: str, as_json: bool) -> None:
    """List the files a run wrote (artifacts and checkpoints)."""
    from workbench.runs.artifacts import record_artifacts

    with _index(state.project) as index:
        row = _resolve(index, run)
        record_artifacts(index, row["id"], Path(row["run_dir"]))
        rows = index.artifacts(row["id"])
        if as_json:
            _print_json(rows)
            return
        if not rows:
            click.echo(f"run {row['id']} has no artifacts")
            return
        for a in rows:
            click.echo(f"{a['kind']:<11} {a['size']:>10,}  {a['path']}")
        click.echo(f"in {Path(row['run_dir']) / 'artifacts'}")


# -- resume and fork -----------------------------------------------------------------------


def _after_start(index: Any, row: dict[str, Any], follow: bool, wait: bool, as_json: bool, verb: str) -> None:
    if not as_json:
        click.echo(f"{verb} run {row['id']} ({row.get('name') or '-'}), attempt {row.get('attempt')}", err=follow)
    if follow:
        row = _follow(index, row["id"])
    elif wait:
        row = _wait(index, row["id"])
    if as_json:
        _print_json(_record(index, row))
    elif follow or wait:
        _print_outcome(index, row)
        replay = _last_event(index, row["id"], "replay")
        if replay:
            click.echo(f"  {replay['message']}")
    if (follow or wait) and row["status"] != "completed":
        sys.exit(1)


def _last_event(index: Any, run_id: str, kind: str) -> dict[str, Any] | None:
    for event in reversed(index.events(run_id)):
        if event["kind"] == kind:
            return event
    return None


@cli.command("resume")
@click.argument("run")
@click.option("--device", help="Resume on another device (default: the run's own).")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@json_option
@pass_state
def resume_cmd(state: _State, run: str, device: str | None, follow: bool, wait: bool, as_json: bool) -> None:
    """Resume a stopped, interrupted or failed run from its latest good checkpoint."""
    from workbench.runs import resume_run

    project = state.project
    with _index(project) as index:
        row = resume_run(project, index, _resolve(index, run), device=device)
        _after_start(index, row, follow, wait, as_json, "resumed")


@cli.command("fork")
@click.argument("run")
@click.option("--from-checkpoint", "checkpoint",
              help="Which checkpoint: step-000000120, a step number, or best (default: the newest).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Change a config field.")
@click.option("--name", help="A unique name for the new run.")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@json_option
@pass_state
def fork_cmd(state: _State, run: str, checkpoint: str | None, overrides: tuple[str, ...], name: str | None,
             follow: bool, wait: bool, as_json: bool) -> None:
    """Start a new run from RUN's checkpoint with changed config (e.g. -s lr=1e-4)."""
    from workbench.runs import fork_run

    project = state.project
    with _index(project) as index:
        row = fork_run(project, index, _resolve(index, run), overrides=overrides, checkpoint=checkpoint, name=name)
        _after_start(index, row, follow, wait, as_json, "forked")


# -- code snapshots ------------------------------------------------------------------------


@cli.command("diff")
@click.argument("run")
@click.argument("other", required=False)
@click.option("--stat", is_flag=True, help="Only a summary of changed files.")
@pass_state
def diff_cmd(state: _State, run: str, other: str | None, stat: bool) -> None:
    """The code diff between RUN's snapshot and the working tree, or OTHER's snapshot."""
    from workbench.snapshot import diff

    project = state.project
    with _index(project) as index:
        a = _snapshot_of(_resolve(index, run))
        b = _snapshot_of(_resolve(index, other)) if other else None
    colour = sys.stdout.isatty()
    text = diff(project.root, a, b, state_dir=project.state_dir, stat=stat, color=colour,
                max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    if not text.strip():
        click.echo("no differences")
    elif colour:
        click.echo_via_pager(text, color=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _snapshot_of(row: dict[str, Any]) -> str:
    from workbench.errors import WorkbenchError

    if not row.get("snapshot_commit"):
        raise WorkbenchError(f"run {row['id']} has no code snapshot")
    return row["snapshot_commit"]


@cli.command("checkout")
@click.argument("run")
@click.argument("dest", type=click.Path(path_type=Path))
@pass_state
def checkout_cmd(state: _State, run: str, dest: Path) -> None:
    """Write RUN's code (its snapshot) to the folder DEST."""
    from workbench.snapshot import SnapshotRepo

    project = state.project
    with _index(project) as index:
        commit = _snapshot_of(_resolve(index, run))
    repo = SnapshotRepo.open(project.root, project.state_dir)
    repo.checkout(commit, dest)
    click.echo(f"wrote the code of run {run} ({commit[:10]}) to {dest}")


@cli.command("snapshot")
@json_option
@pass_state
def snapshot_cmd(state: _State, as_json: bool) -> None:
    """Snapshot the working tree now and print the commit a run launched now would record."""
    from workbench.snapshot import take_snapshot

    project = state.project
    snap = take_snapshot(project.root, None, state_dir=project.state_dir,
                         max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    if as_json:
        _print_json(snap.to_dict())
        return
    dirty = " (with uncommitted changes)" if snap.dirty else ""
    click.echo(f"snapshot {snap.commit} of HEAD {(snap.head or 'none')[:10]} on {snap.branch or 'detached HEAD'}{dirty}")
    for path, why in snap.excluded:
        click.echo(f"  left out: {path} ({why})")


@cli.command("gc")
@pass_state
def gc_cmd(state: _State) -> None:
    """Remove snapshot refs and run folders whose runs were deleted from the index."""
    import shutil

    from workbench.snapshot import gc

    project = state.project
    with _index(project) as index:
        keep = index.run_ids()
    removed = gc(project.root, keep, state_dir=project.state_dir)
    folders = []
    if project.runs_dir.is_dir():
        for path in project.runs_dir.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path)
                folders.append(path.name)
    click.echo(f"removed {len(removed)} snapshot ref(s) and {len(folders)} run folder(s) of deleted runs; "
               "git's own gc prunes the commits they held")


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    cli.main(args=argv, prog_name="workbench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
