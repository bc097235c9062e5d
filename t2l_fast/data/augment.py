"""Clip augmentation of T2L_SPEC.md §4, in one place: parameters are drawn once per clip, then applied.

Training: multi-scale crop (scales 1, .875, .75, .66 of the short side, chosen independently for width and height
with a scale-index gap <= 1, snapped to the output size within 3 px, at one of 13 fixed offsets), resized to
size x size (bilinear); horizontal flip (p 0.5); colour jitter (p 0.8 per clip: brightness 0.4, contrast 0.4,
saturation 0.2, hue 0.1; factors per frame as the official code, or per clip); grayscale (p 0.2 per clip).
Evaluation: resize the short side to size * 256/224 (bicubic), centre crop.

The spatial parameters are shared by every frame of a clip. Jitter is applied in the fixed order brightness,
contrast, saturation, hue (torchvision draws a random order; a fixed order is what a DALI graph can express).
Parameters are plain numbers, so a DALI pipeline can take the same ones through `external_source`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

SCALES = (1.0, 0.875, 0.75, 0.66)
# The 13 crop offsets, in quarters of the free space (x, y): corners, centre, edge centres, quarter points.
OFFSETS_IN_QUARTERS = ((0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0),
                       (1, 1), (3, 1), (1, 3), (3, 3))
EVAL_RESIZE_RATIO = 256 / 224


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True  # random horizontal flip; switch off where direction is the label (synthetic data, SSv2)
    jitter_p: float = 0.8  # probability that a clip is colour-jittered
    jitter_per_frame: bool = True  # official: new factors for every frame; False: one set per clip
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2  # probability that a clip is turned gray
    scales: Tuple[float, ...] = SCALES
    max_scale_gap: int = 1  # |index(w scale) - index(h scale)| <= this


NO_COLOUR = AugmentConfig(jitter_p=0.0, grayscale_p=0.0)  # spatial augmentation only (tests, exact-pixel checks)


@dataclass
class ClipAugmentParams:
    """Everything random about one training clip."""

    crop: Tuple[int, int, int, int]  # x, y, width, height in the decoded frame
    flip: bool
    jitter: Optional[np.ndarray] = None  # [T, 4] brightness, contrast, saturation, hue factors; None: no jitter
    grayscale: bool = False


def _snap(side: int, size: int) -> int:
    return size if abs(side - size) < 3 else side


def draw_train_params(rng: np.random.Generator, height: int, width: int, frames: int, size: int,
                      config: AugmentConfig = AugmentConfig()) -> ClipAugmentParams:
    """Draw the augmentation of one clip of `frames` frames of height x width, for output size x size."""
    base = min(height, width)
    sides = [_snap(int(base * s), size) for s in config.scales]
    pairs = [(w, h) for i, w in enumerate(sides) for j, h in enumerate(sides) if abs(i - j) <= config.max_scale_gap]
    crop_w, crop_h = pairs[rng.integers(len(pairs))]
    crop_w, crop_h = min(crop_w, width), min(crop_h, height)
    qx, qy = OFFSETS_IN_QUARTERS[rng.integers(len(OFFSETS_IN_QUARTERS))]
    x, y = qx * (width - crop_w) // 4, qy * (height - crop_h) // 4
    flip = bool(config.flip and rng.random() < 0.5)
    jitter = None
    if rng.random() < config.jitter_p:
        rows = frames if config.jitter_per_frame else 1
        low = np.array([1 - config.brightness, 1 - config.contrast, 1 - config.saturation, -config.hue])
        high = np.array([1 + config.brightness, 1 + config.contrast, 1 + config.saturation, config.hue])
        jitter = rng.uniform(low, high, size=(rows, 4)).repeat(frames // rows, axis=0)
    grayscale = bool(rng.random() < config.grayscale_p)
    return ClipAugmentParams(crop=(int(x), int(y), int(crop_w), int(crop_h)), flip=flip, jitter=jitter,
                             grayscale=grayscale)


def apply_train(clip: torch.Tensor, params: ClipAugmentParams, size: int) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, size, size]."""
    x, y, w, h = params.crop
    out = TF.resized_crop(clip, y, x, h, w, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    if params.flip:
        out = TF.horizontal_flip(out)
    if params.jitter is not None:
        out = torch.stack([_jitter(frame, factors) for frame, factors in zip(out, params.jitter)])
    if params.grayscale:
        out = TF.rgb_to_grayscale(out, num_output_channels=3)
    return out


def _jitter(frame: torch.Tensor, factors: np.ndarray) -> torch.Tensor:
    brightness, contrast, saturation, hue = (float(f) for f in factors)
    frame = TF.adjust_brightness(frame, brightness)
    frame = TF.adjust_contrast(frame, contrast)
    frame = TF.adjust_saturation(frame, saturation)
    return TF.adjust_hue(frame, hue)


def eval_resize_side(size: int) -> int:
    return int(round(size * EVAL_RESIZE_RATIO))


def apply_eval(clip: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, size, size]: short side to size*256/224 (bicubic), centre crop."""
    out = TF.resize(clip, [eval_resize_side(size)], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.center_crop(out, [size, size])

