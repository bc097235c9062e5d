"""Zero-shot prediction on video files: `t2l predict`.

A video up to `window_seconds` long is one clip (TSN centre frames over the whole video, as in evaluation). A longer
one is cut into evenly spaced windows of that length covering it end to end; each window is a clip, and the video's
scores are the mean of its windows' probabilities (both are reported).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data.augment import apply_eval
from .data.decode import VideoFile
from .data.sampling import segment_indices
from .errors import T2LError
from .text.class_files import read_class_names

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts"}


def find_videos(paths: Sequence[str]) -> list[Path]:
    """Files as given, and the video files (by suffix) anywhere under given folders, sorted."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise T2LError(f"{path}: no such file or folder")
    if not found:
        raise T2LError(f"no video files under {', '.join(paths)} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
    return found


def parse_classes(spec: str) -> list[str]:
    """A class-name file, or class names separated by commas ("run,jump,swim")."""
    if Path(spec).is_file():
        return read_class_names(spec)
    if "," not in spec and (Path(spec).suffix or "/" in spec or "\\" in spec):
        raise T2LError(f"--classes {spec}: no such file; give an existing class-name file or comma-separated names")
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if len(names) < 2:
        raise T2LError(f"--classes {spec!r}: give a class-name file or at least two comma-separated names")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise T2LError(f"--classes: duplicate class names {duplicates}")
    return names


def windows(num_frames: int, fps: float, frames: int, window_seconds: float | None) -> list[tuple[int, int]]:
    """(first frame, frame count) of each window; one window when the video fits in `window_seconds`."""
    length = max(frames, round(window_seconds * fps)) if window_seconds else num_frames
    if num_frames <= length:
        return [(0, num_frames)]
    count = math.ceil(num_frames / length)
    return [(round(k * (num_frames - length) / (count - 1)), length) for k in range(count)]


@dataclass
class VideoPrediction:
    path: str
    seconds: float = 0.0
    num_frames: int = 0
    top: list[tuple[str, float]] = field(default_factory=list)  # overall (mean over windows), best first
    windows: list[dict] = field(default_factory=list)  # {"start_s", "end_s", "top": [(class, p), ...]}
    error: str | None = None


def predict_video(scorer, path: Path, *, topk: int = 5, window_seconds: float | None = 10.0,
                  batch_size: int = 8) -> VideoPrediction:
    """Scores of one video by `scorer` (TorchScorer or ExportScorer); problems are returned in `.error` (never
    raised) so a folder run goes on."""
    try:
        spec = scorer.spec
        with VideoFile(path) as video:  # one open: count, frame rate, decode
            num_frames, fps = video.count_frames(), video.frames_per_second
            spans = windows(num_frames, fps, spec.frames, window_seconds)
            indices = [start + i for start, length in spans for i in segment_indices(length, spec.frames,
                                                                                      train=False)]
            decoded = torch.from_numpy(video.decode(indices)).permute(0, 3, 1, 2)  # [W*T, 3, H, W]
        clips = torch.stack([apply_eval(clip, spec.image_size) for clip in decoded.split(spec.frames)])
        probabilities = torch.cat([scorer.probabilities(batch) for batch in clips.split(batch_size)])  # [W, C]
    except T2LError as e:
        return VideoPrediction(str(path), error=str(e))
    k = min(topk, len(scorer.class_names))

    def ranked(row: torch.Tensor) -> list[tuple[str, float]]:
        values, order = row.topk(k)
        return [(scorer.class_names[i], float(v)) for v, i in zip(values.tolist(), order.tolist())]

    window_rows = [{"start_s": round(start / fps, 2), "end_s": round((start + length) / fps, 2), "top": ranked(row)}
                   for (start, length), row in zip(spans, probabilities)]
    return VideoPrediction(str(path), round(num_frames / fps, 2), num_frames, ranked(probabilities.mean(0)),
                           window_rows)


def format_prediction(prediction: VideoPrediction) -> str:
    """Human-readable lines for one video."""
    if prediction.error:
        return f"{prediction.path}\n   error: {prediction.error}"
    clips = len(prediction.windows)
    first = prediction.windows[0]
    how = "1 clip" if clips == 1 else f"{clips} clips of {first['end_s'] - first['start_s']:.0f} s, averaged"
    lines = [f"{prediction.path}  ({prediction.seconds:.1f} s, {prediction.num_frames} frames, {how})"]
    lines += [f"   {p:6.3f}  {name}" for name, p in prediction.top]
    if clips > 1:
        lines.append("   per clip: " + " | ".join(f"{w['start_s']:.0f}-{w['end_s']:.0f} s {w['top'][0][0]} "
                                                  f"{w['top'][0][1]:.2f}" for w in prediction.windows))
    return "\n".join(lines)
