"""``workbench sweep``: start a grid or random sweep; ``sweep ls``, ``show``, ``stop``, ``resume``.

``workbench sweep TASK -g …`` is short for ``workbench sweep start TASK -g …``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli._base import STATUS_COLOURS, State, console, json_option, open_index, pass_state, print_json

if TYPE_CHECKING:
    from workbench.store import RunIndex
    from workbench.store._sweeps import Sweep

__all__ = ["COMMANDS", "sweep_record", "sweep_trials"]


class _SweepGroup(click.Group):
    """A group whose first argument, when it names no subcommand, starts a sweep (``start``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=_SweepGroup)
def sweep_cmd() -> None:
    """Run a task over a grid, a random search or an Optuna study: one snapshot, many queued runs.

    \b
    workbench sweep SineRegression -g lr=1e-4,1e-3,1e-2 -g hidden=32,64 --parallel 2
    workbench sweep SineRegression --random 20 -g 'lr=loguniform(1e-5,1e-1)' --seed 0
    workbench sweep SineRegression --optuna 30 -g 'lr=loguniform(1e-5,1e-1)' --prune median
    workbench sweep SineRegression --optuna 30 -g 'lr=loguniform(1e-5,1e-1)' --prune hyperband
    workbench sweep --file sweeps/lr.toml
    workbench sweep SineRegression -g lr=1e-4,1e-3,1e-2 --parallel 2 --on mycluster
    """


@sweep_cmd.command("start")
@click.argument("task", required=False)
@click.option("-g", "--grid", "params", multiple=True, metavar="KEY=V1,V2|KEY=DIST(…)",
              help="A parameter that varies: TOML values split at top-level commas (layers=[64,64],[32]), "
                   "or uniform/loguniform/intuniform(LOW,HIGH), choice(V1,V2,…) for --random.")
@click.option("-s", "--set", "fixed", multiple=True, metavar="KEY=VALUE", help="A config field every trial shares.")
@click.option("--random", "random_n", type=int, metavar="N", help="A random search of N trials (default: a grid).")
@click.option("--optuna", "optuna_n", type=int, metavar="N",
              help="An Optuna study (TPE) of N trials, each a run (needs the sweeps extra: optuna).")
@click.option("--prune", type=click.Choice(["median", "hyperband"]),
              help="Prune poor --optuna trials early (Optuna's median or Hyperband pruner).")
@click.option("--seed", type=int, help="The random search's or the study's seed (default: drawn, and recorded).")
@click.option("--parallel", type=int, metavar="N", help="At most N trials at once (default: the queue's limits).")
@click.option("--metric", help="The metric trials are ranked by (e.g. val/loss).")
@click.option("--direction", type=click.Choice(["min", "max"]), help="Whether lower or higher is better.")
@click.option("--name", help="A unique name for the sweep; its runs are NAME-1, NAME-2, …")
@click.option("--file", "sweep_file", metavar="FILE", help="A sweep file (sweeps/NAME.toml); flags given win.")
@click.option("--device", help="The device of every trial (default from workbench.toml).")
@click.option("--profile", help="A config profile for every trial.")
@click.option("--tag", "tags", multiple=True, help="A tag on every trial (repeatable).")
@click.option("--on", "on", metavar="CLUSTER",
              help="Run on a [clusters.NAME] Slurm cluster: a grid or --random sweep is one job array "
                   "(--parallel is its %limit); an --optuna study submits trial by trial.")
