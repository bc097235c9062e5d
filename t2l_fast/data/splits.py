"""The published split files of HMDB51 and UCF101 (users supply them; we parse, never draw new splits).

UCF101 (`ucfTrainTestlist/`): classInd.txt (`1 ApplyEyeMakeup`), trainlist0{s}.txt (`Class/video.avi 1`),
testlist0{s}.txt (`Class/video.avi`); videos under `root/Class/video.avi`.
HMDB51 (`testTrainMulti_7030_splits/`): `<class>_test_split{s}.txt` with `video.avi N` (1 train, 2 test, 0 unused);
classes in alphabetical order; videos under `root/<class>/video.avi`; class names with underscores read as spaces
(`brush_hair` -> "brush hair"), as ViFi-CLIP's and the official T2L's class files and description CSVs have them.
The K600 zero-shot class subsets are class-name files: read them with read_class_names and use restrict_to_classes.
"""
from __future__ import annotations

from pathlib import Path

from ..text.class_files import read_class_names
from .lists import PathLike, VideoEntry, VideoListError, entries_from_rows

SPLITS = (1, 2, 3)


def _check(split: int, which: str) -> None:
    if split not in SPLITS:
        raise VideoListError(f"split must be one of {SPLITS}, got {split}")
    if which not in ("train", "test"):
        raise VideoListError(f"which must be 'train' or 'test', got {which!r}")


def _split_lines(list_file: Path) -> list[str]:
    """The lines of a published split file, or one error naming it (unreadable, or not UTF-8)."""
    try:
        return list_file.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise VideoListError(f"{list_file}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise VideoListError(f"{list_file}: not UTF-8 text (byte {e.start}); is it the published split file? "
                             f"Re-download it or save it as UTF-8") from None


def ucf101_split(split_dir: PathLike, root: PathLike, split: int, which: str = "test"
                 ) -> tuple[list[str], list[VideoEntry]]:
    """(class names, entries) of UCF101 split `split`."""
    _check(split, which)
    split_dir = Path(split_dir)
    class_names = read_class_names(split_dir / "classInd.txt")
    index = {name: i for i, name in enumerate(class_names)}
    list_file = split_dir / f"{which}list0{split}.txt"
    lines = _split_lines(list_file)
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        relative = line.split()[0]
        class_name = relative.replace("\\", "/").split("/")[0]
        if class_name not in index:
            raise VideoListError(f"{list_file}:{number}: folder {class_name!r} is not a class of classInd.txt")
        rows.append((number, relative, str(index[class_name]), "", ""))
    return class_names, entries_from_rows(rows, list_file, root, num_classes=len(class_names))


def hmdb51_split(split_dir: PathLike, root: PathLike, split: int, which: str = "test"
                 ) -> tuple[list[str], list[VideoEntry]]:
    """(class names, entries) of HMDB51 split `split`."""
    _check(split, which)
    split_dir = Path(split_dir)
    suffix = f"_test_split{split}.txt"
    files = sorted(split_dir.glob(f"*{suffix}"))
    if not files:
        raise VideoListError(f"{split_dir}: no '*{suffix}' files (the HMDB51 testTrainMulti_7030_splits folder?)")
    class_names = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if which == "train" else "2"
    entries: list[VideoEntry] = []
    for label, list_file in enumerate(files):
        rows = []
        for number, line in enumerate(_split_lines(list_file), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise VideoListError(f"{list_file}:{number}: expected 'video.avi 0|1|2', found {line.strip()!r}")
            if parts[1] == wanted:
                rows.append((number, f"{class_names[label]}/{parts[0]}", str(label), "", ""))
        entries += entries_from_rows(rows, list_file, root, num_classes=len(class_names))
    return [name.replace("_", " ") for name in class_names], entries  # brush_hair -> "brush hair", as prompts read
