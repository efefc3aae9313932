"""The Workbench app: launch, watch, compare and resume runs in the terminal.

``make_app(project_root)`` builds it for the ``workbench`` command and for the tests. The
app owns what every screen shares (the run cache, the curves, the logs, run colours, marks
and the pinned run) and one refresh tick: every half second a thread worker reads what
changed in the run index (see ``_watcher.py``) and posts it back; the app merges it and
hands the changes to the screen on top. Launching, stopping, resuming, forking, deleting,
discovery and the device probe run in thread workers too: the event loop never waits on
SQLite, git or a subprocess.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from workbench.errors import WorkbenchError
from workbench.runs import present, probe_devices
from workbench.tui._app_state import AppStateMixin
from workbench.tui._run_actions import RunActionsMixin
from workbench.tui._state import Changes, LogCache, RunCache, SeriesCache
from workbench.tui._watcher import PollRequest, Watcher
from workbench.tui.commands import SettingsCommands
from workbench.tui.colors import RunColors
from workbench.tui.messages import (
    DevicesProbed,
    FirstPageRead,
    IndexPolled,
    IndexReplaced,
    TasksDiscovered,
)
from workbench.tui.widgets.run_table import Selection

if TYPE_CHECKING:
    from workbench.project import Discovery, Project
    from workbench.store import RunIndex

__all__ = ["WorkbenchApp", "make_app"]

#: Rows read before the first paint; the rest of the index follows in the same worker.
FIRST_PAGE = 200
#: Seconds between refresh ticks.
POLL_INTERVAL = 0.5
#: Seconds between checks for runs whose processes died without a word.
RECONCILE_INTERVAL = 5.0


class WorkbenchApp(AppStateMixin, RunActionsMixin, App[None]):
    """The Workbench terminal app for one project.

    Args:
        project: The loaded project (``workbench.project.Project``).
        clock: Returns the current unix time (tests pass a fixed one).
        probe: The device probe's answer; probed in a worker when None.
        poll_interval: Seconds between refresh ticks (0: no automatic ticks; None: the
            settings' ``refresh_interval``).
    """

    TITLE = "Workbench"
    COMMANDS = App.COMMANDS | {SettingsCommands}
    CSS_PATH: ClassVar[list[str | Path]] = ["app.tcss", "main.tcss", "launch.tcss", "run.tcss", "compare.tcss",
                                            "sweep.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", tooltip="Quit (runs keep running)"),
        Binding("question_mark", "help", "Help", key_display="?"),
        # Priority: the palette opens from any screen and field (the launch form's inputs too).
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True),
    ]

    def __init__(self, project: Project, *, clock: Callable[[], float] = time.time,
                 probe: dict[str, Any] | None = None, poll_interval: float | None = None) -> None:
        super().__init__()
        self.project = project
        self._init_app_state()
        self.clock = clock
        self.probe: dict[str, Any] | None = probe
        self.probe_error = ""
        self.poll_interval = self.settings.refresh_interval if poll_interval is None else poll_interval
        self._poll_timer: Any = None
        self.runs = RunCache(clock)
        self.series = SeriesCache()
        self.logs = LogCache()
        self.run_colors = RunColors(Path(project.state_dir) / "run-colors.json")
        self.selection = Selection(changed=self.view_changed)
        self.discovery: Discovery | None = None
        self.profiles: list[str] = []
        self.discovery_error = ""
        self.ticks = 0
        self._index: RunIndex | None = None
        self._index_lock = threading.Lock()
        self._index_file: tuple[int, int] | None = None
        self._retired: list[Any] = []  # replaced indexes, closed at exit (a worker may still read one)
        self._opened = 0  # how many times the index was (re)opened
        self._shown = 1  # which opening the caches hold
        self._watcher: Watcher | None = None
        self._in_flight = False
        self._again = False
        self._want_last: set[str] = set()
        self._want_spans: set[str] = set()
        self._recent: set[str] = set()
        self._last_reconcile = 0.0
        self._started = False
        self._gc_paused = False

    # -- start-up --------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        from workbench.tui.screens.main import MainScreen

        return MainScreen()

    async def _process_messages(self, *args: Any, **kwargs: Any) -> None:
        # Start-up makes tens of thousands of objects that all stay (parsed CSS, widgets,
        # styles): the collector's passes over them before the first paint (a full one among
        # them: 15-25 % of the main thread's time to the paint) free nothing. They wait for
        # the paint (Textual runs the app, under run() and run_test() alike, in this method).
        self._gc_paused = gc.isenabled()
        gc.disable()
        try:
            await super()._process_messages(*args, **kwargs)
        finally:
            self._resume_gc()  # (an app that quits before its first paint)

    def _resume_gc(self) -> None:
        if self._gc_paused:
            self._gc_paused = False
            gc.enable()

    def on_mount(self) -> None:
        if self.settings.theme and self.settings.theme != self.theme:
            self.theme = self.settings.theme
        self._show_settings_problems()
        self.run_colors.set_theme(self.theme_variables, self.current_theme.dark)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._in_flight = True
        self._start()
        self._discover()

    def _after_first_paint(self) -> None:
        # The rest of the index, the device probe and the ticks wait for the first paint, so
        # that their threads do not compete with it for the interpreter.
        self._resume_gc()
        self._in_flight = False
        self.tick()
        if self.probe is None:
            self._probe()
        if self.poll_interval > 0:
            self._poll_timer = self.set_interval(self.poll_interval, self.tick)

    def _theme_changed(self, theme: Any) -> None:
        if self.theme != self.settings.theme:  # however it was chosen (Textual's "Theme" too): keep it
            self.change_settings(notice=False, theme=self.theme)
        self.run_colors.set_theme(self.theme_variables, self.current_theme.dark)
        self.screen.refresh(repaint=True)
        for chart in self.screen.query("MetricChart"):
            chart.data_changed(None)  # type: ignore[attr-defined]

    @property
    def index(self) -> Any:
        """The project's run index, opened on first use (in a worker thread).

        Every use checks that the file at the index path is still the one opened (same
        device and inode). When it was deleted or replaced, the old connection is retired,
        the path is opened again (a new, empty index when nothing is there) and the app is
        told with :class:`IndexReplaced`, so no run is written into a file nobody reads.
        """
        return self._open()[0]

    @property
    def watcher(self) -> Watcher:
        """Reads ticks from the index."""
        return self._open()[1]

    def _open(self) -> tuple[Any, Watcher, int]:
        """The index, its watcher and which opening it is (reopened when the file changed)."""
        path = Path(self.project.index_path)
        replaced: IndexReplaced | None = None
        with self._index_lock:
            if self._index is not None and _file_id(path) != self._index_file:
                replaced = IndexReplaced(str(path), deleted=not path.exists())
                self._retired.append(self._index)
                self._index = None
            if self._index is None:
                from workbench.store import RunIndex

                self._index = RunIndex(path)
                self._index_file = _file_id(path)
                self._watcher = Watcher(self._index)
                self._opened += 1
                if replaced is not None:
                    replaced.opening = self._opened
            assert self._watcher is not None
            found = (self._index, self._watcher, self._opened)
        if replaced is not None:
            self.post_message(replaced)
        return found

    @work(thread=True, group="poll")
    def _start(self) -> None:
        self.post_message(self._read_view())  # marks and the pin apply before the first rows show
        self.post_message(FirstPageRead(self.watcher.first_page(FIRST_PAGE)))

    @work(thread=True, group="discover")
    def _discover(self) -> None:
        from workbench.project import discover

        configs = self.project.configs_dir
        profiles = sorted(p.relative_to(configs).with_suffix("").as_posix()
                          for p in configs.rglob("*.toml")) if configs.is_dir() else []
        try:
            self.post_message(TasksDiscovered(discover(self.project), profiles=profiles))
        except Exception as exc:  # a broken project file is shown, not raised
            self.post_message(TasksDiscovered(None, f"{type(exc).__name__}: {exc}"))

    @work(thread=True, group="probe")
    def _probe(self) -> None:
        try:
            self.post_message(DevicesProbed(probe_devices(self.project.state_dir)))
        except WorkbenchError as exc:
            self.post_message(DevicesProbed(None, str(exc)))

    def on_first_page_read(self, message: FirstPageRead) -> None:
        self.runs.apply(message.rows)
        self._want_last.update(r.id for r in message.rows[:60])
        self._want_spans.update(r.id for r in message.rows if r.attempt > 1)
        self._hand_down(Changes(runs={r.id for r in message.rows}))
        self.call_after_refresh(self._after_first_paint)

    def on_tasks_discovered(self, message: TasksDiscovered) -> None:
        self.discovery, self.discovery_error = message.discovery, message.error
        self.profiles = message.profiles
        self._hand_down(Changes())

    def on_devices_probed(self, message: DevicesProbed) -> None:
        self.probe, self.probe_error = message.probe, message.error
        self._hand_down(Changes())

    # -- the refresh tick ------------------------------------------------------------

    def want_last(self, run_ids: Iterable[str]) -> None:
        """Ask for runs' last metric values at the next tick (the headline column)."""
        new = {i for i in run_ids if i not in self.runs.last}
        if new - self._want_last:
            self._want_last.update(new)
            self.request_tick()

    def request_tick(self) -> None:
        """Run a tick soon (now, or right after the one in flight)."""
        if self._in_flight:
            self._again = True
        else:
            self.call_later(self.tick)

    def build_request(self) -> PollRequest:
        """What the next tick reads, from what the screens show now."""
        live = set(self.runs.live_ids())
        watched = live | self._recent
        loads, tails = self.series.plan(watched)
        now = time.monotonic()
        reconcile = now - self._last_reconcile >= RECONCILE_INTERVAL
        if reconcile:
            self._last_reconcile = now
        last_of = sorted(self._want_last | live | self._recent)[:200]
        rows = [self.runs.rows[i] for i in [*last_of, *self._shown_ids()] if i in self.runs.rows]
        devices_of = list({r.id: (r.id, r.run_dir, r.attempt) for r in rows if self.runs.wants_device(r)}.values())
        return PollRequest(since=self.runs.since, loads=loads, tails=tails, last_of=last_of,
                           logs=self.logs.plan(), reconcile=reconcile, spans_of=sorted(self._want_spans)[:100],
                           devices_of=devices_of[:100])

    def _shown_ids(self) -> list[str]:
        """The runs on screen in the main screen's table."""
        main = self._main_screen()
        table = getattr(main, "table", None)
        return table.visible_ids() if table is not None and table.is_mounted else []

    def tick(self) -> None:
        """Start a refresh tick unless one is in flight."""
        if self._in_flight:
            return
        self._in_flight = True
        self._again = False
        self._poll(self.build_request(), self._shown)

    @work(thread=True, group="poll")
    def _poll(self, request: PollRequest, shown: int) -> None:
        from workbench.tui._watcher import PollResult

        try:
            _, watcher, opening = self._open()
            if opening != shown:  # the index was reopened: this request was for the old one
                self.post_message(IndexPolled(PollResult(), opening=opening, asked=shown))
                return
            result = watcher.poll(request)
        except Exception as exc:  # keep ticking: a locked or busy index is transient
            self.log.error(f"poll failed: {exc!r}")
            result = PollResult(since=request.since)
            opening = shown
        self.post_message(IndexPolled(result, opening=opening, asked=shown))

    def on_index_polled(self, message: IndexPolled) -> None:
        self.apply_poll(message)

    def on_index_replaced(self, message: IndexReplaced) -> None:
        """The index file was deleted or replaced: show what the new one holds, and say so."""
        if message.opening <= self._shown:
            return
        self._shown = message.opening
        gone = self.runs.clear()
        for run_id in gone:
            self.selection.forget(run_id)
            self.series.forget_run(run_id)
        self._want_last.clear()
        self._want_spans.clear()
        self._recent.clear()
        self._hand_down(Changes(removed=gone))
        where = present.tilde(message.path)
        if message.deleted:
            text = (f"{where} was deleted while the app was open: it now uses a new, empty index. "
                    "Runs whose folders remain can be put back with `workbench index rebuild`.")
        else:
            text = f"{where} was replaced by another file: the app reopened it and shows the runs it holds."
        self.notify(text, title="Run index replaced", severity="warning", timeout=15)
        self.request_tick()

    def apply_poll(self, message: IndexPolled) -> Changes:
        """Merge a tick's result into the caches and hand the changes to the screen."""
        result = message.result
        changes = Changes()
        if message.opening != self._shown or message.asked != self._shown:
            # Read from (or for) an index the app no longer shows: drop it and look again.
            self._in_flight = False
            self.call_later(self.tick)
            return changes
        changes.runs = self.runs.apply(result.runs)
        self._want_spans -= set(result.spans)
        self.runs.set_spans(result.spans)
        self.runs.set_devices(result.devices)
        # A resumed run's attempts come from its events: read them again when its row changes.
        self._want_spans.update(r.id for r in result.runs if r.attempt > 1)
        if not self.runs.complete:
            # What the app holds from now to its end (widgets, modules, the run rows) leaves
            # the collector's view: a full collection then scans only what came later (its
            # pause was ~100 ms, a visible stall, with 100 runs and a 3x3 overlay; ~40 ms after).
            gc.freeze()
        self.runs.complete = True
        self.runs.since = max(self.runs.since, result.since)
        self.runs.set_last(result.last)
        changes.last = set(result.last)
        self._want_last -= changes.last
        changes.series = self.series.apply(result.loads, result.tails)
        changes.logs = self.logs.apply(result.logs)
        # Runs that just changed get one more look after they end (their last points).
        self._recent = {i for i in changes.runs if i in self.runs.rows} if len(changes.runs) < 200 else set()
        self.ticks += 1
        self._in_flight = False
        self._hand_down(changes)
        if self._again:
            self._again = False
            self.call_later(self.tick)
        return changes

    def _hand_down(self, changes: Changes) -> None:
        for screen in self.screen_stack:
            apply = getattr(screen, "apply_changes", None)
            if apply is not None:
                apply(changes)

    def apply_settings(self, names: set[str]) -> None:
        """Apply changed settings to what is on screen (the palette's "Settings: …")."""
        from workbench.tui.widgets.chart import MetricChart

        if "theme" in names and self.settings.theme and self.theme != self.settings.theme:
            self.theme = self.settings.theme  # _theme_changed recolours the runs
        if "smoothing" in names:
            for screen in self.screen_stack:
                options = getattr(screen, "chart_options", None)
                if options is not None:
                    options.smoothing = self.settings.smoothing
                    for chart in screen.query(MetricChart):
                        chart.options_changed()
            self.view_changed()
        if "refresh_interval" in names and self._poll_timer is not None:
            self._poll_timer.stop()
            self.poll_interval = self.settings.refresh_interval
            self._poll_timer = self.set_interval(self.poll_interval, self.tick)
        if "chart_keys" in names:
            main = self._main_screen()
            if main is not None:
                main.chart_keys_changed()

    # -- names and helpers for screens -------------------------------------------------

    def run_name(self, run_id: str) -> str:
        """A run's name (its id when it has none)."""
        row = self.runs.rows.get(run_id)
        return (row.name or run_id) if row else run_id

    # -- help and the command palette ------------------------------------------------

    def action_help(self) -> None:
        """Show every key of the screen on top."""
        from workbench.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: Textual's own commands, then every action of the screen, of its
        table and charts, and of the app, by the name its key shows in the footer."""
        yield from super().get_system_commands(screen)
        from workbench.tui.widgets.chart import MetricChart
        from workbench.tui.widgets.run_table import RunTable

        from workbench.tui.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            yield SystemCommand("Export marked runs", "The marked runs, their config, metrics and events as CSV "
                                "into .workbench/exports/ (as `workbench export`)", self.export_marked)
        owners: list[Any] = [screen]
        for cls in (RunTable, MetricChart):
            owners.extend(screen.query(cls).results())
        owners.append(self)
        seen = set()
        for owner in owners:
            for binding in _bindings(owner):
                if not binding.description or binding.action.startswith(("cursor", "move", "page", "edge")):
                    continue
                title = binding.description
                if isinstance(owner, MetricChart) and owner.key:
                    title = f"{title} ({owner.key})"
                if (title, binding.action) in seen:
                    continue
                seen.add((title, binding.action))
                key = binding.key_display or binding.key.split(",")[0]
                yield SystemCommand(title, f"{_doc(owner, binding.action)} (key: {key})",
                                    partial(owner.run_action, binding.action))

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Save an SVG screenshot, by default into the project's ``.workbench/screenshots/``.

        (Textual's default, ``~/Downloads``, is often missing on a server: the save failed
        without saying where it tried.) The notification names the file.
        """
        if path is None:
            folder = Path(self.project.state_dir) / "screenshots"
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.notify(f"cannot make {present.tilde(str(folder))}: {exc.strerror or exc}",
                            title="Screenshot", severity="error")
                return None
            path = str(folder)
        return super().deliver_screenshot(filename, path, time_format)

    async def action_quit(self) -> None:
        """Quit. Runs keep running; reopening the app shows them as they are."""
        self.exit(message=self.goodbye())

    def goodbye(self) -> Text | None:
        """What quitting prints when runs are still going: they keep running, and how to come back."""
        live = [self.runs.rows[i] for i in self.runs.live_ids() if i in self.runs.rows]
        if not live:
            return None
        live.sort(key=lambda r: r.started_at or r.created_at, reverse=True)
        names = ", ".join(r.label for r in live[:3]) + (f" and {len(live) - 3} more" if len(live) > 3 else "")
        where = present.tilde(str(self.project.root))
        one = len(live) == 1
        count = "1 run" if one else f"{len(live)} runs"
        return Text(f"{count} still going ({names}): {'it keeps' if one else 'they keep'} running without the "
                    f"app. Reopen it with `workbench` in {where} (or `workbench ls`); stop "
                    f"{'it with `workbench stop NAME`' if one else 'them with `workbench stop NAME...`'}.")

    def on_unmount(self) -> None:
        gc.unfreeze()  # (what the app froze can be collected again: a process may go on, as tests do)
        self.save_view()  # a change made just before quitting is not lost to the debounce
        # Runs keep their colours across restarts; deleted runs are forgotten (once the whole
        # index has been read, so that a quick quit does not forget runs never seen).
        self.run_colors.save(keep=set(self.runs.rows) if self.runs.complete else None)
        for index in [*self._retired, self._index]:
            if index is not None:
                try:
                    index.close()
                except Exception:
                    pass


def _file_id(path: Path) -> tuple[int, int] | None:
    """The file's device and inode (None when it is missing): what identifies the index."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _bindings(node: Any) -> list[Binding]:
    out = []
    for binding in getattr(node, "BINDINGS", []):
        if isinstance(binding, Binding):
            out.append(binding)
    return out


def _doc(screen: Screen, action: str) -> str:
    name = action.split("(", 1)[0]
    method = getattr(screen, f"action_{name}", None)
    doc = (method.__doc__ or "").strip().splitlines() if method else []
    return doc[0] if doc else name.replace("_", " ")


def make_app(project_root: Path, *, clock: Callable[[], float] = time.time,
             probe: dict[str, Any] | None = None, poll_interval: float | None = None) -> WorkbenchApp:
    """Build the app for the project at ``project_root`` (the CLI and the tests use this).

    Args:
        project_root: A folder with ``workbench.toml``.
        clock: Returns the current unix time (tests pass a fixed one).
        probe: The device probe's answer (tests pass one; otherwise probed in a worker).
        poll_interval: Seconds between refresh ticks (0: only on request; None: the
            settings' ``refresh_interval``, 0.5 by default).

    Returns:
        The app, not yet running.

    Raises:
        ProjectError: ``workbench.toml`` is missing or invalid (one line).
    """
    from workbench.project import load_project

    return WorkbenchApp(load_project(Path(project_root)), clock=clock, probe=probe,
                        poll_interval=poll_interval)
