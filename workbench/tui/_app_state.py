"""What the app keeps between sessions: the view (``app-state.json``) and the settings (``app.toml``).

A mixin of :class:`~workbench.tui.app.WorkbenchApp`. The view is read in the start-up worker
(with the runs it names checked against the index: deleted runs are dropped) and applied
before the first page of runs is shown; every change to it schedules a write a moment later
(debounced, atomic), and quitting writes what is pending. The settings are read when the app
is built and written back when the palette changes one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.runs import present
from workbench.tui._persist import STATE_FILE, SavedView, read_view, write_atomic
from workbench.tui.messages import ViewRead
from workbench.tui.settings import SETTINGS_FILE, AppSettings, read_settings, write_settings

if TYPE_CHECKING:
    from textual.timer import Timer

    from workbench.project import Project
    from workbench.tui._state import RunCache
    from workbench.tui.widgets.run_table import Selection

__all__ = ["VIEW_DEBOUNCE", "AppStateMixin"]

#: Seconds after the last change to the view before it is written.
VIEW_DEBOUNCE = 0.5
#: Above this many saved runs, their existence is checked with one read of every id.
_FEW = 200


class AppStateMixin:
    """Reads, applies and writes the saved view and the settings (mixed into the app)."""

    # Provided by the app.
    project: Project
    runs: RunCache
    selection: Selection
    screen_stack: Any
    notify: Any
    set_timer: Any
    post_message: Any
    available_themes: Any
    index: Any

    settings: AppSettings
    settings_problems: list[str]
    _view_loaded: bool
    _view_timer: Timer | None
    _view_written: str | None

    def _init_app_state(self) -> None:
        state = Path(self.project.state_dir)
        self.view_path = state / STATE_FILE
        self.settings_path = state / SETTINGS_FILE
        self.settings, self.settings_problems = read_settings(self.settings_path, set(self.available_themes))
        self._view_loaded = False
        self._view_timer = None
        self._view_written = None

    def _show_settings_problems(self) -> None:
        if self.settings_problems:
            where = present.tilde(str(self.settings_path))
            self.notify("\n".join(self.settings_problems), title=f"Settings: {where}", severity="warning",
                        timeout=20)

    # -- the view --------------------------------------------------------------------

    def _read_view(self) -> ViewRead:
        """(In the start-up worker.) The saved view, without the runs that are gone."""
        view, notice = read_view(self.view_path)
        dropped: list[str] = []
        if view is not None and view.run_ids():
            ids = view.run_ids()
            index = self.index
            existing = index.run_ids() if len(ids) > _FEW else {i for i in ids if index.get_run(i) is not None}
            dropped = view.keep_runs(existing)
        return ViewRead(view, notice, dropped)

    def on_view_read(self, message: ViewRead) -> None:
        view = message.view
        if message.notice:
            self.notify(f"{message.notice}; starting with a fresh view (it is rewritten at the next change)",
                        title=f"Saved view: {present.tilde(str(self.view_path))}", severity="warning", timeout=15)
        if view is not None:
            self.selection.restore(view.marked, view.pinned)
            try:
                self.runs.set_sort(view.sort, view.descending)
            except ValueError:
                pass  # a column this version does not sort by: keep the default
            if view.filter:
                self.runs.set_filter(view.filter)
            self._view_written = view.to_json() if not message.dropped else None
        main = self._main_screen()
        if main is not None:
            main.restore_view(view, self.settings)
        self._view_loaded = True

    def _main_screen(self) -> Any:
        from workbench.tui.screens.main import MainScreen

        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def view_changed(self) -> None:
        """The view changed: write it a moment after the last change (debounced)."""
        if not self._view_loaded:
            return  # the saved view is not applied yet: writing now would lose it
        if self._view_timer is not None:
            self._view_timer.stop()
        self._view_timer = self.set_timer(VIEW_DEBOUNCE, self.save_view)

    def current_view(self, main: Any = None) -> SavedView | None:
        """The view as it is now (None when the main screen is gone: its part is unknown)."""
        complete = self.runs.complete
        known = lambda run_id: not complete or run_id in self.runs.rows  # noqa: E731
        view = SavedView(marked=[i for i in self.selection.marked if known(i)],
                         pinned=self.selection.pinned if self.selection.pinned and known(self.selection.pinned)
                         else None,
                         sort=self.runs.sort, descending=self.runs.descending, filter=self.runs.filter.text)
        main = main or self._main_screen()
        if main is None:
            return None
        main.fill_view(view)
        view.metric_choice = {k: v for k, v in view.metric_choice.items() if known(k)}
        return view

    def save_view(self, main: Any = None) -> None:
        """Write the view now if it changed since the last write (``main``: the main screen,
        passed while it unmounts)."""
        if self._view_timer is not None:
            self._view_timer.stop()
            self._view_timer = None
        if not self._view_loaded:
            return
        view = self.current_view(main)
        if view is None:
            return
        text = view.to_json()
        if text == self._view_written:
            return
        try:
            write_atomic(self.view_path, text)
        except OSError as exc:
            self.notify(f"cannot save the view: {exc.strerror or exc}", severity="warning")
            return
        self._view_written = text

    # -- settings --------------------------------------------------------------------

    def change_settings(self, notice: bool = True, **changes: Any) -> None:
        """Change settings, apply them now, and write ``app.toml`` (``notice``: say so)."""
        for name, value in changes.items():
            setattr(self.settings, name, value)
        try:
            write_settings(self.settings_path, self.settings)
        except OSError as exc:
            self.notify(f"cannot write {present.tilde(str(self.settings_path))}: {exc.strerror or exc}",
                        title="Settings", severity="error")
            return
        self.apply_settings(set(changes))
        if not notice:
            return
        shown = ", ".join(f"{k} = {_shown(v)}" for k, v in changes.items())
        self.notify(f"{shown} (saved in {present.tilde(str(self.settings_path))})", title="Settings")

    def apply_settings(self, names: set[str]) -> None:  # pragma: no cover - the app defines it
        """Apply changed settings to what is on screen."""
        raise NotImplementedError


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]" if value else "[] (automatic)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
