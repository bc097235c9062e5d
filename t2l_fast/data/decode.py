"""PyAV decoding: frame counts from demuxing, and the frames at given indices (the reference decoder)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import T2LError


class VideoDecodeError(T2LError, RuntimeError):
    """A video cannot be opened or decoded (the message names the file)."""


class DecodeTimeout(VideoDecodeError):
    """Decoding a video took longer than the allowed time."""


Result = TypeVar("Result")


def run_with_timeout(work: Callable[[], Result], timeout: float | None, what: str) -> Result:
    """work() in a helper thread, given up after `timeout` seconds with a DecodeTimeout naming `what`.

    FFmpeg releases the GIL while it decodes, so a stuck decode cannot block the caller; the abandoned thread is a
    daemon and ends with the process.
    """
    if timeout is None:
        return work()
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as e:  # handed to the caller below
            outcome["error"] = e

    thread = threading.Thread(target=target, name=f"decode {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise DecodeTimeout(f"{what}: decoding took longer than {timeout:g} s (a hanging or pathological file)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# Decoding refuses frames above 8K (7680 x 4320) before decoding any: a forged header can't exhaust memory.
MAX_PIXELS = 7680 * 4320


def open_video(path: Path):
    """(container, first video stream), or a VideoDecodeError naming the file and what is wrong with it."""
    import av

    if not Path(path).is_file():  # a named pipe or a device would block the open forever; a folder is no video
        what = "no such file" if not Path(path).exists() else "not a regular file (a pipe, device or folder)"
        raise VideoDecodeError(f"{path}: {what}; give a video file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise VideoDecodeError(f"{path}: cannot open as a video ({e})") from None
    problem = None
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        problem = f"an image ({container.format.name}), not a video"
    elif not container.streams.video:
        problem = "no video stream"
    else:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_PIXELS:
            problem = f"frames of {width}x{height} exceed the {MAX_PIXELS:,}-pixel limit; downscale the video"
    if problem:
        container.close()
        raise VideoDecodeError(f"{path}: {problem}")
    if width * height >= 640 * 360:
        stream.thread_type = "AUTO"  # frame threads pay off on large frames, cost more than they save on tiny ones
    return container, stream


def _in_window(time: float | None, start: float | None, end: float | None) -> bool:
    if time is None:
        return start is None and end is None
    return (start is None or time >= start) and (end is None or time < end)


class VideoFile:
    """One video opened once: its frame rate, its frames counted by demuxing, and the frames at given indices (the
    file is rewound to its start when it was read before)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.container, self.stream = open_video(self.path)
        self._read = False

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    @property
    def frames_per_second(self) -> float:
        """The stream's average (or guessed) frame rate; 25 when it says neither."""
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(rate) if rate else 25.0

    def _rewind(self) -> None:
        import av

        if self._read:
            try:
                self.container.seek(0)
            except av.error.FFmpegError as e:
                raise VideoDecodeError(f"{self.path}: cannot seek back to the start ({e})") from None
        self._read = True

    def count_frames(self, start: float | None = None, end: float | None = None) -> int:
        """Frames in the video (or in [start, end) seconds), counted by demuxing: container metadata is not
        trusted."""
        import av

        self._rewind()
        stream = self.stream
        try:
            count = sum(1 for packet in self.container.demux(stream) if packet.size and _in_window(
                None if packet.pts is None else float(packet.pts * stream.time_base), start, end))
        except av.error.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: demuxing failed ({e})") from None
        if count == 0:
            window = "" if start is None and end is None else f" between {start} s and {end} s"
            raise VideoDecodeError(f"{self.path}: no video frames{window}")
        return count

    def decode(self, indices: Sequence[int], start: float | None = None, end: float | None = None) -> np.ndarray:
        """uint8 [len(indices), H, W, 3] RGB: the frames at `indices` (presentation order, counted from `start`)."""
        import av

        self._rewind()
        wanted = sorted(set(indices))
        found = {}
        position = 0
        try:
            for frame in self.container.decode(self.stream):
                if not _in_window(frame.time, start, end):
                    if end is not None and frame.time is not None and frame.time >= end:
                        break
                    continue
                if position in wanted:
                    found[position] = upright(to_rgb(frame), frame.rotation)
                    if len(found) == len(wanted):
                        break
                position += 1
        except av.error.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding failed at frame {position} ({e})") from None
        missing = [i for i in wanted if i not in found]
        if missing:
            raise VideoDecodeError(f"{self.path}: frames {missing[:5]} requested, but only {position} frames decode")
        return np.stack([found[i] for i in indices])


def count_frames(path: Path, start: float | None = None, end: float | None = None) -> int:
    """Frames in the video (or in [start, end) seconds), counted by demuxing: container metadata is not trusted."""
    with VideoFile(path) as video:
        return video.count_frames(start, end)


def window_frames(path: Path, start: float | None, end: float | None) -> tuple[int, int]:
    """(index of the first frame of [start, end) seconds among all the video's frames, frames in the window), by
    demuxing: how a decoder that counts from the video's first frame finds a trimmed entry's frames."""
    import av

    container, stream = open_video(path)
    before = inside = 0
    try:
        with container:
            for packet in container.demux(stream):
                if not packet.size or packet.pts is None:
                    continue
                time = float(packet.pts * stream.time_base)
                before += start is not None and time < start
                inside += _in_window(time, start, end)
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{path}: demuxing failed ({e})") from None
    if inside == 0:
        raise VideoDecodeError(f"{path}: no video frames between {start} s and {end} s")
    return before, inside


def decode_frames(path: Path, indices: Sequence[int], start: float | None = None,
                  end: float | None = None) -> np.ndarray:
    """uint8 [len(indices), H, W, 3] RGB: the frames at `indices` (presentation order, counted from `start`)."""
    with VideoFile(path) as video:
        return video.decode(indices, start, end)


def to_rgb(frame) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a decoded frame, converted with the BT.601 matrix whatever the stream's tag says:
    DALI's decoders (CPU and NVDEC) always use BT.601, and both loader backends must give the same pixels. (A
    BT.709-tagged HD video comes out slightly off in hue in both; `t2l data transcode` re-encodes it as BT.601.)"""
    import av

    return frame.reformat(format="rgb24", src_colorspace=av.video.reformatter.Colorspace.ITU601).to_ndarray()


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, FFmpeg's convention) as players and ffmpeg's
    autorotate do, so portrait phone videos come out portrait."""
    quarter_turns = int(round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k=quarter_turns)) if quarter_turns else image
