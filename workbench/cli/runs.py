"""Commands on runs: ``run``, ``ls``, ``show``, ``metrics``, ``logs``, ``stop``, ``rm``,
``artifacts``, ``resume`` and ``fork``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.cli._base import (
    STATUS_COLOURS,
    State,
    console,
    exit_unless_completed,
    json_option,
    last_event,
    open_index,
    pass_state,
    print_json,
    resolve,
    status_text,
    sweep_named,
)
from workbench.cli._follow import follow_run, print_outcome, tail_log, wait_run
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.store import Run, RunIndex

__all__ = ["COMMANDS"]

#: The event a checkpoint writes when the task keeps state that no checkpoint covers.
INCOMPLETE_CHECKPOINT = "checkpoint-incomplete"


def _record(index: RunIndex, run: Run, artifacts: bool = False) -> dict[str, Any]:
    from workbench.runs.present import run_record

    count = len(index.artifacts(run.id)) if artifacts else None
    return run_record(run, index.last_metrics(run.id), count)


def _finish_start(index: RunIndex, run: Run, follow: bool, wait: bool, as_json: bool) -> Run:
    if follow:
        run = follow_run(index, run.id)
    elif wait:
        run = wait_run(index, run.id)
    if as_json:
        print_json(_record(index, run))
    elif follow or wait:
        print_outcome(index, run)
    return run


@click.command("run")
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
@click.option("--deterministic/--no-deterministic", default=None,
              help="Runs that repeat bit for bit (default from workbench.toml, else on for CPU runs).")
@click.option("--steps", metavar="STEP,...",
              help="The pipeline's steps in order: fit,test,evaluate (default: the task's steps, else fit).")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@click.option("--sink", type=click.Choice(["index", "journal"]), hidden=True,
              help="Where the trainer records: the index, or the run's journal (docs/clusters.md).")
@click.option("--queue", "queued", is_flag=True,
              help="Wait in the run queue for a free slot ([queue] max_running, one run per GPU).")
@click.option("--on", "on", metavar="CLUSTER",
              help="Submit to a [clusters.NAME] of workbench.toml (Slurm) instead of this machine.")
@click.option("--nodes", type=int, help="Nodes to ask the cluster for (with --on; default 1).")
@click.option("--gpus-per-node", type=int,
              help="GPUs per node to ask for (with --on; default: the cluster's gpus_per_node for cuda).")
@click.option("--nnodes", type=int, help="Machines of a --backend ddp run without Slurm (launch it on each).")
@click.option("--node-rank", type=int, help="This machine's place with --nnodes: 0 records the run, 1..N-1 join.")
@click.option("--rdzv", metavar="HOST:PORT", help="With --nnodes: node 0's address and a free port, on every node.")
@json_option
@pass_state
def run_cmd(state: State, task: str, overrides: tuple[str, ...], profile: str | None,
            device: str | None, backend: str | None, nproc: int | None, precision: str | None,
            name: str | None, tags: tuple[str, ...], deterministic: bool | None, steps: str | None,
            follow: bool, wait: bool, sink: str | None, queued: bool, on: str | None, nodes: int | None,
            gpus_per_node: int | None, nnodes: int | None, node_rank: int | None, rdzv: str | None,
            as_json: bool) -> None:
    """Launch TASK as a background run (with --queue: once the run queue has a free slot;
    with --on CLUSTER: as a Slurm job; with --nnodes N: one node of a DDP run across N
    machines, where --node-rank 0 records the run and the others train in the foreground)."""
    from workbench.runs import LaunchRequest, launch

    if sink:  # read by RunSpec's default, inherited by the supervisor and the trainer
        os.environ["WORKBENCH_SINK"] = sink
    if on and queued:
        raise WorkbenchError("--queue is for this machine; a run --on a cluster waits in Slurm's queue")
    project = state.project
    from workbench.runs.cluster_nodes import check_nodes

    rendezvous = check_nodes(nnodes, node_rank, rdzv, backend=backend or project.defaults.backend, on=on,
                             queued=queued)
    request = LaunchRequest(task, overrides, profile, device, backend, nproc, precision, name, tags,
                            deterministic, [part for part in (steps or "").split(",") if part.strip()],
                            on, nodes, gpus_per_node)
    if rendezvous is not None and rendezvous.node_rank > 0:  # records nothing; trains until the run ends
        from workbench.runs.cluster_nodes import run_worker_node

        sys.exit(run_worker_node(project, request, rendezvous))
    with open_index(project) as index:
        if queued:
            from workbench.runs.queue import enqueue

            run = enqueue(project, request, index=index)
        elif rendezvous is not None:
            from workbench.runs.cluster_nodes import write_rendezvous
            from workbench.runs.launch import start_supervisor

            run = launch(project, request, index=index, start=False)
            write_rendezvous(Path(run.run_dir or ""), rendezvous)
            others = " ".join(f"--node-rank {k}" for k in range(1, rendezvous.nnodes))
            index.add_event(run.id, "nodes", f"node 0 of {rendezvous.nnodes}, rendezvous at {rendezvous.endpoint}; "
                            f"the others join with the same command and {others}",
                            {"nnodes": rendezvous.nnodes, "endpoint": rendezvous.endpoint})
            start_supervisor(project, index, run)
            if not as_json:
                click.echo(f"  node 0 of {rendezvous.nnodes}: on each other machine run the same command with "
                           f"--node-rank 1..{rendezvous.nnodes - 1}", err=True)
        else:
            run = launch(project, request, index=index)
        label = run.id + (f" ({run.name})" if run.name else "")
        if not as_json:
            what = f"queued run {label}" if queued else f"launched run {label}"
            click.echo(f"{what}: {run.task} on {run.device}/{run.backend}"
                       + (f" ({run.status_reason})" if queued and run.status_reason else ""), err=follow)
            for event in index.events(run.id):
                if event.kind == "warning":
                    click.echo(f"  warning: {event.message}", err=True)
            excluded = last_event(index, run.id, "snapshot-excluded")
            if excluded:
                files = (excluded.data or {}).get("files") or []
                shown = ", ".join(files[:3]) + (f", … ({len(files) - 3} more)" if len(files) > 3 else "")
                click.echo(f"  {excluded.message}: {shown}", err=True)
        run = _finish_start(index, run, follow, wait, as_json)
        if not (as_json or follow or wait):
            click.echo(f"  watch it: workbench logs --follow {run.id}  ·  workbench show {run.id}")
    if follow or wait:
        exit_unless_completed(run)



def _slurm_line(run: Run) -> str:
    """For a cluster run: its cluster and every attempt's Slurm job (the newest's state while live)."""
    from workbench.runs.cluster_launch import is_cluster_run, jobs_of, read_placement

    if not is_cluster_run(run.run_dir):
        return ""
    try:
        placement, jobs = read_placement(Path(run.run_dir or "")), jobs_of(Path(run.run_dir or ""))
    except WorkbenchError as exc:
        return str(exc)
    listed = ", ".join(f"{j['job_id']} (attempt {j['attempt']})" for j in jobs) or "none submitted"
    return f"cluster {placement.name}, {placement.nodes} node(s), {placement.gpus_per_node} GPU(s) per node; " \
           f"job(s) {listed}"


def _slurm_record(run: Run) -> dict[str, Any] | None:
    """For ``show --json``: a cluster run's cluster, nodes, GPUs per node, jobs and Slurm state
    (the row's ``status_reason`` while live); None for a local run."""
    from workbench.runs.cluster_launch import is_cluster_run, jobs_of, read_placement

    if not is_cluster_run(run.run_dir):
        return None
    try:
        placement, jobs = read_placement(Path(run.run_dir or "")), jobs_of(Path(run.run_dir or ""))
    except WorkbenchError:
        return None
    return {"cluster": placement.name, "nodes": placement.nodes, "gpus_per_node": placement.gpus_per_node,
            "jobs": jobs, "state": run.status_reason if run.status.is_live else None}


@click.command("ls")
@click.option("--status", type=click.Choice(list(STATUS_COLOURS)), help="Only runs with this status.")
@click.option("--task", help="Only runs of this task.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many runs (0: all).")
@click.option("--sweep", "sweep_ref", metavar="SWEEP", help="Only the runs of this sweep (id, id prefix or name).")
@json_option
@pass_state
def ls_cmd(state: State, status: str | None, task: str | None, limit: int, sweep_ref: str | None,
           as_json: bool) -> None:
    """List runs, newest first."""
    from rich.table import Table

    from workbench.runs import reconcile
    from workbench.runs.present import chosen_device, duration, progress_text, when

    with open_index(state.project) as index:
        reconcile(index)
        if sweep_ref:  # newest first, like every list
            runs = [r for r in reversed(index.runs_of_sweep(index.resolve_sweep(sweep_ref).id))
                    if (status is None or r.status.value == status) and (task is None or r.task == task)]
            runs = runs[:limit or None]
        else:
            runs = index.list_runs(status=status, task=task, limit=limit or None)
        if as_json:
            print_json([_record(index, r) for r in runs])
            return
        if not runs:
            if status or task or sweep_ref:
                what = " and ".join(x for x in (f"status {status}" if status else "",
                                                 f"task {task}" if task else "",
                                                 f"sweep {sweep_ref}" if sweep_ref else "") if x)
                total = index.count_runs()
                click.echo(f"no runs with {what} ({total} run(s) in all; `workbench ls` lists them)")
            else:
                from workbench.runs.housekeeping import empty_index_message  # points at `index rebuild`
                click.echo(empty_index_message(state.project))
            return
        diverging = index.runs_with_event(INCOMPLETE_CHECKPOINT, [r.id for r in runs])
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("ID", "NAME", "TASK", "STATUS", "PROGRESS", "DEVICE", "STARTED", "DURATION"):
            table.add_column(column, no_wrap=True)
        for r in runs:
            device = f"{chosen_device(r)}/{r.backend}" + (f"x{r.nproc}" if (r.nproc or 1) > 1 else "")
            colour = STATUS_COLOURS.get(r.status.value, "")
            stopping = " (stopping)" if r.stop_requested else ""
            stopping += " [yellow]⚠ resume may diverge[/]" if r.id in diverging else ""
            table.add_row(r.id, r.name or "—", r.task or "—", f"[{colour}]{r.status}[/]{stopping}",
                          progress_text(r), device, when(r.started_at), duration(r))
        console().print(table)


def _device_words(run: Run) -> str:
    """``auto → cpu`` once an ``auto`` run's training chose its device; else as launched."""
    from workbench.runs.present import chosen_device

    chosen = chosen_device(run)
    return f"auto → {chosen}" if run.device == "auto" and chosen != "auto" else (run.device or "—")


@click.command("show")
@click.argument("run")
@json_option
@pass_state
def show_cmd(state: State, run: str, as_json: bool) -> None:
    """Show one run: status, config, git, metrics, events (RUN: id, id prefix or name; a
    sweep's id or name shows the sweep)."""
    with open_index(state.project) as index:
        if sweep_named(index, run) is not None:
            from workbench.cli.sweep import show_cmd as show_sweep

            click.get_current_context().invoke(show_sweep, sweep=run, as_json=as_json)
            return
    from workbench.runs.evaluate import evaluation_records
    from workbench.runs.present import duration, flatten_config, iso, progress_text, step_record, steps_text, when

    with open_index(state.project) as index:
        r = resolve(index, run)
        evaluations = evaluation_records(index, r)
        if as_json:
            record = _record(index, r, artifacts=True)
            record["events"] = [{"time": iso(e.time), "kind": e.kind, "message": e.message, "data": e.data}
                                for e in index.events(r.id)]
            record["traceback"] = r.traceback
            record["evaluations"] = evaluations
            record["steps"] = [step_record(step) for step in index.run_steps(r.id)]
            record["slurm"] = _slurm_record(r)
            print_json(record)
            return
        name = f"  ({r.name})" if r.name else ""
        click.echo(f"run {click.style(r.id, bold=True)}{name}  {status_text(r.status)}"
                   + (f"  ({r.status_reason})" if r.status_reason and r.status.is_live else ""))
        kind = "" if r.kind in ("task", "evaluation") else f"  ({r.kind}: {' '.join(r.command[1:])})"
        lines = [
            ("task", (r.task or "—") + kind),
            ("where", f"{_device_words(r)} / {r.backend} x{r.nproc or 1}, precision {r.precision}"),
            ("times", f"created {when(r.created_at)}, started {when(r.started_at)}, "
                      f"ended {when(r.ended_at)} ({duration(r)})"),
            ("attempt", str(r.attempt)),
            ("progress", f"{progress_text(r)}, epoch {r.epoch or '—'}"),
        ]
        slurm = _slurm_line(r)
        if slurm:
            lines.append(("slurm", slurm))
        steps = index.run_steps(r.id)
        if len(steps) > 1 or any(step.name != "fit" for step in steps):
            lines.append(("steps", steps_text(steps)))
        if r.stop_requested:
            lines.append(("stop", f"{r.stop_mode} stop requested at {when(r.stop_requested_at)} "
                                  f"({r.stop_reason or 'user'})"))
        if r.snapshot_commit:
            head = (r.git_head or "none")[:10]
            branch = r.git_branch or "detached HEAD"
            dirty = click.style(" (uncommitted changes)", fg="yellow") if r.git_dirty else ""
            lines.append(("git", f"HEAD {head} on {branch}{dirty}"))
            lines.append(("snapshot", _snapshot_line(index, r)))
        data = last_event(index, r.id, "data")
        if data:
            lines.append(("data", data.message))
        replay = last_event(index, r.id, "replay")
        if replay:
            lines.append(("replay", replay.message))
        incomplete = last_event(index, r.id, INCOMPLETE_CHECKPOINT)
        if incomplete:
            lines.append(("warning", click.style(incomplete.message, fg="yellow")))
        artifacts = index.artifacts(r.id)
        lines.append(("folder", f"{r.run_dir} ({len(artifacts)} artifact(s))"))
        if r.tags:
            lines.append(("tags", ", ".join(r.tags)))
        if r.is_evaluation:
            lines.append(("evaluates", _evaluates_line(index, r)))
        elif r.parent_id:
            lines.append(("parent", r.parent_id))
        lines.append(("config", " ".join(f"{k}={v}" for k, v in flatten_config(r.config).items())))
        for label, value in lines:
            click.echo(f"  {label:<9} {value}")
        metrics = index.last_metrics(r.id)
        if metrics:
            click.echo("  metrics")
            for key, value in sorted(metrics.items()):
                click.echo(f"    {key:<28} {value:.6g}")
        if evaluations:
            click.echo("  evaluations")
            for line in _evaluation_lines(evaluations):
                click.echo(f"    {line}")
        if r.error:
            click.echo(click.style(f"  error    {r.error}", fg="red"))
        events = index.events(r.id)
        if events:
            click.echo("  events")
            for event in events[-12:]:
                click.echo(f"    {when(event.time)}  {event.kind:<16} {event.message}")


def _evaluates_line(index: RunIndex, evaluation: Run) -> str:
    """What an evaluation tests: ``test of run 2mzej5 (brisk-otter-41) at step 120, with threshold=0.7``."""
    from workbench.runs.evaluate import checkpoint_label, evaluation_verb

    parent = index.get_run(evaluation.parent_id or "")
    who = f"run {evaluation.parent_id}" + (f" ({parent.name})" if parent is not None and parent.name else "")
    changed = ", ".join(f"{k}={v}" for k, v in evaluation.overrides.items())
    return (f"{evaluation_verb(index, evaluation)} of {who} at {checkpoint_label(evaluation, parent)} "
            f"({evaluation.parent_checkpoint})" + (f", with {changed}" if changed else ", with the run's config"))


def _evaluation_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per evaluation: id, what, checkpoint, overrides, status, metrics."""
    rows = []
    for e in records:
        changed = " ".join(f"{k}={v}" for k, v in e["overrides"].items()) or "—"
        shown = "  ".join(f"{k} {v:.4g}" for k, v in sorted(e["metrics"].items())
                          if k.startswith(("test/", "val/")) or "/" not in k)
        rows.append((e["id"], e["verb"], e["checkpoint"], changed, status_text(e["status"]), shown))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    return ["  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + f"  {row[4]}" + (f"  {row[5]}" if row[5] else "")
            for row in rows]


def _snapshot_line(index: RunIndex, run: Run) -> str:
    """What the code snapshot holds, and what it left out and why (``snapshot-excluded``)."""
    held = f"{run.snapshot_commit[:10]}: tracked files and untracked ones git does not ignore"
    event = last_event(index, run.id, "snapshot-excluded")
    files = list((event.data or {}).get("files") or []) if event else []
    if not files:
        return held + "; nothing left out"
    shown = ", ".join(files[:3]) + (f", … {len(files) - 3} more (show --json lists them)" if len(files) > 3 else "")
    return f"{held}; left out: {shown}"


@click.command("metrics")
@click.argument("run")
@click.option("--key", "keys", multiple=True, help="Only this metric (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: key,step,value,time rows; json: {key: [{step, value, time}, ...]}.")
@pass_state
def metrics_cmd(state: State, run: str, keys: tuple[str, ...], fmt: str) -> None:
    """Print a run's metric points (every step of every key)."""
    import csv

    with open_index(state.project) as index:
        r = resolve(index, run)
        known = index.metric_keys(r.id)
        for key in keys:
            if key not in known:
                raise WorkbenchError(f"run {r.id} has no metric {key!r}; it has: {', '.join(known) or 'none'}")
        chosen = list(keys) or known
        if fmt == "json":
            print_json({k: [{"step": s, "value": v, "time": t} for s, v, t in index.points(r.id, k)]
                        for k in chosen})
            return
        writer = csv.writer(sys.stdout)
        writer.writerow(["key", "step", "value", "time"])
        for key in chosen:
            for step, value, wall in index.points(r.id, key):
                writer.writerow([key, step, repr(value), f"{wall:.3f}"])


@click.command("logs")
@click.argument("run")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the run ends.")
@pass_state
def logs_cmd(state: State, run: str, follow: bool) -> None:
    """Print a run's output (stdout and stderr of every attempt)."""
    with open_index(state.project) as index:
        tail_log(index, resolve(index, run), follow)


@click.command("stop")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--kill", is_flag=True,
              help="End it now, without a checkpoint (a graceful stop already asked is not waited for).")
