"""The compare screen: runs as columns, overlaid curves, and the code diff between two runs.

The table answers "which run is better, and why" from the top: status and task, then the
rows of the metrics a run is judged by (losses first) — each key's best value (★ on the best run, for keys whose better
direction is known: losses, errors, accuracies; never for a logged hyperparameter such as
``lr``), its last value and its value at the last step every run reached ("at step 1000";
left out where it would repeat the last value) —
each with the difference from the baseline: the pinned run (``p``), or the first. Then the
config values that differ (◆ where a run differs from the baseline), the other metrics (a
logged ``lr``, speed, system metrics), the config values that agree (``h`` hides the rows
where every run agrees), then git. Below, one chart per metric key with every run on
shared axes (``/`` filters the keys, ``[`` and ``]`` page), and beside them on a wide terminal
(below them on a narrow one) the code diff from the baseline's snapshot to another run's
(``v`` picks the next run).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Grid, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from workbench.runs import present
from workbench.store import Run, RunStatus
from workbench.tui._state import Changes
from workbench.tui.colors import theme_color
from workbench.tui.screens._footer import Footer, fit_footer
from workbench.tui.screens._chart_keys import ChartOptionKeys
from workbench.tui.messages import CodeDiffRead, CompareValuesRead
from workbench.tui.widgets._plotting import ChartOptions, match_keys, order_keys, time_keyed
from workbench.tui.widgets.chart import MetricChart, zoom_charts
from workbench.tui._typed import workbench_app

__all__ = ["CompareScreen", "CompareTable", "metric_direction"]

_VALUES_EVERY = 2.0


class CompareTable(DataTable[Any]):
    """The compare table: a DataTable that also moves with ``j`` and ``k``, like the run table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "next_row", "Down", show=False),
        Binding("k", "previous_row", "Up", show=False),
    ]

    def action_next_row(self) -> None:
        """Move down a row."""
        self.action_cursor_down()

    def action_previous_row(self) -> None:
        """Move up a row."""
        self.action_cursor_up()


