"""The training loop (one process): T2L's or ViFi-CLIP's objective, AdamW with warm-up + per-step cosine, mixed
precision, atomic checkpoints with mid-epoch resume, non-finite-loss guard, and SIGINT/SIGTERM saves.

T2L: alignment (in-batch symmetric soft-target KL, T2L_SPEC.md §2.1) between each clip and its class text, plus
tfd_weight x TFD on the unnormalised frame embeddings (§2.2); C and V are logged.
ViFi-CLIP (BASELINES_AND_CLAIMS.md §1): cross-entropy over the batch's classes with label smoothing and Mixup/CutMix.
"""
from __future__ import annotations

import json
import math
import random
import signal
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ..data import build_video_loader
from ..data.augment import AugmentConfig
from ..errors import T2LError
from ..models.checkpoint import atomic_write, save_checkpoint
from ..models.registry import create_model
from ..text.class_files import read_class_descriptions, read_class_names
from ..text.prompts import class_prompts, resolve_templates
from ..text.tokenize import tokenize
from ..video_ops import normalize_video
from .config import TrainConfig, to_dict
from .losses import alignment_loss, mix_clips, smoothed_targets, soft_cross_entropy, tfd_loss

STATE_FILE = "last.pt"
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingError(T2LError, RuntimeError):
    """Training cannot go on (the message says why and what to change)."""


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up from 0 over `warmup_steps`, then cosine to `min_ratio` at `total_steps`."""
    if step < warmup_steps:
        return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _rng_state() -> dict:
    """All random states as plain tensors/lists, loadable with torch.load(weights_only=True)."""
    numpy_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
            "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _tensorboard(folder: Path):
    """A TensorBoard SummaryWriter when tensorboard is installed, else None."""
    from ..optional import installed

    if not installed("tensorboard"):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.output = Path(config.output_dir)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = create_model(config.model, pretrained=config.pretrained, frames=config.frames,
                                  **config.model_overrides).to(self.device)
        self.model.set_grad_checkpointing(config.grad_checkpointing)
        data = config.data
        self.class_names = read_class_names(data.classes)
        if data.descriptions:
            texts = read_class_descriptions(data.descriptions, self.class_names)
        else:  # one prompt per class: the first template of the set (the model's own by default)
            texts = [prompts[0] for prompts in class_prompts(
                self.class_names, resolve_templates(data.templates, self.model.config.prompt_template))]
        self.class_tokens = tokenize(texts, self.model.config.text.context_length)  # [C, L]
        self.loader = build_video_loader(
            data.train_list, data.root, split="train", frames=config.frames,
            size=self.model.input_spec.image_size, batch_size=config.batch_size, backend=data.backend,
            device=self.device, seed=config.seed, num_workers=data.num_workers, class_names=self.class_names,
            augment=AugmentConfig(flip=data.flip, jitter_per_frame=data.jitter_per_frame), manifest=data.manifest)
        self.steps_per_epoch = len(self.loader)
        total = config.epochs * self.steps_per_epoch
        warmup = round(config.optim.warmup_epochs * self.steps_per_epoch)
        self.optimizer = torch.optim.AdamW(self.model.learnable_parameters(), lr=config.optim.lr,
                                           betas=config.optim.betas, eps=config.optim.eps,
                                           weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, total, config.optim.min_lr_ratio))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best_top1: Optional[float] = None  # on data.val_list (never a test split)
        self.bad_steps = 0
        self.stop_signal: Optional[int] = None

    # ------------------------------------------------------------------ one step
    def compute_loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        video = normalize_video(batch["video"], self.model.input_spec)
        labels = batch["label"]
        if self.config.objective == "vificlip":
            return self._vificlip_loss(video, labels)
        with self._autocast():
            frames = self.model.encode_frames(video)  # [B, T, D]
            texts = self.model.encode_text(self.class_tokens[labels.cpu()].to(self.device))  # [B, D]
        frames = frames.float()
        align = alignment_loss(F.normalize(frames.mean(1), dim=-1), texts.float(), labels,
                               self.model.logit_scale().item())
        tfd = tfd_loss(frames)
        return {"loss": align + self.config.tfd_weight * tfd.loss, "align": align, "tfd": tfd.loss,
                "tfd_C": tfd.central_difference, "tfd_V": tfd.variance}

    def _vificlip_loss(self, video: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """ViFi-CLIP's recipe: CE over the batch's classes, label smoothing, Mixup/CutMix (one draw per step)."""
        config = self.config
        classes, positions = labels.unique(return_inverse=True)  # [U], [B]
        targets = smoothed_targets(positions, len(classes), config.label_smoothing)  # [B, U]
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            rng = np.random.default_rng([config.seed, self.global_step, 7])  # reproducible, resume-exact
            video, targets, _ = mix_clips(video, targets, rng, mixup_alpha=config.mixup_alpha,
                                          cutmix_alpha=config.cutmix_alpha, switch_prob=config.mix_switch_prob)
        with self._autocast():
            videos = self.model.encode_video(video)  # [B, D]
            texts = self.model.encode_text(self.class_tokens[classes.cpu()].to(self.device))  # [U, D]
        logits = self.model.logit_scale() * videos.float() @ texts.float().t()  # [B, U]
        loss = soft_cross_entropy(logits, targets)
        return {"loss": loss, "ce": loss}

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train_step(self, batch: dict) -> Optional[Dict[str, float]]:
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.compute_loss(batch)
        if not torch.isfinite(losses["loss"]):
            self.bad_steps += 1
            if self.bad_steps >= self.config.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} consecutive steps had a non-finite loss (last at step "
                                    f"{self.global_step}); stopping without saving them. Lower optim.lr, or use "
                                    f"precision=fp32/bf16. The last good checkpoint is {self.output / STATE_FILE}.")
            self.scheduler.step()
            return None
        self.bad_steps = 0
        self.scaler.scale(losses["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.item() for k, v in losses.items()}

    # ------------------------------------------------------------------ state
    def save_state(self) -> Path:
        if not all(torch.isfinite(p).all() for p in self.model.learnable_parameters()):
            raise TrainingError("refusing to save a checkpoint with non-finite weights")
        state = {"model": {k: v.detach().cpu() for k, v in self.model.named_learnable_parameters()},
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": _rng_state(), "epoch": self.epoch,
                 "step_in_epoch": self.step_in_epoch, "global_step": self.global_step, "best_top1": self.best_top1,
                 "config": to_dict(self.config)}
        path = self.output / STATE_FILE
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def resume(self, path: Path) -> None:
        from ..models.backbone import safe_torch_load

        state = safe_torch_load(Path(path))
        params = dict(self.model.named_learnable_parameters())
        if set(state["model"]) != set(params):
            raise TrainingError(f"{path}: its weights do not fit {self.config.model} (another model or frame count)")
        with torch.no_grad():
            for name, value in state["model"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        self.best_top1 = state.get("best_top1")

    # ------------------------------------------------------------------ validation
    def validate(self) -> Dict[str, float]:
        """Zero-shot top-1/top-5 on data.val_list; a better top-1 than before saves the model to `best/`."""
        from .evaluate import evaluate

        data = self.config.data
        descriptions = read_class_descriptions(data.descriptions, self.class_names) if data.descriptions else None
        result = evaluate(self.model, data.val_list, data.root, self.class_names, descriptions=descriptions,
                          templates=data.templates, batch_size=self.config.batch_size, backend=data.backend,
                          num_workers=data.num_workers)
        self.model.train()
        if self.best_top1 is None or result["top1"] > self.best_top1:
            self.best_top1 = result["top1"]
            save_checkpoint(self.model, self.output / "best", full=self.model.backbone_source is None,
                            metadata={"val_top1": result["top1"], "epoch": self.epoch})
        return {"val_top1": result["top1"], "val_top5": result["top5"]}

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame) -> None:
        self.stop_signal = signum  # acted on after the current step, never inside it

    def run(self) -> dict:
        from tqdm import tqdm

        config = self.config
        (self.output / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        previous = {s: signal.signal(s, self._on_signal) for s in SIGNAL_EXIT}
        log = open(self.output / "metrics.jsonl", "a")
        board = _tensorboard(self.output / "tensorboard")
        started, clips, last = time.time(), 0, {}
        try:
            while self.epoch < config.epochs:
                self.model.train()
                self.loader.set_epoch(self.epoch, start_batch=self.step_in_epoch)
                bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{config.epochs}", leave=False,
                           initial=self.step_in_epoch, total=self.steps_per_epoch)
                for batch in bar:
                    try:
                        metrics = self.train_step(batch)
                    except torch.OutOfMemoryError:
                        self.optimizer.zero_grad(set_to_none=True)
                        state = self.save_state()  # the state before this step: resume retries the same batch
                        raise TrainingError(
                            f"out of memory at step {self.global_step + 1} with batch_size={config.batch_size} on "
                            f"{self.device}; lower batch_size or set grad_checkpointing=true, then resume with "
                            f"--resume {state}") from None
                    self.step_in_epoch += 1
                    self.global_step += 1
                    clips += len(batch["label"])
                    if metrics is not None:
                        last = {"step": self.global_step, "epoch": self.epoch, **metrics,
                                "lr": self.scheduler.get_last_lr()[0], "clips_per_s": clips / (time.time() - started)}
                        log.write(json.dumps(last) + "\n")
                        if board:
                            for key in ("loss", "align", "tfd", "tfd_C", "tfd_V", "ce", "lr", "clips_per_s"):
                                if key in last:
                                    board.add_scalar(f"train/{key}", last[key], self.global_step)
                        bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{last['lr']:.2e}",
                                        clips_s=f"{last['clips_per_s']:.1f}")
                    if self.stop_signal is not None:
                        self.save_state()
                        raise SystemExit(SIGNAL_EXIT[self.stop_signal])
                    if config.save_every_steps and self.global_step % config.save_every_steps == 0:
                        self.save_state()
                    if config.max_steps and self.global_step >= config.max_steps:
                        break
                else:
                    if config.data.val_list:
                        scores = self.validate()
                        log.write(json.dumps({"step": self.global_step, "epoch": self.epoch, **scores}) + "\n")
                        if board:
                            for key, value in scores.items():
                                board.add_scalar(f"val/{key}", value, self.global_step)
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    self.save_state()
                    continue
                self.save_state()
                break
        finally:
            log.close()
            if board:
                board.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        summary = {"steps": self.global_step, "epochs": self.epoch, "seconds": round(time.time() - started, 1),
                   "last": last, "state": str(self.output / STATE_FILE), "best_val_top1": self.best_top1}
        full = self.model.backbone_source is None  # random/unsourced backbone: save it too
        summary["model"] = str(save_checkpoint(self.model, self.output / "model", full=full))
        (self.output / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
