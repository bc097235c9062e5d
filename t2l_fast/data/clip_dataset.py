"""What every loader backend shares: the clip dataset (sampling, decoding and augmenting one clip with PyAV), the
replacement of bad videos, the per-rank sampler, and the batch count.

Epoch order and every sample's randomness derive from (seed, epoch[, index]), so a resumed run sees the same clips.
Bad videos never end an epoch: a clip that fails to decode (or takes longer than `decode_timeout`) is replaced by
another, drawn from the sample's own random stream, so every rank keeps its length.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, InputFileError, T2LError
from ..numbers import NumberError
from .augment import AugmentConfig, apply_eval, apply_eval_crops, apply_train, draw_train_params
from .decode import count_frames, decode_frames, run_with_timeout
from .lists import VideoEntry
from .sampling import AUGMENT_STREAM, REPLACE_STREAM, sample_rng, segment_indices, view_indices


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
                 augment: AugmentConfig, decode_timeout: float | None = 60.0, max_attempts: int = 10,
                 frame_counts: dict[Path, int] | None = None, views: tuple[int, int] = (1, 1)):
        self.entries, self.train, self.frames, self.size = list(entries), train, frames, size
        self.views = tuple(views)  # (clips, crops) per video in evaluation
        self.frame_counts = frame_counts or {}  # decoded counts from a preflight manifest: no re-probing
        self.seed, self.augment, self.epoch = seed, augment, 0
        self.decode_timeout, self.max_attempts = decode_timeout, max_attempts

    def __len__(self) -> int:
        return len(self.entries)

    def clip_indices(self, index: int, num_frames: int) -> list[int]:
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


def load_with_replacement(dataset: ClipDataset, index: int, load: Callable[[int], Any]) -> tuple[Any, int, list]:
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
    """This rank's dataset indices for one epoch: shuffled by (seed, epoch) in training, in order otherwise.

    With `twin_labels` (the dataset's labels; training only), the order is made of twin pairs: a random half of the
    clips, each followed by a random clip of its twin class (label ^ 1: classes 2k and 2k + 1 are twins, e.g. time-
    reversed actions), and each rank takes whole pairs, so an even batch holds every clip's twin for an in-batch loss.
    """

    def __init__(self, size: int, *, shard_id: int, num_shards: int, shuffle: bool, drop_tail: bool, seed: int,
                 twin_labels: Sequence[int] | None = None):
        if not 0 <= shard_id < num_shards:
            raise NumberError(f"shard_id must be in 0..{num_shards - 1}, got {shard_id}")
        self.size, self.shard_id, self.num_shards = size, shard_id, num_shards
        self.shuffle, self.drop_tail, self.seed, self.epoch = shuffle, drop_tail, seed, 0
        self.per_shard = size // num_shards if drop_tail else math.ceil(size / num_shards)
        self.twin_labels = None if twin_labels is None else np.asarray(twin_labels)
        if self.twin_labels is not None:
            if len(self.twin_labels) != size or (size and self.twin_labels.min() < 0):
                raise NumberError(f"twin_labels: {len(self.twin_labels)} labels for {size} clips, or a negative one")
            self.per_shard = size // 2 // num_shards * 2  # whole pairs
        self.start = 0  # samples of this epoch already consumed (mid-epoch resume)

    def __len__(self) -> int:
        return self.per_shard - self.start

    def __iter__(self) -> Iterator[int]:
        if self.twin_labels is not None:
            return iter(self._twin_order()[self.start:].tolist())
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        total = self.per_shard * self.num_shards
        order = order[:total] if self.drop_tail else np.resize(order, total)  # np.resize wraps around
        return iter(order[self.shard_id::self.num_shards][self.start:].tolist())

    def _twin_order(self) -> np.ndarray:
        """This rank's [per_shard] indices of one epoch: (clip, a clip of its twin class) pairs."""
        rng = np.random.default_rng([self.seed, self.epoch])
        labels = self.twin_labels  # [N]
        anchors = rng.permutation(self.size)[:self.size // 2]  # [P]
        by_class = np.argsort(labels, kind="stable")  # indices grouped by class
        starts, counts = np.searchsorted(labels[by_class], np.arange(labels.max() + 2)), np.bincount(labels)
        twins = labels[anchors] ^ 1  # [P]
        picks = by_class[starts[twins] + (rng.random(len(anchors)) * counts[twins]).astype(int)]  # [P]
        pairs = np.stack([anchors, picks], axis=1)  # [P, 2]
        return pairs[self.shard_id::self.num_shards][:self.per_shard // 2].reshape(-1)


def check_twin_labels(labels: Sequence[int], batch_size: int, where: str) -> None:
    """Twin batches need an even batch and, for every class with clips, clips of its twin class (label ^ 1)."""
    if batch_size % 2:
        raise ConfigError(f"{where}: twin batches hold whole (clip, twin) pairs; batch_size {batch_size} is odd, make "
                          f"it even")
    present = set(int(label) for label in labels)
    lonely = sorted(label for label in present if label ^ 1 not in present)
    if lonely:
        raise InputFileError(f"{where}: twin batches pair class 2k with 2k + 1, and class {lonely[0]} has no clips "
                             f"of its twin {lonely[0] ^ 1}; list twin classes next to each other, or turn twin "
                             f"batches off")


def batch_count(samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches of an epoch of `samples`: full ones only with drop_last, else a partial last one too."""
    full, rest = divmod(samples, batch_size)
    return full if drop_last or not rest else full + 1
