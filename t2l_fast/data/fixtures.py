"""A zoo of good, odd and broken video files (docs/design/RELIABILITY.md §6 A), made with PyAV, to test every decoder.

`write_fixture_zoo(folder)` writes them with a list file (`list.txt`) and returns {name: what it exercises}.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..io import claim_folder
from .synthetic import frame_stamped_clip, synthetic_clip, write_video

MARKER = ".t2l-fixtures"  # left in a folder `t2l data fixtures` wrote, which it may write again


def _encode(path: Path, clip: np.ndarray, codec: str = "libx264", pixel_format: str = "yuv420p",
            container_format: str | None = None, options: dict | None = None, rotation: int | None = None,
            pts: list | None = None, metadata: dict | None = None, fps: int = 25,
            codec_options: dict | None = None) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format=container_format, options=options or {}) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream(codec, rate=fps, options=codec_options or {})
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], pixel_format
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(clip):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.linspace(0, 2000, 16000)) * 0.3).astype(np.float32)[None]
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1] - frame_size, frame_size):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + frame_size], format="fltp", layout="mono")
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _quadrants(height: int, width: int, frames: int = 8) -> np.ndarray:
    """A clip whose top-left quadrant is red: orientation is visible after any rotation."""
    clip = np.zeros((frames, height, width, 3), np.uint8)
    clip[:, : height // 2, : width // 2] = (255, 0, 0)
    return clip


def _jpeg_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _truncate(source: Path, path: Path, fraction: float) -> None:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _flip_bits(source: Path, path: Path) -> None:
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(0)
    for position in rng.integers(len(data) // 4, len(data) // 2, size=40):  # inside the frame data, not the index
        data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def _latin1_avi(path: Path) -> None:
    """An MPEG-4 Part 2 (XviD-like) AVI whose title tag is Latin-1, not UTF-8."""
    _encode(path, frame_stamped_clip(12, 48, 64), codec="mpeg4", metadata={"title": "caf\u00e9 video"})
    data = path.read_bytes()
    path.write_bytes(data.replace("caf\u00e9".encode("utf-8"), b"caf\xe9 "))  # same length, invalid UTF-8


def write_fixture_zoo(folder: Path, force: bool = False) -> dict[str, str]:
    """Write the fixture videos and `list.txt` (every file labelled 0) into `folder`, a new or empty one or one this
    function wrote (`force`: any folder); returns name -> purpose."""
    folder = Path(folder)
    claim_folder(folder, MARKER, "a fixture folder", option="OUT_DIR", force=force, mark=True)
    good = folder / "good h264.mp4"
    write_video(good, synthetic_clip(np.random.default_rng(0), 0, 48, 64, 64))  # textured: tens of KB
    faststart = folder / ".faststart.mp4"
    _encode(faststart, frame_stamped_clip(48, 48, 64), options={"movflags": "faststart"})
    makers: dict[str, tuple] = {
        "good h264.mp4": ("a valid clip (with a space in its name)", lambda p: None),
        "truncated.mp4": ("1: truncated, 'moov atom not found'", lambda p: _truncate(good, p, 0.5)),
        "zero-byte.mp4": ("2: zero bytes", lambda p: p.write_bytes(b"")),
        "stub-5kb.mp4": ("2: the first 5 KB of a video", lambda p: p.write_bytes(good.read_bytes()[:5000])),
        "text.mp4": ("3: a text file named .mp4", lambda p: p.write_text("this is not a video\n" * 50)),
        "image.mp4": ("3: a JPEG image named .mp4", lambda p: p.write_bytes(_jpeg_bytes())),
        "audio-only.mp4": ("4: audio only, no video stream", _audio_only),
        "three-frames.mp4": ("5: 3 frames, fewer than T", lambda p: write_video(p, frame_stamped_clip(3, 48, 64))),
        "one-frame.mp4": ("6: one decodable frame", lambda p: write_video(p, frame_stamped_clip(1, 48, 64))),
        "overreported.mp4": ("7: index (moov first) promises 48 frames, the data stops early",
                             lambda p: _truncate(faststart, p, 0.55)),
        "vfr.mp4": ("8: variable frame rate",
                    lambda p: _encode(p, frame_stamped_clip(20, 48, 64),
                                      pts=[int(t) for t in np.cumsum([0] + [20, 60] * 9 + [20])])),
        "odd-455x256.webm": ("9: odd width 455",
                             lambda p: _encode(p, frame_stamped_clip(12, 256, 455), codec="libvpx-vp9")),
        "tiny-16x16.mp4": ("9: 16x16 frames", lambda p: write_video(p, frame_stamped_clip(12, 16, 16))),
        "huge-8192.avi": ("9: 8192x8192 frames", lambda p: _encode(p, np.full((1, 8192, 8192, 3), 60, np.uint8),
                                                                   codec="mjpeg", pixel_format="yuvj420p")),
        "portrait-rotated.mp4": ("10: landscape pixels with a 90 degree display rotation",
                                 lambda p: _encode(p, _quadrants(32, 64), rotation=90)),
        "yuv444p.mp4": ("11: 4:4:4 H.264", lambda p: _encode(p, frame_stamped_clip(12, 48, 64),
                                                             pixel_format="yuv444p")),
        "yuv422p.mp4": ("11: 4:2:2 H.264", lambda p: _encode(p, frame_stamped_clip(12, 48, 64),
                                                             pixel_format="yuv422p")),
        "gray.mkv": ("11: gray (FFV1; this x264 build writes no 4:0:0)",
                     lambda p: _encode(p, frame_stamped_clip(12, 48, 64), codec="ffv1", pixel_format="gray")),
        "yuv420p10le.mp4": ("11: 10-bit H.264", lambda p: _encode(p, frame_stamped_clip(12, 48, 64),
                                                                  pixel_format="yuv420p10le")),
        "xvid-latin1.avi": ("12: MPEG-4 AVI with non-UTF-8 metadata", _latin1_avi),
        "ünïcödé é.mp4": ("13: Unicode and spaces in the name",
                          lambda p: write_video(p, frame_stamped_clip(12, 48, 64))),
        "-leading-dash.mp4": ("13: a leading '-'", lambda p: write_video(p, frame_stamped_clip(12, 48, 64))),
        "bit-flipped.mp4": ("corrupt bytes inside the stream", lambda p: _flip_bits(good, p)),
        "long-gop.mp4": ("one keyframe for 120 frames (slow random access)",
                         lambda p: _encode(p, frame_stamped_clip(120, 48, 64),
                                           codec_options={"x264-params": "keyint=1000:scenecut=0"})),
    }
    for name, (_, make) in makers.items():
        make(folder / name)
    faststart.unlink()
    (folder / "list.txt").write_text("".join(f"{name} 0\n" for name in makers))
    return {name: purpose for name, (purpose, _) in makers.items()}

