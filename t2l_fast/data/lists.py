"""Video list files: `relative/path label` per line (the official T2L / ViFi-CLIP / mmaction2 lists) or CSV.

CSV lists have a header naming a path column (path, video, filename) and a label column (label, class); optional
start and end columns (seconds) cut a clip out of a longer video. Labels are integers, or class names when the
class list is given. Paths are resolved under the data root: absolute paths, `..` and symlinks that leave the root
are refused. Every error names file:line.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import T2LError, UnsupportedOptionError

PathLike = str | Path
_PATH_COLUMNS = ("path", "video", "filename", "file")
_LABEL_COLUMNS = ("label", "class", "label_id", "class_id")


class VideoListError(T2LError, ValueError):
    """A list file is malformed or names unusable videos (the message names file:line)."""


@dataclass(frozen=True)
class VideoEntry:
    path: Path  # absolute, inside the data root
    label: int
    source: str  # "list.txt:12", for messages
    start: float | None = None  # seconds; None: from the first frame
    end: float | None = None  # seconds; None: to the last frame


OFFICIAL_LINE = re.compile(r"^(/\S.*?)\s+(\d+)\s+(\d+)\s*$")  # the official T2L lists: /abs/path num_frames label

def resolve_under_root(relative: str, root: Path, where: str) -> Path:
    """`root/relative`, refusing absolute paths, `..` and symlinks out of `root`."""
    candidate = Path(relative)
    if candidate.is_absolute() or relative.startswith(("/", "\\")):
        raise VideoListError(f"{where}: absolute path {relative!r}; list paths must be relative to the data root")
    if ".." in candidate.parts:
        raise VideoListError(f"{where}: path {relative!r} contains '..'; list paths must stay inside the data root")
    resolved_root = _resolve(root, where)
    path = (resolved_root / candidate)
    real = _resolve(path, where)
    if real != resolved_root and resolved_root not in real.parents:
        raise VideoListError(f"{where}: {relative!r} leads outside the data root {root} (a symlink to {real})")
    return path


def _resolve(path: Path, what: str) -> Path:
    """path.resolve(), or a VideoListError when its symlinks form a loop (Python 3.11 raises RuntimeError)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise VideoListError(f"{what}: {path} is a symlink loop (a link that leads back to itself); remove or fix "
                             f"the link") from None


def _parse_label(text: str, where: str, class_index: dict[str, int] | None, num_classes: int | None) -> int:
    text = text.strip()
    if class_index is not None and text in class_index:
        return class_index[text]
    try:
        label = int(text)
    except ValueError:
        hint = "" if class_index is None else " or a class name from the class list"
        raise VideoListError(f"{where}: label {text!r} is not an integer{hint}") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise VideoListError(f"{where}: label {label} is out of range ({limit})")
    return label


