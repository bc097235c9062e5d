"""Training configuration: a strict schema read from YAML plus `--set key=value` overrides, checked before any work."""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..io import check_writable
from ..numbers import NumberError, checked_number, parse_number


@dataclass
class DataConfig:
    root: str = ""  # data root the lists' paths are relative to
    train_list: str = ""  # `relative/path label` list (or CSV) of the training videos
    val_list: str | None = None  # validation list, for the loss on held-out clips (never a test split)
    val_every_epochs: int = 1  # validate after every N-th epoch, and after the last
    classes: str = ""  # class-name file (label order)
    descriptions: str | None = None  # CSV of class, description: T2L's class texts
    templates: str | None = None  # prompt set (video, photo, bare) when there are no descriptions
    backend: str = "auto"  # auto, dali or pyav
    num_workers: int = 2  # PyAV decoding processes
    manifest: str | None = None  # frame counts from `t2l data check`
    flip: bool = True  # horizontal flip (off where direction is the label: synthetic data, SSv2)
    jitter_per_frame: bool = True  # colour jitter factors per frame (official) or per clip
    twin_batches: bool = False  # classes 2k, 2k + 1 are twins (time-reversed): every clip's batch holds its twin class


@dataclass
class OptimConfig:
    lr: float = 5e-5  # peak learning rate (T2L README recipe)
    weight_decay: float = 0.2  # AdamW weight decay, every learnable tensor
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW moment decay rates
    eps: float = 1e-8  # AdamW denominator floor
    warmup_epochs: float = 5.0  # linear warm-up from 0, then per-step cosine
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    warmup_prefix: bool = True  # the cosine starts after warm-up (T2L); false: over all steps (ViFi-CLIP, timm)
    token_lr_scale: float = 1.0  # lr x this for T2L's temporal tokens (1: the paper's one lr; tiny: 5); others: none


@dataclass
class TrainConfig:
    model: str = "t2l_vit_b16"  # registered model name
    pretrained: str | None = None  # CLIP weights (open_clip tag, OpenAI .pt, state dict, local-dir:)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # model config fields, e.g. {drop_path: 0}
    frames: int = 8  # T
    batch_size: int = 70  # clips per forward pass (per process)
    global_batch_size: int = 0  # clips per optimizer step over all processes (0: processes x batch_size)
    epochs: int = 50  # passes over the training list
    seed: int = 0  # initial weights, data order and augmentation draws
    precision: str = "bf16"  # fp32, bf16 or fp16 (autocast; fp32 master weights; a grad scaler for fp16)
    grad_checkpointing: bool = False  # recompute activations in the backward pass (less memory)
    objective: str = "t2l"  # t2l: alignment KL + TFD; vificlip: CE over the class prompts, smoothing, mixup/cutmix
    tfd_weight: float = 1.0  # weight of the TFD loss (T2L: 1)
    label_smoothing: float = 0.1  # vificlip objective
    vificlip_classes: str = "all"  # vificlip objective: CE over every training class ("all") or the batch's ("batch")
    mixup_alpha: float = 0.8  # vificlip objective (0: off)
    cutmix_alpha: float = 1.0  # vificlip objective (0: off)
    mix_switch_prob: float = 0.5  # vificlip: probability of CutMix rather than Mixup when both are on
    output_dir: str = "runs/train"  # config.yaml, metrics.jsonl, last.pt, model/, best/, summary.json
    save_every_steps: int = 0  # also save `last` every N steps (0: at epoch ends only)
    max_bad_steps: int = 5  # consecutive non-finite losses before stopping
    max_steps: int = 0  # stop after this many steps in total (0: no limit; for smoke tests)
    resume_replan: bool = False  # --resume with a changed lr, schedule or batch: apply them (else refused)
    device: str | None = None  # cpu or cuda (default: cuda when available)
    data: DataConfig = field(default_factory=DataConfig)  # the data. keys below
    optim: OptimConfig = field(default_factory=OptimConfig)


