"""The training loop (one process): T2L's or ViFi-CLIP's objective, AdamW with warm-up + per-step cosine, mixed
precision, atomic checkpoints with mid-epoch resume, non-finite-loss guard, and SIGINT/SIGTERM saves; one process
or many under torchrun (distributed.py: the losses see the global batch, rank 0 writes logs and checkpoints).

T2L: alignment (in-batch symmetric soft-target KL, T2L_SPEC.md §2.1) between each clip and its class text, plus
tfd_weight x TFD on the unnormalised frame embeddings (§2.2); C and V are logged.
ViFi-CLIP (BASELINES_AND_CLAIMS.md §1): soft-target cross-entropy over every training class prompt, label smoothing
over all of them, Mixup/CutMix with a random partner (under torchrun each rank mixes within its own part of the
batch); `vificlip_classes: batch` restricts the prompts to the batch's classes.

global_batch_size fixes the clips per optimizer step whatever the number of processes; it is reached by gradient
accumulation over micro-batches only where the loss does not couple the clips of a batch (ViFi-CLIP over all class
prompts). T2L's in-batch loss over micro-batches is not the loss over their union (each clip would only be contrasted
with its own micro-batch), so it is refused there (config.accumulation_steps says so).
"""
from __future__ import annotations

import json
import math
import random
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ..data import build_video_loader
from ..data.augment import AugmentConfig
from ..errors import T2LError
from ..io import atomic_write
from ..models.checkpoint import save_checkpoint
from ..models.registry import create_model
from ..text.class_files import read_class_descriptions, read_class_names
from ..text.prompts import class_prompts, resolve_templates
from ..text.tokenize import tokenize
from ..video_ops import normalize_video
from . import distributed
from .config import TrainConfig, accumulation_steps, to_dict
from .losses import alignment_loss, mix_clips, smoothed_targets, soft_cross_entropy, tfd_loss

STATE_FILE = "last.pt"
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingError(T2LError, RuntimeError):
    """Training cannot go on (the message says why and what to change)."""


# What a resumed run must share with the saved one, and what it may change with resume_replan.
RESUME_FIXED = ("model", "frames", "objective", "vificlip_classes", "seed", "model_overrides", "data.train_list",
                "data.classes", "data.descriptions", "data.templates")
RESUME_PLANNED = ("epochs", "tfd_weight", "label_smoothing", "mixup_alpha", "cutmix_alpha", "mix_switch_prob",
                  "optim.lr", "optim.weight_decay", "optim.betas", "optim.eps", "optim.warmup_epochs",
                  "optim.min_lr_ratio", "optim.warmup_prefix")  # batch size: judged by the global batch


