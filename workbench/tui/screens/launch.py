"""The launch form: a task's config as typed inputs, checked as you type, Enter launches.

Each config field is an input holding its default (or the chosen profile's value). A field
is passed as an override only when its text differs from that value. Every keystroke is
checked at once against the field's type (the same ``resolve_config`` the CLI uses), and a
moment later the whole request goes through ``workbench.runs.prepare`` in a thread (profile,
device, backend, name): nothing is written until Launch. The same form forks a run (its
fields start from the run's config and the overrides are the edits; it says plainly which
code the fork runs) and clones one (a new run, current code, the run's config as the
starting values). Fields whose value differs from their starting point are marked ``◆``,
and messages name the form's labels ("processes"), not the CLI's flags ("--nproc"). A list
or a distribution in a field turns the launch into a sweep (``_launch_sweep.py``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from workbench.errors import WorkbenchError
from workbench.runs import present
from workbench.store import Run
from workbench.tui._state import Changes
from workbench.tui._typed import workbench_app
from workbench.tui.messages import ForkRequested, LaunchChecked, LaunchRequested
from workbench.tui.screens._choices import Choices
from workbench.tui.screens._launch_sweep import SweepFields
from workbench.tui.screens._launch_where import WhereFields

__all__ = ["Choices", "LaunchForm", "form_words"]

_DEBOUNCE = 0.25
_PRECISIONS = ("32", "bf16-mixed", "16-mixed")
_NO_PROFILE = "(none)"
_LATEST = "latest"
#: The form's label for each CLI flag a launch check may name.
_LABELS = {"nproc": "processes", "device": "device", "backend": "backend", "precision": "precision",
           "name": "name", "tag": "tags", "profile": "profile", "steps": "steps", "on": "where",
           "nodes": "nodes", "gpus-per-node": "GPUs per node"}
_FLAG = re.compile(r"--(" + "|".join(_LABELS) + r")(?![\w-])")


def form_words(message: str) -> str:
    """A launch check's message in the form's words: ``--nproc 9`` → ``processes 9``."""
    return _FLAG.sub(lambda m: _LABELS[m.group(1)], message)


def _text(value: Any) -> str:
    """A value as it is typed in an override (TOML-like); empty for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return present.value_text(value)