@click.option("--yes", is_flag=True, help="Allow more runs than [sweep] max_runs (default 1,000).")
@json_option
@pass_state
def start_cmd(state: State, task: str | None, params: tuple[str, ...], fixed: tuple[str, ...],
              random_n: int | None, optuna_n: int | None, prune: str | None, seed: int | None, parallel: int | None, metric: str | None,
              direction: str | None, name: str | None, sweep_file: str | None, device: str | None,
              profile: str | None, tags: tuple[str, ...], on: str | None, yes: bool, as_json: bool) -> None:
    """Start a sweep of TASK: check every trial, then queue them all (nothing is written if one is bad)."""
    from workbench.runs.sweep import SweepRequest, load_sweep_file, merge_requests, plan_sweep, start_sweep

    project = state.project
    request = SweepRequest(task, params, fixed, random_n, optuna_n, seed, parallel, metric, direction, prune, name,
                           yes, device, profile, tags, on=on)
    if sweep_file:
        request = merge_requests(load_sweep_file(project, sweep_file), request)
    with open_index(project) as index:
        plan = plan_sweep(project, request, index=index)
        sweep, runs = start_sweep(project, plan, index=index)
        if as_json:
            print_json(sweep_record(index, index.get_sweep(sweep.id) or sweep))
            return
        count = sweep.spec.get("trials") if plan.kind == "optuna" else len(runs)
        what = f"{plan.kind}, {count} run(s)" + (f", seed {plan.seed}" if plan.seed is not None else "")
        limit = f", at most {sweep.parallel} at once" if sweep.parallel else ""
        array = index.get_sweep(sweep.id) or sweep
        where = "" if not plan.request.on else f", on cluster {plan.request.on} " + (
            "trial by trial" if plan.kind == "optuna" else f"as slurm job array {array.spec.get('array_job')}")
        click.echo(f"started sweep {sweep.id}" + (f" ({sweep.name})" if sweep.name else "") +
                   f": {sweep.task}, {what}{limit}{where}; snapshot {(sweep.snapshot_commit or '')[:10]}")
        click.echo(f"  watch it: workbench sweep show {sweep.name or sweep.id}")


def _resolve(index: RunIndex, ref: str) -> Sweep:
    from workbench.runs import reconcile

    reconcile(index)
    return index.resolve_sweep(ref)


@sweep_cmd.command("ls")
@json_option
@pass_state
def ls_cmd(state: State, as_json: bool) -> None:
    """List sweeps, newest first, with their trials' status counts."""
    from rich.table import Table

    from workbench.runs.present import when

    with open_index(state.project) as index:
        from workbench.runs import reconcile

        reconcile(index)
        sweeps = index.list_sweeps()
        if as_json:
            print_json([sweep_record(index, s, trials=False) for s in sweeps])
            return
        if not sweeps:
            click.echo("no sweeps yet (workbench sweep TASK -g KEY=V1,V2 starts one)")
            return
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("ID", "NAME", "TASK", "KIND", "TRIALS", "BEST", "CREATED"):
            table.add_column(column, no_wrap=True)
        for s in sweeps:
            record = sweep_record(index, s)
            best = record["best"]
            best_text = f"{record['metric']} {best['metric']:.4g} ({best['name'] or best['id']})" if best else "—"
            table.add_row(s.id, s.name or "—", s.task, s.kind, _counts_text(record["counts"]), best_text,
                          when(s.created_at))
        console().print(table)


