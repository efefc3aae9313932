"""Data: datasets → preprocessing → loaders (the FRDC pipeline).

A task's ``build_data()`` returns either a :class:`DataModule` or plain loaders (a
``DataLoader``, a ``(train, val[, test])`` tuple, or a dict with those keys); the trainer
sees them all as :class:`Loaders`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["DataModule", "EpochSampler", "Loaders", "Preprocessed", "as_loaders"]


class EpochSampler(Sampler[int]):
    """Indices in a seeded order that depends only on ``(seed, epoch)``.

    Unlike ``RandomSampler`` it draws nothing from the global RNG, so the order of any
    epoch can be recomputed, and an epoch can start at a position (mid-epoch resume skips
    the samples already seen without loading them).

    Args:
        length: The dataset's length.
        shuffle: Shuffle per epoch, or keep the dataset's order.
        seed: The shuffling seed.
    """

    def __init__(self, length: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def set_start(self, position: int) -> None:
        """Start the next iteration at this position of the epoch's order (once)."""
        self.start = position

    def order(self) -> list[int]:
        """The full order of the current epoch."""
        if not self.shuffle:
            return list(range(self.length))
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return torch.randperm(self.length, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        start, self.start = self.start, 0
        return iter(order[start:])

    def __len__(self) -> int:
        return self.length


class Preprocessed(Dataset):
    """A dataset whose samples pass through ``fn`` before batching.

    Args:
        dataset: The source dataset.
        fn: Called on each sample as it is read.
    """

    def __init__(self, dataset: Dataset, fn: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.fn = fn

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.fn(self.dataset[index])


@dataclass
class Loaders:
    """The loaders a task trains, validates and tests on (any may be None)."""

    train: Any = None
    val: Any = None
    test: Any = None


class DataModule:
    """Datasets, their preprocessing, and the loaders built over them.

    Pass datasets to the constructor, or subclass and override :meth:`build_datasets`
    and :meth:`preprocess`. Preprocessing runs per sample, before batching. The training
    loader shuffles with an :class:`EpochSampler` seeded by ``seed``, so runs repeat.

    Args:
        train: The training dataset.
        val: The validation dataset.
        test: The test dataset.
        batch_size: Samples per training batch.
        eval_batch_size: Samples per validation/test batch (default: ``batch_size``).
        preprocess: Called on each sample before batching (default: :meth:`preprocess`).
        shuffle: Shuffle the training data each epoch.
        seed: The shuffling seed.
        num_workers: Loader worker processes.
        drop_last: Drop the last incomplete training batch.
        collate_fn: How samples become a batch (default: torch's).
    """

    def __init__(
        self,
        train: Dataset | None = None,
        val: Dataset | None = None,
        test: Dataset | None = None,
        *,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        preprocess: Callable[[Any], Any] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.datasets: dict[str, Dataset | None] = {"train": train, "val": val, "test": test}
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self._preprocess = preprocess
        self.shuffle = shuffle
        self.seed = seed
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self._loaders: dict[str, DataLoader | None] = {}

    def build_datasets(self) -> Mapping[str, Dataset | None]:
        """Override to build the datasets lazily; the default returns those given."""
        return self.datasets

    def preprocess(self, sample: Any) -> Any:
        """Override to transform each sample before batching; the default keeps it."""
        return sample

    def loader(self, split: str) -> DataLoader | None:
        """The loader for ``train``, ``val`` or ``test`` (built once)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; expected train, val or test")
        if split not in self._loaders:
            self._loaders[split] = self._build(split)
        return self._loaders[split]

    def _build(self, split: str) -> DataLoader | None:
        dataset = self.build_datasets().get(split)
        if dataset is None:
            return None
        fn = self._preprocess
        if fn is None and type(self).preprocess is not DataModule.preprocess:
            fn = self.preprocess
        if fn is not None:
            dataset = Preprocessed(dataset, fn)
        training = split == "train"
        sampler = EpochSampler(len(dataset), shuffle=training and self.shuffle, seed=self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if training else self.eval_batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=self.drop_last and training,
            collate_fn=self.collate_fn,
        )

    @property
    def train(self) -> DataLoader | None:
        """The training loader."""
        return self.loader("train")

    @property
    def val(self) -> DataLoader | None:
        """The validation loader."""
        return self.loader("val")

    @property
    def test(self) -> DataLoader | None:
        """The test loader."""
        return self.loader("test")


def as_loaders(data: Any) -> Loaders:
    """Normalise what ``build_data()`` returned into :class:`Loaders`.

    Accepts a :class:`DataModule`, a :class:`Loaders`, a single loader (training only), a
    ``(train, val)`` or ``(train, val, test)`` tuple, or a dict with those keys.

    Raises:
        TypeError: The value is none of these.
    """
    if isinstance(data, Loaders):
        return data
    if isinstance(data, DataModule):
        return Loaders(data.train, data.val, data.test)
    if isinstance(data, Mapping):
        unknown = set(data) - {"train", "val", "test"}
        if unknown:
            raise TypeError(f"build_data() returned a dict with unknown keys {sorted(unknown)}; "
                            "expected train, val, test")
        return Loaders(data.get("train"), data.get("val"), data.get("test"))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and 1 <= len(data) <= 3:
        return Loaders(*data)
    if data is not None and hasattr(data, "__iter__"):
        return Loaders(train=data)
    raise TypeError(
        "build_data() must return a DataModule, a DataLoader, a (train, val[, test]) tuple "
        f"or a dict of loaders; got {type(data).__name__}"
    )
