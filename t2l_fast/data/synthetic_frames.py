"""Single synthetic frames with their attributes, and order-test clips held in memory (no video files).

Frames: a still of a random synthetic clip at a random point of its motion, labelled with what the frame shows
(shape, centre, size, opacity, and the heading of a pointed shape): the data `t2l pretrain-tiny` pre-trains the
tiny CLIP image tower on, as the real system starts from an image-pretrained CLIP.
Clips: T centre-of-segment frames of synthetic clips through the loader's evaluation transform (short side
resized, centre crop), so a model sees exactly what `t2l eval` would feed it, without encoding and decoding.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .augment import apply_eval
from .sampling import segment_indices
from .synthetic import PAIRS, SHAPES, ClipParams, draw_clip_params, render_clip, synthetic_clip

NUM_ATTRIBUTES = 6  # x, y, size, opacity, sin(heading), cos(heading); then the shape index


def _still(params: ClipParams, progress: float) -> ClipParams:
    """`params` frozen at `progress` (0..1) of its motion."""
    def at(pair: np.ndarray) -> np.ndarray:
        value = pair[0] + (pair[1] - pair[0]) * progress
        return np.stack([value, value])

    return ClipParams(params.shape, params.foreground, params.background, params.texture, at(params.centre),
                      at(params.radius), at(params.angle), at(params.opacity), np.zeros(2, dtype=int))


def synthetic_frames(count: int, seed: int, size: int = 32, source_size: int = 64
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 frames [N, 3, size, size], attributes [N, 7]): x, y (0..1), size (radius / side x 4), opacity,
    sin and cos of the heading, shape index into SHAPES."""
    rng = np.random.default_rng([seed, 314])
    frames, attributes = [], []
    for _ in range(count):
        motion = PAIRS[rng.integers(len(PAIRS))][2]
        still = _still(draw_clip_params(rng, motion, 24, source_size, source_size), rng.uniform())
        frames.append(render_clip(still, 1, source_size, source_size)[0])  # [H, W, 3]
        (x, y), radius, angle = still.centre[0], still.radius[0], still.angle[0]
        attributes.append([x / source_size, y / source_size, 4 * radius / source_size, still.opacity[0],
                           math.sin(angle), math.cos(angle), SHAPES.index(still.shape)])
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # [N, 3, H, W]
    return apply_eval(video, size), torch.tensor(attributes, dtype=torch.float32)


def order_clips(clips_per_class: int, seed: int, num_classes: int = 2 * len(PAIRS), frames: int = 8,
                size: int = 32, source_frames: int = 24, source_size: int = 64
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 clips [N, T, 3, size, size], labels [N]) of every synthetic class, `clips_per_class` each."""
    indices = segment_indices(source_frames, frames, train=False)
    clips, labels = [], []
    for label in range(num_classes):
        for number in range(clips_per_class):
            rng = np.random.default_rng([seed, 2718, label, number])
            clip = synthetic_clip(rng, label, source_frames, source_size, source_size)[indices]  # [T, H, W, 3]
            clips.append(apply_eval(torch.from_numpy(clip).permute(0, 3, 1, 2), size))
            labels.append(label)
    return torch.stack(clips), torch.tensor(labels)
