"""The run table: a virtual list that draws only the rows on screen.

Textual's DataTable builds every row up front (10,000 rows take seconds to first paint);
this table keeps the app's sorted view (a list of run ids) and renders the visible lines
on demand, so 10 rows and 100,000 rows cost the same per frame. Columns that do not fit
the width are left out, least useful first, so an 80-column terminal still shows name,
status, progress and the headline metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.runs import present
from workbench.store import Run
from workbench.tui._state import RunCache
from workbench.tui.colors import RunColors
from workbench.tui.messages import RunHighlighted, RunOpenRequested

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["COLUMNS", "Column", "RunTable", "Selection"]


@dataclass(frozen=True)
class Column:
    """A column: its key (also the sort key), title, width, and drop order (0 never)."""

    key: str
    title: str
    width: int
    drop: int = 0
    right: bool = False


#: The run table's columns, left to right.
COLUMNS: tuple[Column, ...] = (
    Column("name", "name", 16),
    Column("task", "task", 14, drop=4),
    Column("status", "status", 11),
    Column("progress", "prog", 9, drop=6),
    Column("device", "dev", 9, drop=3),
    Column("started", "started", 7, drop=1),
    Column("duration", "time", 6, drop=2),
    Column("metric", "metric", 7, right=True, drop=5),
    Column("git", "git", 5, drop=7),
)
_GUTTER = 3  # mark, colour dot / status glyph, space


class Selection:
    """Marked runs (in marking order) and the pinned run; shared by every screen.

    Args:
        changed: Called after every change (the app saves the view a moment later).
    """

    def __init__(self, changed: Callable[[], None] | None = None) -> None:
        self.marked: list[str] = []
        self._pinned: str | None = None
        self.changed = changed

    @property
    def pinned(self) -> str | None:
        """The pinned run (drawn on top; the baseline of compare deltas), or None."""
        return self._pinned

    @pinned.setter
    def pinned(self, run_id: str | None) -> None:
        if run_id != self._pinned:
            self._pinned = run_id
            self._changed()

    def _changed(self) -> None:
        if self.changed is not None:
            self.changed()

    def toggle(self, run_id: str) -> bool:
        """Mark or unmark a run; returns whether it is marked now."""
        if run_id in self.marked:
            self.marked.remove(run_id)
            self._changed()
            return False
        self.marked.append(run_id)
        self._changed()
        return True

    def restore(self, marked: list[str], pinned: str | None) -> None:
        """Take a saved selection (without calling ``changed``)."""
        self.marked = list(marked)
        self._pinned = pinned

    def forget(self, run_id: str) -> None:
        """A run was deleted."""
        if run_id in self.marked or self._pinned == run_id:
            if run_id in self.marked:
                self.marked.remove(run_id)
            if self._pinned == run_id:
                self._pinned = None
            self._changed()


class RunTable(ScrollView, can_focus=True):
    """The runs of the app's :class:`RunCache` view, one line each, with a cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-table--header", "run-table--sorted", "run-table--marked",
        "run-table--dim", "run-table--queued", "run-table--running", "run-table--completed",
        "run-table--failed", "run-table--stopped", "run-table--interrupted",
    }

    DEFAULT_CSS = """
    RunTable > .run-table--header { text-style: bold; color: $text-muted; background: $panel; }
    RunTable > .run-table--sorted { text-style: bold underline; color: $text; background: $panel; }
    RunTable > .run-table--marked { background: $primary-muted; }
    RunTable > .run-table--dim { color: $text-muted; }
    RunTable > .run-table--queued { color: $text-muted; }
    RunTable > .run-table--running { color: $primary; text-style: bold; }
    RunTable > .run-table--completed { color: $success; }
    RunTable > .run-table--failed { color: $error; text-style: bold; }
    RunTable > .run-table--stopped { color: $warning; }
    RunTable > .run-table--interrupted { color: $warning; text-style: italic; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "edge(0)", "First run", show=False),
        Binding("end,G", "edge(1)", "Last run", show=False),
        Binding("enter", "open", "Open run", show=False),
        Binding("o", "sort_next", "Sort by next column", show=False),
        Binding("O", "sort_reverse", "Reverse sort", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    @dataclass
    class SortChanged(Message):
        """The table's sort column or direction changed."""

        column: str
        descending: bool

    def __init__(self, runs: RunCache, colors: RunColors, selection: Selection, *,
                 clock: Any, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs = runs
        self.run_colors = colors
        self.selection = selection
        self.clock = clock
        self._version = -1
        self._complete = False
        self._cursor_id: str | None = None
        self._columns: tuple[Column, ...] = COLUMNS
        self._name_width = 16
        # What each line showed when last drawn (by line): a tick repaints only the lines
        # whose content changed (a refresh of the whole table clears it).
        self._drawn: dict[int, tuple[Any, ...]] = {}
        self._styles: dict[tuple[str, bool], Style] = {}
        self._parts: dict[str, tuple[Run, tuple[Any, ...], tuple[Any, ...]]] = {}  # see _row_parts
        self._colours: dict[str, tuple[Style, Style]] = {}

    # -- data ------------------------------------------------------------------------

    @property
    def current(self) -> str | None:
        """The run under the cursor."""
        view = self.runs.view
        return view[self.cursor] if 0 <= self.cursor < len(view) else None

    def visible_ids(self) -> list[str]:
        """The runs whose rows are on screen now."""
        top = int(self.scroll_offset.y)
        return self.runs.view[top: top + max(0, self.size.height - 1)]

    def data_changed(self, force: bool = False) -> None:
        """Redraw after the cache changed; the cursor stays on the same run."""
        if self.runs.version == self._version and self.runs.complete == self._complete and not force:
            return
        self._version = self.runs.version
        self._complete = self.runs.complete
        view = self.runs.view
        if self._cursor_id is not None and (self.cursor >= len(view) or view[self.cursor] != self._cursor_id):
            try:
                self.cursor = view.index(self._cursor_id)
            except ValueError:
                self.cursor = min(self.cursor, max(0, len(view) - 1))
        self._fit_columns()
        self.virtual_size = _virtual_size(len(view))
        if self.current != self._cursor_id:
            self._cursor_id = self.current
            self.post_message(RunHighlighted(self._cursor_id))
        self._refresh_changed()

    def refresh(self, *regions: Any, **kwargs: Any) -> Self:
        if not regions:
            self._drawn.clear()  # every line is drawn again, in styles read again
            self._styles.clear()
            self._parts.clear()
        return super().refresh(*regions, **kwargs)

    def notify_style_update(self) -> None:
        self._drawn.clear()
        self._styles.clear()
        self._parts.clear()
        super().notify_style_update()

    def _refresh_changed(self) -> None:
        """Repaint the lines whose content differs from what they show (a tick with no visible
        change repaints nothing: with a grid of charts on screen, a repaint of the table is a
        large part of a frame)."""
        if not self._drawn or not self.is_mounted:
            self.refresh()
            return
        width, height = self.size
        base = self.rich_style
        changed = [y for y in range(height) if self._drawn.get(y) != self._line(y, width, base)[0]]
        for y in changed:
            self.refresh(Region(0, y, width, 1))

    def select(self, run_id: str) -> None:
        """Move the cursor to a run (when the view shows it)."""
        try:
            self.cursor = self.runs.view.index(run_id)
        except ValueError:
            return

    # -- layout ----------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._fit_columns()
        self.virtual_size = _virtual_size(len(self.runs.view))
        self._scroll_to_cursor()

    def _fit_columns(self) -> None:
        width = self.size.width - _GUTTER - 1  # the scrollbar
        names = [self.runs.rows[i].name or i for i in self.visible_ids()[:200]]
        self._name_width = max(10, min(22, max((len(n) for n in names), default=12)))
        columns = [c if c.key != "name" else Column("name", "name", self._name_width) for c in COLUMNS]
        while sum(c.width + 1 for c in columns) > width and any(c.drop for c in columns):
            columns.remove(min((c for c in columns if c.drop), key=lambda c: c.drop))
        self._columns = tuple(columns)

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns that fit the current width."""
        return self._columns

    # -- drawing ---------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        signature, draw = self._line(y, width, self.rich_style)
        self._drawn[y] = signature
        return draw()

    def _line(self, y: int, width: int, base: Style) -> tuple[tuple[Any, ...], Callable[[], Strip]]:
        """What line ``y`` shows (compared between ticks) and how to draw it."""
        if y == 0:
            header = self._header_parts()
            return ("header", width, base, header), lambda: self._header(width, base, header)
        index = int(self.scroll_offset.y) + y - 1
        view = self.runs.view
        if not view and y == 2:
            hint = self._hint_text()
            return ("hint", width, base, hint), lambda: self._hint(hint, width, base)
        row = self.runs.rows.get(view[index]) if index < len(view) else None
        if row is None:
            return ("blank", width, base), lambda: Strip.blank(width, base)
        parts = self._row_parts(row, index == self.cursor, base)
        return ("row", width, base, parts), lambda: self._row(parts, width)

    def _hint_text(self) -> str:
        if self.runs.rows:
            return "  no run matches the filter — Esc clears it"
        if self.runs.complete:
            return "  no runs yet — press n to launch one (or Enter on a task)"
        return "  reading the run index…"

    def _hint(self, hint: str, width: int, base: Style) -> Strip:
        return self._strip(Text(hint, style=self._style("dim"), no_wrap=True, end=""), width, base)

    def _style(self, name: str, background: bool = False) -> Style:
        # Resolved in full, so that a colour with alpha ($text-muted) is blended over the
        # table's background (a partial style leaves it white, unreadable in light themes);
        # the background is kept only where the row's own must not show through.
        # (Kept until the styles change: a refresh of the whole table or new CSS forgets them.)
        found = self._styles.get((name, background))
        if found is None:
            full = self.get_component_rich_style(f"run-table--{name}", partial=False)
            found = full if background else \
                Style(color=full.color, bold=full.bold, italic=full.italic, underline=full.underline)
            self._styles[(name, background)] = found
        return found

    def _colour_styles(self, run_id: str) -> tuple[Style, Style]:
        """A run's colour, and its colour in bold (the status glyph)."""
        hex_colour = self.run_colors.hex(run_id)
        found = self._colours.get(hex_colour)
        if found is None:
            colour = Style(color=hex_colour)
            found = self._colours[hex_colour] = (colour, colour + Style(bold=True))
        return found

    def _header_parts(self) -> tuple[Any, ...]:
        header = self._style("header", background=True)
        sorted_style = self._style("sorted", background=True)
        arrow = "▼" if self.runs.descending else "▲"
        labels = []
        for column in self._columns:
            title = column.title
            if column.key == "metric":
                title = self._metric_title()
            sorted_here = column.key == self.runs.sort
            label = (title + arrow) if sorted_here else title
            label = label[: column.width]
            label = label.rjust(column.width) if column.right else label.ljust(column.width)
            labels.append((label, sorted_style if sorted_here else header))
        return header, tuple(labels)

    def _header(self, width: int, base: Style, parts: tuple[Any, ...]) -> Strip:
        header, labels = parts
        text = Text(" " * _GUTTER, style=header, no_wrap=True, end="")
        for label, style in labels:
            text.append(label, style)
            text.append(" ", header)
        return self._strip(text, width, base + header)

    def _metric_title(self) -> str:
        keys = {self.runs.headline(i)[0] for i in self.visible_ids()} - {None}
        leaves = {k.rsplit("/", 1)[-1] for k in keys}  # val/loss and train/loss: "loss"
        if len(keys) == 1 and len(next(iter(keys))) <= 7:
            return next(iter(keys))
        return leaves.pop() if len(leaves) == 1 else "metric"

    def _row_parts(self, row: Run, is_cursor: bool, base: Style) -> tuple[Any, ...]:
        """A row's styled pieces: its style, then ``(text, style)`` per piece, and the cursor's
        colour where the cursor is on it (None elsewhere).

        Kept per run while what they are made of is the same (the same row record and the
        values below): a tick compares every line on screen, and most rows did not change.
        """
        run_id = row.id
        now = self.clock()
        clock = (present.age(row.started_at or row.created_at, now), present.seconds(self.runs.ran(row, now)))
        key = (is_cursor, is_cursor and self.has_focus, run_id in self.selection.marked,
               self.selection.pinned == run_id, self.run_colors.hex(run_id), base, self._columns,
               self.runs.headline(run_id)[1], self.runs.device(row), clock)
        kept = self._parts.get(run_id)
        if kept is not None and kept[0] is row and kept[1] == key:
            return kept[2]
        parts = self._make_row_parts(row, is_cursor, base, now, clock)
        if len(self._parts) > 1000:
            self._parts.clear()
        self._parts[run_id] = (row, key, parts)
        return parts

    def _make_row_parts(self, row: Run, is_cursor: bool, base: Style, now: float,
                        clock: tuple[str, str]) -> tuple[Any, ...]:
        run_id = row.id
        status = row.status
        colour, bold = self._colour_styles(run_id)
        marked = run_id in self.selection.marked
        row_style = base
        if marked:
            row_style = row_style + Style(bgcolor=self._style("marked", background=True).bgcolor)
        cursor = None
        if is_cursor:
            # The cursor is a quiet tint (see colors.py), not the theme's primary: run colours
            # and status colours stay readable on it; one that would not is drawn in the text colour.
            cursor = self.run_colors.cursor(self.has_focus)
            row_style = row_style + Style(bgcolor=cursor.hex6, color=self.run_colors.foreground.hex6)
        mark = "⚑" if self.selection.pinned == run_id else ("◆" if marked else " ")
        pieces: list[tuple[str, Style | None]] = [(mark, colour),
                                                  (present.STATUS_GLYPHS.get(status, "?"), bold),
                                                  (" ", None)]
        dim = self._style("dim")
        started, duration = clock
        for column in self._columns:
            if column.key == "started":
                value, style = started, dim
            elif column.key == "duration":  # the time it ran, not the pauses between its attempts
                value, style = duration, None
            else:
                value, style = self._cell(column.key, row, colour, dim)
            if len(value) > column.width:
                value = value[: column.width - 1] + "…"
            value = value.rjust(column.width) if column.right else value.ljust(column.width)
            pieces += [(value, style), (" ", None)]
        return row_style, tuple(pieces), cursor

    def _row(self, parts: tuple[Any, ...], width: int) -> Strip:
        row_style, pieces, cursor = parts
        text = Text(no_wrap=True, end="", style=row_style)
        for value, style in pieces:
            text.append(value, style)
        if cursor is not None:
            self._keep_legible(text, cursor)
        return self._strip(text, width, row_style)

    def _keep_legible(self, text: Text, background: Any) -> None:
        """Draw in the text colour every span whose colour would not read on the cursor."""
        foreground = Style(color=self.run_colors.foreground.hex6)
        for span in list(text.spans):
            style = span.style
            if isinstance(style, Style) and style.color is not None and style.color.triplet is not None:
                if not self.run_colors.legible(style.color.triplet.hex, background):
                    text.stylize(foreground, span.start, span.end)

    def _cell(self, key: str, row: Run, colour: Style, dim: Style) -> tuple[str, Style | None]:
        if key == "name":
            return row.name or row.id, colour + Style(bold=True)
        if key == "task":  # ⊞: a trial of a sweep (w opens the sweep)
            return ("⊞ " if row.sweep_id else "") + (row.task or "—"), None
        if key == "status":
            return row.status.value, self._style(row.status.value)
        if key == "progress":  # a queued run: why it waits (a Slurm job's PENDING reason)
            waiting = present.waiting_text(row)
            return (waiting, Style(dim=True, italic=True)) if waiting else (present.progress_bar(row), None)
        if key == "device":  # for auto, the device the run chose once it has set up
            device = (self.runs.device(row) or "—").replace("cuda:", "cuda")
            if row.backend == "ddp":
                device += f" ddp×{row.nproc or 1}"
            return device, None
        if key == "metric":
            return present.metric(self.runs.headline(row.id)[1]), None
        if key == "git":
            return present.git_short(row), dim
        return str(getattr(row, key, None) or ""), None

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        segments = list(text.render(self.app.console))
        return Strip(segments).adjust_cell_length(width, style)

    # -- cursor and keys -------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        count = len(self.runs.view)
        if count and not 0 <= new < count:
            self.cursor = max(0, min(count - 1, new))
            return
        self._scroll_to_cursor()
        self.refresh()
        run_id = self.current
        if run_id != self._cursor_id:
            self._cursor_id = run_id
            self.post_message(RunHighlighted(run_id))

    def _scroll_to_cursor(self) -> None:
        rows = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, immediate=True)

    def on_focus(self) -> None:
        self.refresh()  # the cursor's tint says whether the table has focus

    def on_blur(self) -> None:
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        if self.runs.view:
            self.cursor = max(0, min(len(self.runs.view) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        """Move the cursor by a screenful."""
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        """Jump to the first or the last run."""
        self.action_cursor(len(self.runs.view) if end else -len(self.runs.view))

    def action_open(self) -> None:
        """Open the run under the cursor."""
        if self.current:
            self.post_message(RunOpenRequested(self.current))

    def action_sort_next(self) -> None:
        """Sort by the next column to the right (wrapping round)."""
        keys = [c.key for c in self._columns]
        now = keys.index(self.runs.sort) if self.runs.sort in keys else -1
        self._sort(keys[(now + 1) % len(keys)])

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self._sort(self.runs.sort, not self.runs.descending)

    def _sort(self, column: str, descending: bool | None = None) -> None:
        self.runs.set_sort(column, descending)
        self.post_message(self.SortChanged(self.runs.sort, self.runs.descending))
        self.data_changed()

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x - _GUTTER
            for column in self._columns:
                if 0 <= x < column.width + 1:
                    descending = (not self.runs.descending) if column.key == self.runs.sort else None
                    self._sort(column.key, descending)
                    return
                x -= column.width + 1
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.runs.view):
            self.cursor = index
            if event.chain >= 2:
                self.action_open()


def _virtual_size(rows: int) -> Size:
    """The table's scrollable size: a header line and a line per run. No width: lines are
    drawn to the table's width and never scroll sideways, and a virtual size that follows
    the width would lay the whole screen out again on a resize (or on the first paint)."""
    return Size(0, rows + 1)