def _parse_seconds(text: str, where: str, column: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise VideoListError(f"{where}: {column} {text!r} is not a number of seconds") from None
    if value < 0:
        raise VideoListError(f"{where}: {column} {value} is negative")
    return value


def _rows(list_file: Path, text: str):
    """(line number, path text, label text, start text, end text) for every content line."""
    if list_file.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        path_col = next((header.index(c) for c in _PATH_COLUMNS if c in header), None)
        label_col = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
        if path_col is None or label_col is None:
            raise VideoListError(f"{list_file}:1: CSV header {header} needs a path column ({'/'.join(_PATH_COLUMNS)}) "
                                 f"and a label column ({'/'.join(_LABEL_COLUMNS)})")
        start_col = header.index("start") if "start" in header else None
        end_col = header.index("end") if "end" in header else None
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise VideoListError(f"{list_file}:{number}: {len(row)} columns, the header has {len(header)}")
            yield (number, row[path_col].strip(), row[label_col],
                   row[start_col] if start_col is not None else "", row[end_col] if end_col is not None else "")
        return
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if OFFICIAL_LINE.match(line.strip()):
            raise VideoListError(f"{list_file}:{number}: {line.strip()!r} looks like the official T2L list format "
                                 f"(/abs/path num_frames label); convert it: t2l data convert-list {list_file} "
                                 f"--root DATA_ROOT --out LIST.txt")
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2:
            raise VideoListError(f"{list_file}:{number}: expected 'relative/path label', found {line.strip()!r}")
        yield number, parts[0], parts[1], "", ""


def read_list_text(list_file: Path) -> str:
    """A list file's text (UTF-8, BOM and Windows line ends removed), or an error naming the file."""
    try:
        return Path(list_file).read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    except OSError as e:
        raise VideoListError(f"{list_file}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise VideoListError(f"{list_file}: not valid UTF-8 (byte {e.start}); save the list as UTF-8") from None


def read_video_list(list_file: PathLike, root: PathLike, *, class_names: Sequence[str] | None = None,
                    num_classes: int | None = None, missing: str = "error") -> list[VideoEntry]:
    """Entries of a list file. missing="error" refuses a list that names absent files (all reported at once);
    missing="skip" leaves them out with a warning; missing="keep" keeps them (for preflight reports).
    Duplicate entries are kept and warned about."""
    list_file = Path(list_file)
    return entries_from_rows(_rows(list_file, read_list_text(list_file)), list_file, root, class_names=class_names,
                             num_classes=num_classes, missing=missing)


def entries_from_rows(rows: Iterable[tuple[int, str, str, str, str]], list_file: Path, root: PathLike, *,
                      class_names: Sequence[str] | None = None, num_classes: int | None = None,
                      missing: str = "error") -> list[VideoEntry]:
    """Validated entries from (line, path, label, start, end) text rows of `list_file` (see read_video_list)."""
    if missing not in ("error", "skip", "keep"):
        raise UnsupportedOptionError(f"missing must be 'error', 'skip' or 'keep', got {missing!r}")
    root = Path(root)
    if not root.is_dir():
        raise VideoListError(f"{root}: the data root is not a folder")
    class_index = {name: i for i, name in enumerate(class_names)} if class_names is not None else None
    if class_names is not None and num_classes is None:
        num_classes = len(class_names)
    entries, absent, first_seen, duplicates = [], [], {}, []
    for number, path_text, label_text, start_text, end_text in rows:
        where = f"{list_file}:{number}"
        if not path_text:
            raise VideoListError(f"{where}: empty path")
        path = resolve_under_root(path_text, root, where)
        label = _parse_label(label_text, where, class_index, num_classes)
        start, end = _parse_seconds(start_text, where, "start"), _parse_seconds(end_text, where, "end")
        if start is not None and end is not None and start >= end:
            raise VideoListError(f"{where}: start {start} s is not before end {end} s")
        if missing != "keep" and not path.is_file():
            absent.append(f"{where}: {path_text}")
            continue
        clip = (path, start, end)  # windows of one long video are different clips
        if clip in first_seen:
            duplicates.append(f"{where} (first at line {first_seen[clip]})")
        else:
            first_seen[clip] = number
        entries.append(VideoEntry(path=path, label=label, source=where, start=start, end=end))
    if absent and missing == "error":
        raise VideoListError(f"{list_file}: {len(absent)} listed video(s) do not exist under {root}: "
                             f"{'; '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}. Fix the paths or the "
                             f"data root, or pass missing='skip'.")
    if absent:
        warnings.warn(f"{list_file}: skipped {len(absent)} missing video(s): {'; '.join(absent[:5])}", stacklevel=3)
    if duplicates:
        warnings.warn(f"{list_file}: {len(duplicates)} duplicate entr{'y' if len(duplicates) == 1 else 'ies'} "
                      f"(kept, so they count twice): {'; '.join(duplicates[:5])}", stacklevel=3)
    if not entries:
        reason = "all listed videos are missing" if absent else "it has no entries"
        raise VideoListError(f"{list_file}: no usable videos ({reason})")
    return entries


def restrict_to_classes(entries: Sequence[VideoEntry], class_names: Sequence[str], subset: Sequence[str], *,
                        where: str = "class subset") -> list[VideoEntry]:
    """Keep the entries of the classes in `subset` and relabel them 0..len(subset)-1 in subset order (e.g. the
    K600 zero-shot class subsets). Every subset class must be a known class (`where` names the subset in errors)."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [name for name in subset if name not in index]
    if unknown:
        raise VideoListError(f"{where} names {len(unknown)} unknown class(es), not in the class list: {unknown[:5]}; "
                             f"check that the subset and the class list spell the classes alike")
    relabel = {index[name]: new for new, name in enumerate(subset)}
    return [VideoEntry(e.path, relabel[e.label], e.source, e.start, e.end) for e in entries if e.label in relabel]


def write_video_list(entries: Sequence[VideoEntry], root: PathLike, out: Path) -> Path:
    """Write entries as a list file read_video_list reads back: `relative/path label` lines, or, for an `out`
    ending in .csv, `path,label,start,end` rows (entries with start/end need CSV)."""
    base = Path(root).resolve()
    rows = [(entry.path.relative_to(base).as_posix(), entry.label, entry.start, entry.end) for entry in entries]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "label", "start", "end"])
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
        out.write_text(buffer.getvalue())
        return out
    clipped = [entry.source for entry in entries if entry.start is not None or entry.end is not None]
    if clipped:
        raise VideoListError(f"{out}: {len(clipped)} entries have start/end times (e.g. {clipped[0]}), which only "
                             f"a CSV list holds; give an output name ending in .csv")
    out.write_text("".join(f"{path} {label}\n" for path, label, _, _ in rows))
    return out
