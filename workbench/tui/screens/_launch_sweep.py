"""The launch form's sweep half: a list or a distribution in a field turns the launch into a sweep.

A mixin of :class:`~workbench.tui.screens.launch.LaunchForm`. Which text is a sweep is
``workbench.tui._sweeps.field_param``'s rule (the CLI's ``-g`` grammar). While a field holds
one, the form shows what the sweep makes (a grid: the product of the lists; a random search:
its ``trials``) and a ``parallel`` field; the debounced check runs ``plan_sweep`` as
``workbench sweep start`` does, and Enter runs ``plan_sweep`` then ``start_sweep`` in a
thread: one snapshot, every trial queued. Messages use the form's labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Label, Static

from workbench.errors import WorkbenchError
from workbench.runs import present
from workbench.runs.sweep_spec import SweepSpecError
from workbench.tui._state import Changes
from workbench.tui._sweeps import (
    DEFAULT_TRIALS,
    check_items,
    describe_sweep,
    field_param,
    sweep_kind,
    sweep_words,
    takes_list,
)
from workbench.tui._typed import workbench_app
from workbench.tui.messages import LaunchChecked

if TYPE_CHECKING:
    from workbench.runs.sweep_spec import Param

__all__ = ["SweepFields"]


class SweepFields:
    """The sweep rows of the launch form and what they do (mixed into ``LaunchForm``)."""

    # Provided by LaunchForm.
    fields: list[Any]
    base: dict[str, str]
    task_name: str
    fork_of: Any
    field_errors: dict[str, str]
    query_one: Any
    post_message: Any
    app: Any
    _radio: Any
    _value: Any
    overrides: Any
    _field_of: Any
    show_failure: Any
    dismiss: Any

    sweep_params: dict[str, Param]

    # -- building --------------------------------------------------------------------

    def _sweep_rows(self) -> ComposeResult:
        """The trials and parallel inputs (hidden until a field holds a sweep)."""
        with Horizontal(id="sweep-row", classes="field-row"):
            yield Label("parallel", classes="field-name")
            yield Input("", placeholder="queue's limit", id="parallel", type="integer", compact=True,
                        classes="field-input", tooltip="At most this many trials run at once "
                                                       "(empty: the project's queue limits)")
            yield Label("trials", id="trials-label", classes="field-name short")
            yield Input("", placeholder=str(DEFAULT_TRIALS), id="trials", type="integer", compact=True,
                        classes="small-input", tooltip="How many runs a random search draws")

    # -- reading a field ---------------------------------------------------------------

    def _sweep_param(self, spec: Any, text: str) -> tuple[Param | None, str]:
        """The sweep a field's changed text describes (None: one value) and its first refusal."""
        if self.fork_of is not None:
            return None, ""  # a fork is one run
        try:
            param = field_param(spec.name, spec.type, text)
        except SweepSpecError as exc:
            return None, sweep_words(str(exc))
        if param is None:
            return None, ""
        return param, check_items(spec, param, self.task_name)

    def _set_sweep_param(self, name: str, param: Param | None) -> None:
        if param is None:
            self.sweep_params.pop(name, None)
        else:
            self.sweep_params[name] = param
        self._show_sweep()

    @property
    def is_sweep(self) -> bool:
        """Whether a field holds a list or a distribution: Enter starts a sweep."""
        return bool(self.sweep_params)

    def sweep_shape(self) -> tuple[str, int, str]:
        """The sweep's kind, its run count and the line that describes it."""
        params = self._ordered_params()
        kind = sweep_kind(params)
        count, line = describe_sweep(params, self._int("trials"))
        return kind, count, line

    def _ordered_params(self) -> list[Param]:
        return [self.sweep_params[f.name] for f in self.fields if f.name in self.sweep_params]

    def _int(self, id: str) -> int | None:
        text = self._value(id).strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def _show_sweep(self) -> None:
        """Show or hide the sweep rows; say what the sweep makes (before Enter)."""
        try:
            row = self.query_one("#sweep-row")
            note = self.query_one("#sweep-note", Static)
        except Exception:  # composing, or a fork form (no sweep rows)
            return
        sweep = self.is_sweep
        row.display = sweep
        button = self.query_one("#launch", Button)
        label = "Start sweep" if sweep else ("Fork" if self.fork_of else "Launch")
        if str(button.label) != label:
            button.label = label
            button.refresh(layout=True)  # the label's width changed
        if not sweep:
            note.update(self._list_field_hint())
            note.display = bool(note.content)
            return
        kind, count, line = self.sweep_shape()
        trials_shown = kind == "random"
        self.query_one("#trials").display = trials_shown
        self.query_one("#trials-label").display = trials_shown
        parallel = self._int("parallel")
        limit = f"; at most {parallel} at once" if parallel else "; as many at once as the queue allows"
        name = self._value("run-name").strip() or "NAME"
        note.update(Content.from_markup(
            "[b $accent]Sweep[/] — $line$limit\n[dim]One code snapshot for every run; each run waits in the "
            "queue. name names the sweep (its runs: $name-1, $name-2, …).", line=line, limit=limit, name=name))
        note.display = True

    def _list_field_hint(self) -> Content | str:
        """In a list field, ``[64, 64]`` is one value: say how to sweep it instead."""
        for i, spec in enumerate(self.fields):
            text = self.query_one(f"#cfg-{i}", Input).value.strip()
            if text.startswith("[") and text != self.base.get(spec.name, "") and takes_list(spec.type):
                return Content.from_markup(
                    "[dim]$name takes a list: $text is its value, not a sweep. To sweep it, separate lists "
                    "with commas: $text, [32]", name=spec.name, text=text)
        return ""

    # -- the request -------------------------------------------------------------------

    def sweep_request(self) -> Any:
        """The ``SweepRequest`` the form describes now (as ``workbench sweep start`` builds one)."""
        from workbench.runs.sweep import SweepRequest

        params = self._ordered_params()
        swept = {p.key for p in params}
        fixed = [o for o in self.overrides() if o.partition("=")[0] not in swept]
        kind = sweep_kind(params)
        trials = self._int("trials")
        profile = self._value("profile")
        tags = [t.strip() for t in self._value("tags").replace(",", " ").split() if t.strip()]
        return SweepRequest(
            task=self.task_name, params=[p.describe() for p in params], fixed=fixed,
            random=(trials if trials is not None else DEFAULT_TRIALS) if kind == "random" else None,
            parallel=self._int("parallel"), name=self._value("run-name").strip() or None,
            device=self._radio("device"), profile=None if profile in ("", "(none)") else profile, tags=tags)

    def _launch_settings_error(self) -> str:
        """A sweep's trials run with the project's backend, processes and precision: say so."""
        defaults = workbench_app(self).project.defaults  # type: ignore[arg-type]
        backend, precision = self._radio("backend"), self._value("precision")
        nproc = self._int("nproc")
        wanted = (defaults.backend, defaults.nproc if defaults.backend == "ddp" else 1, defaults.precision)
        if (backend or defaults.backend, nproc or 1, precision or defaults.precision) != wanted:
            return (f"a sweep runs every trial with the project's backend {wanted[0]}, processes {wanted[1]} "
                    f"and precision {wanted[2]} ([defaults] in workbench.toml): set them back for a sweep")
        where = self._radio("where")
        if where not in (None, "local"):
            return (f"a sweep from the app runs on this machine's queue, not on {where} "
                    "(submitting a sweep to a cluster is not built yet): choose this machine")
        return ""

    # -- checking and starting ----------------------------------------------------------

    @work(thread=True, exclusive=True, group="launch-check")
    def _check_sweep(self, serial: int, request: Any, settings_error: str, probe: dict[str, Any] | None) -> None:
        from workbench.project import find_profile, resolve_config
        from workbench.runs.sweep import plan_sweep

        app = workbench_app(self)  # type: ignore[arg-type]
        if probe is None:  # not probed yet: check against the CPU for now
            probe = {"devices": ["cpu"], "default": "cpu"}
        profile_values = None
        try:
            if request.profile:
                path = find_profile(app.project.root, request.profile)
                profile_values = present.flatten_config(resolve_config(self.fields, profile=path,
                                                                       task_name=self.task_name))
            if settings_error:
                raise WorkbenchError(settings_error)
            plan = plan_sweep(app.project, request, index=app.index, probe=probe)
        except WorkbenchError as exc:
            message = sweep_words(str(exc))
            self.post_message(LaunchChecked(serial, message, self._field_of(message), profile=request.profile,
                                            profile_values=profile_values))
            return
        except Exception as exc:  # an unexpected failure is shown, not raised
            self.post_message(LaunchChecked(serial, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(LaunchChecked(serial, "", None, None, plan.prepared.config, profile=request.profile,
                                        profile_values=profile_values,
                                        warnings=[sweep_words(w) for w in plan.prepared.warnings]))

    @work(thread=True, exclusive=True, group="launch-sweep")
    def _start_sweep(self, request: Any) -> None:
        """Plan and start the sweep as ``workbench sweep start`` does (one snapshot, trials queued)."""
        from workbench.runs import probe_devices
        from workbench.runs.sweep import plan_sweep, start_sweep

        app = workbench_app(self)  # type: ignore[arg-type]
        try:
            probe = app.probe or probe_devices(app.project.state_dir)
            plan = plan_sweep(app.project, request, index=app.index, probe=probe)
            sweep, runs = start_sweep(app.project, plan, index=app.index)
        except WorkbenchError as exc:
            app.call_from_thread(self.show_failure, sweep_words(str(exc)))
            return
        except Exception as exc:  # starting must never take the app down
            app.call_from_thread(self.show_failure, f"{type(exc).__name__}: {exc}")
            return
        app.call_from_thread(self._sweep_started, sweep, runs)

    def _sweep_started(self, sweep: Any, runs: list[Any]) -> None:
        app = workbench_app(self)  # type: ignore[arg-type]
        app.runs.apply(runs)
        app._hand_down(Changes(runs={r.id for r in runs}))
        if app.screen is self:
            self.dismiss(runs[0].id if runs else None)
        select = getattr(app.screen, "select_run", None)
        if runs and select is not None:
            select(runs[0].id)
        limit = f", at most {sweep.parallel} at once" if sweep.parallel else ""
        app.notify(f"started sweep {sweep.label}: {sweep.kind}, {len(runs)} runs{limit} (w opens it)")
        app.request_tick()
