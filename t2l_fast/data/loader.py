"""The loader contract, and the factory that picks its backend (pyav_loader.py, the reference; dali_loader.py).

build_video_loader(list_file, root, LoaderConfig(...), split=..., batch_size=...) returns an iterable of batches
    {"video": uint8 [B, T, 3, S, S] (float in 0..1 with dtype=), "label": int64 [B], "index": int64 [B],
     "path": list[str]}
with len() = batches per epoch, the same on every rank. Normalization with the model's mean/std happens on the
device (t2l_fast.normalize_video), not in workers: uint8 moves 4x fewer bytes.
Multi-view evaluation (views=(N clips, M crops) other than (1, 1), PyAV backend only) makes "video"
[B, N*M, T, 3, S, S], views ordered clip-major (clip 0 crop 0, clip 0 crop 1, ...).

Epoch order and every sample's randomness derive from (seed, epoch[, index]), so a resumed run sees the same clips;
loader.set_epoch(e) picks the epoch (0 when built).
Sharding: training shards drop the tail so every rank has floor(N / shards) clips; evaluation shards wrap around
to ceil(N / shards) (the repeated clips carry their `index`, so an evaluator counts each video once).

Bad videos never end an epoch: a clip that fails to decode (or takes longer than `decode_timeout`) is replaced by
another, drawn from the sample's own random stream, so every rank keeps its length. Each failure is warned about
with the file and a running count; past `max_bad_fraction` of an epoch's clips the loader stops with a summary.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UnsupportedOptionError
from ..numbers import NumberError
from ..optional import dali_version, require
from .augment import AugmentConfig
from .clip_dataset import ClipDataset, ShardSampler, check_twin_labels
from .lists import VideoEntry, VideoListError, read_video_list
from .loader_base import LoaderBase
from .preflight import read_manifest
from .pyav_loader import PyAVVideoLoader

SPLITS = ("train", "val")
BACKENDS = ("auto", "dali", "pyav")


@dataclass(frozen=True)
class LoaderConfig:
    """What a dataset and its recipe fix about loading clips (build_video_loader takes the per-run rest)."""

    frames: int = 8  # T: frames sampled per clip (TSN segments)
    size: int = 224  # S: side of the square frames a batch holds
    augment: AugmentConfig = AugmentConfig()  # training augmentation (split="train" only)
    backend: str = "auto"  # "pyav", "dali", or "auto": DALI when installed and one view per video, else PyAV
    num_workers: int | None = None  # PyAV decoding processes (None: min(4, CPUs); 0: in this process)
    dtype: torch.dtype | None = None  # None: uint8 0..255; a floating-point type: scaled to 0..1
    views: tuple[int, int] = (1, 1)  # (clips, crops) per video in evaluation; other than (1, 1): PyAV, split="val"
    class_names: Sequence[str] | None = None  # label order, for lists that name their classes (CSV)
    manifest: str | Path | None = None  # `t2l data check`'s *.manifest.json: decoded frame counts, no probing;
    #   DALI needs one: without it, it reads (or probes once and writes) STEM.check.manifest.json beside the list
    missing: str = "error"  # listed files that do not exist: "error", "skip" (warned) or "keep"
    decode_timeout: float | None = 60.0  # seconds one clip may take to decode before it is replaced (None: any)
    max_bad_fraction: float = 0.05  # of an epoch's clips that may be replaced before the loader stops
    on_dali_error: str = "fallback"  # a batch DALI fails on: "fallback" (the PyAV path makes it, counted) or "raise"
    twin_batches: bool = False  # training: each clip's batch holds a clip of its twin class (ShardSampler)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise UnsupportedOptionError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        views = tuple(self.views)
        if len(views) != 2 or any(not isinstance(v, int) or v < 1 for v in views):
            raise UnsupportedOptionError(f"views must be (clips, crops), two integers >= 1, got {views!r}")
        object.__setattr__(self, "views", views)
        for name in ("frames", "size"):
            if getattr(self, name) < 1:
                raise NumberError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dtype is not None and not self.dtype.is_floating_point:
            raise UnsupportedOptionError(f"dtype must be a floating-point type (uint8 is the default), got "
                                         f"{self.dtype}")


def build_video_loader(list_file: str | Path | Sequence[VideoEntry], root: str | Path,
                       config: LoaderConfig, *, split: str = "train", batch_size: int,
                       shard: tuple[int, int] = (0, 1), seed: int = 0,
                       device: str | torch.device | None = None) -> LoaderBase:
    """A loader over the videos of `list_file` (or entries already read, e.g. from t2l_fast.data.splits) under
    `root`, as `config` says, for this run: split "train" or "val", batch_size clips per batch, shard = (this
    shard, shard count), seed, device (default: cuda for DALI where available, else cpu)."""
    backend = _check_run(config, split, batch_size, shard)
    train = split == "train"
    if isinstance(list_file, (str, Path)):
        entries = read_video_list(list_file, root, class_names=config.class_names, missing=config.missing)
    else:
        entries = list(list_file)
    facts, frame_counts = _frame_facts(list_file, entries, Path(root), config, backend)
    dataset = ClipDataset(entries, train=train, frames=config.frames, size=config.size, seed=seed,
                          augment=config.augment, decode_timeout=config.decode_timeout, frame_counts=frame_counts,
                          views=config.views)
    twin_labels = None
    if train and config.twin_batches:
        twin_labels = [entry.label for entry in entries]
        check_twin_labels(twin_labels, batch_size, str(list_file) if isinstance(list_file, (str, Path)) else "list")
    sampler = ShardSampler(len(entries), shard_id=shard[0], num_shards=shard[1], shuffle=train, drop_tail=train,
                           seed=seed, twin_labels=twin_labels)
    if train and len(sampler) < batch_size:
        raise VideoListError(f"{list_file}: {len(entries)} videos over {shard[1]} shard(s) give {len(sampler)} per "
                             f"shard, fewer than one batch of {batch_size}; lower batch_size")
    device = torch.device(device or ("cuda" if backend == "dali" and torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedOptionError("device='cuda' was asked for, but this machine has no usable CUDA GPU; use "
                                     "device='cpu'")
    if backend == "dali":
        from .dali_loader import DaliVideoLoader

        return DaliVideoLoader(dataset, sampler, facts, batch_size=batch_size, drop_last=train, device=device,
                               dtype=config.dtype, max_bad_fraction=config.max_bad_fraction,
                               on_dali_error=config.on_dali_error)
    workers = min(4, os.cpu_count() or 1) if config.num_workers is None else config.num_workers
    return PyAVVideoLoader(dataset, sampler, batch_size=batch_size, drop_last=train, num_workers=workers,
                           device=device, dtype=config.dtype, max_bad_fraction=config.max_bad_fraction)


def _check_run(config: LoaderConfig, split: str, batch_size: int, shard: tuple[int, int]) -> str:
    """The backend this run uses ("dali" or "pyav"), or a clear error for a split, batch, shard or views it cannot
    have."""
    if split not in SPLITS:
        raise UnsupportedOptionError(f"split must be one of {SPLITS}, got {split!r}")
    if config.views != (1, 1) and split != "val":
        raise UnsupportedOptionError(f"views={config.views} is for evaluation (split='val'); training samples one "
                                     f"clip per video")
    if config.views != (1, 1) and config.backend == "dali":
        raise UnsupportedOptionError(f"multi-view evaluation (views={config.views}) is implemented by the PyAV "
                                     f"backend only; use backend='pyav' (t2l eval --backend pyav) or one view")
    backend = config.backend
    if backend == "auto":
        dali = dali_version()
        backend = "dali" if dali and config.views == (1, 1) else "pyav"
    if backend == "dali":
        require("nvidia.dali", "dali", "backend='dali'")
    for name, value in (("batch_size", batch_size), ("shard count", shard[1])):
        if value < 1:
            raise NumberError(f"{name} must be >= 1, got {value}")
    return backend


def _frame_facts(list_file, entries: list[VideoEntry], root: Path, config: LoaderConfig,
                 backend: str) -> tuple[dict | None, dict[Path, int] | None]:
    """(DALI's per-clip facts or None, decoded frame counts by path or None): what the loader knows of the videos
    before decoding them (a manifest, or for DALI a probe written beside the list)."""
    manifest = Path(config.manifest) if config.manifest else None
    if backend != "dali":
        return None, read_manifest(manifest, root) if manifest else None
    from .preflight import video_facts

    listed = Path(list_file) if isinstance(list_file, (str, Path)) else None
    facts = video_facts(entries, root, manifest=manifest, list_file=listed, timeout=config.decode_timeout or 60.0)
    frame_counts = {path: f["num_frames"] for (path, start, end), f in facts.items()
                    if "bad" not in f and start is None and end is None}
    return facts, frame_counts
