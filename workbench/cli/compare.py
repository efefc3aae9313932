"""``workbench compare``: runs side by side (config, metrics with deltas, code); a sweep's
best trials with ``workbench compare SWEEP --top N``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli._base import (
    STATUS_COLOURS,
    State,
    console,
    json_option,
    open_index,
    pass_state,
    print_json,
    resolve,
)

if TYPE_CHECKING:
    from workbench.runs.compare import Comparison, MetricCell, MetricRow

__all__ = ["COMMANDS"]


@click.command("compare")
@click.argument("runs", nargs=-1, required=True)
@click.option("--pin", metavar="RUN", help="Take deltas against RUN (default: the first run).")
@click.option("--all", "show_all", is_flag=True, help="Show every config row, equal ones too.")
@click.option("--key", "keys", multiple=True, help="Only metric K (repeatable).")
@click.option("--step", type=int, help="Compare the values at step N (default: the last step all runs reached).")
@click.option("--top", type=int, metavar="N",
              help="With a SWEEP: its N best trials by the sweep's metric, best first (default: all its trials).")
@json_option
@pass_state
def compare_cmd(state: State, runs: tuple[str, ...], pin: str | None, show_all: bool,
                keys: tuple[str, ...], step: int | None, top: int | None, as_json: bool) -> None:
    """Compare RUNS: config that differs, metrics with deltas, and code. A sweep's id or
    name compares its trials, best first (--top N: the N best)."""
    from workbench.cli.sweep import sweep_trials
    from workbench.runs.compare import compare_runs, snapshot_comparer

    project = state.project
    with open_index(project) as index:
        trial_ids = sweep_trials(index, runs, top, "compare")
        if trial_ids is None:
            chosen = [resolve(index, ref) for ref in runs]
        else:
            chosen = [index.resolve_run(run_id) for run_id in trial_ids]
        baseline = resolve(index, pin) if pin else None
        comparison = compare_runs(index, chosen, baseline=baseline, keys=keys, step=step,
                                  same_code=snapshot_comparer(project.root, project.state_dir))
    if as_json:
        print_json(comparison.to_json())
        return
    console().print(_table(comparison, show_all))


# -- the table ------------------------------------------------------------------------

def _table(comparison: Comparison, show_all: bool) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from workbench.runs.compare import MISSING
    from workbench.runs.present import metric, value_text

    runs, base = comparison.runs, comparison.baseline
    table = Table(box=box.SIMPLE, pad_edge=False, header_style="bold", show_edge=False)
    table.add_column("", no_wrap=True, style="bold")
    for i, run in enumerate(runs):
        table.add_column(run.label + (" (baseline)" if i == base else ""), no_wrap=True)

    table.add_row("id", *(r.id for r in runs))
    table.add_row("task", *(r.task or "—" for r in runs))
    table.add_row("status", *(Text(r.status.value, style=STATUS_COLOURS.get(r.status.value, "")) for r in runs))

    table.add_section()
    table.add_row("git", *(_git_text(c.head, c.branch) for c in comparison.code))
    table.add_row("dirty", *("—" if c.dirty is None else ("yes" if c.dirty else "no") for c in comparison.code))
    table.add_row("snapshot", *(_snapshot_text(c.snapshot, c.same_code, i == base)
                                for i, c in enumerate(comparison.code)))
    if any(d.digest for d in comparison.data):
        table.add_row("data", *(Text(d.text, style="yellow" if d.same_data is False else "")
                                for d in comparison.data))

    table.add_section()
    rows = [row for row in comparison.config if show_all or row.differs]
    hidden = len(comparison.config) - len(rows)
    for row in rows:
        values = ["—" if v is MISSING else value_text(v) for v in row.values]
        table.add_row(f"config {row.key}", *(Text(v, style="" if not row.differs or i == base else "yellow")
                                             for i, v in enumerate(values)))
    if hidden:
        table.caption = f"{hidden} equal config key(s) not shown (--all shows them)"
        table.caption_justify = "left"

    last_steps: dict[str, tuple[int | None, ...]] = {}
    for row in comparison.metrics:
        if row.kind == "last":
            last_steps[row.key] = tuple(None if c is None else c.step for c in row.cells)
            table.add_section()
        if row.kind == "at" and _at_is_last(row, last_steps[row.key]):
            continue
        label = {"last": "last", "best": "best " + ("↑" if row.higher_is_better else "↓"),
                 "at": f"@{row.step}"}[row.kind]
        table.add_row(f"{row.key} {label}", *(_cell_text(c, row, metric) for c in row.cells))
    if comparison.evaluations:  # workbench test / eval of each run's checkpoints
        table.add_section()
    for evaluation in comparison.evaluations:
        table.add_row(evaluation.label, *(_cell_text(c, evaluation, metric) for c in evaluation.cells))
    return table


def _git_text(head: str | None, branch: str | None) -> str:
    if not head:
        return "—"
    return head[:10] + (f" {branch}" if branch else "")


def _snapshot_text(snapshot: str | None, same: bool | None, is_base: bool) -> Any:
    from rich.text import Text

    if not snapshot:
        return "—"
    text = Text(snapshot[:10])
    if not is_base:
        if same is True:
            text.append(" same code", style="green")
        elif same is False:
            text.append(" other code", style="yellow")
    return text


def _at_is_last(row: MetricRow, last_steps: tuple[int | None, ...]) -> bool:
    """The ``@STEP`` row says nothing new when every run's point there is its last one."""
    return all((c.step if c is not None else None) == s for c, s in zip(row.cells, last_steps))


def _cell_text(cell: MetricCell | None, row: MetricRow, metric: Any) -> Any:
    from rich.text import Text

    if cell is None:
        return "—"
    text = Text(metric(cell.value))
    if row.kind != "at":
        text.append(f" @{cell.step}", style="dim")
    if cell.delta is not None:
        sign = "+" if cell.delta > 0 else ("-" if cell.delta < 0 else "±")
        better = cell.delta > 0 if row.higher_is_better else cell.delta < 0
        style = "dim" if cell.delta == 0 else ("green" if better else "red")
        text.append(f" {sign}{metric(abs(cell.delta))}", style=style)
    return text


COMMANDS = [compare_cmd]
