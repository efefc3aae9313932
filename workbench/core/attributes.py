"""The state a task keeps on ``self``: saving it, and noticing when nothing saves it.

A task written the natural way keeps some training state on itself — an LSTM's hidden state
carried across batches, an exponential moving average of the weights updated in place, a
counter. The checkpoint holds the model, optimiser, scheduler, scaler, RNGs, position and
extensions; what the task keeps on ``self`` goes in only when the task says so:

- :func:`pack_value` / :func:`unpack_value` save and restore the attributes a task names in
  ``checkpointed`` (``Task.state_dict()`` / ``Task.load_state_dict()`` use them);
- :class:`AttributeAudit` takes a cheap snapshot of the task's attributes after ``setup()``
  and, when a checkpoint is written, names those that changed since (rebound, or a tensor
  mutated in place) that no state covers — so that a resume that would diverge says so.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Mapping

import numpy
import torch
from torch import nn

from workbench.core.errors import TaskError

if TYPE_CHECKING:
    from workbench.core.task import Task

__all__ = [
    "FRAMEWORK_ATTRIBUTES",
    "AttributeAudit",
    "describe_uncovered",
    "pack_value",
    "unpack_value",
]

#: The attributes ``Task`` itself sets: the checkpoint covers them its own way (model,
#: optimizer, scheduler, precision's scaler, state, metrics), or they are settings, services
#: and the data, whose position the loop keeps. The completeness check never reports them.
FRAMEWORK_ATTRIBUTES = frozenset({
    "config", "device_spec", "precision_name", "backend", "run_dir", "sink", "state", "hooks",
    "metrics", "model_spec", "device", "precision", "data", "loaders", "model", "optimizer",
    "scheduler", "_clip", "_built", "_audit", "weights_loaded",
})

_TAG = "__workbench__"  # marks a packed module, generator or state_dict owner
_MAX_DEPTH = 8
_MAX_LEAVES = 10_000  # values looked at per attribute; a bigger container is compared by identity
_HASH_ELEMENTS = 1 << 20  # tensors up to this size get a content digest; bigger: identity and version
_HASH_BUDGET = 1 << 22  # elements digested per attribute (an EMA of a big model: the first 4M)


# -- saving and restoring declared attributes ------------------------------------------------


def pack_value(value: Any, where: str, depth: int = 0) -> Any:
    """``value`` as tensors and plain containers, for ``torch.load(..., weights_only=True)``.

    Tensors are detached (not copied, as ``Module.state_dict()`` does), modules and objects
    with ``state_dict()``/``load_state_dict()`` give their state dicts, generators their
    states; lists, tuples and dicts are packed item by item.

    Args:
        value: What to pack.
        where: The attribute's name, for the error (``self.hidden[0]``).
        depth: Nesting so far.

    Raises:
        TaskError: ``value`` holds something that cannot be saved this way.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach()
    if depth > _MAX_DEPTH:
        raise TaskError(f"cannot checkpoint {where}: nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, nn.Module):
        return {_TAG: "module", "state": value.state_dict()}
    if isinstance(value, torch.Generator):
        return {_TAG: "torch-generator", "state": value.get_state(), "device": str(value.device)}
    if isinstance(value, random.Random):
        return {_TAG: "random", "state": value.getstate()}
    if isinstance(value, numpy.random.Generator):
        return {_TAG: "numpy-generator", "state": value.bit_generator.state}
    if callable(getattr(value, "state_dict", None)) and callable(getattr(value, "load_state_dict", None)):
        return {_TAG: "state_dict", "state": value.state_dict()}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, (str, int)):
                raise TaskError(f"cannot checkpoint {where}: its key {key!r} is a "
                                f"{type(key).__name__} (keys must be strings or integers)")
        return {k: pack_value(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [pack_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TaskError(
        f"cannot checkpoint {where}: a {type(value).__name__} (checkpointed attributes hold "
        "tensors, modules, numbers, strings, None, generators, objects with "
        "state_dict()/load_state_dict(), and lists, tuples and dicts of them); override the "
        "task's state_dict()/load_state_dict() to save it your way"
    )


def unpack_value(saved: Any, current: Any, device: torch.device | None, where: str) -> Any:
    """What :func:`pack_value` made, put back over ``current`` (the attribute's value now).

    Modules, state_dict owners and generators are loaded in place (so ``current`` must be
    one already: build it in ``setup``); a tensor is copied into ``current`` when that is a
    tensor of the same shape and dtype, and otherwise becomes a new tensor on ``current``'s
    device (or ``device``); containers are rebuilt item by item; the rest is the saved value.

    Raises:
        TaskError: A saved module or state cannot be loaded into ``current``.
    """
    if isinstance(saved, dict) and isinstance(saved.get(_TAG), str):
        return _unpack_tagged(saved, current, where)
    if isinstance(saved, torch.Tensor):
        if (isinstance(current, torch.Tensor) and current.shape == saved.shape
                and current.dtype == saved.dtype):
            try:
                with torch.no_grad():
                    current.copy_(saved)
                return current
            except RuntimeError:  # an expanded view or an inference tensor: replace it
                pass
        target = current.device if isinstance(current, torch.Tensor) else device
        return saved.to(target) if target is not None else saved
    if isinstance(saved, dict):
        now = current if isinstance(current, Mapping) else {}
        return {k: unpack_value(v, now.get(k), device, f"{where}[{k!r}]") for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        same = isinstance(current, (list, tuple)) and len(current) == len(saved)
        now = list(current) if same else [None] * len(saved)
        items = [unpack_value(s, c, device, f"{where}[{i}]") for i, (s, c) in enumerate(zip(saved, now))]
        if isinstance(current, tuple) and hasattr(current, "_fields"):  # a namedtuple
            return type(current)(*items)
        return items if isinstance(saved, list) else tuple(items)
    return saved


def _unpack_tagged(saved: Mapping[str, Any], current: Any, where: str) -> Any:
    kind, state = saved[_TAG], saved.get("state")
    if kind in ("module", "state_dict"):
        if not callable(getattr(current, "load_state_dict", None)):
            raise TaskError(f"cannot restore {where}: it was saved as a {kind.replace('_', ' ')} and is "
                            f"now {type(current).__name__}; build it before training starts (in "
                            "build_model or __init__) so that a resume can load its state")
        current.load_state_dict(state)
        return current
    if kind == "torch-generator":
        generator = current if isinstance(current, torch.Generator) else torch.Generator(saved.get("device", "cpu"))
        generator.set_state(state)
        return generator
    if kind == "random":
        generator = current if isinstance(current, random.Random) else random.Random()
        version, internal, gauss = state
        generator.setstate((version, tuple(internal), gauss))
        return generator
    if kind == "numpy-generator":
        if not isinstance(current, numpy.random.Generator):
            raise TaskError(f"cannot restore {where}: it was a numpy Generator and is now "
                            f"{type(current).__name__}")
        current.bit_generator.state = state
        return current
    raise TaskError(f"cannot restore {where}: unknown saved kind {kind!r}")


# -- the completeness check ---------------------------------------------------------------


class _Covered:
    """Fingerprint of a value whose state the checkpoint holds already."""

    def __repr__(self) -> str:
        return "covered"


COVERED = _Covered()


class _Fingerprinter:
    """Cheap fingerprints of values, comparable between setup and a checkpoint.

    Plain values (numbers, strings, None) and containers are fingerprinted by what they hold;
    a tensor by its identity, storage, version counter and (up to a million elements) a
    digest of its contents; a module by its parameters and buffers (those the checkpoint does not
    hold); generators and objects with ``state_dict()`` by their state; anything else by
    identity alone. Every object whose identity goes into a fingerprint is kept in
    :attr:`kept`, so that a later object cannot reuse its id while the snapshot lives.
    """

    def __init__(self, storages: set[int], objects: set[int]) -> None:
        self.storages = storages
        self.objects = objects
        self.kept: list[Any] = []
        self.leaves = 0
        self.hashed = 0

    def of(self, value: Any) -> Hashable:
        """The fingerprint of one attribute's value (COVERED if the checkpoint holds it)."""
        self.leaves = 0
        self.hashed = 0
        return self._fp(value, 0, False)

    def _identity(self, kind: str, value: Any) -> Hashable:
        self.kept.append(value)
        return (kind, id(value))

    def _fp(self, value: Any, depth: int, by_content: bool) -> Hashable:
        self.leaves += 1
        if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
            return ("value", type(value).__name__, repr(value))
        if id(value) in self.objects:
            return COVERED
        if isinstance(value, torch.Tensor):
            return self._tensor(value, by_content)
        if isinstance(value, nn.Module):
            tensors = [(name, self._tensor(t, by_content)) for name, t in _module_tensors(value)]
            tensors = [(name, fp) for name, fp in tensors if fp is not COVERED]
            return ("module", tuple(tensors)) if tensors else COVERED
        if self.leaves > _MAX_LEAVES or depth > _MAX_DEPTH:
            return self._identity("big", value)
        if isinstance(value, (list, tuple)):
            kind = "list" if isinstance(value, list) else "tuple"
            items = tuple(self._fp(v, depth + 1, by_content) for v in value)
            return COVERED if items and all(i is COVERED for i in items) else (kind, items)
        if isinstance(value, dict):
            pairs = tuple((repr(k), self._fp(v, depth + 1, by_content)) for k, v in list(value.items()))
            return COVERED if pairs and all(fp is COVERED for _, fp in pairs) else ("dict", pairs)
        if isinstance(value, (set, frozenset)):
            return ("set", len(value), hash(frozenset(value)))
        if isinstance(value, numpy.ndarray):
            if value.nbytes > _HASH_ELEMENTS * 8 or value.dtype.hasobject:
                return self._identity("array", value)
            return ("array", value.shape, value.dtype.str, _digest(value.tobytes()))
        if isinstance(value, torch.Generator):
            return ("torch-generator", _digest(value.get_state().numpy().tobytes()))
        if isinstance(value, random.Random):
            return ("random", hash(value.getstate()))
        if isinstance(value, numpy.random.Generator):
            return ("numpy-generator", repr(value.bit_generator.state))
        if callable(getattr(value, "state_dict", None)):
            try:  # its state, by content: a state_dict() may hand out new tensors each call
                return ("state_dict", self._fp(value.state_dict(), depth + 1, True))
            except Exception:  # noqa: BLE001 - an object that cannot say its state: identity only
                pass
        return self._identity("opaque", value)

    def _tensor(self, t: torch.Tensor, by_content: bool) -> Hashable:
        try:
            storage = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # sparse, meta …: identity only
            return self._identity("tensor", t)
        if storage and storage in self.storages:
            return COVERED
        try:
            version = t._version
        except RuntimeError:  # an inference tensor has no version counter
            version = -1
        content = None
        if 0 < t.numel() <= _HASH_ELEMENTS and t.layout == torch.strided and self.hashed < _HASH_BUDGET:
            self.hashed += t.numel()
            content = _contents(t.detach())
        shape = (tuple(t.shape), str(t.dtype), str(t.device))
        if by_content:
            return ("tensor", shape, content if content is not None else version)
        self.kept.append(t)
        return ("tensor", id(t), storage, t.storage_offset(), shape, version, content)


def _contents(t: torch.Tensor) -> Hashable:
    """A cheap digest of a tensor's contents: sums of the values and of their magnitudes
    (a few milliseconds per million elements; a NaN compares equal to itself here)."""
    try:
        if t.is_floating_point() or t.is_complex():
            return (t.sum().item().hex() if not t.is_complex() else repr(t.sum().item()),
                    t.abs().sum().item().hex())
        # Integers and booleans: an xor of their bits, and their sum (which wraps around).
        return (int(torch.hash_tensor(t).item()), int(t.sum().item()))
    except (RuntimeError, TypeError):  # a dtype these do not take
        return None


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _module_tensors(module: nn.Module) -> Iterable[tuple[str, torch.Tensor]]:
    yield from module.named_parameters(remove_duplicate=True)
    yield from module.named_buffers(remove_duplicate=True)


def _reachable(value: Any, storages: set[int], objects: set[int], depth: int = 0) -> None:
    """Add the tensors' storages and the objects found in ``value`` to the covered sets."""
    if depth > _MAX_DEPTH or value is None or isinstance(value, (bool, int, float, str)):
        return
    objects.add(id(value))
    if isinstance(value, torch.Tensor):
        try:
            storages.add(value.untyped_storage().data_ptr())
        except (RuntimeError, NotImplementedError):
            pass
    elif isinstance(value, nn.Module):
        for _, t in _module_tensors(value):
            _reachable(t, storages, objects, depth + 1)
    elif isinstance(value, Mapping):
        for v in value.values():
            _reachable(v, storages, objects, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _reachable(v, storages, objects, depth + 1)


def _covered_sets(task: Task, saved: Mapping[str, Any] | None) -> tuple[set[int], set[int]]:
    storages: set[int] = set()
    objects: set[int] = set()
    model = getattr(task, "model", None)
    if model is not None:
        _reachable(task.raw_model, storages, objects)
        objects.add(id(model))
    precision = getattr(task, "precision", None)
    for obj in (getattr(task, "optimizer", None), getattr(task, "scheduler", None), precision,
                getattr(precision, "scaler", None), *task.hooks.extensions):
        if obj is not None:
            objects.add(id(obj))
    if saved:
        _reachable(saved, storages, objects)
    storages.discard(0)  # empty and meta tensors have no storage to share
    return storages, objects


class AttributeAudit:
    """Which of a task's own attributes change during training without being checkpointed.

    Made at the end of ``Task.setup()``: it records a cheap fingerprint of each attribute of
    the task that the framework does not own (see :class:`_Fingerprinter`: for a module,
    the parameters and buffers that the model does not hold; for a tensor, its identity,
    version counter and, up to a million elements, a digest of its contents). :meth:`check` compares
    at checkpoint time; nothing is looked at per batch. The snapshot keeps the setup-time
    objects it names alive (a tensor rebound since setup is held once more).

    Args:
        task: The task, set up.
    """

    def __init__(self, task: Task) -> None:
        self.reported: set[str] = set()
        storages, objects = _covered_sets(task, None)
        fingerprint = _Fingerprinter(storages, objects)
        self.snapshot: dict[str, Hashable] = {name: fingerprint.of(value) for name, value in self._candidates(task)}
        self._kept = fingerprint.kept

    @staticmethod
    def _candidates(task: Task) -> list[tuple[str, Any]]:
        skip = FRAMEWORK_ATTRIBUTES | set(task.checkpointed) | set(task.not_checkpointed)
        return [(name, value) for name, value in list(vars(task).items()) if name not in skip]

    def changed(self, task: Task, saved: Mapping[str, Any] | None = None) -> list[str]:
        """The attributes that changed since setup and that no checkpointed state covers.

        Args:
            task: The task.
            saved: What ``task.state_dict()`` returned for this checkpoint: attributes named
                by its keys, and values found inside it, are covered.
        """
        storages, objects = _covered_sets(task, saved)
        fingerprint = _Fingerprinter(storages, objects)
        names = set(saved or ())
        found = []
        for name, value in self._candidates(task):
            if name in names:
                continue
            now = fingerprint.of(value)
            if now is COVERED:
                continue
            if name not in self.snapshot:  # made after setup: state, unless it is opaque
                if not (isinstance(now, tuple) and now[0] == "opaque"):
                    found.append(name)
            elif now != self.snapshot[name]:
                found.append(name)
        return found

    def check(self, task: Task, saved: Mapping[str, Any] | None = None) -> list[str]:
        """:meth:`changed`, less the attributes reported before (each is reported once)."""
        new = [name for name in self.changed(task, saved) if name not in self.reported]
        self.reported.update(new)
        return new


def describe_uncovered(names: Iterable[str]) -> str:
    """The warning for attributes that change during training and are not checkpointed.

    Example: "resume may diverge: `self.hidden` changes during training and is not
    checkpointed (…)".
    """
    names = list(names)
    shown = ", ".join(f"`self.{n}`" for n in names)
    declared = ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "")
    if len(names) == 1:
        verb, it = "changes during training and is", "it"
    else:
        verb, it = "change during training and are", "them"
    return (f"resume may diverge: {shown} {verb} not checkpointed (declare {it} on the task: "
            f"checkpointed = ({declared}); or name {it} in not_checkpointed if a resume need "
            f"not restore {it})")
