"""Re-encode what GPU decoding dislikes (XviD/DivX AVI, 10-bit or 4:4:4, odd sizes, VFR, long GOP, rotation) to
H.264 yuv420p at a constant frame rate, even dimensions, upright, with a keyframe every `gop` frames."""
from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..io import check_apart, claim_folder
from .decode import VideoDecodeError, open_video, upright

# Training crops 224 from a short side resized to 256 at most; 320 leaves room for scale jitter. Decoding a
# Kinetics clip at 320p instead of its 720p or 1080p original, with a short GOP, is what makes NVDEC fast.
DEFAULT_SHORT_SIDE = 320
MARKER = ".t2l-transcode"  # left in a folder `t2l data transcode` wrote, which it may write again


def transcode_video(source: Path, target: Path, *, fps: float | None = None, gop: int = 8, crf: int = 18,
                    short_side: int | None = DEFAULT_SHORT_SIDE) -> dict[str, float]:
    """Write `source` as H.264 to `target`. fps=None keeps the source's average rate; frames are repeated or
    dropped by timestamp so the output rate is constant; frames whose short side exceeds `short_side` are
    downscaled to it (None: keep the size). Returns {"frames", "fps"}."""
    import av

    container, stream = open_video(source)
    with container:
        rate = fps or float(stream.average_rate or stream.guessed_rate or 25)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with av.open(str(target), "w") as output:
            out_stream = None
            tick, last, start = 0, None, None
            try:
                for frame in container.decode(stream):
                    image = _shrink(upright(frame.to_ndarray(format="rgb24"), frame.rotation), short_side)  # as tagged
                    image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]  # even size for 4:2:0
                    if out_stream is None:
                        out_stream = output.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001),
                                                       options={"crf": str(crf), "preset": "fast",
                                                                "x264-params": f"keyint={gop}:min-keyint={gop}:"
                                                                               f"scenecut=0"})
                        out_stream.width, out_stream.height = image.shape[1], image.shape[0]
                        out_stream.pix_fmt = "yuv420p"
                    time = frame.time if frame.time is not None else (tick + 1) / rate
                    start = time if start is None else start
                    time -= start  # timestamps count from the first frame
                    while last is not None and tick / rate <= time - 0.5 / rate:  # ticks before this frame
                        written += _emit(output, out_stream, last)
                        tick += 1
                    last = image
            except av.error.FFmpegError as e:
                if last is None:
                    raise VideoDecodeError(f"{source}: no frame decodes ({e})") from None
            if last is None:
                raise VideoDecodeError(f"{source}: no video frames")
            written += _emit(output, out_stream, last)
            output.mux(out_stream.encode())
    return {"frames": written, "fps": rate}


def _shrink(image: np.ndarray, short_side: int | None) -> np.ndarray:
    """uint8 [H, W, 3] with its short side brought down to `short_side` (area averaging), never up."""
    import av

    height, width = image.shape[:2]
    if short_side is None or min(height, width) <= short_side:
        return image
    scale = short_side / min(height, width)
    size = {"width": max(2, round(width * scale)), "height": max(2, round(height * scale))}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(**size, interpolation="AREA").to_ndarray()


def _emit(output, stream, image: np.ndarray) -> int:
    import av

    output.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
    return 1


def transcode_list(report: dict, out_root: Path, *, only_flagged: bool = True, gop: int = 8,
                   fps: float | None = None, short_side: int | None = DEFAULT_SHORT_SIDE, force: bool = False) -> Path:
    """Every "ok" video of a preflight report into `out_root` (same relative paths; transcoded ones get `.mp4`):
    flagged ones (or all, with only_flagged=False) are transcoded, the rest copied. Writes and returns
    `out_root/list.txt` (relative path and label per line). `out_root` is apart from the report's data root, and
    new, empty or written by this function before (`force`: any other folder)."""
    root, lines = Path(report["root"]), []
    check_apart(out_root, root, "--out-root", "the data root")
    claim_folder(Path(out_root), MARKER, "a transcode output", option="--out-root", force=force, mark=True)
    inside = Path(out_root).resolve()
    for video in report["videos"]:
        if video["verdict"] != "ok":
            continue
        relative = Path(video["path"])
        if relative.is_absolute() or not (inside / relative).resolve().is_relative_to(inside):
            raise VideoDecodeError(f"{video['path']}: a report path that leads outside --out-root {out_root}; "
                                   f"transcode writes only inside it (is the report from `t2l data check`?)")
        if video["notes"] or not only_flagged:
            new = relative.with_suffix(".mp4")
            transcode_video(root / relative, out_root / new, fps=fps, gop=gop, short_side=short_side)
        else:
            new = relative
            (out_root / new).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, out_root / new)
        lines.append(f"{new} {video['label']}\n")
    (out_root / "list.txt").write_text("".join(lines))
    return out_root / "list.txt"