@sweep_cmd.command("show")
@click.argument("sweep")
@json_option
@pass_state
def show_cmd(state: State, sweep: str, as_json: bool) -> None:
    """Show a sweep: its trials sorted by the metric, best first, with the varied parameters."""
    from rich.table import Table

    from workbench.runs.present import when

    with open_index(state.project) as index:
        s = _resolve(index, sweep)
        record = sweep_record(index, s)
        if as_json:
            print_json(record)
            return
        name = f"  ({s.name})" if s.name else ""
        click.echo(f"sweep {click.style(s.id, bold=True)}{name}  {record['status']}")
        spec = s.spec
        lines = [("task", s.task), ("kind", s.kind + (f", seed {spec.get('seed')}" if spec.get("seed") is not None
                                                     else "")),
                 ("params", "  ".join(spec.get("params", []))),
                 ("fixed", " ".join(spec.get("fixed", [])) or "—"),
                 ("parallel", str(s.parallel or "the queue's limits")),
                 ("snapshot", (s.snapshot_commit or "—")[:10]),
                 ("trials", _counts_text(record["counts"])),
                 ("created", when(s.created_at))]
        if record["failure"]:
            lines.append(("failed", click.style(record["failure"], fg="red")))
        if record["warning"]:
            lines.append(("warning", click.style(record["warning"], fg="yellow")))
        for label, value in lines:
            click.echo(f"  {label:<9} {value}")
        metric = record["metric"]
        table = Table(box=None, pad_edge=False, header_style="bold")
        varied = record["varied"]
        for column in ("#", "ID", "NAME", "STATUS", *varied, metric or "METRIC"):
            table.add_column(column, no_wrap=True)
        for n, trial in enumerate(record["trials"], 1):
            value = trial["metric"]
            colour = STATUS_COLOURS.get(trial["status"], "")
            table.add_row(str(n), trial["id"], trial["name"] or "—", f"[{colour}]{trial['status']}[/]",
                          *(_param_text(trial["params"].get(k)) for k in varied),
                          "—" if value is None else f"{value:.6g}")
        click.echo()
        console().print(table)


@sweep_cmd.command("stop")
@click.argument("sweep")
@json_option
@pass_state
def stop_cmd(state: State, sweep: str, as_json: bool) -> None:
    """Stop a sweep: waiting trials never start, running ones stop gracefully (a checkpoint first)."""
    from workbench.runs.sweep import stop_sweep

    project = state.project
    with open_index(project) as index:
        s = _resolve(index, sweep)
        actions = stop_sweep(project, index, s)
        if as_json:
            print_json({"sweep": s.id, "trials": [{"id": a.run.id, "action": a.action, "message": a.message}
                                                  for a in actions]})
            return
        cancelled = sum(a.action == "cancelled" for a in actions)
        asked = sum(a.action in ("requested", "already", "killing") for a in actions)
        click.echo(f"sweep {s.id}: {cancelled} waiting trial(s) will not start, {asked} running trial(s) asked "
                   "to stop (each writes a checkpoint); `workbench sweep resume` continues it")


@sweep_cmd.command("resume")
@click.argument("sweep")
@json_option
@pass_state
def resume_cmd(state: State, sweep: str, as_json: bool) -> None:
    """Continue a sweep: completed trials stay, stopped ones resume from their checkpoints."""
    from workbench.runs.sweep import resume_sweep

    project = state.project
    with open_index(project) as index:
        s = _resolve(index, sweep)
        actions = resume_sweep(project, index, s)
        if as_json:
            print_json({"sweep": s.id, "trials": [{"id": a.run.id, "action": a.action, "message": a.message}
                                                  for a in actions]})
            return
        counts: dict[str, int] = {}
        for a in actions:
            counts[a.action] = counts.get(a.action, 0) + 1
        click.echo(f"sweep {s.id}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        for a in actions:
            if a.action == "refused":
                click.echo(f"  {a.run.id}: {a.message}", err=True)


def _param_text(value: Any) -> str:
    """A parameter's value for the table: floats in six significant digits."""
    from workbench.runs.present import value_text

    return f"{value:.6g}" if isinstance(value, float) else value_text(value)


def _counts_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f"{total}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) if total else "0"


def sweep_record(index: RunIndex, sweep: Sweep, *, trials: bool = True) -> dict[str, Any]:
    """A sweep as ``--json`` prints it (documented in docs/cli.md)."""
    from workbench.runs.present import flatten_config, headline_key, iso, sweep_status
    from workbench.runs.sampler import is_system_key

    runs = index.runs_of_sweep(sweep.id)
    metrics = index.last_metrics_of(run.id for run in runs)
    metric = sweep.metric or headline_key({k for m in metrics.values() for k in m if not is_system_key(k)})
    varied = list(sweep.spec.get("varied") or sweep.spec.get("keys") or [])
    rows = []
    for run in runs:
        flat = flatten_config(run.config)
        rows.append({"id": run.id, "name": run.name, "status": run.status.value,
                     "params": {k: flat.get(k) for k in sweep.spec.get("keys", [])},
                     "metric": metrics[run.id].get(metric) if metric else None})
    sign = -1 if sweep.direction == "max" else 1
    rows.sort(key=lambda r: (r["metric"] is None, sign * r["metric"] if r["metric"] is not None else 0))
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status.value] = counts.get(run.status.value, 0) + 1
    best = rows[0] if rows and rows[0]["metric"] is not None else None
    record: dict[str, Any] = {
        "id": sweep.id, "name": sweep.name, "task": sweep.task, "kind": sweep.kind,
        "status": sweep_status(sweep.status, sweep.kind, counts),
        "parallel": sweep.parallel, "metric": metric, "direction": sweep.direction or "min",
        "snapshot_commit": sweep.snapshot_commit, "created_at": iso(sweep.created_at),
        "spec": {k: v for k, v in sweep.spec.items() if k != "values"},
        "varied": varied, "counts": counts, "best": best,
        "warning": _metric_warning(sweep.metric, metrics), "failure": sweep.spec.get("failure"),
    }
    if trials:
        record["trials"] = rows
    return record


