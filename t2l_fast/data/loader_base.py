"""The loader contract's shared behaviour: epochs, moving batches to the device, reporting bad videos."""
from __future__ import annotations

import warnings

import torch

from .clip_dataset import ClipDataset, ShardSampler, TooManyBadVideos


def collate(samples: list[dict]) -> dict:
    return {"video": torch.stack([s["video"] for s in samples]),
            "label": torch.tensor([s["label"] for s in samples], dtype=torch.int64),
            "index": torch.tensor([s["index"] for s in samples], dtype=torch.int64),
            "path": [s["path"] for s in samples],
            "failures": [failure for s in samples for failure in s["failures"]]}


class LoaderBase:
    """Batches of one epoch at a time; call set_epoch(e) before iterating epoch e. Backends implement __iter__
    and __len__; `bad_videos` lists this epoch's (path, reason) failures, `fallback_batches` the batches another
    backend had to make (DALI only)."""

    backend = "base"

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, *, batch_size: int, drop_last: bool,
                 device: torch.device, dtype: torch.dtype | None, max_bad_fraction: float):
        self.dataset, self.sampler, self.device, self.dtype = dataset, sampler, device, dtype
        self.batch_size, self.drop_last, self.max_bad_fraction = batch_size, drop_last, max_bad_fraction
        self.bad_videos: list[tuple] = []
        self.fallback_batches = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch `epoch` next, from its batch `start_batch` (a resumed run skips what it consumed)."""
        self.dataset.epoch = self.sampler.epoch = epoch
        self.sampler.start = start_batch * self.batch_size

    def _to_device(self, batch: dict) -> dict:
        video = batch["video"].to(self.device, non_blocking=True)
        if self.dtype is not None:
            video = video.to(self.dtype).div_(255.0)
        return {**batch, "video": video, "label": batch["label"].to(self.device, non_blocking=True),
                "index": batch["index"].to(self.device, non_blocking=True)}

    def _report(self, failures: list[tuple], budget: float) -> None:
        for path, reason in failures:
            self.bad_videos.append((path, reason))
            warnings.warn(f"{path}: {reason}; replaced by another clip ({len(self.bad_videos)} bad this epoch)",
                          stacklevel=3)
        if len(self.bad_videos) > budget:
            listing = "\n".join(f"  {path}: {reason}" for path, reason in self.bad_videos[:20])
            raise TooManyBadVideos(
                f"{len(self.bad_videos)} videos failed this epoch, more than {self.max_bad_fraction:.0%} of its "
                f"{len(self.sampler)} clips; stopping. Run `t2l data check` on the list to find and drop them:\n"
                f"{listing}")
