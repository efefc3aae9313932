"""``workbench.Task``: a training problem and the meta-algorithms that solve it.

Subclass :class:`Task`, give it a docstring and a ``Config`` dataclass, and override only
the steps that are specific to the problem. ``fit()``, ``test()`` and ``evaluate()`` are
the meta-algorithms: data source → criterion → optimiser → iterate → prepare sample →
forward → loss → backward → update, each step a method you may override.

The task holds the steps and the public API; the loop that calls the steps lives in
:mod:`workbench.core.loop`, and what a checkpoint holds in :mod:`workbench.core.state`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import nn

from workbench.configtypes import build_config
from workbench.core import loop
from workbench.core.attributes import FRAMEWORK_ATTRIBUTES, AttributeAudit, pack_value, unpack_value
from workbench.core.backends import Backend, make_backend
from workbench.core.capture import capture_init_args
from workbench.core.data import Loaders, as_loaders
from workbench.core.devices import Precision
from workbench.core.errors import TaskError
from workbench.core.stages import DEFAULT_STAGES, Hooks
from workbench.core.state import TrainState, checkpoint_of, restore_checkpoint, seed_everything
from workbench.runner import add_main_script_roots

__all__ = ["MetricSink", "Task", "TaskError", "TrainState", "seed_everything"]

# ``python tasks/x.py fit``: the task file's own imports of modules at the project root
# work as in a tracked run (its ``from workbench import Task`` lands here first).
add_main_script_roots()


@runtime_checkable
class MetricSink(Protocol):
    """Where :meth:`Task.log` sends scalars: any object with these three methods.

    The run index's ``MetricWriter`` is one (inside a workbench run); ``JsonlSink`` and
    ``MemorySink`` in :mod:`workbench.sinks` serve a task run on its own and tests.
    """

    def log(self, key: str, value: float, step: int) -> None:
        """Record ``value`` for ``key`` at ``step``."""

    def flush(self) -> None:
        """Make everything logged so far durable."""

    def close(self) -> None:
        """Flush and release resources."""


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        moved = [_to_device(o, device) for o in obj]
        return type(obj)(moved) if not hasattr(obj, "_fields") else type(obj)(*moved)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


class Task(abc.ABC):
    """A training problem: subclass it, give it a docstring and a ``Config``.

    Override the steps that are specific to the problem — :meth:`build_data`,
    :meth:`build_model` (both required), and where needed :meth:`build_criterion`,
    :meth:`build_optimizer`, :meth:`build_scheduler`, :meth:`forward`,
    :meth:`compute_loss`, :meth:`training_step`, :meth:`validation_step`,
    :meth:`test_step`, :meth:`prepare_batch`. Some ``Config`` field names mean something
    to the trainer: ``epochs``, ``seed``, ``lr``, ``weight_decay``,
    ``accumulate_grad_batches`` and ``gradient_clip_val``.

    Args:
        config: A ``Config`` instance, a mapping of its fields (nested dicts for nested
            dataclasses), or None for the defaults.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``32``, ``bf16-mixed`` or ``16-mixed``.
        backend: A :class:`~workbench.core.backends.Backend`, or ``single``/``ddp``.
        run_dir: The run's folder; artifacts go to ``run_dir/artifacts``.
        sink: Where :meth:`log` sends scalars, a :class:`MetricSink` (None: kept in
            :attr:`metrics` only).
        extensions: Extensions to attach now.
    """

    @dataclass
    class Config:
        """The task's settings; subclasses define their own."""

    abstract: ClassVar[bool] = True
    """Set ``abstract = True`` on a framework task that is not launchable by itself."""

    scheduler_interval: ClassVar[str] = "epoch"
    """When the scheduler steps: after every ``epoch`` or every optimiser ``step``."""

    checkpointed: ClassVar[tuple[str, ...]] = ()
    """Attributes of the task that checkpoints save and a resume restores (``("hidden",
    "ema_model")``): tensors, modules, numbers, strings, generators, objects with
    ``state_dict()``/``load_state_dict()``, and lists, tuples and dicts of them."""

    not_checkpointed: ClassVar[tuple[str, ...]] = ()
    """Attributes that change during training but that a resume need not restore (a cache,
    the last batch's outputs kept for a plot): the completeness check leaves them alone."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        for declared in ("checkpointed", "not_checkpointed"):
            names = cls.__dict__.get(declared)
            if names is None:
                continue
            if isinstance(names, str) or not all(isinstance(n, str) and n.isidentifier() for n in names):
                raise TaskError(f"{cls.__name__}.{declared} must be a tuple of attribute names, "
                                f"like ('hidden',); got {names!r}")
            owned = sorted(set(names) & FRAMEWORK_ATTRIBUTES)
            if owned:
                raise TaskError(f"{cls.__name__}.{declared} names {', '.join(owned)}: the task's own "
                                "fields, which checkpoints cover already")
            setattr(cls, declared, tuple(names))

    def __init__(
        self,
        config: Any = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "32",
        backend: Backend | str | None = None,
        run_dir: str | Path | None = None,
        sink: MetricSink | None = None,
        extensions: Iterable[object] = (),
    ) -> None:
        if type(self).abstract:
            raise TaskError(f"{type(self).__name__} is a framework task (abstract = True) and "
                            "cannot run by itself; use a task that builds on it")
        if sink is not None and not isinstance(sink, MetricSink):
            raise TaskError(f"sink={type(sink).__name__} is not a metric sink: it needs log(key, value, "
                            "step), flush() and close()")
        self.config = self._make_config(config)
        self.device_spec = device
        self.precision_name = str(precision)
        self.backend = make_backend(backend) if isinstance(backend, str) else (backend or Backend())
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.sink: MetricSink | None = sink
        self.state = TrainState(max_epochs=self.max_epochs)
        self.hooks = Hooks(DEFAULT_STAGES)
        self.metrics: dict[str, float] = {}
        self.model_spec: dict[str, Any] | None = None
        self.weights_loaded: str | None = None
        """The weights file or checkpoint :meth:`load_weights` loaded last, if any."""
        self._clip = self.gradient_clip_val
        self._built = False
        for ext in extensions:
            self.attach(ext)

    # -- configuration -------------------------------------------------------------

    def _make_config(self, config: Any) -> Any:
        cls = type(self).Config
        if config is None:
            config = cls()
        elif isinstance(config, Mapping):
            config = build_config(cls, dict(config))
        validate = getattr(config, "validate", None)
        if callable(validate):  # checks across fields (warmup < epochs): the Config's own
            try:
                validate()
            except (ValueError, TypeError, AssertionError) as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise TaskError(f"{type(self).__name__}.Config.validate(): {why}") from None
        return config

    @property
    def max_epochs(self) -> int:
        """Epochs ``fit`` runs: ``config.epochs``, else 1."""
        return int(getattr(self.config, "epochs", 1))

    @property
    def seed(self) -> int:
        """The seed set before anything is built: ``config.seed``, else 0."""
        return int(getattr(self.config, "seed", 0))

    @property
    def accumulate_grad_batches(self) -> int:
        """Batches whose gradients add up before each update (``config.accumulate_grad_batches``)."""
        return max(1, int(getattr(self.config, "accumulate_grad_batches", 1)))

    @property
    def gradient_clip_val(self) -> float | None:
        """Clip the gradients' total norm to this (``config.gradient_clip_val``); None: off."""
        value = getattr(self.config, "gradient_clip_val", None)
        return float(value) if value else None

    # -- the steps to override -------------------------------------------------------

    @abc.abstractmethod
    def build_data(self) -> Any:
        """Return a DataModule, a DataLoader, a ``(train, val[, test])`` tuple or a dict."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """Return the model to train."""

    def build_criterion(self) -> Callable[..., torch.Tensor] | None:
        """Return the loss function :meth:`compute_loss` uses (default: none)."""
        return None

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """Return the optimiser (default: Adam with ``config.lr`` and ``config.weight_decay``)."""
        lr = float(getattr(self.config, "lr", 1e-3))
        decay = float(getattr(self.config, "weight_decay", 0.0))
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """Return a learning-rate scheduler, or None (the default)."""
        return None

    def prepare_batch(self, batch: Any) -> Any:
        """Move a batch to the device (tensors inside tuples, lists and dicts too).

        On the CPU the batch is used as the loader made it (loaders yield CPU tensors).
        """
        if self.device.type == "cpu":
            return batch
        return _to_device(batch, self.device)

    def forward(self, batch: Any) -> Any:
        """Run the model on a batch's inputs (default: the model on ``batch[0]``)."""
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model(inputs)

    def compute_loss(self, outputs: Any, batch: Any) -> torch.Tensor:
        """The loss of ``outputs`` against the batch's targets (default: the criterion on ``batch[1]``)."""
        if self.criterion is None:
            raise TaskError(
                f"{type(self).__name__} has no loss: define build_criterion(), or override "
                "compute_loss() or training_step()"
            )
        return self.criterion(outputs, batch[1])

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """One batch's loss: a tensor, or a dict with ``loss`` (and anything else)."""
        outputs = self.forward(batch)
        return {"loss": self.compute_loss(outputs, batch), "outputs": outputs}

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        """One validation batch's metrics: a dict of scalars, or a loss tensor."""
        outputs = self.forward(batch)
        return {"loss": self.compute_loss(outputs, batch)}

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        """One test batch's metrics (default: as :meth:`validation_step`)."""
        return self.validation_step(batch, batch_idx)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (through the grad scaler under ``16-mixed``)."""
        scaler = self.precision.scaler
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()

    def optimizer_step(self) -> None:
        """Clip (if configured), update the weights, and step a per-step scheduler."""
        optimizer, scaler, clip = self.optimizer, self.precision.scaler, self._clip
        if scaler is not None:
            if clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            if clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            optimizer.step()
        self.state.optimizer_steps += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def extensions(self) -> list[object]:
        """Extensions this task wants besides the defaults (e.g. early stopping)."""
        return []

    # -- services for the steps ---------------------------------------------------

    def log(self, key: str, value: Any, step: int | None = None) -> None:
        """Record a scalar at ``step`` (default: the current training step).

        The current step is the number of training batches done, except during a training
        batch (its ``before_batch`` and ``after_batch`` hooks, ``training_step``, the
        backward pass and the update), where it is the step that the batch completes: what
        ``training_step`` logs lands at the same step as that batch's ``train/loss``.
        Only the main process (rank 0) sends it to the sink; every process keeps the
        latest value in :attr:`metrics`.
        """
        if isinstance(value, torch.Tensor):
            value = value.item()
        value = float(value)
        self.metrics[key] = value
        sink = self.sink
        if sink is not None and self.backend.rank == 0:
            sink.log(key, value, self.state.current_step if step is None else step)

    def log_image(self, key: str, image: Any, step: int | None = None) -> Path | None:
        """Keep an image at ``step`` (default: the current step, as :meth:`log`) as a PNG.

        Written atomically to ``artifacts/images/<key>/step-<step, 9 digits>.png`` and
        recorded in the run index as an artifact of kind ``image`` (the app's Images tab shows
        them). Only the main process (rank 0) writes; a task without a run folder keeps
        nothing. Needs Pillow (``pip install workbench[images]``), loaded on first call.

        Args:
            key: Its name, e.g. ``"boundary"`` or ``"val/sample"`` (parts become folders).
            image: A torch tensor (CxHxW or HxW) or a numpy array (HxWxC or HxW), C in 1, 3
                or 4; floats in [0, 1], or uint8.
            step: The step it belongs to.

        Returns:
            The file written, or None (not rank 0, or no run folder).

        Raises:
            TaskError: A key that would leave the folder, an image of another shape or type,
                or Pillow is missing.
        """
        if self.run_dir is None or self.backend.rank != 0:
            return None
        from workbench.image_files import ImageError, write_image

        record = getattr(self.sink, "add_artifacts", None)
        try:
            return write_image(self.run_dir / "artifacts", key, image,
                               self.state.current_step if step is None else step,
                               record if callable(record) else None)
        except ImageError as exc:
            raise TaskError(str(exc)) from None

    def artifact_path(self, name: str | Path) -> Path:
        """A path inside the run's ``artifacts/`` folder (its parent folders are made).

        Raises:
            TaskError: The task has no run folder, or ``name`` would leave the folder.
        """
        if self.run_dir is None:
            raise TaskError(f"{type(self).__name__} has no run folder: pass run_dir= to keep artifacts")
        root = (self.run_dir / "artifacts").resolve()
        path = (root / name).resolve()
        if Path(name).is_absolute() or not path.is_relative_to(root):
            raise TaskError(f"artifact name {str(name)!r} leaves the artifacts folder; use a relative name")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to end after the current batch (early stopping, a signal)."""
        self.state.stop_requested = True
        self.state.stop_reason = reason

    def attach(self, extension: object) -> None:
        """Attach an extension; its hooks' fixture names are checked now."""
        self.hooks.attach(extension)

    @property
    def raw_model(self) -> nn.Module:
        """The model without its backend wrapper (what is saved)."""
        return self.backend.unwrap(self.model)

    # -- building --------------------------------------------------------------------

    def setup(self) -> None:
        """Seed, pick the device, and build data, model, criterion, optimiser, scheduler.

        Called by the meta-algorithms on first use; the order is fixed so that runs
        repeat: seed → device → data → model → criterion → optimiser → scheduler.
        """
        if self._built:
            return
        seed_everything(self.seed)
        self.device = self.backend.setup(self.device_spec)
        self.precision = Precision(self.precision_name, self.device)
        self.data = self.build_data()
        self.loaders: Loaders = as_loaders(self.data)
        model, self.model_spec = capture_init_args(self.build_model)
        if not isinstance(model, nn.Module):
            raise TaskError(f"{type(self).__name__}.build_model() returned "
                            f"{type(model).__name__}, not a torch.nn.Module")
        self.model = self.backend.wrap_model(model)
        self.criterion = self.build_criterion()
        self.optimizer = self.build_optimizer(self.model)
        self.scheduler = self.build_scheduler(self.optimizer)
        self._built = True
        for name in self.checkpointed:  # fail now, not at the first checkpoint an hour in
            if hasattr(self, name):
                pack_value(getattr(self, name), f"self.{name}")
        self._audit = AttributeAudit(self)

    # -- the meta-algorithms -----------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train for ``max_epochs`` epochs, validating after each; return the latest metrics."""
        with loop.session(self):
            self._clip = self.gradient_clip_val  # read once per fit: optimizer_step asks every update
            loop.fit(self)
        return dict(self.metrics)

    def evaluate(self) -> dict[str, float]:
        """Run the validation data through the model; return its mean metrics."""
        with loop.session(self):
            return loop.evaluate(self, "validate", self.loaders.val)

    def test(self) -> dict[str, float]:
        """Run the test data through the model; return its mean metrics."""
        with loop.session(self):
            return loop.evaluate(self, "test", self.loaders.test)

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The state the task keeps on itself, saved in every checkpoint.

        By default, the attributes named in :attr:`checkpointed` (those the task has now),
        packed as tensors and plain containers: a module gives its ``state_dict()``, a
        tensor is saved as it is. Override it (with :meth:`load_state_dict`) to save state
        your own way; return tensors, numbers, strings and lists, tuples and dicts of them.
        A key that names an attribute tells the completeness check that it is covered.
        """
        return {name: pack_value(getattr(self, name), f"self.{name}")
                for name in self.checkpointed if hasattr(self, name)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (called by :meth:`restore`, after ``setup``).

        By default each saved attribute is put back: modules and objects with
        ``load_state_dict()`` load their state in place, a tensor is copied into the tensor
        there now (same shape and dtype) or else replaces it on the task's device.
        """
        for name, saved in state.items():
            current = getattr(self, name, None)
            setattr(self, name, unpack_value(saved, current, getattr(self, "device", None), f"self.{name}"))

    def unsaved_attributes(self) -> list[str]:
        """The task's attributes that changed since ``setup()`` and that no checkpoint covers.

        Rebound to another object, or a tensor (a module's parameter or buffer that the model
        does not hold) changed in place; not the model, optimiser, scheduler, scaler,
        :attr:`checkpointed` or :attr:`not_checkpointed` attributes, extensions, or what
        :meth:`state_dict` returns. The checkpoint extension asks this when it saves.
        """
        self.setup()
        return self._audit.changed(self, self.state_dict())

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here, as tensors and plain containers.

        Model, optimiser, scheduler, grad scaler, every RNG state (of every process under
        DDP), the position (``state``), the gradients accumulated so far when it is taken
        mid-way through a gradient-accumulation window, the extensions' ``state_dict()``s
        (of every process under DDP: a running mean is each process's own) and the latest
        metrics. Loadable
        with ``torch.load(..., weights_only=True)``. Under DDP every process must call it
        (the RNG and extension states are gathered).
        """
        self.setup()
        return checkpoint_of(self)

    def restore(self, checkpoint: Mapping[str, Any], *, fork: bool = False) -> None:
        """Continue from a :meth:`checkpoint_state`: weights, optimiser, position, RNG.

        Args:
            checkpoint: What :meth:`checkpoint_state` returned (e.g. loaded from a file).
            fork: Keep this task's optimiser hyperparameters (``lr``, ``weight_decay`` …,
                from its config) instead of the checkpoint's, and start the scheduler
                afresh: a fork continues training with changed settings.
        """
        self.setup()
        restore_checkpoint(self, checkpoint, fork=fork)

    # -- weights ---------------------------------------------------------------------

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's trainable parameters and all its (persistent) buffers.

        A model with frozen parts (a pretrained backbone) saves only what training changed:
        the frozen parameters are left out, but buffers are kept everywhere, since training
        changes them even in a frozen part (batch norm's running statistics).
        """
        model = self.raw_model
        named = list(model.named_parameters(remove_duplicate=False))
        params = {name for name, _ in named}
        trainable = {name for name, p in named if p.requires_grad}
        return {name: value.detach().clone() for name, value in model.state_dict().items()
                if name in trainable or name not in params}

    def save_weights(self, path: str | Path, *, trainable_only: bool = False) -> Path:
        """Save the model's weights (all, or only the trainable ones) to ``path``."""
        self.setup()
        state = self.trainable_state_dict() if trainable_only else self.raw_model.state_dict()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path

    def load_weights(self, path: str | Path) -> list[str]:
        """Load weights saved by :meth:`save_weights`, or a workbench checkpoint's weights.

        Loaded safely (``weights_only=True``). A partial file (trainable parameters only)
        leaves the other weights as built. A checkpoint (``checkpoints/step-N.pt`` or
        ``best.pt`` of a run) gives its model's weights, and the task's position moves to the
        checkpoint's step and epoch, so that what :meth:`test` logs lands at the step whose
        weights it tested; the optimiser and the RNGs are left alone (to continue training,
        use :meth:`restore`).

        Returns:
            The names of the model's weights the file did not hold.

        Raises:
            TaskError: The file is missing or unreadable, or holds weights this model does
                not have, or of other shapes.
        """
        self.setup()
        if not Path(path).is_file():
            raise TaskError(f"{path}: no such weights file")
        try:
            state = torch.load(Path(path), map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one line
            raise TaskError(f"{path}: not a weights file or checkpoint torch can read safely: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
        position = None
        if isinstance(state, Mapping) and "format" in state and isinstance(state.get("model"), Mapping):
            position = state.get("state") if isinstance(state.get("state"), Mapping) else None
            state = state["model"]
        if not isinstance(state, Mapping):
            raise TaskError(f"{path}: holds a {type(state).__name__}, not a model's weights")
        try:
            result = self.raw_model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise TaskError(f"{path}: weights do not fit {type(self.raw_model).__name__}: "
                            f"{str(exc).splitlines()[0]}") from None
        if result.unexpected_keys:
            raise TaskError(f"{path}: weights for parameters the model does not have: "
                            f"{', '.join(result.unexpected_keys[:5])}")
        if position is not None:
            self.state.step = int(position.get("step", self.state.step))
            self.state.epoch = int(position.get("epoch", self.state.epoch))
        self.weights_loaded = str(path)
        return list(result.missing_keys)

    # -- running a task file on its own ------------------------------------------------

    @classmethod
    def main(cls, argv: Sequence[str] | None = None) -> int:
        """Run this task from the command line: ``python tasks/x.py fit -s epochs=3``.

        Call it under ``if __name__ == "__main__":`` so that importing the file runs
        nothing. See ``python tasks/x.py --help``.
        """
        from workbench.runner import main

        return main(cls, argv)
