"""Tensor helpers shared by loaders and inference."""
from __future__ import annotations

import torch

from .models.config import InputSpec


def normalize_video(video: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 (0..255) or float (0..1) RGB [..., 3, H, W] -> float normalised with the model's mean/std, on the
    tensor's own device (so loaders ship uint8: 4x fewer bytes)."""
    if video.dtype == torch.uint8:
        video = video.float().div_(255.0)
    mean = torch.tensor(spec.mean, device=video.device, dtype=video.dtype).view(3, 1, 1)
    std = torch.tensor(spec.std, device=video.device, dtype=video.dtype).view(3, 1, 1)
    return (video - mean) / std
