"""BatchLeakageCheck: a model whose samples see each other is caught on the first batch."""

from __future__ import annotations

import pytest
import torch
from ext_tasks import Regression, make_task, weights
from torch import nn

from workbench.extensions import BatchLeakageCheck, BatchLeakageError


class TransposeReshape(nn.Module):
    """A "reshape" that is really a transpose: rows get values of other samples."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(x.t().reshape(x.shape))


class ReshapeTranspose(TransposeReshape):
    def forward(self, x):
        return self.linear(x.reshape(x.shape[1], x.shape[0]).t())


class BatchMean(TransposeReshape):
    """Adds the batch's mean to every sample (a normalisation over the wrong axis)."""

    def forward(self, x):
        return self.linear(x + x.mean(dim=0, keepdim=True))


class Normed(Regression):
    """A correct model with dropout and batch norm: both behave per sample in the check."""

    def build_model(self):
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))


@pytest.mark.parametrize("module", [TransposeReshape, ReshapeTranspose, BatchMean])
def test_a_model_that_mixes_samples_is_refused_before_it_trains(module: type[nn.Module]) -> None:
    class Leaky(Regression):
        def build_model(self):
            return module()

    task = make_task(Leaky, extensions=[BatchLeakageCheck()])
    task.setup()
    built = weights(task)
    with pytest.raises(BatchLeakageError, match=r"the output of sample 0 depends on the inputs of samples \d"):
        task.fit()
    assert task.state.step == 0
    assert all(torch.equal(built[k], v) for k, v in weights(task).items())


def test_a_correct_model_passes_the_check() -> None:
    check = BatchLeakageCheck(samples=3)
    task = make_task(Normed, extensions=[check])
    task.fit()
    assert check.done and check.skipped == ""
    assert task.state.step == 8


def test_the_check_does_not_change_training() -> None:
    plain = make_task(Normed, seed=4)
    checked = make_task(Normed, seed=4, extensions=[BatchLeakageCheck()])
    plain.fit()
    checked.fit()
    a, b = weights(plain), weights(checked)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_check_says_why_it_skipped_a_batch_without_float_inputs() -> None:
    class Tokens(Regression):
        def build_data(self):
            x = torch.randint(0, 10, (16, 4))
            return [torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(16, 1)), batch_size=8)]

        def build_model(self):
            return nn.Sequential(nn.Embedding(10, 2), nn.Flatten(), nn.Linear(8, 1))

    check = BatchLeakageCheck()
    make_task(Tokens, epochs=1, extensions=[check]).fit()
    assert "no floating-point input" in check.skipped
