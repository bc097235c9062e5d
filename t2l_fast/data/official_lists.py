"""The official T2L repository's lists (`/abs/path num_frames label` per line, paths on the authors' machines, often
frame folders without an extension) converted to our `relative/path label` lists under a data root."""
from __future__ import annotations

import os
from pathlib import Path

from ..io import check_not_input
from .lists import OFFICIAL_LINE, VideoListError, read_list_text, resolve_under_root

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")


def _find_video(root: Path, relative: Path) -> Path:
    """root/relative, or, for a frame folder's name, the video with that stem and a video suffix."""
    exact = root / relative
    if exact.is_file() or relative.suffix:
        return exact
    return next((exact.with_suffix(s) for s in VIDEO_SUFFIXES if exact.with_suffix(s).is_file()), exact)


def convert_official_list(list_file: Path, root: Path, out: Path, missing: str = "error") -> tuple[int, list[str]]:
    """Write `out` (relative path and label per line) from the official list `list_file`: each absolute path loses
    the folder all the list's paths share and is looked up under `root` (a frame folder's name matches the video
    of that stem). Returns (lines written, missing videos); missing="error" raises when any is missing."""
    check_not_input(Path(out), [list_file])
    rows = []
    for number, line in enumerate(read_list_text(Path(list_file)).split("\n"), start=1):
        if not line.strip():
            continue
        match = OFFICIAL_LINE.match(line.strip())
        if not match:
            raise VideoListError(f"{list_file}:{number}: expected the official '/abs/path num_frames label', found "
                                 f"{line.strip()!r}")
        rows.append((number, Path(match.group(1)), match.group(3)))
    if not rows:
        raise VideoListError(f"{list_file}: no entries")
    common = Path(os.path.commonpath([str(path.parent) for _, path, _ in rows]))
    lines, absent = [], []
    for number, path, label in rows:
        relative = path.relative_to(common)
        resolve_under_root(str(relative), Path(root), f"{list_file}:{number}")  # no '..' out of the root
        video = _find_video(Path(root), relative)
        if not video.is_file():
            absent.append(f"{list_file}:{number}: {video}")
            continue
        lines.append(f"{video.relative_to(root).as_posix()} {label}\n")
    if absent and missing == "error":
        raise VideoListError(f"{len(absent)} of {len(rows)} videos are not under {root} (the list's paths start with "
                             f"{common}, which is replaced by the root): {'; '.join(absent[:5])}; fix --root, or "
                             f"pass --missing skip")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(lines))
    return len(lines), absent