def _assign(target, key: str, value, where: str) -> None:
    """Set dotted `key` on the dataclass `target`, converting `value` to the field's type; unknown keys fail."""
    head, _, rest = key.partition(".")
    names = {f.name: f for f in dataclasses.fields(target)}
    if head not in names:
        close = difflib.get_close_matches(head, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(names))}"
        raise ConfigError(f"{where}: unknown key {key!r}{hint}")
    current = getattr(target, head)
    if dataclasses.is_dataclass(current):
        if rest:
            _assign(current, rest, value, where)
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {head!r} must be a mapping of its keys")
        for sub_key, sub_value in value.items():
            _assign(current, str(sub_key), sub_value, where)
        return
    if rest and not isinstance(current, dict):
        raise ConfigError(f"{where}: {head!r} has no sub-keys (got {key!r})")
    if rest:
        current[rest] = value
        return
    setattr(target, head, _convert(value, current, key, where))


def _convert(value, current, key: str, where: str):
    if current is None or isinstance(current, dict) or value is None:
        return value
    kind = type(current)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ConfigError(value)  # worded below
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is tuple:
            items = value if isinstance(value, (list, tuple)) else _yaml(str(value), where)
            return tuple(_number(v, type(current[0]), key) for v in items)
        if kind in (int, float):
            return _number(value, kind, key)
        return kind(value)
    except (TypeError, ValueError) as e:
        reason = f" ({str(e).split(': ', 1)[-1]})" if isinstance(e, NumberError) else ""
        raise ConfigError(f"{where}: {key} = {value!r} is not a valid {kind.__name__}{reason}") from None


def _number(value, kind: type, key: str) -> int | float:
    """The CLI's rule for numbers (t2l_fast.numbers): a bool is none, nan and inf are refused. YAML leaves some
    numbers as text (5e-3), which is parsed first."""
    if isinstance(value, str):
        return parse_number(value, key, integer=kind is int)
    return kind(checked_number(value, key, integer=kind is int))


def _yaml(text: str, where: str):
    """YAML text as plain data (safe_load: a tag such as !!python/object is refused, never run), or a ConfigError."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        reason = (getattr(e, "problem", None) or str(e).splitlines()[0]) + (f", line {mark.line + 1}" if mark else "")
        raise ConfigError(f"{where}: not valid YAML, or a tag that is not plain data ({reason}); configs hold "
                          f"numbers, text, lists and mappings only") from None


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """A TrainConfig from a YAML file and `key=value` overrides (dotted keys: data.root=/data), validated."""
    config = TrainConfig()
    if path:
        try:
            document = _yaml(Path(path).read_text(), str(path)) or {}
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not valid UTF-8 (byte {e.start}); a config is a UTF-8 YAML file") from None
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        for key, value in document.items():
            _assign(config, str(key), value, str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        _assign(config, key.strip(), _yaml(text, f"--set {key.strip()}"), f"--set {key.strip()}")
    validate(config)
    return config


def _range_problems(config: TrainConfig) -> list[str]:
    """Loss weights, mixing, AdamW's constants and counts that no run could mean."""
    optim = config.optim
    checks = [  # (key, its value, whether it is in range, the range)
        ("tfd_weight", config.tfd_weight, config.tfd_weight >= 0, ">= 0"),
        ("label_smoothing", config.label_smoothing, 0 <= config.label_smoothing < 1, "in [0, 1)"),
        ("mixup_alpha", config.mixup_alpha, config.mixup_alpha >= 0, ">= 0"),
        ("cutmix_alpha", config.cutmix_alpha, config.cutmix_alpha >= 0, ">= 0"),
        ("mix_switch_prob", config.mix_switch_prob, 0 <= config.mix_switch_prob <= 1, "in [0, 1]"),
        ("max_bad_steps", config.max_bad_steps, config.max_bad_steps >= 1, ">= 1"),
        ("data.num_workers", config.data.num_workers, config.data.num_workers >= 0, ">= 0"),
        ("data.val_every_epochs", config.data.val_every_epochs, config.data.val_every_epochs >= 1, ">= 1"),
        ("optim.eps", optim.eps, optim.eps > 0, "> 0"),
        ("optim.betas", optim.betas, all(0 <= b < 1 for b in optim.betas), "each in [0, 1)"),
        ("optim.token_lr_scale", optim.token_lr_scale, optim.token_lr_scale > 0, "> 0"),
    ]
    return [f"{key} must be {wanted}, got {value}" for key, value, holds, wanted in checks if not holds]