class LaunchForm(SweepFields, WhereFields, ModalScreen[str | None]):
    """New run of ``task`` (or a fork of ``fork_of``, or a clone of ``clone_of``: run rows); a list or
    a distribution in a field makes it a sweep (see ``_launch_sweep.py``)."""

    _ready = False
    AUTO_FOCUS = ".field-input"  # the first config field, not the profile choice

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+l", "launch", "Launch"),
        # Enter in a field submits it (and launches); on a choice (device, backend) it reaches here.
        Binding("enter", "launch", "Launch", show=False),
        # Priority: the focus moves when the key is read, in order with the keys around it.
        # Otherwise Tab is first offered to the focused input, and characters typed right
        # after it (a fast typist, a laggy SSH link) land in the field being left.
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(self, task: str, *, fork_of: Run | None = None, clone_of: Run | None = None) -> None:
        super().__init__(classes="launch-form")
        self.task_name = task
        self.fork_of = fork_of
        self.clone_of = clone_of
        self.fields: list[Any] = []
        self.base: dict[str, str] = {}  # field name -> the text that means "not overridden"
        self.summary = ""
        self.serial = 0
        self.checked_serial = -1
        self.check_error = ""
        self.check_warnings: list[str] = []
        self.field_errors: dict[str, str] = {}
        self.sweep_params = {}
        self.launching = False
        self._timer: Timer | None = None
        self._profile_base: str | None = None
        self._devices_shown: tuple[str, ...] = ()
        self._probe_checked: Any = None

    @classmethod
    def for_fork(cls, row: Run) -> LaunchForm:
        """The form in fork mode: the run's config as the starting values."""
        return cls(row.task or "", fork_of=row)

    @classmethod
    def for_clone(cls, row: Run) -> LaunchForm:
        """A new run of the run's task with its config, device and tags as the starting values
        (the current code: a launch's fresh snapshot)."""
        return cls(row.task or "", clone_of=row)

    # -- building --------------------------------------------------------------------

    def _task_info(self) -> Any:
        discovery = self.app.discovery  # type: ignore[attr-defined]
        if discovery is None:
            return None
        try:
            return discovery.get(self.task_name, launchable=True)
        except WorkbenchError:
            return None

    def compose(self) -> ComposeResult:
        app = workbench_app(self)
        task = self._task_info()
        self.fields = list(task.config) if task is not None else []
        if task is not None:
            self.summary = task.summary
        source = self.fork_of or self.clone_of
        run_config = present.flatten_config(source.config if source is not None else None)
        with Vertical(id="launch-box"):
            yield Static(self._title(), id="launch-title")
            if self.fork_of is not None:
                yield Static(self._code_note(), id="fork-note")
            with VerticalScroll(id="launch-fields"):
                if self.fork_of is None:
                    profiles = [(_NO_PROFILE, _NO_PROFILE)] + [(p, p) for p in getattr(app, "profiles", [])]
                    with Horizontal(classes="field-row"):
                        yield Label("profile", classes="field-name")
                        yield Select(profiles, value=_NO_PROFILE, allow_blank=False, id="profile", compact=True)
                for i, spec in enumerate(self.fields):
                    if spec.has_default and not spec.default_source:
                        base = _text(spec.default)
                    else:
                        base = ""
                    if self.fork_of is not None and spec.name in run_config:
                        base = _text(run_config[spec.name])  # a fork's edits are against its parent
                    value = _text(run_config[spec.name]) if self.clone_of is not None and spec.name in run_config \
                        else base  # a clone starts from the run's values: its changes from the defaults
                    self.base[spec.name] = base
                    placeholder = spec.default_source or ("required" if spec.required else "")
                    with Horizontal(classes="field-row"):
                        yield Label(spec.name, classes="field-name")
                        yield Input(value, placeholder=placeholder, id=f"cfg-{i}", compact=True,
                                    classes="field-input", tooltip=spec.help or None)
                        yield Static("◆" if value.strip() and value.strip() != base else "", id=f"chg-{i}",
                                     classes="field-changed")
                        yield Static(spec.type, classes="field-type")
                        yield Static("", id=f"err-{i}", classes="field-error")
                if self.fork_of is None:
                    yield from self._sweep_rows()
                    yield from self._where_rows()
                    yield from self._launch_rows()
                else:
                    yield from self._fork_rows()
            if self.fork_of is None:
                yield Static("", id="sweep-note")
            yield Static("", id="launch-status")
            with Horizontal(id="launch-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Fork" if self.fork_of else "Launch", id="launch", variant="primary",
                             compact=True)

    def _title(self) -> Content:
        if self.fork_of is not None:
            name = self.fork_of.name or self.fork_of.id
            return Content.from_markup("[b]Fork $name[/b] — $task", name=name, task=self.task_name)
        if self.clone_of is not None:
            name = self.clone_of.name or self.clone_of.id
            return Content.from_markup("[b]New run from $name's config: $task[/b] [dim]— with your current code "
                                       "(a fresh snapshot); ◆ marks values that differ from the task's defaults",
                                       name=name, task=self.task_name)
        summary = f' — "{self.summary}"' if self.summary else ""
        return Content.from_markup("[b]New run: $task[/b][dim]$summary", task=self.task_name, summary=summary)

    def _code_note(self) -> Content:
        row = self.fork_of
        assert row is not None
        commit = (row.snapshot_commit or row.git_head or "")[:8] or "its snapshot"
        return Content.from_markup(
            "[$warning]A fork runs the parent's code snapshot ($commit), not your working tree.[/] "
            "[dim]Choose 'working tree now' below to run the code as it is now instead (a fresh "
            "snapshot; the checkpoint must still fit the model it builds).", commit=commit)

    def _fork_rows(self) -> ComposeResult:
        row = self.fork_of
        assert row is not None
        with Horizontal(classes="field-row"):
            yield Label("code", classes="field-name")
            with Choices(id="code", classes="choices"):
                yield RadioButton("parent's snapshot", value=True, name="snapshot")
                yield RadioButton("working tree now", value=False, name="worktree")
        with Horizontal(classes="field-row"):
            yield Label("checkpoint", classes="field-name")
            yield Select([("latest", _LATEST)], value=_LATEST, allow_blank=False, id="checkpoint", compact=True)
        with Horizontal(classes="field-row tall"):
            yield Label("device", classes="field-name")
            yield self._device_set()
        yield from self._precision_name_tags(row.precision or "32", ", ".join(row.tags))

    def _launch_rows(self) -> ComposeResult:
        app = workbench_app(self)
        defaults = app.project.defaults
        row = self.clone_of
        backend_now = row.backend if row is not None and row.backend else defaults.backend
        nproc = (row.nproc or 1) if row is not None else (defaults.nproc if defaults.backend == "ddp" else 1)
        with Horizontal(classes="field-row tall"):
            yield Label("device", classes="field-name")
            yield self._device_set()
        with Horizontal(classes="field-row"):
            yield Label("backend", classes="field-name")
            with Choices(id="backend", classes="choices"):
                for backend in ("single", "ddp"):
                    yield RadioButton(backend, value=backend == backend_now, name=backend)
            yield Label("processes", classes="field-name short")
            yield Input(str(nproc), id="nproc", type="integer", compact=True, classes="small-input")
        precision = row.precision if row is not None and row.precision else defaults.precision
        yield from self._precision_name_tags(precision, ", ".join(row.tags) if row is not None else "")

    def _precision_name_tags(self, precision: str, tags: str) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label("precision", classes="field-name")
            yield Select([(p, p) for p in _PRECISIONS], value=precision if precision in _PRECISIONS else "32",
                         allow_blank=False, id="precision", compact=True)
        with Horizontal(classes="field-row"):
            yield Label("name", classes="field-name")
            yield Input(placeholder="auto (adjective-animal-N)", id="run-name", compact=True, classes="field-input")
            yield Label("tags", classes="field-name short")
            yield Input(tags, placeholder="comma-separated", id="tags", compact=True, classes="field-input")

    def _devices(self) -> tuple[str, ...]:
        app = workbench_app(self)
        found = list((app.probe or {}).get("devices", []))
        default = app.project.defaults.device
        devices = ["auto"] + [d for d in found if d != "auto"]
        source = self.fork_of or self.clone_of
        for wanted in (default, source.device if source is not None else None):
            if wanted and wanted not in devices:
                devices.append(wanted)
        if not found and "cpu" not in devices:
            devices.append("cpu")
        if "cuda" not in devices and any(c.gpus_per_node for c in self._clusters()):
            devices.append("cuda")  # a cluster's GPUs: judged against the cluster when it is chosen
        return tuple(devices)

    def _device_set(self) -> Choices:
        app = workbench_app(self)
        self._devices_shown = self._devices()
        source = self.fork_of or self.clone_of
        chosen = source.device if source is not None and source.device else app.project.defaults.device
        buttons = [RadioButton(d, value=d == chosen, name=d) for d in self._devices_shown]
        return Choices(*buttons, id="device", classes="choices")

    def on_mount(self) -> None:
        self._ready = True
        self._probe_checked = self.app.probe  # type: ignore[attr-defined]
        self._schedule_check()
        self._show_sweep()
        self._show_where()
        self._update_status()
        if self.fork_of is not None:
            self._list_checkpoints(self.fork_of)

    def apply_changes(self, changes: Changes) -> None:
        """The device probe may have answered since the form opened: offer what exists."""
        app = workbench_app(self)
        if self._ready and app.probe is not self._probe_checked:
            self._probe_checked = app.probe
            self._schedule_check()
        if self._ready and self._devices() != self._devices_shown:
            old = self.query_one("#device", RadioSet)
            chosen = self._radio("device")
            new = self._device_set()
            for button in new.query(RadioButton):
                button.value = button.name == chosen
            old.parent.mount(new, after=old)  # type: ignore[union-attr]
            old.remove()
            self._schedule_check()

    # -- reading the form ------------------------------------------------------------

    def _radio(self, id: str) -> str | None:
        try:
            pressed = self.query_one(f"#{id}", RadioSet).pressed_button
        except Exception:
            return None
        return pressed.name if pressed is not None else None

    def _value(self, id: str) -> str:
        try:
            widget = self.query_one(f"#{id}")
        except Exception:
            return ""
        value = getattr(widget, "value", "")
        return "" if value is None or value is Select.NULL else str(value)

    def overrides(self) -> list[str]:
        """``KEY=VALUE`` for each field whose text differs from its default or profile value."""
        out = []
        for i, spec in enumerate(self.fields):
            text = self.query_one(f"#cfg-{i}", Input).value.strip()
            if text and text != self.base.get(spec.name, ""):
                out.append(f"{spec.name}={text}")
        return out

    def request(self) -> Any:
        """The ``LaunchRequest`` the form describes now."""
        from workbench.runs import LaunchRequest

        profile = self._value("profile")
        nproc_text = self._value("nproc").strip()
        tags = [t.strip() for t in self._value("tags").replace(",", " ").split() if t.strip()]
        return LaunchRequest(
            task=self.task_name, overrides=self.overrides(),
            profile=None if profile in ("", _NO_PROFILE) else profile,
            device=self._radio("device"), backend=self._radio("backend"),
            nproc=int(nproc_text) if nproc_text.lstrip("-").isdigit() else None,
            precision=self._value("precision") or None,
            name=self._value("run-name").strip() or None, tags=tags, **self.where_request(),
        )

    # -- checking --------------------------------------------------------------------

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("cfg-"):
            i = int(event.input.id[4:])
            self._check_field(i)
            text = event.value.strip()
            changed = bool(text) and text != self.base.get(self.fields[i].name, "")
            self.query_one(f"#chg-{i}", Static).update("◆" if changed else "")
        elif event.input.id in ("trials", "parallel", "run-name"):
            self._show_sweep()
        self._schedule_check()

    @on(Select.Changed)
    @on(RadioSet.Changed)
    def _choice_changed(self, event: Any) -> None:
        self._show_where()
        self._schedule_check()

    def _check_field(self, i: int) -> None:
        from workbench.project import ConfigError, resolve_config

        spec = self.fields[i]
        text = self.query_one(f"#cfg-{i}", Input).value.strip()
        error = ""
        param = None
        if text and text != self.base.get(spec.name, ""):
            param, error = self._sweep_param(spec, text)  # a list or a distribution: a sweep
            if param is None and not error:
                try:
                    resolve_config([spec], overrides=[f"{spec.name}={text}"], task_name=self.task_name)
                except ConfigError as exc:
                    error = str(exc)
        elif not text and spec.required:
            error = f"{spec.name}: required (no default)"
        self._set_sweep_param(spec.name, param)
        self._set_field_error(spec.name, error)

    def _set_field_error(self, name: str, error: str) -> None:
        if error:
            self.field_errors[name] = error
        else:
            self.field_errors.pop(name, None)
        for i, spec in enumerate(self.fields):
            if spec.name == name:
                shown = error.removeprefix(f"{name}: ")
                self.query_one(f"#err-{i}", Static).update(Content.from_markup("[$error]✗ $e", e=shown) if error else "")
        self._update_status()

    def _schedule_check(self) -> None:
        self.serial += 1
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(_DEBOUNCE, self._start_check)

    def _start_check(self) -> None:
        app = workbench_app(self)
        if self.fork_of is not None:
            self._check_fork(self.serial, self.overrides(), self._fork_changes(), app.probe)
        elif self.is_sweep:
            self._check_sweep(self.serial, self.sweep_request(), self._launch_settings_error(), app.probe)
        else:
            self._check(self.serial, self.request(), app.probe)

    @work(thread=True, exclusive=True, group="launch-check")
    def _check(self, serial: int, request: Any, probe: dict[str, Any] | None) -> None:
        from workbench.project import find_profile, resolve_config
        from workbench.runs import prepare

        app = workbench_app(self)
        if probe is None:  # not probed yet (or the probe failed): check against the CPU for now
            probe = {"devices": ["cpu"], "default": "cpu"}
        profile_values = None
        try:
            if request.profile:
                path = find_profile(app.project.root, request.profile)
                profile_values = present.flatten_config(resolve_config(self.fields, profile=path, task_name=self.task_name))
            prepared = prepare(app.project, request, index=app.index, probe=probe)
        except WorkbenchError as exc:
            self.post_message(LaunchChecked(serial, form_words(str(exc)), self._field_of(str(exc)),
                                            profile=request.profile, profile_values=profile_values))
            return
        except Exception as exc:  # an unexpected failure is shown, not raised
            self.post_message(LaunchChecked(serial, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(LaunchChecked(serial, "", None, prepared.name, prepared.config,
                                        profile=request.profile, profile_values=profile_values,
                                        warnings=[form_words(w) for w in prepared.warnings]))

    @work(thread=True, exclusive=True, group="launch-check")
    def _check_fork(self, serial: int, overrides: list[str], changes: dict[str, Any],
                    probe: dict[str, Any] | None) -> None:
        from workbench.project import resolve_config
        from workbench.project.settings import normalize_device, normalize_precision
        from workbench.runs.names import check_run_name
        from workbench.runs.probe import check_resources

        app = workbench_app(self)
        row = self.fork_of
        assert row is not None
        try:
            config = resolve_config(self.fields, overrides=overrides, task_name=self.task_name)
            try:
                device = normalize_device(changes["device"] or row.device)
                precision = normalize_precision(changes["precision"] or row.precision)
            except (ValueError, TypeError) as exc:
                raise WorkbenchError(str(exc)) from None
            check_resources(device, row.backend or "single", row.nproc or 1, precision,
                            probe or {"devices": ["cpu"], "default": "cpu"})
            if changes["name"]:
                check_run_name(changes["name"], app.index.run_names(), app.index.run_ids())
        except WorkbenchError as exc:
            self.post_message(LaunchChecked(serial, form_words(str(exc)), self._field_of(str(exc))))
            return
        self.post_message(LaunchChecked(serial, "", None, None, config))

    def _fork_changes(self) -> dict[str, Any]:
        """What the fork form changes besides the config: code, device, precision, name, tags."""
        row = self.fork_of
        assert row is not None
        device, precision = self._radio("device"), self._value("precision") or None
        tags = [t.strip() for t in self._value("tags").replace(",", " ").split() if t.strip()]
        return {"code": self._radio("code") or "snapshot",
                "device": device if device and device != row.device else None,
                "precision": precision if precision and precision != row.precision else None,
                "name": self._value("run-name").strip() or None,
                "tags": tags}

    def _field_of(self, message: str) -> str | None:
        head = message.split(":", 1)[0].strip().strip("'")
        return head if any(f.name == head for f in self.fields) else None

    @property
    def checking(self) -> bool:
        """Whether a change to the form has not been checked yet (debounce or worker pending)."""
        return self.checked_serial < self.serial

    def on_launch_checked(self, message: LaunchChecked) -> None:
        if message.serial < self.checked_serial:
            return
        self.checked_serial = message.serial
        self.check_error = message.error
        self.check_warnings = list(message.warnings)
        if message.profile != self._profile_base and (message.profile_values is not None or not message.profile):
            self._apply_profile(message.profile, message.profile_values or {})
        self._update_status()

    def _apply_profile(self, profile: str | None, values: dict[str, Any]) -> None:
        """Show the profile's values in the fields the user has not edited."""
        self._profile_base = profile
        for i, spec in enumerate(self.fields):
            if spec.has_default and not spec.default_source:
                default = _text(spec.default)
            else:
                default = ""
            new = _text(values[spec.name]) if spec.name in values else default
            field = self.query_one(f"#cfg-{i}", Input)
            old = self.base.get(spec.name, "")
            self.base[spec.name] = new
            if field.value.strip() in ("", old):
                field.value = new

    def _update_status(self) -> None:
        if not self._ready:
            return
        status = self.query_one("#launch-status", Static)
        button = self.query_one("#launch", Button)
        error = next(iter(self.field_errors.values()), "") or self.check_error
        current = self.checked_serial == self.serial
        if self.launching:
            status.update(Content.from_markup("[$accent]starting the sweep…" if self.is_sweep else "[$accent]launching…"))
        elif error:
            status.update(Content.from_markup("[$error]✗ $e", e=error))
        elif current:
            what = "fork" if self.fork_of else ("start the sweep" if self.is_sweep else "launch")
            ready = Content.from_markup(f"[$success]✓ ready[/] [dim]— Enter or Ctrl+L to {what}, Esc to cancel")
            for warning in self.check_warnings:
                ready = Content.assemble(ready, "\n", Content.from_markup("[$warning]⚠ $w", w=warning))
            status.update(ready)
        else:
            app = workbench_app(self)
            waiting = " (waiting for the device probe)" if app.probe is None and not app.probe_error else ""
            status.update(Content.from_markup("[dim]checking…$w", w=waiting))
        button.disabled = bool(error) or self.launching

    # -- actions ---------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_launch()

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_launch(self) -> None:
        """Launch (or fork) now, unless a field is wrong."""
        if self.launching:
            return
        for i in range(len(self.fields)):
            self._check_field(i)
        error = next(iter(self.field_errors.values()), "")
        if not error and self.checked_serial == self.serial:
            error = self.check_error
        if error:
            self.check_error = error if not self.field_errors else self.check_error
            self._update_status()
            self.app.bell()
            return
        self.launching = True
        self._update_status()
        if self.is_sweep:
            self._start_sweep(self.sweep_request())
        elif self.fork_of is not None:
            checkpoint = self._value("checkpoint") or None
            self.post_message(ForkRequested(self.fork_of.id, self.overrides(),
                                            None if checkpoint in (None, _LATEST) else checkpoint,
                                            **self._fork_changes()))
            self.dismiss(None)
        else:
            self.post_message(LaunchRequested(self.request()))

    def show_failure(self, message: str) -> None:
        """The app could not launch: show why and let the user fix it."""
        self.launching = False
        self.check_error = form_words(message)
        self.checked_serial = self.serial
        self._update_status()

    def action_cancel(self) -> None:
        """Close the form without launching."""
        self.dismiss(None)

    # -- fork: which checkpoint ------------------------------------------------------

    @work(thread=True, group="launch-check")
    def _list_checkpoints(self, row: Run) -> None:
        from pathlib import Path

        from workbench.checkpoint_names import best_file, checkpoint_folder
        from workbench.runs.resume import step_checkpoints

        run_dir = Path(row.run_dir or "")
        steps = [p.stem for p in step_checkpoints(run_dir)] if row.run_dir else []
        best = bool(row.run_dir) and best_file(checkpoint_folder(run_dir)).is_file()
        self.app.call_from_thread(self._show_checkpoints, steps, best)

    def _show_checkpoints(self, steps: list[str], best: bool) -> None:
        options = [("latest", _LATEST)] + ([("best", "best")] if best else []) + [(s, s) for s in steps]
        try:
            self.query_one("#checkpoint", Select).set_options(options)
        except Exception:  # the form closed meanwhile
            return
