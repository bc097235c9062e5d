"""Config -> model: backbone, weights, the model class of its kind."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from .backbone import build_backbone, load_backbone_weights
from .base import VideoTextModel
from .config import ModelConfig


def model_class(kind: str) -> type:
    from .frame_average import FrameAveragedCLIP
    from .t2l import T2L

    return {"t2l": T2L, "vificlip": FrameAveragedCLIP, "clip": FrameAveragedCLIP}[kind]


def build_model(config: ModelConfig, pretrained: Optional[str] = None, checkpoint: Optional[str] = None,
                device: Optional[str] = None) -> VideoTextModel:
    """The model of `config`; backbone weights from `pretrained`, then a t2l-fast `checkpoint` on top.

    device="meta" builds shapes only (no memory, no weights): for parameter counts of full-size models.
    """
    meta = device is not None and torch.device(device).type == "meta"
    if meta and (pretrained or checkpoint):
        raise ValueError("device='meta' builds shapes only; it cannot load pretrained weights or a checkpoint")
    with torch.device("meta") if meta else contextlib.nullcontext():
        backbone = build_backbone(config)
        model = model_class(config.kind)(config, backbone)
    if pretrained:
        load_backbone_weights(backbone, pretrained, config)
    model.backbone_source = pretrained
    if checkpoint:
        from .checkpoint import load_weights

        load_weights(model, checkpoint)
    if device is not None and not meta:
        model = model.to(device)
    return model