def _flat(tree: dict, prefix: str = ""):
    """("a.b", value) pairs of a nested config dict."""
    for key, value in tree.items():
        if isinstance(value, dict) and key != "model_overrides":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", list(value) if isinstance(value, tuple) else value


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float, warmup_prefix: bool = True) -> float:
    """Linear warm-up from 0 over `warmup_steps`, and a cosine to `min_ratio` at `total_steps` that starts when the
    warm-up ends (warmup_prefix, T2L's WarmupCosineAnnealingLR) or at step 0, the warm-up only capping its start
    (ViFi-CLIP's timm CosineLRScheduler, warmup_prefix=False)."""
    if step < warmup_steps:
        return step / warmup_steps
    start = warmup_steps if warmup_prefix else 0
    progress = min(1.0, (step - start) / max(1, total_steps - start))
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
        self.dist = distributed.init_distributed(config.device)
        self.device = self.dist.device
        torch.manual_seed(config.seed)  # the same initial weights on every rank (and broadcast to be sure)
        self.model = create_model(config.model, pretrained=config.pretrained, frames=config.frames,
                                  **config.model_overrides).to(self.device)
        distributed.broadcast_parameters(self.model.learnable_parameters())
        torch.manual_seed(config.seed + self.dist.rank)  # each rank its own dropout masks
        np.random.seed(config.seed + self.dist.rank)
        random.seed(config.seed + self.dist.rank)
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
            shard_id=self.dist.rank, num_shards=self.dist.world,
            augment=AugmentConfig(flip=data.flip, jitter_per_frame=data.jitter_per_frame), manifest=data.manifest)
        self.accumulation = accumulation_steps(config, self.dist.world)  # micro-batches per optimizer step
        self.steps_per_epoch = len(self.loader) // self.accumulation
        if not self.steps_per_epoch:
            raise TrainingError(f"{data.train_list}: {len(self.loader)} batch(es) of {config.batch_size} per process, "
                                f"fewer than the {self.accumulation} micro-batches of one step of global_batch_size "
                                f"{config.global_batch_size}; lower global_batch_size or use more videos")
        total = config.epochs * self.steps_per_epoch
        warmup = round(config.optim.warmup_epochs * self.steps_per_epoch)
        self.optimizer = torch.optim.AdamW(self.model.learnable_parameters(), lr=config.optim.lr,
                                           betas=config.optim.betas, eps=config.optim.eps,
                                           weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, total, config.optim.min_lr_ratio,
                                                   config.optim.warmup_prefix))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best_top1: Optional[float] = None  # on data.val_list (never a test split)
        self.bad_steps = 0
        self._micro = 0  # the micro-batch of the step being computed (its mix draw)
        self.stop_signal: Optional[int] = None
        self._log = self._board = None  # rank 0's metrics file and TensorBoard writer while running

    # ------------------------------------------------------------------ one step
    def compute_loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        video = normalize_video(batch["video"], self.model.input_spec)
        labels = batch["label"]
        if self.config.objective == "vificlip":
            return self._vificlip_loss(video, labels)
        with self._autocast():
            frames = self.model.encode_frames(video)  # [b, T, D] on this rank
            texts = self.model.encode_text(self.class_tokens[labels.cpu()].to(self.device))  # [b, D]
        frames = distributed.gather_with_grad(frames.float())  # [B, T, D]: the global batch
        texts = distributed.gather_with_grad(texts.float())  # [B, D]
        labels = distributed.gather(labels)  # [B]
        align = alignment_loss(F.normalize(frames.mean(1), dim=-1), texts, labels, self.model.logit_scale().item())
        tfd = tfd_loss(frames)
        return {"loss": align + self.config.tfd_weight * tfd.loss, "align": align, "tfd": tfd.loss,
                "tfd_C": tfd.central_difference, "tfd_V": tfd.variance}

    def _vificlip_loss(self, video: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """ViFi-CLIP's recipe: soft-target CE over every class prompt of the training set (vificlip_classes="all";
        "batch": over the global batch's classes only), label smoothing over those, Mixup/CutMix with a random
        partner (one draw per step)."""
        config = self.config
        if config.vificlip_classes == "all":
            classes = torch.arange(len(self.class_tokens), device=labels.device)  # [C]
            index = labels
        else:
            classes = distributed.gather(labels).unique()  # [U]: the global batch's classes
            index = torch.searchsorted(classes, labels)
        targets = smoothed_targets(index, len(classes), config.label_smoothing)  # [b, C or U]
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            rng = np.random.default_rng([config.seed, self.global_step, self.dist.rank, self._micro, 7])  # resume-exact
            video, targets, _, _ = mix_clips(video, targets, rng, mixup_alpha=config.mixup_alpha,
                                             cutmix_alpha=config.cutmix_alpha, switch_prob=config.mix_switch_prob)
        with self._autocast():
            videos = self.model.encode_video(video)  # [b, D]
            texts = self.model.encode_text(self.class_tokens[classes.cpu()].to(self.device))  # [C or U, D]
        videos = distributed.gather_with_grad(videos.float())  # [B, D]
        targets = distributed.gather(targets)  # [B, C or U]
        logits = self.model.logit_scale() * videos @ texts.float().t()  # [B, C or U]
        loss = soft_cross_entropy(logits, targets)
        return {"loss": loss, "ce": loss}

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train_step(self, batches) -> Optional[Dict[str, float]]:
        """One optimizer step over a batch or a list of micro-batches (gradient accumulation: the mean of their
        losses); None when a loss was not finite and the step was skipped."""
        batches = [batches] if isinstance(batches, dict) else batches
        self.optimizer.zero_grad(set_to_none=True)
        totals: Dict[str, torch.Tensor] = {}
        for micro, batch in enumerate(batches):
            self._micro = micro
            losses = self.compute_loss(batch)
            # always: under torchrun the backward of the gathered embeddings is itself a collective; a non-finite
            # loss spoils the step, which every rank then skips together (agree, below)
            self.scaler.scale(losses["loss"] / len(batches)).backward()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0) + value.detach() / len(batches)
        losses = totals
        if distributed.agree(int(not torch.isfinite(losses["loss"]))):  # every rank skips, or none
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
            if self.bad_steps >= self.config.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} consecutive steps had a non-finite loss (last at step "
                                    f"{self.global_step}); stopping without saving them. Lower optim.lr, or use "
                                    f"precision=fp32/bf16. The last good checkpoint is {self.output / STATE_FILE}.")
            self.scheduler.step()
            return None
        self.bad_steps = 0
        distributed.average_gradients(self.optimizer.param_groups[0]["params"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.item() for k, v in losses.items()}

    # ------------------------------------------------------------------ state
    def save_state(self, collective: bool = True) -> Path:
        """Write `last.pt` (rank 0). Every rank must call it at the same point unless `collective` is False (then
        only this rank's RNG state is stored: for a save no other rank takes part in, such as out of memory)."""
        if not all(torch.isfinite(p).all() for p in self.model.learnable_parameters()):
            raise TrainingError("refusing to save a checkpoint with non-finite weights")
        rng = distributed.gather_objects(_rng_state()) if collective else [_rng_state()]  # one per rank
        path = self.output / STATE_FILE
        if self.dist.is_main:
            self.check_free_space()
            state = {"model": {k: v.detach().cpu() for k, v in self.model.named_learnable_parameters()},
                     "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "scaler": self.scaler.state_dict(), "rng": rng, "epoch": self.epoch,
                     "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                     "best_top1": self.best_top1, "world_size": self.dist.world,
                     "accumulation": self.accumulation, "config": to_dict(self.config)}
            atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def resume(self, path: Path) -> None:
        from ..io import safe_torch_load

        path = Path(path)
        if path.is_dir() or path.suffix == ".safetensors":
            raise TrainingError(f"{path}: a model checkpoint; --resume takes the trainer state `{STATE_FILE}` that "
                                f"training writes in its output_dir (weights, optimizer, schedule, data position)")
        state = safe_torch_load(path)
        changes = self._check_resumable(state, path)
        params = dict(self.model.named_learnable_parameters())
        if set(state["model"]) != set(params):
            raise TrainingError(f"{path}: its weights do not fit {self.config.model} (another model or frame count)")
        with torch.no_grad():
            for name, value in state["model"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        if len(rng) != self.dist.world:
            warnings.warn(f"{path} was saved by {len(rng)} process(es), this run has {self.dist.world}: the data "
                          f"order is kept, but dropout masks will differ from an uninterrupted run")
        _set_rng_state(rng[min(self.dist.rank, len(rng) - 1)])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        self.best_top1 = state.get("best_top1")
        if changes:  # re-planned: the new hyper-parameters from this step on; the optimizer's moments are kept
            if any(change.startswith("global batch") for change in changes):  # at an epoch boundary (checked)
                self.global_step = self.scheduler.last_epoch = self.epoch * self.steps_per_epoch  # in new steps
            optim = self.config.optim
            for group in self.optimizer.param_groups:
                group.update(weight_decay=optim.weight_decay, betas=tuple(optim.betas), eps=optim.eps)
            self.scheduler.base_lrs = [optim.lr for _ in self.optimizer.param_groups]
            for group, factor in zip(self.optimizer.param_groups, self.scheduler.lr_lambdas):
                group["lr"] = optim.lr * factor(self.scheduler.last_epoch)  # this step's lr under the new plan
            warnings.warn(f"resuming {path} with changed settings, applied from step {self.global_step}: "
                          f"{'; '.join(changes)}", stacklevel=2)
        self._drop_metrics_after(state["global_step"])

    def check_free_space(self) -> None:
        """Refuse to start or save when the output folder's disk cannot hold two states (the atomic write keeps
        the old one until the new one is complete) and the final model."""
        learnable = sum(p.numel() * p.element_size() for p in self.model.learnable_parameters())
        full = sum(p.numel() * p.element_size() for p in self.model.parameters())
        needed = 2 * 3 * learnable + full + (64 << 20)  # weights + AdamW's two moments, twice; the model; slack
        free = shutil.disk_usage(self.output).free
        if free < needed:
            raise TrainingError(f"{self.output}: {free / 2 ** 30:.2f} GB free, training needs about "
                                f"{needed / 2 ** 30:.2f} GB there for its checkpoints; free some space or set "
                                f"output_dir to a larger disk")

    def _check_resumable(self, state: dict, path: Path) -> List[str]:
        """The re-plannable settings that differ from the saved run's (empty: none). A different model, frame
        count, objective, data or seed is refused; a different schedule or batch is refused unless
        resume_replan is set, and the global batch only changes at an epoch boundary."""
        saved = dict(_flat(state.get("config", {})))
        now = dict(_flat(to_dict(self.config)))
        fixed = [k for k in RESUME_FIXED if k in saved and saved[k] != now.get(k)]
        if fixed:
            differing = ", ".join(f"{k} ({saved[k]!r} -> {now.get(k)!r})" for k in fixed)
            raise TrainingError(f"{path}: saved by a run with another {differing}; these cannot change within a "
                                f"run: start a new output_dir")
        changes = [f"{k} {saved[k]!r} -> {now.get(k)!r}" for k in sorted(saved) if k in RESUME_PLANNED and
                   saved[k] != now.get(k)]
        world = state.get("world_size", self.dist.world)
        accumulation = state.get("accumulation", 1)
        before = world * saved.get("batch_size", self.config.batch_size) * accumulation
        if before != self.dist.world * self.config.batch_size * self.accumulation:
            changes.append(f"global batch {world} x {saved.get('batch_size')} x {accumulation} -> {self.dist.world} "
                           f"x {self.config.batch_size} x {self.accumulation} (processes x batch_size x "
                           f"accumulation)")
            if state["step_in_epoch"]:
                raise TrainingError(f"{path}: the global batch changed ({changes[-1]}) in the middle of epoch "
                                    f"{state['epoch'] + 1}; resume with the saved one, or from an epoch boundary")
        if changes and not self.config.resume_replan:
            raise TrainingError(f"{path}: this run's settings differ from the saved run's: {'; '.join(changes)}. "
                                f"Set resume_replan=true to apply them from the saved step (learning rate and "
                                f"schedule re-planned, optimizer moments kept), or resume with the saved config "
                                f"({self.output / 'config.yaml'})")
        return changes

    def _drop_metrics_after(self, step: int) -> None:
        """Keep the metrics.jsonl lines up to `step`: the steps after the saved state are trained again."""
        log = self.output / "metrics.jsonl"
        if not self.dist.is_main or not log.is_file():
            return
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
        log.write_text("".join(line + "\n" for line in kept))

    # ------------------------------------------------------------------ validation
    def validate(self) -> Dict[str, float]:
        """Zero-shot top-1/top-5 on data.val_list; a better top-1 than before saves the model to `best/`."""
        from .evaluate import evaluate

        data = self.config.data
        descriptions = read_class_descriptions(data.descriptions, self.class_names) if data.descriptions else None
        result = evaluate(self.model, data.val_list, data.root, self.class_names, descriptions=descriptions,
                          templates=data.templates, batch_size=self.config.batch_size, backend=data.backend,
                          num_workers=data.num_workers)  # sharded over the ranks, every video counted once
        self.model.train()
        if self.best_top1 is None or result["top1"] > self.best_top1:
            self.best_top1 = result["top1"]
            if self.dist.is_main:
                save_checkpoint(self.model, self.output / "best", full=self.model.backbone_source is None,
                                metadata={"val_top1": result["top1"], "epoch": self.epoch})
        return {"val_top1": result["top1"], "val_top5": result["top5"]}

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame) -> None:
        self.stop_signal = signum  # acted on after the current step, never inside it

    def _record(self, entry: dict, group: str) -> None:
        """One JSONL line, and TensorBoard scalars when it is installed (rank 0 only)."""
        if self._log is None:
            return
        self._log.write(json.dumps(entry) + "\n")
        self._log.flush()
        if self._board:
            for key, value in entry.items():
                if key not in ("step", "epoch"):
                    self._board.add_scalar(f"{group}/{key}", value, self.global_step)

    def step_batches(self):
        """The loader's batches grouped by optimizer step (`accumulation` each; an incomplete last group is
        dropped, as the loader drops an incomplete last batch)."""
        group: List[dict] = []
        for batch in self.loader:
            group.append(batch)
            if len(group) == self.accumulation:
                yield group
                group = []

    def run(self) -> dict:
        from tqdm import tqdm

        config, main = self.config, self.dist.is_main
        if main:
            self.check_free_space()
            for stale in self.output.rglob(".*.tmp"):  # atomic writes a kill interrupted (checkpoint.atomic_write)
                stale.unlink(missing_ok=True)
            (self.output / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        previous = {s: signal.signal(s, self._on_signal) for s in SIGNAL_EXIT}
        self._log = open(self.output / "metrics.jsonl", "a") if main else None
        self._board = _tensorboard(self.output / "tensorboard") if main else None
        started, clips, last = time.time(), 0, {}
        try:
            while self.epoch < config.epochs:
                self.model.train()
                self.loader.set_epoch(self.epoch, start_batch=self.step_in_epoch * self.accumulation)
                bar = tqdm(self.step_batches(), desc=f"epoch {self.epoch + 1}/{config.epochs}", leave=False,
                           initial=self.step_in_epoch, total=self.steps_per_epoch, disable=not main,
                           mininterval=0.1 if sys.stderr.isatty() else 30)  # a log file gets a line per 30 s
                for micro_batches in bar:
                    try:
                        metrics = self.train_step(micro_batches)
                    except torch.OutOfMemoryError:
                        self.optimizer.zero_grad(set_to_none=True)
                        # the state before this step (resume retries the same batch); other ranks take no part
                        state = self.save_state(collective=False)
                        raise TrainingError(
                            f"out of memory at step {self.global_step + 1} with batch_size={config.batch_size} on "
                            f"{self.device}; lower batch_size or set grad_checkpointing=true, then resume with "
                            f"--resume {state}") from None
                    self.step_in_epoch += 1
                    self.global_step += 1
                    clips += sum(len(micro["label"]) for micro in micro_batches) * self.dist.world
                    if metrics is not None:
                        last = {"step": self.global_step, "epoch": self.epoch, **metrics,
                                "lr": self.scheduler.get_last_lr()[0], "clips_per_s": clips / (time.time() - started)}
                        self._record(last, "train")
                        bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{last['lr']:.2e}",
                                        clips_s=f"{last['clips_per_s']:.1f}")
                    stop = distributed.agree(self.stop_signal or 0)  # a signal on any rank stops them all
                    if stop:
                        state = self.save_state()
                        if main:
                            print(f"{signal.Signals(stop).name} at step {self.global_step}: state saved to {state}; "
                                  f"continue with: t2l train --config {self.output / 'config.yaml'} --resume "
                                  f"{state}", file=sys.stderr, flush=True)
                        raise SystemExit(SIGNAL_EXIT[signal.Signals(stop)])
                    if config.save_every_steps and self.global_step % config.save_every_steps == 0:
                        self.save_state()
                    if config.max_steps and self.global_step >= config.max_steps:
                        break
                else:
                    self._record({"step": self.global_step, "epoch": self.epoch,
                                  "bad_videos": len(self.loader.bad_videos),
                                  "loader_fallback_batches": self.loader.fallback_batches}, "data")
                    if config.data.val_list:
                        self._record({"step": self.global_step, "epoch": self.epoch, **self.validate()}, "val")
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    self.save_state()
                    continue
                self.save_state()
                break
        finally:
            if self._log:
                self._log.close()
            if self._board:
                self._board.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        summary = {"steps": self.global_step, "epochs": self.epoch, "seconds": round(time.time() - started, 1),
                   "last": last, "state": str(self.output / STATE_FILE), "best_val_top1": self.best_top1,
                   "processes": self.dist.world}
        if main:
            full = self.model.backbone_source is None  # random/unsourced backbone: save it too
            summary["model"] = str(save_checkpoint(self.model, self.output / "model", full=full))
            (self.output / "summary.json").write_text(json.dumps(summary, indent=2))
        distributed.barrier()  # the model is written before any rank returns
        return summary
