"""The training loop (one process): an objective (objectives.py: T2L's or ViFi-CLIP's), AdamW with warm-up +
per-step cosine, mixed precision, atomic checkpoints with mid-epoch resume (resume.py), a non-finite-loss guard, and
SIGINT/SIGTERM saves; one process or many under torchrun (distributed.py: the losses see the global batch, rank 0
writes logs and checkpoints).

global_batch_size fixes the clips per optimizer step whatever the number of processes; it is reached by gradient
accumulation over micro-batches only where the loss does not couple the clips of a batch (ViFi-CLIP over all class
prompts). T2L's in-batch loss over micro-batches is not the loss over their union (each clip would only be contrasted
with its own micro-batch), so it is refused there (config.accumulation_steps says so).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..data import LoaderConfig, build_video_loader
from ..data.augment import AugmentConfig
from ..data.synthetic import twin_order_problem
from ..models.checkpoint import save_checkpoint
from ..models.registry import create_model
from ..text.class_files import read_class_descriptions, read_class_names
from ..video_ops import normalize_video
from . import distributed
from .config import TrainConfig, accumulation_steps
from .objectives import build_objective, class_tokens
from .resume import STATE_FILE, TrainingError, prepare_output, restore_state, seed_all, write_state
from .run_log import RunLog
from .schedule import build_optimizer
from .stop import StopSignals


class Trainer:
    """One training run: the model, its data, objective and optimizer, and the position (epoch, step) in the run."""

    def __init__(self, config: TrainConfig):
        self.config, self.output = config, Path(config.output_dir)
        self.dist = distributed.init_distributed(config.device)
        self.device = self.dist.device
        self.class_names = read_class_names(config.data.classes)
        if config.data.twin_batches and (problem := twin_order_problem(self.class_names)):
            raise TrainingError(f"{config.data.classes}: data.twin_batches pairs labels 2k and 2k + 1, and {problem}; "
                                f"list each class next to its twin, or set data.twin_batches=false")
        torch.manual_seed(config.seed)  # the same initial weights on every rank (and broadcast to be sure)
        self.model = create_model(config.model, pretrained=config.pretrained, frames=config.frames,
                                  **config.model_overrides).to(self.device)
        distributed.broadcast_parameters(self.model.learnable_parameters())
        seed_all(config.seed + self.dist.rank)  # each rank its own dropout masks
        self.model.set_grad_checkpointing(config.grad_checkpointing)
        self.class_tokens = class_tokens(config.data, self.class_names, self.model)  # [C, L]
        self.objective = build_objective(self.model, self.class_tokens, self.device, config)
        self.loader = self._build_loader()
        self.accumulation = accumulation_steps(config, self.dist.world)  # micro-batches per optimizer step
        self.steps_per_epoch = len(self.loader) // self.accumulation
        if not self.steps_per_epoch:
            raise TrainingError(f"{config.data.train_list}: {len(self.loader)} batch(es) of {config.batch_size} per "
                                f"process, fewer than the {self.accumulation} micro-batches of one step of "
                                f"global_batch_size {config.global_batch_size}; lower global_batch_size or use more "
                                f"videos")
        self.optimizer, self.scheduler = build_optimizer(self.model, config.optim, self.steps_per_epoch,
                                                         config.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best_top1: float | None = None  # on data.val_list (never a test split)
        self.bad_steps = 0
        self._micro = 0  # the micro-batch of the step being computed (its random draws)
        self.signals = StopSignals()  # SIGINT/SIGTERM while running: the state is saved after the current step
        self.log: RunLog | None = None  # while running: rank 0's metrics file, TensorBoard and progress bar

    def _build_loader(self):
        """This rank's shard of the training list."""
        config, data = self.config, self.config.data
        loading = LoaderConfig(frames=config.frames, size=self.model.input_spec.image_size, backend=data.backend,
                               augment=AugmentConfig(flip=data.flip, jitter_per_frame=data.jitter_per_frame),
                               num_workers=data.num_workers, class_names=self.class_names, manifest=data.manifest,
                               twin_batches=data.twin_batches)
        return build_video_loader(data.train_list, data.root, loading, split="train", batch_size=config.batch_size,
                                  shard=(self.dist.rank, self.dist.world), seed=config.seed, device=self.device)

    def compute_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """The objective's losses on one (micro-)batch; its random draws depend on (seed, step, rank, micro-batch)
        only, so a resumed run draws the same."""
        video = normalize_video(batch["video"], self.model.input_spec)
        rng = np.random.default_rng([self.config.seed, self.global_step, self.dist.rank, self._micro, 7])
        return self.objective(video, batch["label"], rng)

    def train_step(self, batches) -> dict[str, float] | None:
        """One optimizer step over a batch or a list of micro-batches (gradient accumulation: the mean of their
        losses); None when a loss was not finite and the step was skipped."""
        batches = [batches] if isinstance(batches, dict) else batches
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for micro, batch in enumerate(batches):
            self._micro = micro
            losses = self.compute_loss(batch)
            # always: under torchrun the backward of the gathered embeddings is itself a collective; a non-finite
            # loss spoils the step, which every rank then skips together (agree, below)
            self.scaler.scale(losses["loss"] / len(batches)).backward()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0) + value.detach() / len(batches)
        if distributed.agree(int(not torch.isfinite(totals["loss"]))):  # every rank skips, or none
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
            if self.bad_steps >= self.config.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} consecutive steps had a non-finite loss (last at step "
                                    f"{self.global_step}); stopping without saving them. Lower optim.lr, or use "
                                    f"precision=fp32/bf16. The last good checkpoint is {self.output / STATE_FILE}.")
            self.scheduler.step()
            return None
        self.bad_steps = 0
        distributed.average_gradients([p for group in self.optimizer.param_groups for p in group["params"]])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.item() for k, v in totals.items()}

    def save_state(self, collective: bool = True) -> Path:
        """Write `last.pt` (rank 0). Every rank must call it at the same point unless `collective` is False (then
        only this rank's RNG state is stored: for a save no other rank takes part in, such as out of memory)."""
        return write_state(self, collective)

    def resume(self, path: Path) -> None:
        """Continue from a trainer state `last.pt`: weights, optimizer, schedule, random states and data position;
        a changed schedule or batch only with resume_replan (resume.py holds the policy)."""
        restore_state(self, Path(path))

    def validate(self) -> dict[str, float]:
        """Zero-shot top-1/top-5 on data.val_list; a better top-1 than before saves the model to `best/`."""
        from .evaluate import EvalConfig, evaluate

        data = self.config.data
        descriptions = read_class_descriptions(data.descriptions, self.class_names) if data.descriptions else None
        scoring = EvalConfig(batch_size=self.config.batch_size, backend=data.backend, num_workers=data.num_workers,
                             templates=data.templates)
        result = evaluate(self.model, data.val_list, data.root, self.class_names, descriptions=descriptions,
                          config=scoring)  # sharded over the ranks, every video counted once
        self.model.train()
        if self.best_top1 is None or result["top1"] > self.best_top1:
            self.best_top1 = result["top1"]
            if self.dist.is_main:
                save_checkpoint(self.model, self.output / "best", full=self.model.backbone_source is None,
                                metadata={"val_top1": result["top1"], "epoch": self.epoch})
        return {"val_top1": result["top1"], "val_top5": result["top5"]}

    def step_batches(self) -> Iterator[list[dict]]:
        """The loader's batches grouped by optimizer step (`accumulation` each; an incomplete last group is
        dropped, as the loader drops an incomplete last batch)."""
        group: list[dict] = []
        for batch in self.loader:
            group.append(batch)
            if len(group) == self.accumulation:
                yield group
                group = []

    def run(self) -> dict:
        """Train from the current position to the last epoch (or max_steps), saving the state after each epoch;
        the summary (steps, time, last metrics, where the state and the model are)."""
        if self.dist.is_main:
            prepare_output(self.output, self.model, self.config)
        self.log = RunLog(self.output if self.dist.is_main else None)
        try:
            with self.signals:
                completed = True
                while completed and self.epoch < self.config.epochs:
                    completed = self._train_epoch()  # False: max_steps reached within it
                    self.save_state()
        finally:
            self.log.close()
        return self._finish()

    def _train_epoch(self) -> bool:
        """Train the rest of epoch `self.epoch`. False when max_steps stopped it; True when it ended (its data
        counts and validation recorded, the position moved to the next epoch)."""
        self.model.train()
        self.loader.set_epoch(self.epoch, start_batch=self.step_in_epoch * self.accumulation)
        description = f"epoch {self.epoch + 1}/{self.config.epochs}"
        for micro_batches in self.log.progress(self.step_batches(), description, self.step_in_epoch,
                                               self.steps_per_epoch):
            self._step(micro_batches)
            if self.config.max_steps and self.global_step >= self.config.max_steps:
                return False
        self.log.record({"step": self.global_step, "epoch": self.epoch, "bad_videos": len(self.loader.bad_videos),
                         "loader_fallback_batches": self.loader.fallback_batches}, "data")
        if self.config.data.val_list and self._validates_after(self.epoch):
            self.log.record({"step": self.global_step, "epoch": self.epoch, **self.validate()}, "val")
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        return True

    def _validates_after(self, epoch: int) -> bool:
        """Whether validation follows epoch `epoch` (from 0): every data.val_every_epochs-th, and the last."""
        return (epoch + 1) % self.config.data.val_every_epochs == 0 or epoch + 1 == self.config.epochs

    def _step(self, micro_batches: list[dict]) -> None:
        """One optimizer step and what follows it: the position, its metrics, a signal's stop, a periodic save."""
        try:
            metrics = self.train_step(micro_batches)
        except torch.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            # the state before this step (resume retries the same batch); other ranks take no part
            state = self.save_state(collective=False)
            raise TrainingError(f"out of memory at step {self.global_step + 1} with batch_size="
                                f"{self.config.batch_size} on {self.device}; lower batch_size or set "
                                f"grad_checkpointing=true, then resume with --resume {state}") from None
        self.step_in_epoch += 1
        self.global_step += 1
        clips = sum(len(micro["label"]) for micro in micro_batches) * self.dist.world
        self.log.train_step({"step": self.global_step, "epoch": self.epoch}, clips, metrics,
                            self.scheduler.get_last_lr()[0])
        self.signals.stop_if_received(self.save_state, self.global_step, self.output / "config.yaml")
        if self.config.save_every_steps and self.global_step % self.config.save_every_steps == 0:
            self.save_state()

    def _finish(self) -> dict:
        """The run's summary; rank 0 saves the model and summary.json first."""
        summary = {"steps": self.global_step, "epochs": self.epoch, "seconds": round(time.time() - self.log.started, 1),
                   "last": self.log.last, "state": str(self.output / STATE_FILE), "best_val_top1": self.best_top1,
                   "processes": self.dist.world}
        if self.dist.is_main:
            full = self.model.backbone_source is None  # random/unsourced backbone: save it too
            summary["model"] = str(save_checkpoint(self.model, self.output / "model", full=full))
            (self.output / "summary.json").write_text(json.dumps(summary, indent=2))
        distributed.barrier()  # the model is written before any rank returns
        return summary
