"""The trainer state `last.pt`, written and resumed from: what a resumed run must share with the saved run, what
`resume_replan` may change (and how the schedule is then re-planned), every rank's random states, the disk space
the states need, and the metrics lines the resumed run trains again."""
from __future__ import annotations

import json
import random
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import yaml

from ..errors import T2LError
from ..io import atomic_write
from . import distributed
from .config import OptimConfig, TrainConfig, to_dict

STATE_FILE = "last.pt"


class Resumable(Protocol):
    """What the state functions read and set on a trainer (training/trainer.py's Trainer is one)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    config: TrainConfig
    dist: distributed.Distributed
    output: Path
    accumulation: int
    steps_per_epoch: int
    epoch: int
    step_in_epoch: int
    global_step: int
    best_top1: float | None


# What a resumed run must share with the saved one, and what it may change with resume_replan.
RESUME_FIXED = ("model", "frames", "objective", "vificlip_classes", "seed", "model_overrides", "data.train_list",
                "data.classes", "data.descriptions", "data.templates",
                "optim.token_lr_scale",  # the optimizer's parameter groups
                "data.twin_batches")  # the epoch's order
FIXED_BEFORE = {"optim.token_lr_scale": 1.0, "data.twin_batches": False}  # in saves written before the setting
RESUME_PLANNED = ("epochs", "tfd_weight", "label_smoothing", "mixup_alpha", "cutmix_alpha", "mix_switch_prob",
                  "optim.lr", "optim.weight_decay", "optim.betas", "optim.eps", "optim.warmup_epochs",
                  "optim.min_lr_ratio", "optim.warmup_prefix")  # batch size: judged by the global batch


class TrainingError(T2LError, RuntimeError):
    """Training cannot go on (the message says why and what to change)."""


def seed_all(seed: int) -> None:
    """Seed torch's, numpy's and Python's global random states."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict:
    """All random states as plain tensors/lists, loadable with torch.load(weights_only=True). On GPUs, drop-path,
    attention and token dropout draw from the CUDA generators, so theirs are saved too."""
    numpy_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
             "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()  # one ByteTensor per visible GPU
        state["cuda_device"] = torch.cuda.current_device()  # the one this process trains on
    return state


def restore_rng(saved: list[dict], rank: int, world: int, path: Path) -> None:
    """Set this rank's random states from a state's per-rank list (the last one for ranks the saved run lacked)."""
    if len(saved) != world:
        warnings.warn(f"{path} was saved by {len(saved)} process(es), this run has {world}: the data order is kept, "
                      f"but dropout masks will differ from an uninterrupted run", stacklevel=3)
    state = saved[min(rank, len(saved) - 1)]
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        _restore_cuda_rng(state, path)


def _restore_cuda_rng(state: dict, path: Path) -> None:
    """Every GPU's generator where this process sees as many GPUs as the saving one did; otherwise (e.g. one GPU
    per process now, all of them then) the generator of the GPU the saving process trained on, onto this one's."""
    if len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
        return
    trained_on = state.get("cuda_device")
    if trained_on is not None and trained_on < len(state["cuda"]):
        torch.cuda.set_rng_state(state["cuda"][trained_on])  # onto the current device
        return
    warnings.warn(f"{path} saved the random states of {len(state['cuda'])} GPU(s), this process sees "
                  f"{torch.cuda.device_count()}: GPU dropout masks will differ from an uninterrupted run",
                  stacklevel=4)


def write_state(trainer: Resumable, collective: bool) -> Path:
    """Write the trainer's state to `last.pt` (rank 0); see Trainer.save_state for `collective`."""
    if not all(torch.isfinite(p).all() for p in trainer.model.learnable_parameters()):
        raise TrainingError("refusing to save a checkpoint with non-finite weights")
    rng = distributed.gather_objects(rng_state()) if collective else [rng_state()]  # one per rank
    path = trainer.output / STATE_FILE
    if trainer.dist.is_main:
        check_free_space(trainer.output, trainer.model)
        state = {"model": {k: v.detach().cpu() for k, v in trainer.model.named_learnable_parameters()},
                 "optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
                 "scaler": trainer.scaler.state_dict(), "rng": rng, "epoch": trainer.epoch,
                 "step_in_epoch": trainer.step_in_epoch, "global_step": trainer.global_step,
                 "best_top1": trainer.best_top1, "world_size": trainer.dist.world,
                 "accumulation": trainer.accumulation, "config": to_dict(trainer.config)}
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def restore_state(trainer: Resumable, path: Path) -> None:
    """Set the trainer's weights, optimizer, schedule, random states and position from the state at `path`, after
    checking that this run may continue it (changed_settings); a re-plan applies from the saved step."""
    state = load_state(path)
    changes = changed_settings(state, path, trainer.config, trainer.dist.world, trainer.accumulation)
    load_learnable(trainer.model, state["model"], path, trainer.config.model)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    restore_rng(state["rng"], trainer.dist.rank, trainer.dist.world, path)
    trainer.epoch, trainer.step_in_epoch = state["epoch"], state["step_in_epoch"]
    trainer.global_step, trainer.best_top1 = state["global_step"], state.get("best_top1")
    if changes:  # re-planned: the new hyper-parameters from this step on; the optimizer's moments are kept
        if any(change.startswith("global batch") for change in changes):  # at an epoch boundary (checked)
            trainer.global_step = trainer.scheduler.last_epoch = trainer.epoch * trainer.steps_per_epoch  # new steps
        replan(trainer.optimizer, trainer.scheduler, trainer.config.optim)
        warnings.warn(f"resuming {path} with changed settings, applied from step {trainer.global_step}: "
                      f"{'; '.join(changes)}", stacklevel=3)  # at Trainer.resume's caller
    if trainer.dist.is_main:
        drop_metrics_after(trainer.output / "metrics.jsonl", state["global_step"])


