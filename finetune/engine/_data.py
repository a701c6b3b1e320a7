"""The training data position: the epoch and how many of its batches were taken."""
from __future__ import annotations

from ._errors import EngineConfigError


class DataPosition:
    """Batches from ``dataset_fn(epoch)``, epoch after epoch; resumes mid-epoch by skipping taken batches.

    The data layer's datasets are seeded per epoch, so ``dataset_fn(epoch)``
    yields the same batches in the same order every time it is called.
    """

    def __init__(self, dataset_fn, strategy, epoch: int = 0, step_in_epoch: int = 0):
        self.dataset_fn, self.strategy = dataset_fn, strategy
        self.epoch, self.step_in_epoch = epoch, step_in_epoch
        self._iterator = None
        self._fresh = True

    def next(self):
        """The next batch (counted in the position); rolls over to the next epoch when one ends."""
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

    def _open(self):
        dataset = self.dataset_fn(self.epoch)
        self._fresh = self.step_in_epoch == 0
        if self.step_in_epoch:
            dataset = dataset.skip(self.step_in_epoch)
        if self.strategy.num_replicas_in_sync > 1:
            dataset = self.strategy.experimental_distribute_dataset(dataset)
        return iter(dataset)

    def _end_epoch(self) -> None:
        if self._fresh:
            raise EngineConfigError(f"the training dataset for epoch {self.epoch} yields no batches; check the input "
                                    "files and that the batch size is not larger than the data (drop_remainder)")
        self.epoch, self.step_in_epoch, self._iterator = self.epoch + 1, 0, None
