"""Loader throughput: clips/s and frames/s per backend and split (decode + augment), median of repeated epochs.

    python bench/loader.py [--data DIR] [--repeats 5] [--size 224] [--batch-size 16] [--workers 2] [--out runs/bench]

Without --data it writes the synthetic dataset (h264, 64x64, 24 frames) into OUT/synthetic first.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from t2l_fast.data import build_video_loader
from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset
from t2l_fast.perf.report import conditions, write_report

BACKENDS = ("pyav",)  # the DALI backends join when they exist


def measure(list_file: Path, root: Path, backend: str, split: str, args) -> dict:
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
    return {"backend": backend, "split": split, "clips_per_epoch": clips,
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
    data = args.data
    if data is None:
        data = args.out / "synthetic"
        if not (data / "train.txt").is_file():
            write_synthetic_dataset(data, SynthConfig(clips_per_class=16, eval_clips_per_class=16), jobs=2)
    rows = [measure(data / f"{split}.txt", data, backend, "train" if split == "train" else "val", args)
            for backend in BACKENDS for split in ("train", "val")]
    paths = write_report(
        args.out, "loader", title="Video loader throughput (decode + augment, uint8 output)", rows=rows,
        columns=["backend", "split", "clips_per_epoch", "clips_per_s", "frames_per_s", "clips_per_s_min",
                 "clips_per_s_max"],
        conditions=conditions(dataset=str(data), frames=args.frames, size=args.size, batch_size=args.batch_size,
                              workers=args.workers, repeats=args.repeats),
        definitions={"clips_per_s": "median over timed epochs of clips delivered / wall time of the epoch",
                     "frames_per_s": "clips_per_s x frames per clip (decoded frames that reach the batch)",
                     "train": "TSN random frames + multi-scale crop, flip, colour jitter, grayscale",
                     "val": "TSN centre frames + short-side resize and centre crop"},
        notes=["Normalisation is not included: it runs on the model's device.",
               "One warm-up epoch precedes the timed ones."],
        plot={"label": "split", "value": "clips_per_s"})
    print(paths["md"].read_text())


if __name__ == "__main__":
    main()
