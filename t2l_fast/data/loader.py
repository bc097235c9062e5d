"""The loader contract, and its PyAV backend (torch DataLoader workers): the reference for every other backend.

build_video_loader(...) returns an iterable of batches
    {"video": uint8 [B, T, 3, S, S] (float in 0..1 with dtype=), "label": int64 [B], "index": int64 [B],
     "path": list[str]}
with len() = batches per epoch, the same on every rank. Normalisation with the model's mean/std happens on the
device (t2l_fast.normalize_video), not in workers: uint8 moves 4x fewer bytes.
Multi-view evaluation (views=(N clips, M crops) other than (1, 1), PyAV backend only) makes "video"
[B, N*M, T, 3, S, S], views ordered clip-major (clip 0 crop 0, clip 0 crop 1, ...).

Epoch order and every sample's randomness derive from (seed, epoch[, index]), so a resumed run sees the same clips.
Sharding: training shards drop the tail so every rank has floor(N / shards) clips; evaluation shards wrap around
to ceil(N / shards) (the repeated clips carry their `index`, so an evaluator counts each video once).

Bad videos never end an epoch: a clip that fails to decode (or takes longer than `decode_timeout`) is replaced by
another, drawn from the sample's own random stream, so every rank keeps its length. Each failure is warned about
with the file and a running count; past `max_bad_fraction` of an epoch's clips the loader stops with a summary.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import AugmentConfig, apply_eval, apply_eval_crops, apply_train, draw_train_params
from ..errors import T2LError, UnsupportedOptionError
from ..optional import installed, require
from .decode import count_frames, decode_frames, run_with_timeout
from .lists import VideoEntry, read_video_list
from .preflight import read_manifest
from .sampling import AUGMENT_STREAM, REPLACE_STREAM, sample_rng, segment_indices, view_indices

SPLITS = ("train", "val")
BACKENDS = ("auto", "dali", "pyav")


class TooManyBadVideos(T2LError, RuntimeError):
    """More videos failed than the loader may replace (the message lists them with their reasons)."""


def _reason(error: BaseException, path: str) -> str:
    """Why loading `path` failed, without repeating the path our own errors start with."""
    if isinstance(error, T2LError):
        return str(error).removeprefix(f"{path}: ")
    return f"{type(error).__name__}: {error}"


class ClipDataset(Dataset):
    """Decodes and augments one clip (or, in evaluation, the views of one video) per index (PyAV); a video that
    fails is replaced by another."""

    def __init__(self, entries: Sequence[VideoEntry], *, train: bool, frames: int, size: int, seed: int,
                 augment: AugmentConfig, decode_timeout: Optional[float] = 60.0, max_attempts: int = 10,
                 frame_counts: Optional[Dict[Path, int]] = None, views: Tuple[int, int] = (1, 1)):
        self.entries, self.train, self.frames, self.size = list(entries), train, frames, size
        self.views = tuple(views)  # (clips, crops) per video in evaluation
        self.frame_counts = frame_counts or {}  # decoded counts from a preflight manifest: no re-probing
        self.seed, self.augment, self.epoch = seed, augment, 0
        self.decode_timeout, self.max_attempts = decode_timeout, max_attempts

    def __len__(self) -> int:
        return len(self.entries)

    def clip_indices(self, index: int, num_frames: int) -> List[int]:
        """The frame indices sample `index` uses in the current epoch (in evaluation: clips x T, clip after clip)."""
        if self.train:
            return segment_indices(num_frames, self.frames, train=True, rng=sample_rng(self.seed, self.epoch, index))
        return view_indices(num_frames, self.frames, self.views[0])

    def frame_count(self, entry: VideoEntry) -> int:
        """Frames of `entry` (within its start/end): the manifest's decoded count when it has one, else demuxed."""
        known = self.frame_counts.get(entry.path) if entry.start is None and entry.end is None else None
        return known or count_frames(entry.path, entry.start, entry.end)

    def load_clip(self, index: int) -> torch.Tensor:
        """uint8 [T, 3, size, size] of sample `index` (multi-view: [clips*crops, T, 3, size, size]); raises on any
        decoding problem."""
        entry = self.entries[index]
        indices = self.clip_indices(index, self.frame_count(entry))
        clip = torch.from_numpy(decode_frames(entry.path, indices, entry.start, entry.end)).permute(0, 3, 1, 2)
        if self.train:
            rng = sample_rng(self.seed, self.epoch, index, AUGMENT_STREAM)
            params = draw_train_params(rng, clip.shape[2], clip.shape[3], self.frames, self.size, self.augment)
            return apply_train(clip, params, self.size).contiguous()
        if self.views == (1, 1):
            return apply_eval(clip, self.size).contiguous()
        crops = apply_eval_crops(clip, self.size, self.views[1])  # [M, N*T, 3, S, S]
        views = crops.unflatten(1, (self.views[0], self.frames)).transpose(0, 1)  # [N, M, T, 3, S, S]
        return views.flatten(0, 1).contiguous()  # [N*M, T, 3, S, S]

    def __getitem__(self, index: int) -> dict:
        def load(candidate: int) -> torch.Tensor:
            return run_with_timeout(lambda: self.load_clip(candidate), self.decode_timeout,
                                    str(self.entries[candidate].path))

        clip, candidate, failures = load_with_replacement(self, index, load)
        entry = self.entries[candidate]
        return {"video": clip, "label": entry.label, "index": candidate, "path": str(entry.path),
                "failures": failures}