@pass_state
def stop_cmd(state: State, runs: tuple[str, ...], kill: bool) -> None:
    """Stop runs gracefully: each finishes its batch, saves, and ends as 'stopped' (a sweep:
    its queued and running trials)."""
    from workbench.runs import stop_run

    with open_index(state.project) as index:
        if len(runs) == 1 and sweep_named(index, runs[0]) is not None:
            if kill:
                raise WorkbenchError("--kill stops one run; a sweep's trials are stopped gracefully "
                                     "(workbench stop SWEEP)")
            from workbench.cli.sweep import stop_cmd as stop_sweep

            click.get_current_context().invoke(stop_sweep, sweep=runs[0], as_json=False)
            return
        # Every name is found before anything is stopped: a typo stops nothing.
        found: dict[str, Run] = {}
        for ref in runs:
            if len(runs) > 1 and sweep_named(index, ref) is not None:
                raise WorkbenchError(f"{ref!r} is a sweep: stop it on its own (workbench stop {ref})")
            run = resolve(index, ref)
            found.setdefault(run.id, run)
        targets = list(found.values())
        if len(targets) == 1:
            click.echo(stop_run(index, targets[0], kill=kill).message)
            return
        refused = 0
        for run in targets:  # one refused (it had ended) does not keep the others running
            try:
                click.echo(stop_run(index, run, kill=kill).message)
            except WorkbenchError as exc:
                refused += 1
                click.echo(f"error: {exc}", err=True)
        if refused:
            raise click.exceptions.Exit(2)


