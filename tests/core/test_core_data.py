"""Data: EpochSampler's order, DataModule's per-sample preprocessing, as_loaders."""

from __future__ import annotations

import pytest
import torch
from core_tasks import TinyRegression, make_task
from torch.utils.data import DataLoader, TensorDataset

from workbench.core.data import DataModule, EpochSampler, Loaders, as_loaders


def test_epoch_sampler_order_depends_only_on_seed_and_epoch() -> None:
    a = EpochSampler(20, seed=5)
    b = EpochSampler(20, seed=5)
    a.set_epoch(3)
    torch.manual_seed(123)  # the global RNG plays no part
    first = list(a)
    torch.rand(10)
    b.set_epoch(3)
    assert list(b) == first == list(a)
    assert sorted(first) == list(range(20))
    b.set_epoch(4)
    assert list(b) != first
    c = EpochSampler(20, seed=6)
    c.set_epoch(3)
    assert list(c) != first


def test_epoch_sampler_does_not_draw_from_the_global_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(EpochSampler(50, seed=1))
    assert torch.equal(torch.rand(3), expected)


def test_epoch_sampler_set_start_skips_once() -> None:
    sampler = EpochSampler(12, seed=2)
    sampler.set_epoch(1)
    order = sampler.order()
    sampler.set_start(5)
    assert list(sampler) == order[5:]
    assert list(sampler) == order  # the next iteration starts from the beginning again


def test_epoch_sampler_without_shuffle_keeps_the_dataset_order() -> None:
    sampler = EpochSampler(6, shuffle=False, seed=9)
    sampler.set_epoch(7)
    assert list(sampler) == [0, 1, 2, 3, 4, 5]
    assert len(sampler) == 6


def test_a_datamodule_shuffles_training_data_differently_each_epoch_but_not_validation() -> None:
    x = torch.arange(16.0).unsqueeze(1)
    module = DataModule(TensorDataset(x), TensorDataset(x), batch_size=16, seed=1)
    train = module.train
    train.sampler.set_epoch(0)
    epoch0 = next(iter(train))[0].flatten().tolist()
    train.sampler.set_epoch(1)
    epoch1 = next(iter(train))[0].flatten().tolist()
    assert sorted(epoch0) == sorted(epoch1) == x.flatten().tolist()
    assert epoch0 != epoch1
    assert next(iter(module.val))[0].flatten().tolist() == x.flatten().tolist()
    assert module.train is train  # built once


class Doubling(DataModule):
    """Preprocessing that doubles each input and records the shapes it is given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shapes: list[tuple[int, ...]] = []

    def preprocess(self, sample):
        x, y = sample
        self.shapes.append(tuple(x.shape))
        return 2 * x, y


def test_datamodule_preprocess_runs_per_sample_before_batching() -> None:
    x = torch.arange(30.0).reshape(10, 3)
    y = torch.zeros(10, 1)
    module = Doubling(TensorDataset(x, y), batch_size=4, shuffle=False)
    batches = list(module.train)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert module.shapes == [(3,)] * 10
    assert torch.equal(torch.cat([b[0] for b in batches]), 2 * x)


def test_datamodule_preprocess_may_be_passed_as_a_function() -> None:
    x = torch.arange(8.0).unsqueeze(1)
    module = DataModule(TensorDataset(x), val=TensorDataset(x), batch_size=8,
                        preprocess=lambda s: (s[0] + 100,), shuffle=False)
    assert torch.equal(next(iter(module.val))[0], x + 100)


def test_a_task_trains_on_preprocessed_samples() -> None:
    seen = []

    class Look:
        def before_batch(self, batch):
            seen.append(batch[0].clone())

    class Preprocessing(TinyRegression):
        def build_data(self):
            module = super().build_data()
            self.source = module.datasets["train"]
            module._preprocess = lambda s: (s[0] * 0 + 7, s[1])
            return module

    task = make_task(Preprocessing, epochs=1, samples=16, extensions=[Look()])
    task.fit()
    assert len(seen) == 2
    assert all(torch.equal(b, torch.full((8, 3), 7.0)) for b in seen)


def test_datamodule_refuses_an_unknown_split() -> None:
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        DataModule().loader("valid")


def test_as_loaders_refuses_a_dict_with_unknown_keys() -> None:
    loader = DataLoader(TensorDataset(torch.zeros(2, 1)))
    with pytest.raises(TypeError, match=r"unknown keys \['validation'\]"):
        as_loaders({"train": loader, "validation": loader})
    assert as_loaders(Loaders(train=loader)).train is loader