def load_with_replacement(dataset: ClipDataset, index: int, load: Callable[[int], Any]) -> Tuple[Any, int, list]:
    """(load(candidate), candidate, failures): sample `index`, or, when it fails, other samples drawn from its own
    random stream until one loads (at most dataset.max_attempts tries). Failures are (path, reason) pairs."""
    failures, candidate, replacements = [], index, None
    for _ in range(dataset.max_attempts):
        path = str(dataset.entries[candidate].path)
        try:
            return load(candidate), candidate, failures
        except Exception as e:  # any failure of one video: replace it, report it, never end the epoch here
            failures.append((path, _reason(e, path)))
            replacements = replacements or sample_rng(dataset.seed, dataset.epoch, index, REPLACE_STREAM)
            candidate = int(replacements.integers(len(dataset.entries)))
    raise TooManyBadVideos(f"{dataset.max_attempts} videos in a row failed to load: "
                           + "; ".join(f"{path}: {reason}" for path, reason in failures))


class ShardSampler(Sampler):
    """This rank's dataset indices for one epoch: shuffled by (seed, epoch) in training, in order otherwise."""

    def __init__(self, size: int, *, shard_id: int, num_shards: int, shuffle: bool, drop_tail: bool, seed: int):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id must be in 0..{num_shards - 1}, got {shard_id}")
        self.size, self.shard_id, self.num_shards = size, shard_id, num_shards
        self.shuffle, self.drop_tail, self.seed, self.epoch = shuffle, drop_tail, seed, 0
        self.per_shard = size // num_shards if drop_tail else math.ceil(size / num_shards)
        self.start = 0  # samples of this epoch already consumed (mid-epoch resume)

    def __len__(self) -> int:
        return self.per_shard - self.start

    def __iter__(self) -> Iterator[int]:
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        total = self.per_shard * self.num_shards
        order = order[:total] if self.drop_tail else np.resize(order, total)  # np.resize wraps around
        return iter(order[self.shard_id::self.num_shards][self.start:].tolist())