@click.command("rm")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def rm_cmd(state: State, runs: tuple[str, ...], yes: bool) -> None:
    """Delete runs: their index rows, their folders and their code snapshot refs."""
    from workbench.runs import remove_run
    from workbench.runs.cluster_launch import is_cluster_run

    project = state.project
    with open_index(project) as index:
        found: dict[str, Run] = {}
        for ref in runs:  # every name is found before anything is deleted: a typo deletes nothing
            r = resolve(index, ref)
            found.setdefault(r.id, r)
        targets = list(found.values())
        for r in targets:
            if is_cluster_run(r.run_dir):  # its job writes into the folder, whether a watcher lives or not
                from workbench.runs.cluster_resume import refuse_if_job_live

                refuse_if_job_live(r, "delete")
        if not yes:
            one = len(targets) == 1
            short = f"run {targets[0].id}" if one else f"{len(targets)} runs"
            if not sys.stdin.isatty():
                raise WorkbenchError(f"not deleting {short} without confirmation: pass --yes")
            detail = (f"{targets[0].task}, {targets[0].status}" if one
                      else ", ".join(r.name or r.id for r in targets))
            click.confirm(f"delete {short} ({detail}) and {'its' if one else 'their'} files?", abort=True)
        if len(targets) == 1:
            remove_run(project, index, targets[0])
            click.echo(f"deleted run {targets[0].id}")
            return
        refused = 0
        for r in targets:  # one refused (still live) does not keep the others
            try:
                remove_run(project, index, r)
            except WorkbenchError as exc:
                refused += 1
                click.echo(f"error: {exc}", err=True)
                continue
            click.echo(f"deleted run {r.id}")
        if refused:
            raise click.exceptions.Exit(2)


