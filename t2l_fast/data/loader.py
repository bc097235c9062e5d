"""The loader contract, and the factory that picks its backend (pyav_loader.py, the reference; dali_loader.py).

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

import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch

from ..errors import UnsupportedOptionError
from ..optional import dali_version, require
from .augment import AugmentConfig
from .clip_dataset import ClipDataset, ShardSampler
from .lists import VideoEntry, read_video_list
from .loader_base import LoaderBase
from .pyav_loader import PyAVVideoLoader
from .preflight import read_manifest

SPLITS = ("train", "val")
BACKENDS = ("auto", "dali", "pyav")


def build_video_loader(list_file: Union[str, Path, Sequence[VideoEntry]], root: Union[str, Path], *,
                       split: str = "train",
                       frames: int = 8, size: int = 224, batch_size: int, backend: str = "auto",
                       device: Union[str, torch.device, None] = None, shard_id: int = 0, num_shards: int = 1,
                       seed: int = 0, epoch: int = 0, dtype: Optional[torch.dtype] = None,
                       num_workers: Optional[int] = None, class_names: Optional[Sequence[str]] = None,
                       augment: AugmentConfig = AugmentConfig(), missing: str = "error",
                       decode_timeout: Optional[float] = 60.0, max_bad_fraction: float = 0.05,
                       manifest: Union[str, Path, None] = None, views: Tuple[int, int] = (1, 1),
                       on_dali_error: str = "fallback") -> LoaderBase:
    """A loader over the videos of `list_file` under `root` (see the module docstring for the batch contract).
    list_file may also be entries already read (e.g. from t2l_fast.data.splits).
    manifest: the `*.manifest.json` of `t2l data check`, whose decoded frame counts replace per-clip probing. The
    DALI backend needs one: without it, it reads (or probes videos once and writes) STEM.check.manifest.json
    beside the list.
    views: (clips, crops) per video in evaluation; anything but (1, 1) needs split="val" and the PyAV backend.
    on_dali_error: "fallback" (the PyAV path makes a batch DALI failed on, counted) or "raise"."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    views = _check_views(views, split, backend)
    if backend == "auto":
        dali = dali_version()
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
    facts = None
    if backend == "dali":
        from .preflight import video_facts

        listed = Path(list_file) if isinstance(list_file, (str, Path)) else None
        facts = video_facts(entries, Path(root), manifest=Path(manifest) if manifest else None, list_file=listed,
                            timeout=decode_timeout or 60.0)
        frame_counts = {path: f["num_frames"] for (path, start, end), f in facts.items()
                        if "bad" not in f and start is None and end is None}
    else:
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

        loader = DaliVideoLoader(dataset, sampler, facts, batch_size=batch_size, drop_last=train, device=device,
                                 dtype=dtype, max_bad_fraction=max_bad_fraction, on_dali_error=on_dali_error)
    else:
        workers = min(4, os.cpu_count() or 1) if num_workers is None else num_workers
        loader = PyAVVideoLoader(dataset, sampler, batch_size=batch_size, drop_last=train, num_workers=workers,
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
