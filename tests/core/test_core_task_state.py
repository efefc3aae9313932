"""The state a task keeps on ``self``: ``checkpointed``, ``Task.state_dict()`` and the audit
that names attributes which change during training without being checkpointed.

Small real tasks trained for a few steps; what the audit reports is asked of
``Task.unsaved_attributes()`` (the checkpoint extension asks the same when it saves).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task
from workbench.core.attributes import FRAMEWORK_ATTRIBUTES
from workbench.core.errors import TaskError


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, x.sum(dim=1, keepdim=True))


class Small(Task):
    """A linear model on a sum of three inputs: 4 steps per epoch."""

    @dataclass
    class Config:
        epochs: int = 1
        lr: float = 0.05
        seed: int = 0

    def build_data(self) -> DataModule:
        return DataModule(_data(16, 1), _data(8, 2), batch_size=4)

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()


def _through_a_file(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# -- declaring ---------------------------------------------------------------------------------


def test_checkpointed_must_be_a_tuple_of_names() -> None:
    with pytest.raises(TaskError, match=r"must be a tuple of attribute names, like \('hidden',\)"):
        type("OneString", (Small,), {"checkpointed": "hidden"})
    with pytest.raises(TaskError, match="not_checkpointed must be"):
        type("NotNames", (Small,), {"not_checkpointed": ("ok", "not a name")})


def test_checkpointed_may_not_name_the_tasks_own_fields() -> None:
    with pytest.raises(TaskError, match="names model, optimizer: the task's own fields"):
        type("Owned", (Small,), {"checkpointed": ("optimizer", "model", "hidden")})


def test_the_framework_attributes_are_the_ones_a_set_up_task_has() -> None:
    task = Small(device="cpu")
    task.setup()
    # A new field of Task must be listed there. The criterion is not: a loss with state of
    # its own (a running normaliser) is the task's to checkpoint, and is checked.
    assert set(vars(task)) == FRAMEWORK_ATTRIBUTES | {"criterion"}


# -- saving and restoring --------------------------------------------------------------------


class Keeps(Small):
    """Keeps one of every kind of value the declarative form saves."""

    checkpointed = ("hidden", "ema", "count", "history", "avg_model", "gen", "rng", "nothing")

    def build_model(self) -> nn.Module:
        model = super().build_model()
        self.hidden = None
        self.ema = torch.zeros(4)
        self.count = 0
        self.history = {"losses": [], "best": float("inf")}
        self.avg_model = nn.Linear(3, 4)
        self.gen = torch.Generator().manual_seed(5)
        self.rng = random.Random(5)
        self.nothing = None
        return model

    def training_step(self, batch, batch_idx):
        result = super().training_step(batch, batch_idx)
        loss = result["loss"].item()
        self.hidden = (torch.full((1, 2), loss), torch.arange(3.0) * loss)
        self.ema.mul_(0.5).add_(1.0)
        self.count += 1
        self.history["losses"].append(loss)
        self.history["best"] = min(self.history["best"], loss)
        with torch.no_grad():
            self.avg_model.weight.add_(1.0)
        torch.rand(2, generator=self.gen)
        self.rng.random()
        return result


def test_declared_attributes_go_through_a_weights_only_file_and_come_back() -> None:
    trained = Keeps(device="cpu")
    trained.fit()
    assert trained.unsaved_attributes() == []
    checkpoint = _through_a_file(trained.checkpoint_state())
    assert set(checkpoint["task"]) == set(Keeps.checkpointed)

    fresh = Keeps(device="cpu")
    fresh.setup()
    ema, avg_model, gen = fresh.ema, fresh.avg_model, fresh.gen
    fresh.restore(checkpoint)
    assert fresh.count == 4 and fresh.nothing is None
    assert fresh.history == trained.history
    assert isinstance(fresh.hidden, tuple) and all(map(torch.equal, fresh.hidden, trained.hidden))
    assert fresh.ema is ema and torch.equal(fresh.ema, trained.ema)  # copied in place
    assert fresh.avg_model is avg_model  # loaded in place
    assert torch.equal(fresh.avg_model.weight, trained.avg_model.weight)
    assert fresh.gen is gen and torch.equal(torch.rand(3, generator=fresh.gen), torch.rand(3, generator=trained.gen))
    assert fresh.rng.random() == trained.rng.random()


def test_an_attribute_that_cannot_be_saved_fails_at_setup_naming_it() -> None:
    class Opaque(Small):
        checkpointed = ("thing",)

        def build_model(self):
            self.thing = {"ok": 1, "bad": object()}
            return super().build_model()

    with pytest.raises(TaskError, match=r"cannot checkpoint self.thing\['bad'\]: a object"):
        Opaque(device="cpu").setup()


def test_a_module_saved_but_missing_at_restore_is_one_clear_error() -> None:
    class Lazy(Small):
        checkpointed = ("extra",)

        def training_step(self, batch, batch_idx):
            self.extra = nn.Linear(2, 2)
            return super().training_step(batch, batch_idx)

    trained = Lazy(device="cpu")
    trained.fit()
    with pytest.raises(TaskError, match="cannot restore self.extra: it was saved as a module and is now NoneType"):
        Lazy(device="cpu").restore(trained.checkpoint_state())


def test_an_overridden_state_dict_is_saved_and_loaded_and_covers_its_keys() -> None:
    class Own(Small):
        def build_model(self):
            self.steps_seen = 0
            return super().build_model()

        def training_step(self, batch, batch_idx):
            self.steps_seen += 1
            return super().training_step(batch, batch_idx)

        def state_dict(self):
            return {"steps_seen": self.steps_seen}

        def load_state_dict(self, state):
            self.steps_seen = state["steps_seen"] * 10

    trained = Own(device="cpu")
    trained.fit()
    assert trained.unsaved_attributes() == []
    fresh = Own(device="cpu")
    fresh.restore(_through_a_file(trained.checkpoint_state()))
    assert fresh.steps_seen == 40


def test_a_checkpoint_without_task_state_restores_as_before() -> None:
    trained = Keeps(device="cpu")
    trained.fit()
    checkpoint = trained.checkpoint_state()
    del checkpoint["task"]  # written before tasks had state of their own
    fresh = Keeps(device="cpu")
    fresh.restore(checkpoint)
    assert fresh.count == 0 and fresh.state.step == 4


# -- the audit --------------------------------------------------------------------------------


class SetOnce(Small):
    """Attributes set once, at setup, and read during training: none may be reported."""

    def build_model(self):
        model = super().build_model()
        self.first_layer = model[0]  # part of the model
        self.layers = [model[0], model[2]]
        self.teacher = nn.Linear(3, 1).requires_grad_(False)  # frozen, never changed
        self.scale = torch.tensor(2.0)
        self.vocab = {"a": 1, "b": 2}
        self.name = "small"
        self.weights_view = model[0].weight  # the model's own tensor
        self.with_nan = torch.tensor([float("nan"), 1.0])  # NaN equals itself here
        self.codes = torch.tensor([-1, 2**62, 2**62 + 7])  # an integer digest past 2**63
        return model

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.name = "small"  # set again to an equal value: no change
        self.vocab = {"a": 1, "b": 2}
        out = self.model(x) * self.scale / self.scale + 0 * self.teacher(x)
        return self.criterion(out, y)


def test_attributes_set_once_in_setup_are_not_reported() -> None:
    task = SetOnce(device="cpu")
    task.fit()
    assert task.unsaved_attributes() == []


class Changes(Small):
    """Changes one attribute of each kind during training."""

    not_checkpointed = ("last_outputs",)

    def build_model(self):
        model = super().build_model()
        self.counter = 0
        self.buffer = torch.zeros(3)
        self.sneaky = torch.zeros(3)
        self.sneaky_codes = torch.tensor([1, 2, 3])
        self.running = []
        self.avg = nn.Linear(3, 1)
        self.helper = object()
        return model

    def training_step(self, batch, batch_idx):
        result = super().training_step(batch, batch_idx)
        self.counter += 1  # rebound
        self.buffer.add_(1.0)  # in place: its version moves
        self.sneaky.data.add_(1.0)  # in place past the version counter: its contents change
        self.sneaky_codes.data.mul_(2)
        self.running.append(1.0)  # a container mutated
        with torch.no_grad():
            self.avg.bias.mul_(0.5)  # a module's parameter the model does not hold
        self.helper = object()  # an opaque object rebound
        self.last_outputs = result["outputs"]  # made after setup, but declared not checkpointed
        self.made_later = torch.ones(2)  # made after setup: a tensor
        self.callback = print  # made after setup: nothing we can see inside
        return result


def test_attributes_changed_during_training_are_reported() -> None:
    task = Changes(device="cpu")
    task.fit()
    assert task.unsaved_attributes() == ["counter", "buffer", "sneaky", "sneaky_codes", "running", "avg",
                                         "helper", "made_later"]
    assert task.buffer._version > 0 and task.sneaky._version == 0  # both ways were tried


def test_the_audit_reports_each_attribute_once() -> None:
    task = Changes(device="cpu")
    task.fit()
    audit = task._audit
    first = audit.check(task, task.state_dict())
    assert "counter" in first
    assert audit.check(task, task.state_dict()) == []
