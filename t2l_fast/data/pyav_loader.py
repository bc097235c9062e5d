"""The PyAV backend of the loader contract (torch DataLoader workers): the reference for every other backend."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from .clip_dataset import ClipDataset, ShardSampler
from .loader_base import LoaderBase, collate


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode in parallel; one thread each avoids oversubscription


class PyAVVideoLoader(LoaderBase):
    """ClipDataset in DataLoader worker processes (decode and augment with PyAV and torch)."""

    backend = "pyav"

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, *, batch_size: int, drop_last: bool,
                 num_workers: int, device: torch.device, dtype: torch.dtype | None, max_bad_fraction: float):
        super().__init__(dataset, sampler, batch_size=batch_size, drop_last=drop_last, device=device, dtype=dtype,
                         max_bad_fraction=max_bad_fraction)
        self._loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                                  num_workers=num_workers, collate_fn=collate, worker_init_fn=_worker_init,
                                  pin_memory=device.type == "cuda", persistent_workers=False,
                                  generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[dict]:
        self.bad_videos = []
        budget = self.max_bad_fraction * len(self.sampler)
        for batch in self._loader:
            self._report(batch.pop("failures"), budget)
            yield self._to_device(batch)
