"""``workbench.Task``: a training problem and the meta-algorithms that solve it.

Subclass :class:`Task`, give it a docstring and a ``Config`` dataclass, and override only
the steps that are specific to the problem. ``fit()``, ``test()`` and ``evaluate()`` are
the meta-algorithms: data source → criterion → optimiser → iterate → prepare sample →
forward → loss → backward → update, each step a method you may override.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from workbench.core._capture import capture_init_args
from workbench.core.backends import Backend, make_backend
from workbench.core.data import EpochSampler, Loaders, as_loaders
from workbench.core.devices import Precision
from workbench.core.stages import DEFAULT_STAGES, Hooks
from workbench.errors import WorkbenchError

__all__ = ["MetricSink", "Task", "TaskError", "TrainState", "seed_everything"]


class TaskError(WorkbenchError):
    """A task is missing a step it needs, or a step returned something unusable."""


class MetricSink:
    """Where ``Task.log`` sends scalars. Any object with these three methods will do."""

    def log(self, key: str, value: float, step: int) -> None:  # pragma: no cover - protocol
        """Record ``value`` for ``key`` at ``step``."""

    def flush(self) -> None:  # pragma: no cover - protocol
        """Make everything logged so far durable."""

    def close(self) -> None:  # pragma: no cover - protocol
        """Flush and release resources."""


@dataclass
class TrainState:
    """Where training stands: what checkpoints save and progress reports.

    Attributes:
        step: Training batches completed (the x axis of every curve).
        epoch: The current epoch (0-based).
        batch_in_epoch: Batches completed in the current epoch.
        optimizer_steps: Optimiser updates made (differs from step with accumulation).
        max_epochs: Epochs ``fit`` runs.
        total_steps: ``max_epochs`` × batches per epoch, or None if the loader has no length.
        stop_requested: Set by :meth:`Task.request_stop`; the loop ends after this batch.
        stop_reason: Why it was asked to stop.
        stopped_early: Whether ``fit`` ended because a stop was requested.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    optimizer_steps: int = 0
    max_epochs: int = 1
    total_steps: int | None = None
    stop_requested: bool = False
    stop_reason: str = ""
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        """The counters, as plain values."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in ("stop_requested", "stop_reason", "stopped_early")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters."""
        for key, value in state.items():
            if hasattr(self, key):
                setattr(self, key, value)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (if installed) and torch's generators (CPU and CUDA)."""
    random.seed(seed)
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is optional
        pass
    else:
        numpy.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Every RNG state of this process, as tensors and plain values."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy
    except ImportError:  # pragma: no cover
        pass
    else:
        kind, keys, pos, has_gauss, cached = numpy.random.get_state()
        state["numpy"] = {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")),
                          "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy

        n = state["numpy"]
        numpy.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["pos"],
                                n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        moved = [_to_device(o, device) for o in obj]
        return type(obj)(moved) if not hasattr(obj, "_fields") else type(obj)(*moved)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


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
        sink: Where :meth:`log` sends scalars (None: kept in :attr:`metrics` only).
        extensions: Extensions to attach now.
    """

    @dataclass
    class Config:
        """The task's settings; subclasses define their own."""

    abstract: ClassVar[bool] = True
    """Set ``abstract = True`` on a framework task that is not launchable by itself."""

    scheduler_interval: ClassVar[str] = "epoch"
    """When the scheduler steps: after every ``epoch`` or every optimiser ``step``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(
        self,
        config: Any = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "32",
        backend: Backend | str | None = None,
        run_dir: str | Path | None = None,
        sink: Any = None,
        extensions: Iterable[object] = (),
    ) -> None:
        if type(self).abstract:
            raise TaskError(f"{type(self).__name__} is a framework task (abstract = True) and "
                            "cannot run by itself; use a task that builds on it")
        self.config = self._make_config(config)
        self.device_spec = device
        self.precision_name = str(precision)
        self.backend = make_backend(backend) if isinstance(backend, str) else (backend or Backend())
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.sink = sink
        self.state = TrainState(max_epochs=self.max_epochs)
        self.hooks = Hooks(DEFAULT_STAGES)
        self.metrics: dict[str, float] = {}
        self.model_spec: dict[str, Any] | None = None
        self._accumulate, self._clip = self.accumulate_grad_batches, self.gradient_clip_val
        self._built = False
        for ext in extensions:
            self.attach(ext)

    # -- configuration -------------------------------------------------------------

    def _make_config(self, config: Any) -> Any:
        cls = type(self).Config
        if config is None:
            return cls()
        if isinstance(config, Mapping):
            from workbench.project.config import build_config

            return build_config(cls, dict(config))
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

        Only the main process (rank 0) sends it to the sink; every process keeps the
        latest value in :attr:`metrics`.
        """
        if isinstance(value, torch.Tensor):
            value = value.item()
        value = float(value)
        self.metrics[key] = value
        sink = self.sink
        if sink is not None and self.backend.rank == 0:
            sink.log(key, value, self.state.step if step is None else step)

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

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        self.setup()
        hooks = self.hooks
        hooks.enter(
            "session", task=self, config=self.config, state=self.state, device=self.device,
            backend=self.backend, precision=self.precision, model=self.model,
            optimizer=self.optimizer, scheduler=self.scheduler, criterion=self.criterion,
            data=self.loaders, log=self.log,
        )
        try:
            hooks.enter("setup")
            hooks.exit("setup")
            yield
        finally:
            try:
                hooks.enter("teardown")
                hooks.exit("teardown")
            finally:
                hooks.drop("session")

    # -- the meta-algorithms -----------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train for ``max_epochs`` epochs, validating after each; return the latest metrics."""
        with self._session():
            self._fit()
        return dict(self.metrics)

    def evaluate(self) -> dict[str, float]:
        """Run the validation data through the model; return its mean metrics."""
        with self._session():
            return self._evaluate("validate", self.loaders.val)

    def test(self) -> dict[str, float]:
        """Run the test data through the model; return its mean metrics."""
        with self._session():
            return self._evaluate("test", self.loaders.test)

    def _fit(self) -> None:
        state, hooks, backend = self.state, self.hooks, self.backend
        if self.loaders.train is None:
            raise TaskError(f"{type(self).__name__}.build_data() gave no training data")
        train = backend.prepare_loader(self.loaders.train, shuffle=True, seed=self.seed)
        val = backend.prepare_loader(self.loaders.val, shuffle=False, seed=self.seed)
        per_epoch = len(train) if hasattr(train, "__len__") else None
        # Read once per fit: the loop asks for these every batch.
        self._accumulate, self._clip = self.accumulate_grad_batches, self.gradient_clip_val
        state.max_epochs = self.max_epochs
        state.total_steps = per_epoch * state.max_epochs if per_epoch is not None else None
        hooks.enter("fit", train_loader=train, val_loader=val, max_epochs=state.max_epochs,
                    total_steps=state.total_steps)
        try:
            while state.epoch < state.max_epochs and not state.stop_requested:
                self._epoch(train)
                if state.stop_requested:
                    break
                metrics = self._evaluate("validate", val) if val is not None else {}
                self._step_scheduler_per_epoch(metrics)
                state.epoch += 1
                state.batch_in_epoch = 0
        except BaseException:
            hooks.drop("fit")
            raise
        state.stopped_early = state.stop_requested
        hooks.exit("fit")

    def _epoch(self, train: Any) -> None:
        state, hooks = self.state, self.hooks
        self.backend.set_epoch(train, state.epoch)
        batches = self._epoch_iterator(train)
        start = state.batch_in_epoch
        multi = self.backend.world_size > 1
        length = len(train) if hasattr(train, "__len__") else None
        hooks.enter("epoch", epoch=state.epoch)
        values = hooks.values
        try:
            self.model.train()
            call_before = hooks.has("before_batch")
            call_after = hooks.has("after_batch")
            for batch_idx, batch in enumerate(batches, start):
                batch = self.prepare_batch(batch)
                # Hooks.enter/exit inlined: this is the hot loop. The stage tree is
                # static, so no enclosing stage can own these names.
                values["batch"] = batch
                values["batch_idx"] = batch_idx
                if call_before:
                    hooks.call("before_batch")
                loss, outputs = self._train_batch(batch, batch_idx)
                state.step += 1
                state.batch_in_epoch = batch_idx + 1
                if call_after:
                    values["loss"] = loss
                    values["outputs"] = outputs
                    hooks.call("after_batch")
                    del values["loss"], values["outputs"]
                del values["batch"], values["batch_idx"]
                if multi:  # every process must stop after the same batch
                    state.stop_requested = self.backend.agree(state.stop_requested)
                if state.stop_requested and batch_idx + 1 != length:
                    break
            else:
                # A complete epoch ends with its after_ hooks; one cut short by a stop
                # request just ends (its mean would be of part of an epoch).
                hooks.exit("epoch")
                return
        except BaseException:
            for name in ("batch", "batch_idx", "loss", "outputs"):
                values.pop(name, None)
            hooks.drop("epoch")
            raise
        hooks.drop("epoch")

    def _epoch_iterator(self, train: Any) -> Iterator[Any]:
        """The epoch's batches, from ``state.batch_in_epoch`` on.

        Creating a loader's iterator draws from torch's global RNG (DataLoader's base seed;
        RandomSampler's shuffle). The RNG state at the epoch's start is kept in the state,
        so that a mid-epoch resume recreates the very same iterator, seeks (or reads and
        drops) the batches already done, and then continues from the checkpoint's RNG.
        """
        state = self.state
        start = state.batch_in_epoch
        epoch_rng = state.extra.get("epoch_rng")
        # A checkpoint saved at an epoch's start (by a ``before_epoch`` hook) was taken after
        # this very call had created the epoch's iterator, and its RNG state is past the
        # draws that made: a resume from it re-creates the iterator from the epoch's
        # starting RNG, as a mid-epoch resume does. (A checkpoint taken before the epoch's
        # iterator existed, e.g. on a stop during the previous validation, carries the
        # previous epoch's number here, and starts the epoch afresh.)
        at_saved_start = epoch_rng is not None and state.extra.get("epoch_rng_epoch") == state.epoch
        if not start and not at_saved_start:
            state.extra["epoch_rng"] = torch.get_rng_state()
            state.extra["epoch_rng_epoch"] = state.epoch
            return iter(train)
        resume_rng = torch.get_rng_state()
        if epoch_rng is not None:
            torch.set_rng_state(epoch_rng)
        sampler = getattr(train, "sampler", None)
        if isinstance(sampler, EpochSampler) and getattr(train, "batch_size", None):
            sampler.set_start(start * train.batch_size)  # seek: skipped batches are not read
            iterator = iter(train)
        else:  # no way to seek: read and drop the batches already done
            iterator = iter(train)
            for _ in range(start):
                next(iterator)
        torch.set_rng_state(resume_rng)
        return iterator

    def _train_batch(self, batch: Any, batch_idx: int) -> tuple[torch.Tensor, Any]:
        accumulate = self._accumulate
        if batch_idx % accumulate == 0:
            self.optimizer.zero_grad(set_to_none=True)
        if self.precision.dtype is None:
            result = self.training_step(batch, batch_idx)
        else:
            with self.precision.autocast():
                result = self.training_step(batch, batch_idx)
        if isinstance(result, torch.Tensor):
            loss, outputs = result, None
        elif isinstance(result, Mapping) and "loss" in result:
            loss, outputs = result["loss"], result.get("outputs", result)
        else:
            raise TaskError(f"{type(self).__name__}.training_step() must return a loss tensor "
                            f"or a dict with 'loss'; got {type(result).__name__}")
        self.backward(loss if accumulate == 1 else loss / accumulate)
        if (batch_idx + 1) % accumulate == 0 or batch_idx + 1 == self._epoch_length():
            self.optimizer_step()
        return loss.detach(), outputs

    def _epoch_length(self) -> int | None:
        total = self.state.total_steps
        return total // self.state.max_epochs if total else None

    def _step_scheduler_per_epoch(self, metrics: Mapping[str, float]) -> None:
        scheduler = self.scheduler
        if scheduler is None or self.scheduler_interval != "epoch":
            return
        with warnings.catch_warnings():
            # A run resumed exactly at an epoch's end steps the scheduler before its first
            # optimizer.step() in this process: correct here, so torch's warning is noise.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()`")
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if "loss" in metrics:
                    scheduler.step(metrics["loss"])
            else:
                scheduler.step()

    def _evaluate(self, stage: str, loader: Any) -> dict[str, float]:
        if loader is None:
            raise TaskError(f"{type(self).__name__}.build_data() gave no "
                            f"{'validation' if stage == 'validate' else 'test'} data")
        hooks = self.hooks
        step_fn = self.validation_step if stage == "validate" else self.test_step
        batch_stage = f"{stage}_batch"
        hooks.enter(stage, loader=loader)
        sums: dict[str, torch.Tensor | float] = {}
        count = 0
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for batch_idx, batch in enumerate(loader):
                    batch = self.prepare_batch(batch)
                    hooks.enter(batch_stage, batch=batch, batch_idx=batch_idx)
                    if self.precision.dtype is None:
                        result = step_fn(batch, batch_idx)
                    else:
                        with self.precision.autocast():
                            result = step_fn(batch, batch_idx)
                    if isinstance(result, torch.Tensor):
                        result = {"loss": result}
                    n = _batch_size(batch)
                    for key, value in (result or {}).items():
                        if isinstance(value, torch.Tensor):
                            if value.numel() != 1:
                                continue
                            value = value.detach().float()
                        elif not isinstance(value, (int, float)):
                            continue
                        sums[key] = sums.get(key, 0.0) + value * n
                    count += n
                    hooks.provide(batch_stage, outputs=result)
                    hooks.exit(batch_stage)
            metrics = {k: float(v) / max(count, 1) for k, v in sums.items()}
            metrics = self.backend.reduce_mean(metrics)
        except BaseException:
            hooks.drop(stage)
            raise
        finally:
            self.model.train(was_training)
        hooks.provide(stage, metrics=metrics)
        hooks.exit(stage)
        return metrics

    # -- checkpoints -----------------------------------------------------------------

    def _extension_keys(self) -> list[tuple[str, object]]:
        seen: dict[str, int] = {}
        keys = []
        for ext in self.hooks.extensions:
            name = type(ext).__name__
            seen[name] = seen.get(name, 0) + 1
            keys.append((name if seen[name] == 1 else f"{name}#{seen[name]}", ext))
        return keys

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
        extensions = {}
        for key, ext in self._extension_keys():
            if hasattr(ext, "state_dict"):
                extensions[key] = ext.state_dict()
        state = {
            "format": 1,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.precision.state_dict(),
            "rng": self.backend.gather_object(_rng_state()),
            "state": self.state.state_dict(),
            "extensions": extensions,
            "metrics": dict(self.metrics),
            "world_size": self.backend.world_size,
        }
        done, accumulate = self.state.batch_in_epoch, self.accumulate_grad_batches
        if done % accumulate and done != self._epoch_length():
            # Mid-way through a gradient-accumulation window: the gradients added up so far
            # are part of the next update (the same in every process: DDP averages each
            # backward's).
            state["grads"] = {name: p.grad.detach().clone() for name, p in self.raw_model.named_parameters()
                              if p.grad is not None}
        if self.backend.world_size > 1:
            # An extension's state may be this process's own (the running epoch mean of
            # its share of the batches): every process gets its own back on restore.
            state["extensions_by_rank"] = self.backend.gather_object(extensions)
        return state

    def restore(self, checkpoint: Mapping[str, Any], *, fork: bool = False) -> None:
        """Continue from a :meth:`checkpoint_state`: weights, optimiser, position, RNG.

        Args:
            checkpoint: What :meth:`checkpoint_state` returned (e.g. loaded from a file).
            fork: Keep this task's optimiser hyperparameters (``lr``, ``weight_decay`` …,
                from its config) instead of the checkpoint's, and start the scheduler
                afresh: a fork continues training with changed settings.
        """
        self.setup()
        self.raw_model.load_state_dict(checkpoint["model"])
        if fork:
            fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            for group, settings in zip(self.optimizer.param_groups, fresh):
                group.update(settings)
        else:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scheduler is not None and checkpoint.get("scheduler") is not None:
                self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.precision.load_state_dict(checkpoint.get("scaler") or {})
        self.state.load_state_dict(checkpoint["state"])
        grads = checkpoint.get("grads") or {}
        for name, param in self.raw_model.named_parameters():
            param.grad = grads[name].to(param.device).clone() if name in grads else None
        saved = checkpoint.get("extensions") or {}
        by_rank = checkpoint.get("extensions_by_rank") or []
        if checkpoint.get("world_size") == self.backend.world_size and self.backend.rank < len(by_rank):
            saved = by_rank[self.backend.rank] or {}
        for key, ext in self._extension_keys():
            if key in saved and hasattr(ext, "load_state_dict"):
                ext.load_state_dict(saved[key])
        self.metrics.update(checkpoint.get("metrics") or {})
        states = checkpoint.get("rng") or []
        if states:
            _set_rng_state(states[self.backend.rank] if self.backend.rank < len(states) else states[0])

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
        """Load weights saved by :meth:`save_weights` (safely: ``weights_only=True``).

        A partial file (trainable parameters only) leaves the other weights as built.

        Returns:
            The names of the model's weights the file did not hold.

        Raises:
            TaskError: The file is missing, or holds weights this model does not have, or
                of other shapes.
        """
        self.setup()
        if not Path(path).is_file():
            raise TaskError(f"{path}: no such weights file")
        state = torch.load(Path(path), map_location=self.device, weights_only=True)
        try:
            result = self.raw_model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise TaskError(f"{path}: weights do not fit {type(self.raw_model).__name__}: "
                            f"{str(exc).splitlines()[0]}") from None
        if result.unexpected_keys:
            raise TaskError(f"{path}: weights for parameters the model does not have: "
                            f"{', '.join(result.unexpected_keys[:5])}")
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