def load_state(path: Path) -> dict:
    """The trainer state at `path`; a model checkpoint given instead is refused with what --resume takes."""
    from ..io import safe_torch_load

    if path.is_dir() or path.suffix == ".safetensors":
        raise TrainingError(f"{path}: a model checkpoint; --resume takes the trainer state `{STATE_FILE}` that "
                            f"training writes in its output_dir (weights, optimizer, schedule, data position)")
    return safe_torch_load(path)


def load_learnable(model, saved: dict, path: Path, model_name: str) -> None:
    """Copy a state's learnable tensors into `model`, refusing a state of another model or frame count."""
    params = dict(model.named_learnable_parameters())
    if set(saved) != set(params):
        raise TrainingError(f"{path}: its weights do not fit {model_name} (another model or frame count)")
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value)


def _flat(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """("a.b", value) pairs of a nested config dict."""
    for key, value in tree.items():
        if isinstance(value, dict) and key != "model_overrides":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", list(value) if isinstance(value, tuple) else value


def changed_settings(state: dict, path: Path, config: TrainConfig, world: int, accumulation: int) -> list[str]:
    """The re-plannable settings that differ from the saved run's (empty: none). A different model, frame count,
    objective, data or seed is refused; a different schedule or batch is refused unless resume_replan is set, and
    the global batch (world x batch_size x accumulation) only changes at an epoch boundary."""
    saved = {**FIXED_BEFORE, **dict(_flat(state.get("config", {})))}
    now = dict(_flat(to_dict(config)))
    fixed = [k for k in RESUME_FIXED if k in saved and saved[k] != now.get(k)]
    if fixed:
        differing = ", ".join(f"{k} ({saved[k]!r} -> {now.get(k)!r})" for k in fixed)
        raise TrainingError(f"{path}: saved by a run with another {differing}; these cannot change within a run: "
                            f"start a new output_dir")
    changes = [f"{k} {saved[k]!r} -> {now.get(k)!r}" for k in sorted(saved) if k in RESUME_PLANNED and
               saved[k] != now.get(k)]
    saved_world, saved_accumulation = state.get("world_size", world), state.get("accumulation", 1)
    before = saved_world * saved.get("batch_size", config.batch_size) * saved_accumulation
    if before != world * config.batch_size * accumulation:
        changes.append(f"global batch {saved_world} x {saved.get('batch_size')} x {saved_accumulation} -> {world} "
                       f"x {config.batch_size} x {accumulation} (processes x batch_size x accumulation)")
        if state["step_in_epoch"]:
            raise TrainingError(f"{path}: the global batch changed ({changes[-1]}) in the middle of epoch "
                                f"{state['epoch'] + 1}; resume with the saved one, or from an epoch boundary")
    if changes and not config.resume_replan:
        raise TrainingError(f"{path}: this run's settings differ from the saved run's: {'; '.join(changes)}. "
                            f"Set resume_replan=true to apply them from the saved step (learning rate and schedule "
                            f"re-planned, optimizer moments kept), or resume with the saved config "
                            f"({Path(config.output_dir) / 'config.yaml'})")
    return changes


def replan(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
           optim: OptimConfig) -> None:
    """Apply a changed learning rate and AdamW settings from the scheduler's current step on (the optimizer's
    moments are kept)."""
    for group in optimizer.param_groups:
        group.update(weight_decay=optim.weight_decay, betas=tuple(optim.betas), eps=optim.eps)
    scheduler.base_lrs = [optim.lr * group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)  # this step's lr under the new plan


def drop_metrics_after(log: Path, step: int) -> None:
    """Keep the lines of metrics.jsonl `log` up to `step`: the steps after the saved state are trained again."""
    if not log.is_file():
        return
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    log.write_text("".join(line + "\n" for line in kept))


def prepare_output(output: Path, model, config: TrainConfig) -> None:
    """Before training (rank 0): room for the states, no half-written files, and the config.yaml to resume with."""
    check_free_space(output, model)
    for stale in output.rglob(".*.tmp"):  # atomic writes a kill interrupted (io.atomic_write)
        stale.unlink(missing_ok=True)
    (output / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def check_free_space(output: Path, model) -> None:
    """Refuse to start or save when the output folder's disk cannot hold two states (the atomic write keeps the old
    one until the new one is complete) and the final model."""
    learnable = sum(p.numel() * p.element_size() for p in model.learnable_parameters())
    full = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = 2 * 3 * learnable + full + (64 << 20)  # weights + AdamW's two moments, twice; the model; slack
    free = shutil.disk_usage(output).free
    if free < needed:
        raise TrainingError(f"{output}: {free / 2 ** 30:.2f} GB free, training needs about {needed / 2 ** 30:.2f} GB "
                            f"there for its checkpoints; free some space or set output_dir to a larger disk")
