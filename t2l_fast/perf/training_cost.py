"""Training cost of T2L against ViFi-CLIP (`t2l bench training`): one optimiser step (forward, backward, AdamW
update of the learnable parameters) at equal frames and batch, and at each one's published recipe (T2L 8 frames,
ViFi-CLIP 32), with and without gradient checkpointing. Each configuration runs in a fresh subprocess; the step is
timed after a warm-up step, and peak memory is the process's high-water mark during the timed steps (GPU: peak
allocated).

What is timed is the trainer's own step: its objective (training/objectives.py: T2L's in-batch alignment + TFD;
ViFi-CLIP's soft-target CE with Mixup/CutMix, here over 4 class prompts) at the trainer's default precision (bf16
autocast, fp32 master weights; a grad scaler only for fp16), unless a precision is given. ViFi-CLIP's own recipe
scores every class prompt (400 on K400) with the text tower under gradients in each step, so its rows here
understate the cost of its recipe.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch

from .isolation import run_isolated, worker_main
from .machine import reset_peak_rss, rss_mb

RECIPE_FRAMES = {"t2l": 8, "vificlip": 32}
CLASS_TEXTS = ("a person archery", "juggling balls", "playing violin", "riding a bike")


def configurations(t2l: str, vificlip: str) -> list[tuple[str, int, bool]]:
    """(model, frames, gradient checkpointing): equal frames (8), and ViFi-CLIP at its recipe's 32."""
    return [(name, frames, checkpointing) for name, frames in ((t2l, 8), (vificlip, 8), (vificlip, 32))
            for checkpointing in (False, True)]


def measure_step(spec: dict) -> list[dict]:
    """One configuration (the subprocess side): the trainer's objective and precision, AdamW, a grad scaler."""
    from ..models.registry import create_model
    from ..text.tokenize import tokenize
    from ..training.config import TrainConfig
    from ..training.objectives import build_objective
    from ..video_ops import normalize_video
    from .throughput import clips_for

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model(spec["model"]).to(device).train()
    model.set_grad_checkpointing(spec["checkpointing"])
    optimizer = torch.optim.AdamW(model.learnable_parameters(), lr=1e-5)
    config = TrainConfig(model=spec["model"], objective=model.config.kind,  # t2l or vificlip
                         precision=spec.get("precision") or TrainConfig().precision)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    batch, frames = spec["batch"], spec["frames"]
    clips = torch.from_numpy(clips_for(model.config.vision.image_size, frames, batch)).to(device)
    video = normalize_video(clips, model.input_spec)
    labels = torch.arange(batch, device=device) % len(CLASS_TEXTS)
    tokens = tokenize(list(CLASS_TEXTS), model.config.text.context_length)
    objective = build_objective(model, tokens, device, config)
    rng = np.random.default_rng(0)

    def step() -> float:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(objective(video, labels, rng)["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    step()  # warm-up: allocator, AdamW state
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = rss_mb("VmRSS")
    seconds = [step() for _ in range(spec["steps"])]
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else rss_mb("VmHWM") / 1024
    learnable = sum(p.numel() for p in model.learnable_parameters())
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    return [{"model": spec["model"], "kind": model.config.kind, "frames": frames, "batch": batch,
             "checkpointing": spec["checkpointing"], "precision": config.precision, "device": gpu or "cpu",
             "recipe": frames == RECIPE_FRAMES[model.config.kind], "steps": len(seconds),
             "step_s": statistics.median(seconds), "peak_memory_gb": peak,
             "memory_before_gb": before / 1024 if before else None, "learnable_params": learnable}]


def run_training_cost(t2l: str, vificlip: str, batch: int, steps: int, progress=print,
                      only: Sequence[tuple[str, int, bool]] = ()) -> list[dict]:
    rows = []
    for index, (name, frames, checkpointing) in enumerate(only or configurations(t2l, vificlip), 1):
        progress(f"[{index}] {name} {frames} frames, batch {batch}, checkpointing {checkpointing}")
        rows += run_isolated("t2l_fast.perf.training_cost", {"model": name, "frames": frames, "batch": batch,
                                                             "checkpointing": checkpointing, "steps": steps})
    add_ratios(rows)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """vs_t2l: the step time and peak memory over T2L's at the same frames, batch and checkpointing."""
    t2l = {(r["frames"], r["checkpointing"]): r for r in rows if r.get("kind") == "t2l" and "step_s" in r}
    for r in rows:
        base = t2l.get((r.get("frames"), r.get("checkpointing")))
        if base and "step_s" in r:
            r["step_time_vs_t2l"] = r["step_s"] / base["step_s"]
            r["peak_memory_vs_t2l"] = r["peak_memory_gb"] / base["peak_memory_gb"]


if __name__ == "__main__":
    worker_main(measure_step)