@click.command("artifacts")
@click.argument("run")
@json_option
@pass_state
def artifacts_cmd(state: State, run: str, as_json: bool) -> None:
    """List the files a run wrote (artifacts and checkpoints)."""
    from workbench.runs.artifacts import record_artifacts

    with open_index(state.project) as index:
        r = resolve(index, run)
        run_dir = Path(r.run_dir or "")
        record_artifacts(index, r.id, run_dir)
        rows = index.artifacts(r.id)
        if as_json:
            print_json(rows)
            return
        if not rows:
            click.echo(f"run {r.id} has no artifacts")
            return
        for a in rows:
            click.echo(f"{a['kind']:<11} {a['size']:>10,}  {a['path']}")
        click.echo(f"in {run_dir / 'artifacts'}")


def _after_start(index: RunIndex, run: Run, follow: bool, wait: bool, as_json: bool, verb: str) -> None:
    if not as_json:
        click.echo(f"{verb} run {run.id} ({run.name or '—'}), attempt {run.attempt}", err=follow)
    run = _finish_start(index, run, follow, wait, as_json)
    if (follow or wait) and not as_json:
        replay = last_event(index, run.id, "replay")
        if replay:
            click.echo(f"  {replay.message}")
    if follow or wait:
        exit_unless_completed(run)


