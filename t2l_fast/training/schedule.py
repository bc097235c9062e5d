"""The optimizer and its per-step learning-rate schedule: AdamW, linear warm-up, then a cosine."""
from __future__ import annotations

import math

import torch

from .config import OptimConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float, warmup_prefix: bool = True) -> float:
    """Linear warm-up from 0 over `warmup_steps`, and a cosine to `min_ratio` at `total_steps` that starts when the
    warm-up ends (warmup_prefix, T2L's WarmupCosineAnnealingLR) or at step 0, the warm-up only capping its start
    (ViFi-CLIP's timm CosineLRScheduler, warmup_prefix=False)."""
    if step < warmup_steps:
        return step / warmup_steps
    start = warmup_steps if warmup_prefix else 0
    progress = min(1.0, (step - start) / max(1, total_steps - start))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model, token_lr_scale: float = 1.0) -> list[dict]:
    """The model's learnable parameters as optimizer groups, each with its `lr_scale`: T2L's temporal tokens in a
    group of their own where token_lr_scale is not 1 (a tiny-model recipe), else one group."""
    learnable = model.learnable_parameters()
    tokens = getattr(model, "temporal_tokens", None)
    if token_lr_scale == 1.0 or not any(p is tokens for p in learnable):
        return [{"params": learnable, "lr_scale": 1.0}]
    return [{"params": [p for p in learnable if p is not tokens], "lr_scale": 1.0},
            {"params": [tokens], "lr_scale": token_lr_scale}]


def build_optimizer(model, optim: OptimConfig, steps_per_epoch: int,
                    epochs: int) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `model`'s learnable parameters (parameter_groups) and its schedule, stepped once per optimizer
    step."""
    total = epochs * steps_per_epoch
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    groups = [{**group, "lr": optim.lr * group["lr_scale"]}
              for group in parameter_groups(model, optim.token_lr_scale)]
    optimizer = torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps,
                                  weight_decay=optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total, optim.min_lr_ratio, optim.warmup_prefix))
    return optimizer, scheduler