class CompareScreen(ChartOptionKeys, Screen[None]):
    """Two or more runs side by side."""

    HELP_TITLE = "Compare screen"
    _ready = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("h", "only_diffs", "Only diffs"),
        Binding("p", "pin", "Pin next"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="["),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]"),
        Binding("v", "next_diff", "Next diff"),
        Binding("l", "log_scale", "Log scale", show=False),
        Binding("x", "x_axis", "Step/time", show=False),
        Binding("e", "smoothing", "Smoothing", show=False),
        Binding("y", "skip_start", "Y range without the start", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in: half the steps, around the cursor", key_display="+",
                show=False),
        Binding("minus", "zoom(2)", "Zoom out: twice the steps", key_display="-", show=False),
        Binding("0", "zoom(0)", "Zoom reset: every step", key_display="0", show=False),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__(classes="compare-screen")
        self.run_ids = list(dict.fromkeys(run_ids))
        self.only_diffs = False
        self.values: dict[str, dict[str, dict[str, Any]]] = {}
        self.at_step: dict[str, int] = {}
        self.data: dict[str, str | None] = {}
        self.chart_filter = ""
        self.page = 0
        self.diff_with = 1
        self._values_read = 0.0
        self._grid_shape = (2, 2)
        self.chart_options = ChartOptions()

    # -- who is compared -------------------------------------------------------------

    @property
    def baseline(self) -> str:
        """The run the deltas are against: the pinned one if compared here, else the first."""
        pinned = self.app.selection.pinned  # type: ignore[attr-defined]
        return pinned if pinned in self.run_ids else self.run_ids[0]

    def _others(self) -> list[str]:
        return [r for r in self.run_ids if r != self.baseline]

    def _row(self, run_id: str) -> Run:
        found = self.app.runs.rows.get(run_id)  # type: ignore[attr-defined]
        # A run deleted while compared keeps its column, empty.
        return found or Run(id=run_id, status=RunStatus.INTERRUPTED, created_at=0.0, updated_at=0.0,
                            name="(deleted)")

    def compose(self) -> ComposeResult:
        self.chart_options.smoothing = workbench_app(self).settings.smoothing  # app.toml's starting weight
        yield Static(id="compare-header")
        yield CompareTable(id="compare-table", cursor_type="row", zebra_stripes=False)
        with Horizontal(id="charts-bar"):
            yield Static(id="charts-title")
            yield Input(placeholder="metric keys: loss  val/*  acc", id="chart-filter")
        with Container(id="compare-lower"):
            yield Grid(id="charts")
            with Vertical(id="diff-panel"):
                yield Static(id="diff-title", classes="panel-title")
                with VerticalScroll(id="diff-scroll"):
                    yield Static("reading the diff…", id="diff-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._ready = True
        app = workbench_app(self)
        self.query_one("#chart-filter", Input).display = False
        app.want_last(self.run_ids)
        app.request_tick()
        self._read_values(self.run_ids)
        self._fill_table()
        self._show_header()
        self._show_charts()
        self._read_diff()

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        shape = (2 if width >= 100 else 1, 2 if height >= 48 else 1)
        self.set_class(width < 100, "narrow")
        self.set_class(width >= 130, "wide")  # the code diff beside the charts, as tall as they are
        self.set_class(height < 30, "short")
        fit_footer(self, {"page", "next_diff"}, width < 110)
        fit_footer(self.app, {"quit"}, width < 110)
        if shape != self._grid_shape:
            self._grid_shape = shape
            self._show_charts()

    def apply_changes(self, changes: Changes) -> None:
        """Live runs: update the table's rows and the curves."""
        if not self._ready:
            return
        mine = set(self.run_ids)
        if changes.removed & mine:
            self.run_ids = [r for r in self.run_ids if r not in changes.removed]
            if len(self.run_ids) < 2:
                self.app.pop_screen()
                return
        if (changes.runs & mine or changes.last & mine) and time.monotonic() - self._values_read > _VALUES_EVERY:
            self._read_values(self.run_ids)
        if changes.last & mine:
            self._show_charts()
        for chart in self.query(MetricChart):
            chart.data_changed(changes.series)

    # -- the table -------------------------------------------------------------------

    def _show_header(self) -> None:
        app = workbench_app(self)
        box = "[x]" if self.only_diffs else "[ ]"
        pinned = app.selection.pinned if app.selection.pinned in self.run_ids else None
        base = f"pinned: {app.run_name(pinned)}" if pinned else f"baseline: {app.run_name(self.baseline)}"
        self.query_one("#compare-header", Static).update(Content.assemble(
            (f"Compare {len(self.run_ids)} runs", "bold"), "   ", (f"{box} only diffs (h)", "$accent"),
            "   ", (f"{base} (p)", "dim")))

    def _fill_table(self) -> None:
        app = workbench_app(self)
        table = self.query_one("#compare-table", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        headers = [Text(f"{'⚑ ' if run_id == app.selection.pinned else ''}{app.run_name(run_id)}",
                        style=f"bold {app.run_colors.hex(run_id)}") for run_id in self.run_ids]
        shown_rows = []
        for label, cells, differs in self._rows():
            if self.only_diffs and not differs and not label.startswith(("status", "task")):
                continue
            style = "bold" if differs else "dim" if label.startswith("config.") else ""
            texts = [cell if isinstance(cell, Text) else Text(str(cell)) for cell in cells]
            shown_rows.append((Text(label, style=style), texts, label))
        # Widths measured here, not left to DataTable: it measures new rows on its next Idle,
        # and a table filled again before that one came (seen in a real terminal at 140x40)
        # kept every column at its header's width and the label column at none.
        table.add_column("", key="label", width=max((row[0].cell_len for row in shown_rows), default=1))
        for i, (run_id, header) in enumerate(zip(self.run_ids, headers)):
            width = max([header.cell_len] + [row[1][i].cell_len for row in shown_rows if i < len(row[1])])
            table.add_column(header, key=run_id, width=width)
        for label_text, texts, label in shown_rows:
            table.add_row(label_text, *texts, key=label)
        table.fixed_columns = 1
        if cursor < table.row_count:
            table.move_cursor(row=cursor)
        self._show_header()

    def _rows(self) -> list[tuple[str, list[Any], bool]]:
        rows: list[tuple[str, list[Any], bool]] = []
        base = self.baseline
        records = [self._row(r) for r in self.run_ids]
        rows.append(("status", [Text(r.status.value, style=self._status_style(r.status.value))
                                for r in records], False))
        tasks = [r.task or "—" for r in records]
        rows.append(("task", tasks, len(set(tasks)) > 1))
        # What is better first (the metrics a run is judged by), then why (the config that
        # differs), then the other metrics (logged hyperparameters, speed, system), then the rest.
        judged, other = self._metric_rows(judged=True), self._metric_rows(judged=False)
        rows += judged
        configs = [present.flatten_config(r.config) for r in records]
        keys = list(dict.fromkeys(k for c in configs for k in c))
        base_config = configs[self.run_ids.index(base)]
        config_rows = []
        for key in keys:
            values = [c.get(key, _MISSING) for c in configs]
            differs = any(v != values[0] for v in values)
            cells = []
            for run_id, value in zip(self.run_ids, values):
                text = "—" if value is _MISSING else present.value_text(value)
                if run_id != base and value != base_config.get(key, _MISSING):
                    cells.append(Text(f"{text} ◆", style="bold"))
                else:
                    cells.append(Text(text))
            config_rows.append((f"config.{key}", cells, differs))
        rows += [row for row in config_rows if row[2]]
        rows += other
        rows += [row for row in config_rows if not row[2]]
        snaps = [(r.snapshot_commit or "")[:4] or "—" for r in records]
        base_snap = snaps[self.run_ids.index(base)]
        rows.append(("git snapshot", [Text(s + (" ◆" if run_id != base and s != base_snap else ""),
                                           style="bold" if run_id != base and s != base_snap else "")
                                      for run_id, s in zip(self.run_ids, snaps)], len(set(snaps)) > 1))
        heads = [present.git_short(r) for r in records]
        rows.append(("git HEAD", heads, len(set(heads)) > 1))
        if any(self.data.get(r) for r in self.run_ids):  # the [data] fingerprint each run saw
            digests = [self.data.get(r) for r in self.run_ids]
            base_digest = digests[self.run_ids.index(base)]
            cells = []
            for run_id, digest in zip(self.run_ids, digests):
                other = run_id != base and digest is not None and base_digest is not None and digest != base_digest
                cells.append(Text((digest or "—")[:8] + (" ◆ other data" if other else ""),
                                  style="bold yellow" if other else ""))
            rows.append(("data", cells, len(set(digests)) > 1))
        return rows

    def _metric_rows(self, judged: bool) -> list[tuple[str, list[Any], bool]]:
        """Per metric key (losses first, system metrics last): best (when better has a direction),
        last, and the value at the last step every run reached. ``judged``: the keys a run is
        judged by (losses, errors, accuracies), else the others (``lr``, speed, system)."""
        rows: list[tuple[str, list[Any], bool]] = []
        for key in order_keys(k for r in self.run_ids for k in self.values.get(r, {})):
            if judged != _judged_by(key):
                continue
            whats = ["best"] if metric_direction(key) is not None else []
            whats.append("last")
            if not time_keyed(key) and key in self.at_step:  # a system metric's "step" is a time
                whats.append("at")
            for what in whats:
                label = f"{key} at step {self.at_step[key]}" if what == "at" else f"{key} {what}"
                numbers = [self.values.get(r, {}).get(key, {}).get(what) for r in self.run_ids]
                if what == "at" and numbers == [self.values.get(r, {}).get(key, {}).get("last")
                                                for r in self.run_ids]:
                    continue  # every run ended at that step: the row would repeat "last"
                rows.append((label, self._metric_cells(key, what, numbers), _spread(numbers)))
        return rows

    def _metric_cells(self, key: str, what: str, numbers: list[float | None]) -> list[Text]:
        base_value = numbers[self.run_ids.index(self.baseline)]
        direction = metric_direction(key)
        higher = direction == "higher"
        finite = [n for n in numbers if n is not None and not math.isnan(n)]
        best = (max(finite) if higher else min(finite)) \
            if finite and what == "best" and direction is not None and len(finite) > 1 else None
        cells = []
        for run_id, value in zip(self.run_ids, numbers):
            text = Text(present.metric(value))
            if best is not None and value == best:
                text.append(" ★", style="bold")
            if run_id != self.baseline and value is not None and base_value is not None \
                    and not math.isnan(value) and not math.isnan(base_value):
                delta = value - base_value
                if delta:
                    # One number format: the delta as the values are written, with its sign.
                    sign = "+" if delta > 0 else "-"
                    style = "dim" if direction is None else \
                        self._theme("success" if (delta > 0) == higher else "error")
                    text.append(f" {sign}{present.metric(abs(delta))}", style=style)
            cells.append(text)
        return cells

    def _theme(self, name: str) -> str:
        return theme_color(self.app.theme_variables, name)

    def _status_style(self, status: str) -> str:
        colour, extra = _STATUS_STYLE.get(status, ("foreground", ""))
        return f"{extra} {self._theme(colour)}".strip()

    # -- metric values ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="compare-values")
    def _read_values(self, run_ids: list[str]) -> None:
        app = workbench_app(self)
        self._values_read = time.monotonic()
        index = app.index
        values: dict[str, dict[str, dict[str, Any]]] = {}
        last_steps: dict[str, dict[str, int]] = {}
        for run_id in run_ids:
            values[run_id] = {}
            last_steps[run_id] = {}
            for key, last in index.last_metrics(run_id).items():
                points = index.series(run_id, key, max_points=300)
                finite = [v for _, v in points if v == v]
                direction = metric_direction(key)
                best = ((max(finite) if direction == "higher" else min(finite))
                        if finite and direction is not None else None)
                values[run_id][key] = {"last": last, "best": best}
                if points:
                    last_steps[run_id][key] = int(points[-1][0])
        at_step: dict[str, int] = {}
        keys = {k for steps in last_steps.values() for k in steps}
        for key in keys:
            steps = [s[key] for s in last_steps.values() if key in s]
            if len(steps) == len(run_ids):
                at_step[key] = min(steps)
        for key, step in at_step.items():
            for run_id in run_ids:
                found = index.metrics_after(run_id, after_step={key: step - 1}, keys=[key]).get(key, [])
                value = found[0][1] if found and found[0][0] == step else None
                values[run_id].setdefault(key, {})["at"] = value
        data: dict[str, str | None] = {}
        for run_id in run_ids:
            event = next((e for e in reversed(index.events(run_id)) if e.kind == "data"), None)
            data[run_id] = event.data.get("digest") if event is not None and isinstance(event.data, dict) else None
        self.post_message(CompareValuesRead(values, at_step, data))

    def on_compare_values_read(self, message: CompareValuesRead) -> None:
        self.values, self.at_step, self.data = message.values, message.at_step, message.data
        self._fill_table()
        self._show_charts()

    # -- charts ----------------------------------------------------------------------

    def _keys(self) -> list[str]:
        app = workbench_app(self)
        # Losses first (validation before training), then the rest by name, sys/* last.
        keys = order_keys(k for r in self.run_ids for k in app.runs.last.get(r, {}))
        return match_keys(keys, self.chart_filter)

    def _show_charts(self) -> None:
        app = workbench_app(self)
        grid = self.query_one("#charts", Grid)
        columns, rows = self._grid_shape
        per_page = columns * rows
        keys = self._keys()
        pages = max(1, math.ceil(len(keys) / per_page))
        self.page = max(0, min(self.page, pages - 1))
        shown = keys[self.page * per_page:(self.page + 1) * per_page]
        used_rows = max(1, min(rows, math.ceil(len(shown) / columns)))
        grid.styles.grid_size_columns = columns if len(shown) > 1 else 1
        grid.styles.grid_size_rows = used_rows
        charts = list(grid.query(MetricChart))
        for chart in charts[len(shown):]:
            chart.remove()
        for i, key in enumerate(shown):
            if i < len(charts):
                chart = charts[i]
            else:
                chart = MetricChart(app.series, app.run_colors, app.run_name, app.request_tick,
                                    pinned=lambda: app.selection.pinned, legend=False, options=self.chart_options,
                                    classes="compare-chart")
                grid.mount(chart)
            chart.show(key, self.run_ids)
        title: list[Any] = [("charts", "bold")]
        if keys:
            first = self.page * per_page + 1
            title.append(f"  {first}–{first + len(shown) - 1} of {len(keys)}")
            if pages > 1:
                title.append((f"  page {self.page + 1}/{pages} ([ prev, ] next)", "dim"))
        else:
            title.append(("  no metric matches" if self.chart_filter else "  no metrics yet", "dim"))
        if self.chart_filter:
            title += ["  ", (f"/ {self.chart_filter}", "$accent")]
        for run_id in self.run_ids:
            mark = "⚑" if run_id == app.selection.pinned else "──"
            title += ["  ", (f"{mark} {app.run_name(run_id)}", app.run_colors.hex(run_id))]
        self.query_one("#charts-title", Static).update(Content.assemble(*title))

    def action_page(self, delta: int) -> None:
        """Next or previous page of charts."""
        self.page += delta
        self._show_charts()

    def action_filter(self) -> None:
        """Show only the charts whose key matches (words or globs: loss val/*)."""
        field = self.query_one("#chart-filter", Input)
        field.display = True
        field.value = self.chart_filter
        field.focus()

    @on(Input.Changed, "#chart-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.chart_filter = event.value.strip()
        self.page = 0
        self._show_charts()

    @on(Input.Submitted, "#chart-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#compare-table", DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        field = self.query_one("#chart-filter", Input)
        if event.key == "escape" and field.has_focus:
            event.stop()
            field.value = ""
            field.display = False
            self.query_one("#compare-table", DataTable).focus()

    def _options_changed(self) -> None:
        for chart in self.query(MetricChart):
            chart.options_changed()

    def action_zoom(self, factor: float) -> None:
        """Zoom every chart's x axis in (0.5) or out (2) around the middle; 0: every step again."""
        zoom_charts(self.query(MetricChart), self.chart_options, factor)

    # -- pin, diffs, back ------------------------------------------------------------

    def action_only_diffs(self) -> None:
        """Hide the rows where every run has the same value (again: show them)."""
        self.only_diffs = not self.only_diffs
        self._fill_table()

    def action_pin(self) -> None:
        """Pin the next compared run (the baseline of the deltas, drawn on top)."""
        selection = self.app.selection  # type: ignore[attr-defined]
        order = [None, *self.run_ids]
        now = order.index(selection.pinned) if selection.pinned in order else 0
        selection.pinned = order[(now + 1) % len(order)]
        self.diff_with = 1
        self._fill_table()
        self._show_charts()
        for chart in self.query(MetricChart):
            chart.data_changed(None)
        self._read_diff()

    def action_next_diff(self) -> None:
        """Show the code diff from the baseline to the next run."""
        self.diff_with += 1
        self._read_diff()

    def _read_diff(self) -> None:
        others = self._others()
        if not others:
            return
        other = others[(self.diff_with - 1) % len(others)]
        a, b = self._row(self.baseline), self._row(other)
        self.query_one("#diff-title", Static).update(Content.assemble(
            ("code: ", "bold"), (self.app.run_name(self.baseline), self.app.run_colors.hex(self.baseline)),  # type: ignore[attr-defined]
            " → ", (self.app.run_name(other), self.app.run_colors.hex(other)), ("   v: next run", "dim")))  # type: ignore[attr-defined]
        self._diff(a.snapshot_commit, b.snapshot_commit, (self.baseline, other))

    @work(thread=True, exclusive=True, group="compare-diff")
    def _diff(self, a: str | None, b: str | None, key: tuple[str, str]) -> None:
        from workbench.snapshot import SnapshotError, diff

        project = self.app.project  # type: ignore[attr-defined]
        if not a or not b:
            self.post_message(CodeDiffRead(key, "", "a run has no code snapshot"))
            return
        try:
            stat = diff(project.root, a, b, state_dir=project.state_dir, stat=True)
            text = diff(project.root, a, b, state_dir=project.state_dir, color=True)
        except SnapshotError as exc:
            self.post_message(CodeDiffRead(key, "", str(exc)))
            return
        self.post_message(CodeDiffRead(key, (stat.rstrip() + "\n\n" + text) if text.strip() else ""))

    def on_code_diff_read(self, message: CodeDiffRead) -> None:
        target = self.query_one("#diff-text", Static)
        if message.error:
            target.update(Content.from_markup("[$warning]$e", e=message.error))
        elif not message.text.strip():
            target.update(Content.from_markup("[dim]same code: the two snapshots are identical"))
        else:
            target.update(Text.from_ansi(message.text))

    def action_back(self) -> None:
        """Back to the run table."""
        self.app.pop_screen()


_MISSING = object()
_STATUS_STYLE = {"queued": ("foreground", "dim"), "running": ("primary", "bold"), "completed": ("success", ""),
                 "failed": ("error", "bold"), "stopped": ("warning", ""), "interrupted": ("warning", "italic")}


#: Words of a metric's last part that make a smaller value better (a loss, an error).
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer", "cer")


def metric_direction(key: str) -> str | None:
    """``"higher"`` when a larger value of ``key`` is better (accuracy), ``"lower"`` when a smaller
    one is (a loss, an error), None when the name does not say (``lr``, ``epoch``, ``grad_norm``,
    system metrics): such a key gets no best row, no ★ and no green or red."""
    if time_keyed(key):
        return None
    if present.better_is_higher(key):
        return "higher"
    leaf = key.rsplit("/", 1)[-1].lower()
    words = leaf.replace("-", "_").split("_")
    return "lower" if any(w in _LOWER_IS_BETTER or w.endswith("loss") for w in words) else None


def _judged_by(key: str) -> bool:
    """Whether a run is judged by ``key`` (a loss, an error, an accuracy), not a speed or a
    system metric, which the table shows after the config that differs."""
    return metric_direction(key) is not None and not key.rsplit("/", 1)[-1].endswith("_per_s")


def _spread(numbers: list[float | None]) -> bool:
    finite = [n for n in numbers if n is not None and not math.isnan(n)]
    return len(set(finite)) > 1 or len(finite) != len(numbers)
