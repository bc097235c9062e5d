"""t2l-fast checkpoints: a directory with `config.json` and `model.safetensors`.

variant "learnable": only the parameters that train (T2L: 5.2 M), loaded on top of the backbone named in the config.
variant "full": every weight, self-contained (for deployment and for randomly initialised backbones).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError
from ..io import atomic_write
from .backbone import load_state_dict_strict, read_safetensors
from .base import VideoTextModel
from .config import ModelConfig

FORMAT = "t2l-fast-checkpoint"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_checkpoint(model: VideoTextModel, out_dir: str | Path, *, full: bool = False,
                    metadata: dict | None = None) -> Path:
    """Write `model` to `out_dir` (created if needed); each file is written atomically."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if full:
        tensors = model.state_dict()
    else:
        tensors = dict(model.named_learnable_parameters())
        if model.backbone_source is None:
            raise CheckpointError(f"{out_dir}: this model's backbone was randomly initialised, so its learnable "
                                  f"weights alone cannot be reloaded; save with full=True")
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    info = {"format": FORMAT, "format_version": 1, "t2l_fast_version": __version__,
            "variant": "full" if full else "learnable", "backbone": model.backbone_source,
            "model": model.config.to_dict(), **(metadata or {})}
    atomic_write(out_dir / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    atomic_write(out_dir / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2)))
    return out_dir


def read_checkpoint_info(path: str | Path) -> dict:
    """The config.json of a checkpoint directory, validated."""
    config_file = Path(path) / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(f"{path}: not a t2l-fast checkpoint directory (no {CONFIG_FILE}). For the official "
                              f"T2L repository's .pt files use `t2l convert-official` or load_official_t2l().")
    try:
        info = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_file}: corrupt JSON ({e})") from None
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{config_file}: format is {info.get('format')!r}, expected {FORMAT!r}")
    return info


def load_weights(model: VideoTextModel, path: str | Path) -> None:
    """Load the weights of checkpoint `path` into `model`, refusing a different architecture or frame count."""
    info = read_checkpoint_info(path)
    saved = ModelConfig.from_dict(info["model"])
    _check_compatible(saved, model.config, path)
    tensors = read_safetensors(Path(path) / WEIGHTS_FILE)
    if info["variant"] == "full":
        load_state_dict_strict(model, tensors, str(path))
        return
    expected = dict(model.named_learnable_parameters())
    if set(tensors) != set(expected):
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise CheckpointError(f"{path}: learnable weights do not fit {model.config.name}: missing {missing[:4]}, "
                              f"unexpected {unexpected[:4]}")
    _copy_into(expected, tensors, path)


def _copy_into(params: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], source) -> None:
    with torch.no_grad():
        for name, param in params.items():
            if param.shape != tensors[name].shape:
                raise CheckpointError(f"{source}: {name} has shape {tuple(tensors[name].shape)} in the file, "
                                      f"{tuple(param.shape)} in the model")
            param.copy_(tensors[name])


def _check_compatible(saved: ModelConfig, model: ModelConfig, path) -> None:
    if saved.kind == "t2l" and model.kind == "t2l" and saved.frames != model.frames:
        raise CheckpointError(f"{path}: these T2L weights were trained with T={saved.frames} frames (one temporal "
                              f"token per frame and layer); the model was built for T={model.frames}. Build it "
                              f"with frames={saved.frames}.")
    if (saved.kind, saved.vision, saved.text, saved.embed_dim) != (model.kind, model.vision, model.text,
                                                                    model.embed_dim):
        raise CheckpointError(f"{path}: saved from {saved.name} ({saved.kind}), which does not fit "
                              f"{model.name} ({model.kind}); use load_checkpoint({str(path)!r}) to rebuild it")
