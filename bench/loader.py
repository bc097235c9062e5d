"""Loader throughput: clips/s and frames/s per codec, backend and split (decode + augment), median of epochs.

    python bench/loader.py [--data DIR] [--repeats 5] [--size 224] [--batch-size 16] [--workers 2] [--out runs/bench]

Without --data it writes the synthetic dataset (64x64, 24 frames) as H.264 and as VP9 into OUT/synthetic-*.
Backends: pyav (torch DataLoader workers) and, where DALI is installed, dali (GPU NVDEC with a GPU; on a CPU
DALI's own decoder for VP9/MJPEG, PyAV decoding for H.264, DALI augmentation either way).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from t2l_fast.data import build_video_loader
from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset
from t2l_fast.optional import installed
from t2l_fast.perf.report import conditions, write_report

BACKENDS = ("pyav", "dali") if installed("nvidia-dali-cuda130") else ("pyav",)


def measure(list_file: Path, root: Path, backend: str, split: str, codec: str, args) -> dict:
    """One warm-up epoch, then `repeats` timed epochs; rates are per timed epoch."""
    loader = build_video_loader(list_file, root, split=split, frames=args.frames, size=args.size,
                                batch_size=args.batch_size, backend=backend, num_workers=args.workers)
    rates = []
    for epoch in range(args.repeats + 1):
        loader.set_epoch(epoch)
        started, clips = time.perf_counter(), 0
        for batch in loader:
            clips += batch["video"].shape[0]
        if epoch:  # epoch 0 warms the page cache and the workers' imports
            rates.append(clips / (time.perf_counter() - started))
    rates.sort()
    return {"codec": codec, "backend": backend, "split": split, "clips_per_epoch": clips,
            "clips_per_s": statistics.median(rates), "frames_per_s": statistics.median(rates) * args.frames,
            "clips_per_s_min": rates[0], "clips_per_s_max": rates[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder with train.txt/val.txt (default: synthetic)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    datasets = {"given": args.data} if args.data else {}
    for codec in () if args.data else ("h264", "vp9"):
        datasets[codec] = args.out / f"synthetic-{codec}"
        if not (datasets[codec] / "train.txt").is_file():
            write_synthetic_dataset(datasets[codec], SynthConfig(clips_per_class=16, eval_clips_per_class=16,
                                                                 codec=codec), jobs=2)
    rows = [measure(data / f"{split}.txt", data, backend, split, codec, args)
            for codec, data in datasets.items() for backend in BACKENDS for split in ("train", "val")]
    paths = write_report(
        args.out, "loader", title="Video loader throughput (decode + augment, uint8 output)", rows=rows,
        columns=["codec", "backend", "split", "clips_per_epoch", "clips_per_s", "frames_per_s", "clips_per_s_min",
                 "clips_per_s_max"],
        conditions=conditions(datasets={k: str(v) for k, v in datasets.items()}, frames=args.frames,
                              size=args.size, batch_size=args.batch_size, pyav_workers=args.workers,
                              repeats=args.repeats),
        definitions={"clips_per_s": "median over timed epochs of clips delivered / wall time of the epoch",
                     "frames_per_s": "clips_per_s x frames per clip (decoded frames that reach the batch)",
                     "train": "TSN random frames + multi-scale crop, flip, colour jitter, grayscale",
                     "val": "TSN centre frames + short-side resize and centre crop"},
        notes=["Normalisation is not included: it runs on the model's device.",
               "One warm-up epoch precedes the timed ones.",
               "On a CPU machine DALI cannot use NVDEC: its numbers here say nothing about GPU decoding speed."],
        plot={"label": "backend", "value": "clips_per_s"})
    print(paths["md"].read_text())


if __name__ == "__main__":
    main()
