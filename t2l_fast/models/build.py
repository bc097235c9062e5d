"""Config -> model: backbone, weights, the model class of its kind; and a saved checkpoint -> its model."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from ..errors import CheckpointError, UnsupportedOptionError
from .backbone import build_backbone, load_backbone_weights
from .base import VideoTextModel
from .checkpoint import load_weights, read_checkpoint_info
from .config import ModelConfig


def model_class(kind: str) -> type:
    from .frame_average import FrameAveragedCLIP
    from .t2l import T2L

    return {"t2l": T2L, "vificlip": FrameAveragedCLIP, "clip": FrameAveragedCLIP}[kind]


def build_model(config: ModelConfig, pretrained: str | None = None, checkpoint: str | None = None,
                device: str | None = None) -> VideoTextModel:
    """The model of `config`; backbone weights from `pretrained`, then a t2l-fast `checkpoint` on top.

    device="meta" builds shapes only (no memory, no weights): for parameter counts of full-size models.
    """
    meta = device is not None and torch.device(device).type == "meta"
    if meta and (pretrained or checkpoint):
        raise UnsupportedOptionError("device='meta' builds shapes only; it cannot load pretrained weights or a "
                                     "checkpoint")
    with torch.device("meta") if meta else contextlib.nullcontext():
        backbone = build_backbone(config)
        model = model_class(config.kind)(config, backbone)
    if pretrained:
        load_backbone_weights(backbone, pretrained, config)
    model.backbone_source = pretrained
    if checkpoint:
        load_weights(model, checkpoint)
    if device is not None and not meta:
        model = model.to(device)
    return model


def load_checkpoint(path: str | Path, pretrained: str | None = None,
                    device: str | None = None) -> VideoTextModel:
    """Rebuild the model saved in `path`. A "learnable" checkpoint needs its backbone: the source recorded at save
    time, or `pretrained` (e.g. a local `ViT-B-16.pt` where the recorded open_clip tag can't be fetched)."""
    info = read_checkpoint_info(path)
    config = ModelConfig.from_dict(info["model"])
    backbone = None
    if info["variant"] == "learnable":
        backbone = pretrained or recorded_backbone(Path(path), info.get("backbone"))
    return build_model(config, pretrained=backbone, checkpoint=str(path), device=device)


def recorded_backbone(path: Path, recorded: str | None) -> str:
    """The backbone a learnable checkpoint records, where its config may name it: an open_clip tag, or a file inside
    the checkpoint folder (a relative record is relative to that folder). A file anywhere else, a folder
    (`local-dir:`, whose files the loader picks), or a TorchScript archive (it can run code) must come from the
    caller: a checkpoint's config is never consent to read outside its folder or to run code."""
    if recorded is None:
        raise CheckpointError(f"{path}: holds learnable weights only; pass pretrained= with the CLIP backbone")
    fix = f"If you trust it, pass it yourself: --pretrained {recorded} (pretrained= in Python)"
    if str(recorded).startswith("torchscript:"):
        raise CheckpointError(f"{path}: records the TorchScript backbone {recorded!r}, and loading a TorchScript "
                              f"archive can run the code inside it. {fix}")
    if str(recorded).startswith("local-dir:"):
        raise CheckpointError(f"{path}: records the backbone folder {recorded!r}, and a checkpoint's config is no "
                              f"consent to read a folder of its choosing. {fix}")
    file = Path(path) / recorded  # an absolute record stays absolute
    if "/" in str(recorded) or file.suffix or file.exists():  # a file, not an open_clip tag
        if not file.resolve().is_relative_to(Path(path).resolve()):
            raise CheckpointError(f"{path}: records its backbone as {recorded!r}, outside the checkpoint folder, "
                                  f"and a checkpoint's config is no consent to read files elsewhere. {fix}")
        return str(file)
    return recorded
