"""Class-name and class-description files, read strictly: every error names file:line and the fix.

Class names: TXT, one name per line (or `index name` per line, as UCF101's classInd.txt, 0- or 1-based), or CSV
(`name`, or `id,name` with ids 0..C-1, as the official T2L/ViFi-CLIP lists). Descriptions: CSV with
`name,description` or `id,name,description` columns (the official GPT description files), header optional.
A UTF-8 BOM and Windows line ends are normalized with a warning; duplicates and empty names are errors.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..errors import ClassFileError

PathLike = str | Path
_INDEXED_LINE = re.compile(r"^(\d+)\s+(\S.*)$")


def _read_text(path: PathLike) -> str:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ClassFileError(f"{path}: cannot read ({e.strerror})") from None
    notes = []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw, notes = raw[3:], notes + ["a UTF-8 byte-order mark"]
    if b"\r\n" in raw:
        raw, notes = raw.replace(b"\r\n", b"\n"), notes + ["Windows (CRLF) line ends"]
    if notes:
        warnings.warn(f"{path}: normalized {' and '.join(notes)}", stacklevel=3)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ClassFileError(f"{path}:{line}: not valid UTF-8 (byte {e.start}); save the file as UTF-8") from None


def _content_lines(text: str, path: PathLike) -> list[tuple[int, str]]:
    """(line number, stripped line); blank lines inside the file are errors (they would shift every label)."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ClassFileError(f"{path}:{number}: empty line; every line must name a class (labels are line "
                                 f"positions), delete the blank line")
        out.append((number, line.strip()))
    if not out:
        raise ClassFileError(f"{path}: no classes in the file")
    return out


def _check_unique(names: Sequence[tuple[int, str]], path: PathLike) -> list[str]:
    seen: dict[str, int] = {}
    for number, name in names:
        if not name:
            raise ClassFileError(f"{path}:{number}: empty class name")
        if name in seen:
            raise ClassFileError(f"{path}:{number}: duplicate class {name!r} (first at line {seen[name]}); class "
                                 f"names must be unique")
        seen[name] = number
    return [name for _, name in names]


def _ordered_by_index(rows: list[tuple[int, str, str]], path: PathLike) -> list[tuple[int, str]]:
    """Rows (line, index text, name) -> (line, name) in index order; indices must be 0..C-1 or 1..C, each once."""
    indices = []
    for number, index, _ in rows:
        if not index.strip().isdigit():
            raise ClassFileError(f"{path}:{number}: class id {index!r} is not a non-negative integer")
        indices.append(int(index))
    start = min(indices)
    if start not in (0, 1) or sorted(indices) != list(range(start, start + len(rows))):
        raise ClassFileError(f"{path}: class ids must be 0..{len(rows) - 1} (or 1..{len(rows)}), each once; "
                             f"found {sorted(indices)[:5]}...")
    order = sorted(range(len(rows)), key=indices.__getitem__)
    return [(rows[i][0], rows[i][2].strip()) for i in order]


def _csv_rows(text: str, path: PathLike) -> list[tuple[int, list[str]]]:
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if row and any(cell.strip() for cell in row):
            rows.append((number, row))
    return rows


_HEADER_CELLS = {"id", "sno", "s.no", "index", "name", "class", "class name", "classname", "class_name", "label",
                 "label name", "action", "description"}


def _is_header(row: list[str]) -> bool:
    """A header row names columns ("id,name", "SNo,Class Name,GPT3 description"); a class row never does."""
    cells = [cell.strip().lower() for cell in row]
    return any(cell in _HEADER_CELLS or "description" in cell for cell in cells)


def read_class_names(path: PathLike) -> list[str]:
    """Class names in label order from a TXT or CSV file."""
    text = _read_text(path)
    if Path(path).suffix.lower() == ".csv":
        rows = _csv_rows(text, path)
        if rows and _is_header(rows[0][1]):
            rows = rows[1:]
        if not rows:
            raise ClassFileError(f"{path}: no classes in the file")
        width = len(rows[0][1])
        for number, row in rows:
            if len(row) != width or width not in (1, 2):
                raise ClassFileError(f"{path}:{number}: expected 1 column (name) or 2 (id,name) on every row, "
                                     f"found {len(row)}")
        if width == 1:
            return _check_unique([(n, row[0].strip()) for n, row in rows], path)
        return _check_unique(_ordered_by_index([(n, row[0], row[1]) for n, row in rows], path), path)
    lines = _content_lines(text, path)
    indexed = [_INDEXED_LINE.match(line) for _, line in lines]
    if all(indexed):
        return _check_unique(_ordered_by_index([(n, m.group(1), m.group(2)) for (n, _), m in zip(lines, indexed)],
                                               path), path)
    return _check_unique(lines, path)


def read_class_descriptions(path: PathLike, class_names: Sequence[str]) -> list[str]:
    """One description per class of `class_names`, in that order, from a CSV file."""
    rows = _csv_rows(_read_text(path), path)
    if rows and _is_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ClassFileError(f"{path}: no descriptions in the file")
    width = len(rows[0][1])
    known = set(class_names)
    found: dict[str, tuple[int, str]] = {}
    extra: list[tuple[int, str]] = []
    for number, row in rows:
        if len(row) != width or width not in (2, 3):
            raise ClassFileError(f"{path}:{number}: expected 2 columns (class name, description) or 3 "
                                 f"(id, class name, description) on every row, found {len(row)}; quote "
                                 f"descriptions that contain commas")
        name, description = row[-2].strip(), " ".join(row[-1].split())
        if name not in known:  # a CSV of a larger set (K600 subsets, base classes): ignored, said once below
            extra.append((number, name))
            continue
        if name in found:
            raise ClassFileError(f"{path}:{number}: second description for {name!r} (first at line "
                                 f"{found[name][0]})")
        if not description:
            raise ClassFileError(f"{path}:{number}: empty description for {name!r}")
        found[name] = (number, description)
    missing = [c for c in class_names if c not in found]
    if missing:
        near = {c: n for c in missing for _, n in extra if n.lower() == c.lower()}
        hints = "".join(f"; line {next(k for k, n in extra if n == near[c])} has {near[c]!r}: class names must "
                        f"match the class list exactly" for c in missing[:5] if c in near)
        raise ClassFileError(f"{path}: no description for {len(missing)} class(es): {missing[:5]}{hints}")
    if extra:
        warnings.warn(f"{path}: ignored {len(extra)} description(s) of classes not in the list (e.g. "
                      f"{', '.join(repr(n) for _, n in extra[:3])} at line {extra[0][0]})", stacklevel=2)
    return [found[c][1] for c in class_names]
