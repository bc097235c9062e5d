"""The three deployable graphs as torch modules: what deploy exports to ONNX, and what runtime's TorchRunner runs.

    video_encoder  frames uint8 [B, T, 3, S, S] -> embedding [B, D] (L2-normalized)
    text_encoder   token_ids int64 [N, L]        -> embedding [N, D] (L2-normalized)
    classifier     frames uint8 [B, T, 3, S, S] -> logits [B, C], probabilities [B, C]

Frames go in as uint8 straight from a loader: the model's mean/std normalization is the graph's first op, so a
host-to-device copy moves a quarter of the bytes float32 would. The frame mean and L2 normalization (and the class
scores) sit in the `head` submodule, which the fp16 conversion keeps in fp32.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedOptionError
from ..video_ops import pixel_scale_shift
from .base import VideoTextModel

GRAPH_KINDS = ("video_encoder", "text_encoder", "classifier")
HEAD_SCOPE = "head"  # name of the submodule whose ops stay fp32 in an fp16 graph
# Input and output names of each graph kind (the runner contract and the manifest use these).
INPUTS = {"video_encoder": ("frames",), "text_encoder": ("token_ids",), "classifier": ("frames",)}
OUTPUTS = {"video_encoder": ("embedding",), "text_encoder": ("embedding",),
           "classifier": ("logits", "probabilities")}


class PixelNormalization(nn.Module):
    """uint8 [..., 3, H, W] -> (x / 255 - mean) / std, folded into one multiply-add (video_ops.pixel_scale_shift,
    the same one normalize_video uses)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        scale, shift = pixel_scale_shift(mean, std)  # [3, 1, 1] each
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.to(torch.float32) * self.scale + self.shift


class PoolHead(nn.Module):
    """[B, T, D] frame embeddings -> [B, D]: mean over T, L2-normalized (in fp32)."""

    def forward(self, frame_embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(frame_embeddings.float().mean(dim=1), dim=-1)


class ClassifierHead(nn.Module):
    """[B, T, D] frame embeddings -> logits and probabilities over baked-in class embeddings [C, D]."""

    def __init__(self, class_embeddings: torch.Tensor, logit_scale: float):
        super().__init__()
        self.pool = PoolHead()
        self.register_buffer("class_embeddings_t", class_embeddings.float().t().contiguous(), persistent=False)
        self.logit_scale = float(logit_scale)

    def forward(self, frame_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logit_scale * (self.pool(frame_embeddings) @ self.class_embeddings_t)  # [B, C]
        return logits, logits.softmax(dim=-1)


class VideoGraph(nn.Module):
    """uint8 frames -> the model's frame embeddings -> `head` (video_encoder or classifier)."""

    def __init__(self, model: VideoTextModel, head: nn.Module):
        super().__init__()
        self.normalize = PixelNormalization(model.config.input_mean, model.config.input_std)
        self.model = model
        setattr(self, HEAD_SCOPE, head)

    def forward(self, frames: torch.Tensor):
        frame_embeddings = self.model.encode_frames(self.normalize(frames))  # [B, T, D]
        return getattr(self, HEAD_SCOPE)(frame_embeddings)


class TextGraph(nn.Module):
    """int64 token ids [N, L] -> L2-normalized text embeddings [N, D]."""

    def __init__(self, model: VideoTextModel):
        super().__init__()
        self.model = model

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(token_ids)


def build_graph(kind: str, model: VideoTextModel, class_embeddings: torch.Tensor = None) -> nn.Module:
    """The torch module of graph `kind` over `model` (in eval mode); the classifier needs [C, D] class embeddings."""
    if kind == "video_encoder":
        graph = VideoGraph(model, PoolHead())
    elif kind == "text_encoder":
        graph = TextGraph(model)
    elif kind == "classifier":
        if class_embeddings is None or class_embeddings.ndim != 2:
            raise UnsupportedOptionError("the classifier graph needs class embeddings [C, D] (one per class)")
        graph = VideoGraph(model, ClassifierHead(class_embeddings, float(model.logit_scale().detach())))
    else:
        raise UnsupportedOptionError(f"unknown graph kind {kind!r}; kinds: {', '.join(GRAPH_KINDS)}")
    return graph.eval()
