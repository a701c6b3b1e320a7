"""The training data position: the epoch and how many of its batches were taken."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ._errors import EngineConfigError


@dataclass(frozen=True)
class EpochStream:
    """Training data as one pipeline over all epochs, for input whose per-epoch rebuild is costly.

    ``stream(epoch, start_step)`` yields epoch ``epoch``'s batches from ``start_step`` on, then every
    later epoch's, endlessly; each epoch has exactly ``steps_per_epoch`` batches, the same ones every
    time, so the engine counts epochs instead of waiting for a pipeline to end and be rebuilt.
    """

    stream: Callable
    steps_per_epoch: int

    @classmethod
    def of(cls, data) -> "EpochStream":
        """The stream of anything with ``stream(epoch, start_step)`` and ``steps_per_epoch`` (an ``InputData``)."""
        return cls(data.stream, data.steps_per_epoch)

    def map(self, fn) -> "EpochStream":
        """The same stream with ``fn`` applied to every batch."""
        return EpochStream(lambda epoch, start_step: self.stream(epoch, start_step).map(fn), self.steps_per_epoch)


class DataPosition:
    """Batches from ``dataset_fn(epoch)``, epoch after epoch; resumes mid-epoch by skipping taken batches.

    The data layer's datasets are seeded per epoch, so ``dataset_fn(epoch)``
    yields the same batches in the same order every time it is called.  An
    :class:`EpochStream` is opened once and its epochs are counted.
    """

    def __init__(self, dataset_fn, strategy, epoch: int = 0, step_in_epoch: int = 0):
        self.dataset_fn, self.strategy = dataset_fn, strategy
        self.epoch, self.step_in_epoch = epoch, step_in_epoch
        self._iterator = None
        self._fresh = True
        if isinstance(dataset_fn, EpochStream) and dataset_fn.steps_per_epoch < 1:
            raise EngineConfigError(f"the training data has {dataset_fn.steps_per_epoch} batches per epoch; check "
                                    "the input files and that the batch size is not larger than the data "
                                    "(drop_remainder)")

    def next(self):
        """The next batch (counted in the position); rolls over to the next epoch when one ends."""
        if isinstance(self.dataset_fn, EpochStream):
            return self._next_streamed()
        while True:
            if self._iterator is None:
                self._iterator = self._open()
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._end_epoch()
                continue
            self.step_in_epoch += 1
            self._fresh = False
            return batch

    def _next_streamed(self):
        if self.step_in_epoch >= self.dataset_fn.steps_per_epoch:  # the epoch ended with the last batch taken
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        if self._iterator is None:
            self._iterator = self._distributed(self.dataset_fn.stream(self.epoch, self.step_in_epoch))
        batch = next(self._iterator)
        self.step_in_epoch += 1
        return batch

    def _open(self):
        dataset = self.dataset_fn(self.epoch)
        self._fresh = self.step_in_epoch == 0
        if self.step_in_epoch:
            dataset = dataset.skip(self.step_in_epoch)
        return self._distributed(dataset)

    def _distributed(self, dataset):
        if self.strategy.num_replicas_in_sync > 1:
            dataset = self.strategy.experimental_distribute_dataset(dataset)
        return iter(dataset)

    def _end_epoch(self) -> None:
        if self._fresh:
            raise EngineConfigError(f"the training dataset for epoch {self.epoch} yields no batches; check the input "
                                    "files and that the batch size is not larger than the data (drop_remainder)")
        self.epoch, self.step_in_epoch, self._iterator = self.epoch + 1, 0, None
