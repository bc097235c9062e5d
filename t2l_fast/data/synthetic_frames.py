"""Single synthetic frames with their attributes, and order-test clips held in memory (no video files).

Frames: a still of a random synthetic clip at a random point of its motion, labelled with what the frame shows
(shape, centre, size, opacity, and the heading of a pointed shape): the data `t2l pretrain-tiny` pre-trains the
tiny CLIP image tower on, as the real system starts from an image-pretrained CLIP.
Clips: T centre-of-segment frames of synthetic clips through the loader's evaluation transform (short side
resized, centre crop), so a model sees exactly what `t2l eval` would feed it, without encoding and decoding.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from .augment import apply_eval
from .captions import COLOURS, PALETTE, caption_with_negative
from .sampling import segment_indices
from .synthetic import (
    ORDER_CLASSES,
    PAIRS,
    SHAPES,
    ActionClass,
    ClipParams,
    _shape_distance,
    action_clip,
    draw_clip_params,
)

NUM_ATTRIBUTES = 6  # x, y, size, opacity, sin(heading), cos(heading); then the shape index


def _still(params: ClipParams, progress: float) -> ClipParams:
    """`params` frozen at `progress` (0..1) of its motion."""
    def at(pair: np.ndarray) -> np.ndarray:
        value = pair[0] + (pair[1] - pair[0]) * progress
        return np.stack([value, value])

    return ClipParams(params.shape, params.foreground, params.background, params.texture, at(params.centre),
                      at(params.radius), at(params.angle), at(params.opacity), np.zeros(2, dtype=int))


def _with_palette_colour(rng: np.random.Generator, params: ClipParams) -> tuple[ClipParams, int]:
    """`params` with a named palette colour (jittered) on a background that contrasts with it; its colour index."""
    colour = int(rng.integers(len(COLOURS)))
    foreground = np.clip(np.array(PALETTE[COLOURS[colour]], float) + rng.uniform(-15, 15, 3), 0, 255)
    background = params.background
    while np.abs(foreground - background).sum() < 150:
        background = rng.uniform(0, 255, 3)
    return replace(params, foreground=foreground, background=background), colour


def render_stills(stills: list[ClipParams], height: int, width: int) -> np.ndarray:
    """uint8 [N, H, W, 3] of still parameters (the first value of each start/end pair), all frames at once."""
    def column(name: str) -> np.ndarray:
        return np.array([getattr(s, name)[0] for s in stills], dtype=np.float64)[:, None, None]  # [N, 1, 1]

    centre = np.stack([s.centre[0] for s in stills])  # [N, 2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx, dy = xs[None] - centre[:, 0, None, None], ys[None] - centre[:, 1, None, None]  # [N, H, W]
    angle = column("angle")
    local_x, local_y = np.cos(angle) * dx + np.sin(angle) * dy, -np.sin(angle) * dx + np.cos(angle) * dy
    radius, distance = column("radius"), np.empty_like(dx)
    kinds = np.array([s.shape for s in stills])
    for kind in set(kinds.tolist()):
        rows = kinds == kind
        distance[rows] = _shape_distance(kind, local_x[rows], local_y[rows], radius[rows])
    alpha = (np.clip(0.5 - distance, 0, 1) * column("opacity"))[..., None]  # [N, H, W, 1]
    background = np.stack([s.background for s in stills])[:, None, None] + np.stack([s.texture for s in stills])
    foreground = np.stack([s.foreground for s in stills])[:, None, None]  # [N, 1, 1, 3]
    return np.clip(np.rint(background * (1 - alpha) + foreground * alpha), 0, 255).astype(np.uint8)


def synthetic_frames(count: int, seed: int, size: int = 32, source_size: int = 64
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 frames [N, 3, size, size], attributes [N, 8]): x, y (0..1), size (radius / side x 4), opacity,
    sin and cos of the heading, shape index into SHAPES, colour index into COLOURS (a named palette colour)."""
    rng = np.random.default_rng([seed, 314])
    stills, attributes = [], []
    for _ in range(count):
        motion = PAIRS[rng.integers(len(PAIRS))][2]
        still = _still(draw_clip_params(rng, motion, 24, source_size, source_size), rng.uniform())
        still, colour = _with_palette_colour(rng, still)
        stills.append(still)
        (x, y), radius, angle = still.centre[0], still.radius[0], still.angle[0]
        attributes.append([x / source_size, y / source_size, 4 * radius / source_size, still.opacity[0],
                           math.sin(angle), math.cos(angle), SHAPES.index(still.shape), colour])
    frames = np.concatenate([render_stills(stills[i:i + 1024], source_size, source_size)
                             for i in range(0, count, 1024)])
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # [N, 3, H, W]
    return apply_eval(video, size), torch.tensor(attributes, dtype=torch.float32)


def frame_captions(attributes: torch.Tensor, seed: int, per_frame: int = 1
                   ) -> tuple[list[list[str]], list[list[str]]]:
    """(captions, hard negatives), each [N][per_frame], of frames with `attributes` [N, 8] (synthetic_frames'
    columns): random captions, and each one's twin with one fact turned to its opposite (captions.py)."""
    rng = np.random.default_rng([seed, 2025])
    captions, negatives = [], []
    for x, y, size, opacity, sin, cos, shape, colour in attributes.tolist():
        pairs = [caption_with_negative(rng, SHAPES[int(shape)], COLOURS[int(colour)], x, y, size, opacity,
                                       math.atan2(sin, cos)) for _ in range(per_frame)]
        captions.append([positive for positive, _ in pairs])
        negatives.append([negative for _, negative in pairs])
    return captions, negatives


def action_clips(actions: Sequence[ActionClass], clips_per_class: int, seed: int, frames: int = 8, size: int = 32,
                 source_frames: int = 24, source_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 clips [N, T, 3, size, size], labels [N]: positions in `actions`), `clips_per_class` of each."""
    indices = segment_indices(source_frames, frames, train=False)
    clips, labels = [], []
    for label, action in enumerate(actions):
        for number in range(clips_per_class):
            rng = np.random.default_rng([seed, 2718, label, number])
            clip = action_clip(rng, action, source_frames, source_size, source_size)[indices]  # [T, H, W, 3]
            clips.append(apply_eval(torch.from_numpy(clip).permute(0, 3, 1, 2), size))
            labels.append(label)
    return torch.stack(clips), torch.tensor(labels)


def order_clips(clips_per_class: int, seed: int, num_classes: int = len(ORDER_CLASSES), frames: int = 8,
                size: int = 32, source_frames: int = 24, source_size: int = 64
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 clips [N, T, 3, size, size], labels [N]) of the first `num_classes` order-only classes."""
    return action_clips(ORDER_CLASSES[:num_classes], clips_per_class, seed, frames, size, source_frames,
                        source_size)