def _metric_warning(metric: str | None, metrics: dict[str, dict[str, float]]) -> str | None:
    """The sweep's metric was asked for, trials have validated (logged a ``val/`` key), and
    none logged it: one line saying so, naming what they log. Else None."""
    from workbench.runs.sampler import is_system_key

    if not metric or any(metric in logged for logged in metrics.values()):
        return None
    keys = sorted({k for logged in metrics.values() for k in logged if not is_system_key(k)})
    if not any(k.startswith("val/") for k in keys):
        return None  # no trial has validated yet
    shown = ", ".join(keys[:8]) + (", …" if len(keys) > 8 else "")
    return f"no trial has logged {metric} (the sweep's --metric); they log {shown}"


def sweep_trials(index: RunIndex, refs: tuple[str, ...], top: int | None, command: str) -> list[str] | None:
    """The run ids ``compare``/``export`` mean when ``refs`` is one sweep: its trials, best
    first by the sweep's metric and direction (``top``: only the N best that have a value).
    None when no ref names a sweep (and ``top`` is not given).

    Raises:
        WorkbenchError: ``--top`` below 1, ``--top`` without a sweep, a sweep given with
            other references, a reference naming both a run and a sweep, or no trial
            with a value of the metric to rank.
    """
    from workbench.cli._base import sweep_named
    from workbench.errors import WorkbenchError
    from workbench.runs import reconcile

    if top is not None and top < 1:
        raise WorkbenchError(f"--top must be 1 or more, got {top}")
    reconcile(index)
    sweeps = [(ref, sweep_named(index, ref)) for ref in refs]
    named = [(ref, s) for ref, s in sweeps if s is not None]
    if not named:
        if top is not None:
            raise WorkbenchError(f"--top takes a sweep (workbench {command} SWEEP --top N); "
                                 f"{', '.join(refs) or 'no reference'} names no sweep")
        return None
    if len(refs) != 1:
        raise WorkbenchError(f"{named[0][0]!r} is a sweep: give it alone (workbench {command} SWEEP --top N), "
                             "or give runs only")
    sweep = named[0][1]
    record = sweep_record(index, sweep)
    trials = record["trials"]
    if not trials:
        raise WorkbenchError(f"sweep {sweep.label} has no trials yet")
    if top is None:
        return [t["id"] for t in trials]
    ranked = [t for t in trials if t["metric"] is not None]
    if not ranked:
        raise WorkbenchError(f"no trial of sweep {sweep.label} has a value of {record['metric'] or 'its metric'} "
                             "yet, so none can be ranked")
    return [t["id"] for t in ranked[:top]]


COMMANDS = [sweep_cmd]
