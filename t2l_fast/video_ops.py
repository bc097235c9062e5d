"""Pixel normalization shared by eager code (loaders, training, inference) and the deployable graphs."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class PixelStats(Protocol):
    """What normalization needs of a model's input spec (models.config.InputSpec has both)."""

    mean: Sequence[float]
    std: Sequence[float]


def pixel_scale_shift(mean: Sequence[float], std: Sequence[float],
                      pixel_max: float = 255.0) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 scale and shift [3, 1, 1] with x * scale + shift == (x / pixel_max - mean) / std: the
    normalization folded into one multiply-add."""
    mean, std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    return (1.0 / (pixel_max * std)).view(3, 1, 1), (-mean / std).view(3, 1, 1)


def normalize_video(video: torch.Tensor, spec: PixelStats) -> torch.Tensor:
    """uint8 (0..255) or float (0..1) RGB [..., 3, H, W] -> float normalized with the model's mean/std, on the
    tensor's own device (so loaders ship uint8: 4x fewer bytes); uint8 gives float32, float keeps its dtype."""
    is_uint8 = video.dtype == torch.uint8
    dtype = torch.float32 if is_uint8 else video.dtype
    scale, shift = pixel_scale_shift(spec.mean, spec.std, 255.0 if is_uint8 else 1.0)
    return video.to(dtype) * scale.to(video.device, dtype) + shift.to(video.device, dtype)
