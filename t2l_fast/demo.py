"""`t2l demo`: the pipeline as far as it exists, on built-in synthetic data, saying plainly what it did.

Now: the parameter table; a synthetic order-only video dataset written and checked by its validity probes; its
clips decoded and augmented by the loader; the tiny models (random weights) scoring them zero-shot; T2L's
frame-order sensitivity; its losses and backward pass on a training batch; one epoch of training; the order test.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch


def _step(number: int, text: str) -> None:
    print(f"\n{number}. {text}")


def run_demo(out_dir: str = "runs/demo", fast: bool = False) -> dict:
    """The demo; fast=True runs the order test at the test suite's budget (mechanics only, not the result)."""
    from .data import build_video_loader
    from .data.probes import order_probes
    from .data.synthetic import SynthConfig, write_synthetic_dataset
    from .models.registry import create_model, list_models
    from .text.class_files import read_class_descriptions, read_class_names
    from .text.classifier import build_classifier
    from .text.tokenize import tokenize
    from .training.losses import alignment_loss, tfd_loss
    from .video_ops import normalize_video

    started = time.time()
    out = Path(out_dir)
    summary: dict = {"models": {}, "zero_shot_top1": {}}
    _step(1, "Registered models (parameter counts from shapes only):")
    for name in list_models():
        learnable, total = create_model(name, device="meta").count_parameters()
        summary["models"][name] = {"learnable_params": learnable, "total_params": total}
        print(f"   {name:<18} learnable {learnable:>13,}   total {total:>13,}")

    data = out / "synthetic"
    _step(2, f"Synthetic order-only dataset -> {data}")
    t = time.time()
    counts = write_synthetic_dataset(data, SynthConfig(clips_per_class=40, eval_clips_per_class=40), jobs=2)
    print(f"   {sum(counts.values())} H.264 clips ({counts}) of 12 classes in 6 time-reversed pairs, "
          f"{time.time() - t:.1f} s")
    probes = order_probes(data)
    summary["probes"] = probes
    print("   validity probes, within-pair accuracy on held-out clips (chance 0.5):")
    for name, accuracy in probes.items():
        print(f"     {name:<22} {accuracy:.3f}")

    class_names = read_class_names(data / "classes.txt")
    descriptions = read_class_descriptions(data / "descriptions.csv", class_names)
    torch.manual_seed(0)
    _step(3, "Zero-shot top-1 of the tiny models on the test clips (8 centre frames, 32x32). Random weights: "
             "this shows the pipeline runs, not accuracy (training comes next):")
    order_difference = {}
    for name in ("t2l_tiny", "vificlip_tiny", "clip_tiny"):
        model = create_model(name).eval()
        spec = model.input_spec
        loader = build_video_loader(data / "test.txt", data, split="val", frames=spec.frames,
                                    size=spec.image_size, batch_size=96, num_workers=2)
        is_t2l = model.config.kind == "t2l"
        classifier = build_classifier(model, class_names, descriptions=descriptions if is_t2l else None)
        correct = total = 0
        with torch.no_grad():
            for batch in loader:
                video = normalize_video(batch["video"], spec)  # on the model's device, from uint8
                probs = classifier.probabilities(model.encode_video(video), model.logit_scale())
                correct += int((probs.argmax(-1) == batch["label"]).sum())
                total += len(batch["label"])
            difference = (model.encode_video(video) - model.encode_video(video.flip(1))).abs().max()
        summary["zero_shot_top1"][name] = correct / total
        summary["loader"] = loader.backend
        order_difference[name] = float(difference)
        print(f"   {name:<14} {correct / total:.3f} on {total} clips (chance {1 / len(class_names):.3f}); "
              f"loader: {loader.backend}")

    _step(4, "Frame-order sensitivity: max |embedding(clip) - embedding(time-reversed clip)|:")
    for name, difference in order_difference.items():
        verdict = ("changes: each frame has its own temporal token (small at initialisation)" if difference > 1e-6
                   else "float rounding only: a frame mean ignores order")
        print(f"   {name:<14} {difference:.2e}  {verdict}")
    summary["order_difference"] = order_difference

    _step(5, "T2L losses and backward pass on one augmented training batch:")
    model = create_model("t2l_tiny").train()
    spec = model.input_spec
    loader = build_video_loader(data / "train.txt", data, split="train", frames=spec.frames, size=spec.image_size,
                                batch_size=16, num_workers=0)
    batch = next(iter(loader))
    frames = model.encode_frames(normalize_video(batch["video"], spec))  # [B, T, D]
    texts = model.encode_text(tokenize([descriptions[label] for label in batch["label"].tolist()]))  # [B, D]
    align = alignment_loss(torch.nn.functional.normalize(frames.mean(1), dim=-1), texts, batch["label"])
    tfd = tfd_loss(frames)
    (align + tfd.loss).backward()
    reached = sum(p.grad is not None for p in model.learnable_parameters())
    summary["losses"] = {"alignment": align.item(), "tfd": tfd.loss.item(), "tfd_C": tfd.central_difference.item(),
                         "tfd_V": tfd.variance.item()}
    print(f"   alignment {align.item():.4f}   TFD {tfd.loss.item():.4f} (C {tfd.central_difference.item():.4f}, "
          f"V {tfd.variance.item():.4f});  gradients reached {reached}/{len(model.learnable_parameters())} "
          f"learnable tensors")

    _step(6, "Training T2L (tiny, random backbone) for one epoch on the synthetic clips with `t2l train`'s trainer:")
    from .training.config import load_config
    from .training.trainer import Trainer

    config = load_config(None, [
        "model=t2l_tiny", f"data.root={data}", f"data.train_list={data / 'train.txt'}",
        f"data.classes={data / 'classes.txt'}", f"data.descriptions={data / 'descriptions.csv'}", "data.flip=false",
        "data.jitter_per_frame=false", "batch_size=16", "epochs=1", "precision=fp32", "optim.lr=5e-3",
        "optim.weight_decay=0.05", "optim.warmup_epochs=0.2", f"output_dir={out / 'train'}"])
    run = Trainer(config).run()
    rows = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]  # (the data rows count bad videos)
    summary["training"] = {"steps": run["steps"], "first_loss": losses[0], "last_loss": losses[-1],
                           "checkpoint": run["model"]}
    print(f"   {run['steps']} steps in {run['seconds']} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}; model saved to "
          f"{run['model']} (try: t2l predict {data / 'videos' / 'test'} --checkpoint {run['model']} "
          f"--classes {data / 'classes.txt'} --descriptions {data / 'descriptions.csv'})")

    from .training.order_test import FAST, OrderTestConfig, run_order_test

    _step(7, "The order test: pre-train the tiny image tower on single frames, then adapt T2L (temporal tokens and "
             "adapters only, backbone frozen) and ViFi-CLIP (image tower fine-tuned) with one budget; within-pair "
             "accuracy on held-out clips of another seed (chance 0.5):")
    if fast:
        print("   (--fast: the test suite's budget, far too small for T2L to learn order; run without --fast for the "
              "real result)")
    order = run_order_test(out / "order_test", FAST if fast else OrderTestConfig(),
                           log=lambda line: print(line, flush=True))
    summary["order_test"] = {name: result["within_pair_accuracy"] for name, result in order["models"].items()}
    summary["order_test"]["head"] = order["head"]

    summary["seconds"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nDone in {summary['seconds']} s; summary in {out / 'summary.json'}.")
    print("Not yet part of the demo: export and model benchmarks (later issues).")
    return summary