@click.command("resume")
@click.argument("run")
@click.option("--device", help="Resume on another device (default: the run's own).")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@json_option
@pass_state
def resume_cmd(state: State, run: str, device: str | None, follow: bool, wait: bool, as_json: bool) -> None:
    """Resume a stopped, interrupted or failed run from its latest good checkpoint (a sweep:
    its unfinished trials)."""
    from workbench.runs import resume_run

    project = state.project
    with open_index(project) as index:
        if sweep_named(index, run) is not None:
            from workbench.cli.sweep import resume_cmd as resume_sweep

            click.get_current_context().invoke(resume_sweep, sweep=run, as_json=as_json)
            return
        r = resume_run(project, index, resolve(index, run), device=device,
                       waiting=lambda text: click.echo(text, err=True))
        event = last_event(index, r.id, "restarted") if r.kind == "script" else None
        restarted = event is not None and (event.data or {}).get("attempt") == r.attempt
        _after_start(index, r, follow, wait, as_json, "restarted (scripts start over)" if restarted else "resumed")


@click.command("fork")
@click.argument("run")
@click.option("--from-checkpoint", "checkpoint",
              help="Which checkpoint: step-000000120, a step number, or best (default: the newest).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Change a config field.")
@click.option("--name", help="A unique name for the new run.")
@click.option("--code", type=click.Choice(["snapshot", "worktree"]), default="snapshot", show_default=True,
              help="snapshot: the parent's code snapshot (the same code); worktree: the working tree now.")
@click.option("--device", help="Train on another device (default: the parent's).")
@click.option("--precision", help="Train with another precision (default: the parent's).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable; default: the parent's tags).")
@click.option("--follow", is_flag=True, help="Show progress until the run ends (Ctrl-C detaches).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it completed.")
@json_option
@pass_state
def fork_cmd(state: State, run: str, checkpoint: str | None, overrides: tuple[str, ...], name: str | None,
             code: str, device: str | None, precision: str | None, tags: tuple[str, ...],
             follow: bool, wait: bool, as_json: bool) -> None:
    """Start a new run from RUN's checkpoint with changed config (e.g. -s lr=1e-4)."""
    from workbench.runs import fork_run

    project = state.project
    with open_index(project) as index:
        r = fork_run(project, index, resolve(index, run), overrides=overrides, checkpoint=checkpoint, name=name,
                     code=code, device=device, precision=precision, tags=list(tags) if tags else None)
        _after_start(index, r, follow, wait, as_json, "forked")


COMMANDS = [run_cmd, ls_cmd, show_cmd, metrics_cmd, logs_cmd, stop_cmd, rm_cmd, artifacts_cmd,
            resume_cmd, fork_cmd]