def validate(config: TrainConfig) -> None:
    """Reject impossible values, missing files and an unwritable output folder before any work starts."""
    problems: list[str] = []
    for name in ("frames", "batch_size", "epochs"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("save_every_steps", "max_steps", "global_batch_size"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must be >= 0 (0: off), got {getattr(config, name)}")
    problems += _range_problems(config)
    if config.objective not in ("t2l", "vificlip"):
        problems.append(f"objective must be t2l or vificlip, got {config.objective!r}")
    if config.vificlip_classes not in ("all", "batch"):
        problems.append(f"vificlip_classes must be all or batch, got {config.vificlip_classes!r}")
    if config.precision not in ("fp32", "bf16", "fp16"):
        problems.append(f"precision must be fp32, bf16 or fp16, got {config.precision!r}")
    if config.data.twin_batches and config.batch_size % 2:
        problems.append(f"data.twin_batches needs an even batch_size (whole clip/twin pairs), got {config.batch_size}")
    optim = config.optim
    if not all(math.isfinite(v) for v in (optim.lr, optim.weight_decay, optim.warmup_epochs, optim.min_lr_ratio,
                                          optim.token_lr_scale)):
        problems.append("optim: lr, weight_decay, warmup_epochs, min_lr_ratio and token_lr_scale must be finite "
                        "numbers (not nan/inf)")
    elif optim.lr <= 0 or optim.weight_decay < 0 or optim.warmup_epochs < 0 or not 0 <= optim.min_lr_ratio <= 1:
        problems.append("optim: lr must be > 0, weight_decay and warmup_epochs >= 0, min_lr_ratio in [0, 1]")
    if config.data.backend not in ("auto", "dali", "pyav"):
        problems.append(f"data.backend must be auto, dali or pyav, got {config.data.backend!r}")
    for name in ("root", "train_list", "classes"):
        if not getattr(config.data, name):
            problems.append(f"data.{name} is required")
    for name in ("train_list", "val_list", "classes", "descriptions", "manifest"):
        value = getattr(config.data, name)
        if value and not Path(value).is_file():
            problems.append(f"data.{name}: {value} does not exist")
    if config.data.root and not Path(config.data.root).is_dir():
        problems.append(f"data.root: {config.data.root} is not a folder")
    if problems:
        raise ConfigError("invalid training config:\n  " + "\n  ".join(problems))
    accumulation_steps(config, int(os.environ.get("WORLD_SIZE", "1")))  # torchrun's process count
    check_writable(Path(config.output_dir))


def accumulation_steps(config: TrainConfig, world: int) -> int:
    """Micro-batches per optimizer step so that `world` processes x batch_size x this = global_batch_size (1 when
    it is unset); a ConfigError where that is not a whole number or the objective's loss couples a batch's clips."""
    per_pass = world * config.batch_size
    if not config.global_batch_size:
        return 1
    steps, rest = divmod(config.global_batch_size, per_pass)
    if rest or not steps:
        raise ConfigError(f"global_batch_size {config.global_batch_size} is not a multiple of {world} process(es) x "
                          f"batch_size {config.batch_size} = {per_pass}; choose a batch_size and process count "
                          f"whose product divides it, or change global_batch_size")
    in_batch = config.objective == "t2l" or config.vificlip_classes == "batch"
    if steps > 1 and in_batch:
        loss = "t2l's in-batch loss" if config.objective == "t2l" else "vificlip_classes=batch (prompts of the batch)"
        raise ConfigError(
            f"global_batch_size {config.global_batch_size} on {world} process(es) x batch_size {config.batch_size} "
            f"needs {steps} accumulated micro-batches, which {loss} cannot use: each clip would only meet the clips "
            f"of its own micro-batch, a different objective. Run {steps * world} processes (torchrun "
            f"--nproc-per-node), raise batch_size to {steps * config.batch_size} (grad_checkpointing=true saves "
            f"memory), or lower global_batch_size and the learning rate with it")
    return steps


def to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)