def batch_count(samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches of an epoch of `samples`: full ones only with drop_last, else a partial last one too."""
    full, rest = divmod(samples, batch_size)
    return full if drop_last or not rest else full + 1


def _collate(samples: List[dict]) -> dict:
    return {"video": torch.stack([s["video"] for s in samples]),
            "label": torch.tensor([s["label"] for s in samples], dtype=torch.int64),
            "index": torch.tensor([s["index"] for s in samples], dtype=torch.int64),
            "path": [s["path"] for s in samples],
            "failures": [failure for s in samples for failure in s["failures"]]}


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode in parallel; one thread each avoids oversubscription


class VideoLoader:
    """Batches of one epoch at a time; call set_epoch(e) before iterating epoch e."""

    backend = "pyav"

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, *, batch_size: int, drop_last: bool,
                 num_workers: int, device: torch.device, dtype: Optional[torch.dtype], max_bad_fraction: float):
        self.dataset, self.sampler, self.device, self.dtype = dataset, sampler, device, dtype
        self.batch_size, self.drop_last, self.max_bad_fraction = batch_size, drop_last, max_bad_fraction
        self.bad_videos: List[tuple] = []  # (path, reason) of this epoch's failures
        self._loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                                  num_workers=num_workers, collate_fn=_collate, worker_init_fn=_worker_init,
                                  pin_memory=device.type == "cuda", persistent_workers=False,
                                  generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch `epoch` next, from its batch `start_batch` (a resumed run skips what it consumed)."""
        self.dataset.epoch = self.sampler.epoch = epoch
        self.sampler.start = start_batch * self.batch_size

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[dict]:
        self.bad_videos = []
        budget = self.max_bad_fraction * len(self.sampler)
        for batch in self._loader:
            self._report(batch.pop("failures"), budget)
            yield self._to_device(batch)

    def _to_device(self, batch: dict) -> dict:
        video = batch["video"].to(self.device, non_blocking=True)
        if self.dtype is not None:
            video = video.to(self.dtype).div_(255.0)
        return {**batch, "video": video, "label": batch["label"].to(self.device, non_blocking=True),
                "index": batch["index"].to(self.device, non_blocking=True)}

    def _report(self, failures: List[tuple], budget: float) -> None:
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


def build_video_loader(list_file: Union[str, Path, Sequence[VideoEntry]], root: Union[str, Path], *,
                       split: str = "train",
                       frames: int = 8, size: int = 224, batch_size: int, backend: str = "auto",
                       device: Union[str, torch.device, None] = None, shard_id: int = 0, num_shards: int = 1,
                       seed: int = 0, epoch: int = 0, dtype: Optional[torch.dtype] = None,
                       num_workers: Optional[int] = None, class_names: Optional[Sequence[str]] = None,
                       augment: AugmentConfig = AugmentConfig(), missing: str = "error",
                       decode_timeout: Optional[float] = 60.0, max_bad_fraction: float = 0.05,
                       manifest: Union[str, Path, None] = None, views: Tuple[int, int] = (1, 1)) -> VideoLoader:
    """A loader over the videos of `list_file` under `root` (see the module docstring for the batch contract).
    list_file may also be entries already read (e.g. from t2l_fast.data.splits).
    manifest: the `*.manifest.json` of `t2l data check`, whose decoded frame counts replace per-clip probing.
    views: (clips, crops) per video in evaluation; anything but (1, 1) needs split="val" and the PyAV backend."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    views = _check_views(views, split, backend)
    if backend == "auto":
        dali = installed("nvidia-dali-cuda130") or installed("nvidia-dali-cuda120")
        backend = "dali" if dali and views == (1, 1) else "pyav"
    if backend == "dali":
        require("nvidia.dali", "dali", "backend='dali'")
    for name, value in (("frames", frames), ("size", size), ("batch_size", batch_size), ("num_shards", num_shards)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point type (uint8 is the default), got {dtype}")
    train = split == "train"
    if isinstance(list_file, (str, Path)):
        entries = read_video_list(list_file, root, class_names=class_names, missing=missing)
    else:
        entries = list(list_file)
    frame_counts = read_manifest(Path(manifest), Path(root)) if manifest else None
    dataset = ClipDataset(entries, train=train, frames=frames, size=size, seed=seed, augment=augment,
                          decode_timeout=decode_timeout, frame_counts=frame_counts, views=views)
    sampler = ShardSampler(len(entries), shard_id=shard_id, num_shards=num_shards, shuffle=train, drop_tail=train,
                           seed=seed)
    if train and len(sampler) < batch_size:
        raise ValueError(f"{list_file}: {len(entries)} videos over {num_shards} shard(s) give {len(sampler)} per "
                         f"shard, fewer than one batch of {batch_size}; lower batch_size")
    device = torch.device(device or ("cuda" if backend == "dali" and torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but this machine has no usable CUDA GPU; use device='cpu'")
    if backend == "dali":
        from .dali_loader import DaliVideoLoader

        loader = DaliVideoLoader(dataset, sampler, batch_size=batch_size, drop_last=train, device=device,
                                 dtype=dtype, max_bad_fraction=max_bad_fraction)
    else:
        workers = min(4, os.cpu_count() or 1) if num_workers is None else num_workers
        loader = VideoLoader(dataset, sampler, batch_size=batch_size, drop_last=train, num_workers=workers,
                             device=device, dtype=dtype, max_bad_fraction=max_bad_fraction)
    loader.set_epoch(epoch)
    return loader


def _check_views(views: Sequence[int], split: str, backend: str) -> Tuple[int, int]:
    """views as a (clips, crops) tuple, or a clear error when they are malformed or not supported here."""
    views = tuple(views)
    if len(views) != 2 or any(not isinstance(v, int) or v < 1 for v in views):
        raise ValueError(f"views must be (clips, crops), two integers >= 1, got {views!r}")
    if views != (1, 1) and split != "val":
        raise ValueError(f"views={views} is for evaluation (split='val'); training samples one clip per video")
    if views != (1, 1) and backend == "dali":
        raise UnsupportedOptionError(f"multi-view evaluation (views={views}) is implemented by the PyAV backend "
                                     f"only; use backend='pyav' (t2l eval --backend pyav) or one view")
    return views
