"""PyAV decoding: frame counts from demuxing, and the frames at given indices (the reference decoder)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import T2LError


class VideoDecodeError(T2LError, RuntimeError):
    """A video cannot be opened or decoded (the message names the file)."""


def _open(path: Path):
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise VideoDecodeError(f"{path}: cannot open as a video ({e})") from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    if stream.codec_context.width * stream.codec_context.height >= 640 * 360:
        stream.thread_type = "AUTO"  # frame threads pay off on large frames, cost more than they save on tiny ones
    return container, stream


def _in_window(time: Optional[float], start: Optional[float], end: Optional[float]) -> bool:
    if time is None:
        return start is None and end is None
    return (start is None or time >= start) and (end is None or time < end)


def count_frames(path: Path, start: Optional[float] = None, end: Optional[float] = None) -> int:
    """Frames in the video (or in [start, end) seconds), counted by demuxing: container metadata is not trusted."""
    import av

    container, stream = _open(path)
    try:
        with container:
            return sum(1 for packet in container.demux(stream)
                       if packet.size and _in_window(None if packet.pts is None else float(packet.pts * stream.time_base),
                                                     start, end))
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{path}: demuxing failed ({e})") from None


def decode_frames(path: Path, indices: Sequence[int], start: Optional[float] = None,
                  end: Optional[float] = None) -> np.ndarray:
    """uint8 [len(indices), H, W, 3] RGB: the frames at `indices` (presentation order, counted from `start`)."""
    import av

    wanted = sorted(set(indices))
    found = {}
    container, stream = _open(path)
    position = 0
    try:
        with container:
            for frame in container.decode(stream):
                if not _in_window(frame.time, start, end):
                    if end is not None and frame.time is not None and frame.time >= end:
                        break
                    continue
                if position in wanted:
                    found[position] = frame.to_ndarray(format="rgb24")
                    if len(found) == len(wanted):
                        break
                position += 1
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{path}: decoding failed at frame {position} ({e})") from None
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoDecodeError(f"{path}: frames {missing[:5]} requested, but only {position} frames decode")
    return np.stack([found[i] for i in indices])
