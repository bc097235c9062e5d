"""Clip augmentation of docs/design/T2L_SPEC.md §4, in one place: parameters are drawn once per clip, then applied.

Training: multi-scale crop (scales 1, .875, .75, .66 of the short side, chosen independently for width and height
with a scale-index gap <= 1, snapped to the output size within 3 px, at one of 13 fixed offsets), resized to
size x size (bilinear); horizontal flip (p 0.5); colour jitter (p 0.8 per clip: brightness 0.4, contrast 0.4,
saturation 0.2, hue 0.1; factors per frame as the official code, or per clip); grayscale (p 0.2 per clip).
Evaluation: resize the short side to size * 256/224 (bicubic), centre crop. Multi-crop evaluation (M > 1 crops,
mmaction's ThreeCrop for M = 3): resize the short side to size (bicubic), then M size x size crops spread evenly
along the long side (left / centre / right, or top / centre / bottom).

The spatial parameters are shared by every frame of a clip. Colour jitter is one linear "colour twist" per
frame, the operation DALI's `fn.color_twist` computes (so the GPU and CPU paths agree to rounding):
    out = b * (c * (M x - 128) + 128),   M = YIQ^-1 . diag(1, s R(-h)) . YIQ
with brightness b, contrast c (pivot at mid-grey), saturation s and hue h (degrees; the hue factor 0.1 is +-36
degrees, a tenth of the circle as in torchvision). Grayscale is the same twist with s = 0 (luma 0.299/0.587/0.114).
This differs from torchvision's ColorJitter, which pivots contrast at the image mean, rotates hue in HSV and
applies the four operations in random order: a DALI graph can express neither, and both paths must agree.
Parameters are plain numbers, so a DALI pipeline can take the same ones through `external_source`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ..errors import UnsupportedOptionError, VideoShapeError

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
    scales: tuple[float, ...] = SCALES
    max_scale_gap: int = 1  # |index(w scale) - index(h scale)| <= this


NO_COLOUR = AugmentConfig(jitter_p=0.0, grayscale_p=0.0)  # spatial augmentation only (tests, exact-pixel checks)


@dataclass
class ClipAugmentParams:
    """Everything random about one training clip."""

    crop: tuple[int, int, int, int]  # x, y, width, height in the decoded frame
    flip: bool
    jitter: np.ndarray | None = None  # [T, 4] brightness, contrast, saturation, hue (degrees); None: no jitter
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
        low = np.array([1 - config.brightness, 1 - config.contrast, 1 - config.saturation, -360 * config.hue])
        high = np.array([1 + config.brightness, 1 + config.contrast, 1 + config.saturation, 360 * config.hue])
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
        out = colour_twist(out, params.jitter)
    if params.grayscale:
        out = colour_twist(out, np.array([[1.0, 1.0, 0.0, 0.0]]))
    return out


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]], dtype=torch.float64)


def twist_matrices(factors: np.ndarray) -> torch.Tensor:
    """[N, 4] (brightness, contrast, saturation, hue degrees) -> [N, 3, 4] affine maps of RGB (0..255)."""
    b, c, s, h = (torch.as_tensor(factors, dtype=torch.float64)[:, i] for i in range(4))
    angle = torch.deg2rad(-h)
    rotation = torch.zeros(len(b), 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = s * angle.cos(), -s * angle.sin()
    rotation[:, 2, 1], rotation[:, 2, 2] = s * angle.sin(), s * angle.cos()
    linear = torch.linalg.inv(_YIQ) @ rotation @ _YIQ  # [N, 3, 3]
    scale = (b * c)[:, None, None]
    offset = (128 * b * (1 - c))[:, None, None].expand(-1, 3, 1)
    return torch.cat([scale * linear, offset], dim=2)


def colour_twist(clip: torch.Tensor, factors: np.ndarray) -> torch.Tensor:
    """uint8 [T, 3, H, W] with one (or T) rows of twist factors -> uint8, rounded and clamped like DALI."""
    maps = twist_matrices(factors).float().expand(clip.shape[0], -1, -1)  # [T, 3, 4]
    x = clip.float()
    out = torch.einsum("tij,tjhw->tihw", maps[:, :, :3], x) + maps[:, :, 3, None, None]
    return out.round_().clamp_(0, 255).to(torch.uint8)


def eval_resize_side(size: int) -> int:
    return int(round(size * EVAL_RESIZE_RATIO))


def apply_eval(clip: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, size, size]: short side to size*256/224 (bicubic), centre crop."""
    out = TF.resize(clip, [eval_resize_side(size)], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.center_crop(out, [size, size])


def crop_offsets(height: int, width: int, size: int, crops: int) -> list[tuple[int, int]]:
    """(x, y) of `crops` >= 2 size x size crops of a height x width frame: evenly spaced from one end of the long
    side to the other, centred on the short side."""
    if crops < 2:
        raise UnsupportedOptionError(f"crop_offsets spreads 2 or more crops, got crops={crops}")
    if min(height, width) < size:
        raise VideoShapeError(f"a {width}x{height} frame is smaller than the {size}x{size} crop")
    spread = [k * (max(height, width) - size) // (crops - 1) for k in range(crops)]  # along the long side
    centre = (min(height, width) - size) // 2
    return [(offset, centre) if width >= height else (centre, offset) for offset in spread]


def apply_eval_crops(clip: torch.Tensor, size: int, crops: int) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [crops, T, 3, size, size]: apply_eval's view for crops=1; otherwise the short
    side resized to size (bicubic) and the crops of crop_offsets."""
    if crops == 1:
        return apply_eval(clip, size)[None]
    out = TF.resize(clip, [size], interpolation=InterpolationMode.BICUBIC, antialias=True)  # [T, 3, H', W']
    return torch.stack([out[..., y:y + size, x:x + size] for x, y in crop_offsets(*out.shape[-2:], size, crops)])

