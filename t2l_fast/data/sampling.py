"""Which frames of a video a clip uses: TSN segment sampling (docs/design/T2L_SPEC.md §4), seeded per sample.

N frames, T segments with boundaries floor(i*N/T):
  training    one uniformly random frame per segment;
  evaluation  the centre of each segment, floor(i*N/T + (N/T - 1)/2).
N <= T (too few frames for T segments), both modes: floor(i*N/T) for i = 0..T-1, i.e. every frame, repeated in
order as evenly as possible (the official evaluation rule; the official training rule "all frames plus random
repeats, sorted" differs only in which frames repeat, and we keep one rule so that train and eval see the same clip).
Multi-view evaluation with N clips (our rule): the video is cut into N equal windows (boundaries floor(c*N_frames/N))
and each window is sampled as a whole video would be, so clip c covers the c-th part of the video.
"""
from __future__ import annotations

import numpy as np

from ..numbers import NumberError

FRAMES_STREAM, AUGMENT_STREAM, REPLACE_STREAM = 0, 1, 2


def sample_rng(seed: int, epoch: int, index: int, stream: int = FRAMES_STREAM) -> np.random.Generator:
    """A random stream of one sample in one epoch (one stream per purpose): a resumed run redraws the same clips."""
    return np.random.default_rng([seed, epoch, index, stream])


def _check_counts(num_frames: int, frames: int) -> None:
    if num_frames < 1:
        raise NumberError(f"a video needs at least one frame, got num_frames={num_frames}")
    if frames < 1:
        raise NumberError(f"frames (T) must be >= 1, got {frames}")


def segment_indices(num_frames: int, frames: int, *, train: bool, rng: np.random.Generator = None) -> list[int]:
    """T frame indices in [0, num_frames), non-decreasing."""
    _check_counts(num_frames, frames)
    if num_frames <= frames:
        return [i * num_frames // frames for i in range(frames)]
    starts = [i * num_frames // frames for i in range(frames + 1)]  # segment boundaries
    if train:
        if rng is None:
            raise ValueError("training sampling needs an rng (see sample_rng)")
        return [int(rng.integers(starts[i], starts[i + 1])) for i in range(frames)]
    length = num_frames / frames
    return [int(i * length + (length - 1) / 2) for i in range(frames)]


def view_indices(num_frames: int, frames: int, clips: int = 1) -> list[int]:
    """clips x T evaluation frame indices, clip after clip: the centre frames of T segments of each of `clips`
    equal windows of the video. clips=1 is segment_indices(num_frames, frames, train=False). A video shorter than
    `clips` frames gives some clips a one-frame window."""
    _check_counts(num_frames, frames)
    if clips < 1:
        raise NumberError(f"clips must be >= 1, got {clips}")
    indices = []
    for clip in range(clips):
        start, stop = clip * num_frames // clips, (clip + 1) * num_frames // clips  # start <= num_frames - 1
        indices += [start + i for i in segment_indices(max(stop - start, 1), frames, train=False)]
    return indices
