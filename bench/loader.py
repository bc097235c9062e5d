"""Loader throughput: clips/s per codec, backend and split (decode + augment), the decode stage alone, and which
stage limits; fallbacks and bad videos counted.

    python bench/loader.py [--data DIR] [--clips 12] [--repeats 3] [--size 224] [--batch-size 8] [--workers 2]
                           [--out runs/bench]

Without --data it writes realistic clips into OUT/loader-clips/: 10 s at 25 fps, 568x320 (a 320 short side, what
`t2l data transcode` writes), as H.264 with B-frames (x264's default keyframe interval, 250 frames: TSN sampling
decodes nearly every frame), as the same H.264 transcoded with a keyframe every 8 frames, and as VP9 (what DALI's
CPU decoder reads). Backends: pyav (torch DataLoader workers) and, where a DALI wheel is installed, dali (NVDEC on a
GPU; on a CPU DALI's own decoder for VP9, PyAV decoding in DALI's source workers for H.264). Rows compare like with
like: every backend delivers batches on the same device (the GPU where there is one, so PyAV pays its host-to-device
copy).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from t2l_fast.data import LoaderConfig, build_video_loader
from t2l_fast.data.decode import decode_frames
from t2l_fast.data.synthetic import CLASS_NAMES, synthetic_clip, write_video
from t2l_fast.data.transcode import transcode_video
from t2l_fast.optional import dali_version
from t2l_fast.perf.report import conditions, pivot, write_report

BACKENDS = ("pyav", "dali") if dali_version() else ("pyav",)
DECODE_LIMITS = 1.25  # the decode stage alone is under this many times the loader's rate: decoding limits it


def write_clips(folder: Path, clips: int) -> dict:
    """{codec: list file} of `clips` realistic clips per codec (written once)."""
    lists = {}
    for codec in ("h264", "h264-gop8", "vp9"):
        list_file = folder / codec / "list.txt"
        lists[codec] = list_file
        if list_file.is_file():
            continue
        lines = []
        for number in range(clips):
            label = number % len(CLASS_NAMES)
            name = f"clip{number:03d}.{'webm' if codec == 'vp9' else 'mp4'}"
            if codec == "h264-gop8":
                transcode_video(folder / "h264" / name, folder / codec / name, gop=8, short_side=None)
            else:
                clip = synthetic_clip(np.random.default_rng(number), label, 250, 320, 568)
                write_video(folder / codec / name, clip, codec, b_frames=3 if codec == "h264" else 0)
            lines.append(f"{name} {label}\n")
        list_file.write_text("".join(lines))
    return lists


class DecodeOnly(Dataset):
    """The PyAV loader's decode stage: the same frames of the same clips, not augmented."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> int:
        ds, entry = self.dataset, self.dataset.entries[index]
        frames = decode_frames(entry.path, ds.clip_indices(index, ds.frame_count(entry)), entry.start, entry.end)
        return len(frames)


def decode_stage_rate(loader, backend: str, workers: int) -> float:
    """Clips/s of the decode stage alone, with the loader's parallelism."""
    started, clips = time.perf_counter(), 0
    if backend == "pyav":
        for batch in DataLoader(DecodeOnly(loader.dataset), batch_size=loader.batch_size, num_workers=workers,
                                collate_fn=list):
            clips += len(batch)
    else:
        pipe = loader.pipeline(list(loader.sampler), 0, decode_only=True)
        try:
            while True:
                clips += len(pipe.run()[1])
        except StopIteration:
            pass
    return clips / (time.perf_counter() - started)


def measure(list_file: Path, backend: str, split: str, codec: str, device: str, args) -> dict:
    """One warm-up epoch, then `repeats` timed epochs of the loader; then the decode stage alone."""
    config = LoaderConfig(frames=args.frames, size=args.size, backend=backend, num_workers=args.workers)
    loader = build_video_loader(list_file, list_file.parent, config, split=split, batch_size=args.batch_size,
                                device=device)
    rates, fallbacks, bad = [], 0, 0
    for epoch in range(args.repeats + 1):
        loader.set_epoch(epoch)
        started, clips = time.perf_counter(), 0
        for batch in loader:
            clips += batch["video"].shape[0]
        if device == "cuda":
            torch.cuda.synchronize()
        fallbacks, bad = fallbacks + loader.fallback_batches, bad + len(loader.bad_videos)
        if epoch:  # epoch 0 warms the page cache and the workers' imports
            rates.append(clips / (time.perf_counter() - started))
    rate, decode = statistics.median(rates), decode_stage_rate(loader, backend, args.workers)
    return {"codec": codec, "backend": backend, "decoder": getattr(loader, "backend", backend), "split": split,
            "device": device, "clips_per_epoch": clips, "clips_per_s": rate, "frames_per_s": rate * args.frames,
            "decode_only_clips_per_s": decode,
            "limited_by": "decode" if decode < DECODE_LIMITS * rate else "augmentation and transfer",
            "fallback_batches": fallbacks, "bad_videos": bad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a list file of your videos (paths relative to its folder)")
    parser.add_argument("--clips", type=int, default=12, help="generated clips per codec (default 12)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="PyAV DataLoader workers (DALI: its own pool)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    lists = {"given": args.data} if args.data else write_clips(args.out / "loader-clips", args.clips)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = [measure(list_file, backend, split, codec, device, args)
            for codec, list_file in lists.items() for backend in BACKENDS for split in ("train", "val")]
    first = ("codec", "backend", "split", "device", "clips_per_s", "decode_only_clips_per_s", "limited_by",
             "fallback_batches", "bad_videos")
    paths = write_report(
        args.out, "loader", title="Video loader throughput (decode + augment, uint8 output)", rows=rows,
        columns=first + ("frames_per_s", "decoder"),
        conditions=conditions(lists={k: str(v) for k, v in lists.items()}, frames=args.frames, size=args.size,
                              batch_size=args.batch_size, pyav_workers=args.workers, repeats=args.repeats,
                              dali=dali_version()),
        definitions={"clips_per_s": "median over timed epochs of clips delivered / wall time of the epoch",
                     "decode_only_clips_per_s": "the same clips' frames decoded, not augmented, with the same "
                                                "parallelism",
                     "limited_by": f"decode when the decode stage alone is under {DECODE_LIMITS}x the loader's "
                                   f"rate; else augmentation (and, on a GPU, the copy to it)",
                     "fallback_batches": "batches DALI failed on that the PyAV path made instead (all epochs)",
                     "train": "TSN random frames + multi-scale crop, flip, colour jitter, grayscale",
                     "val": "TSN centre frames + short-side resize and centre crop"},
        notes=["Normalization is not included: it runs on the model's device.",
               "One warm-up epoch precedes the timed ones.",
               "On a CPU machine DALI cannot use NVDEC: its numbers here say nothing about GPU decoding speed.",
               "PyAV decodes from the first frame to the last sampled one (it does not seek), so a short GOP does "
               "not speed it up (its files are larger); DALI's decoders seek to the keyframe before each sampled "
               "frame, which is where the short GOP of `t2l data transcode` pays."],
        panels=[pivot(rows, lambda r: f"{r['codec']} {r['split']}", lambda r: r["backend"], "clips_per_s")])
    print(paths["md"].read_text())


if __name__ == "__main__":
    main()
