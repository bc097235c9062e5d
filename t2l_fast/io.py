"""File helpers every room shares: atomic writes, writable and owned output folders, sha256, safe torch loading."""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, T2LError


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write via a temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_writable(folder: Path, option: str = "output_dir") -> None:
    """Create `folder` if needed and prove a file can be written there; else a ConfigError naming `option`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"{option} {folder}: cannot write there ({e.strerror}); choose another folder") from None


def claim_folder(folder: Path, marker: str, owner: str) -> None:
    """Create `folder`, or accept it when empty or holding `marker` (left by `owner`); refuse anything else.

    Output folders are never someone else's: a command writes into a new or empty folder, or into one that an
    earlier run of the same command marked as its own."""
    if folder.exists() and not folder.is_dir():
        raise T2LError(f"--out {folder}: exists and is not a folder; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise T2LError(f"--out {folder}: not empty and not {owner} (no {marker}); the command writes only into a "
                       f"new or empty folder, or one it wrote before: give another --out")
    folder.mkdir(parents=True, exist_ok=True)


PATH_PART = re.compile(r"[A-Za-z0-9_.-]+")  # what a name from a file or an option may be when it becomes a path


def path_part(name: object, what: str) -> str:
    """`name` when it can be one part of a path ([A-Za-z0-9_.-]+, not "." or ".."); else a T2LError naming `what`.

    Names read from files (a manifest, a checkpoint's config) or given as options never lead out of their folder."""
    if not isinstance(name, str) or not PATH_PART.fullmatch(name) or set(name) == {"."}:
        raise T2LError(f"{what} {name!r}: not a plain name (letters, digits, '_', '.', '-', and not '..'), so it "
                       f"could lead out of its folder; use a plain name")
    return name


def inside(folder: Path, name: object, what: str) -> Path:
    """folder / name to write, for a plain `name` (path_part) that resolves inside `folder` (no link out of it)."""
    path = Path(folder) / path_part(name, what)
    if not path.resolve().is_relative_to(Path(folder).resolve()):
        raise T2LError(f"{what} {name!r}: {path} is a link out of {folder}; files are read and written inside it only")
    return path


def under(folder: Path, relative: object, what: str) -> Path:
    """folder / relative for a relative path read from a file ("a/b.pt"), each part a plain name that resolves
    inside the folder before it (see `inside`); else a T2LError naming `what`."""
    parts = Path(relative).parts if isinstance(relative, str) and relative else (relative,)
    path = Path(folder)
    for part in parts:
        path = inside(path, part, what)
    return path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_torch_load(path: Path) -> Any:
    """torch.load with weights_only=True; unreadable or unsafe files raise a CheckpointError naming the file."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused to load: the file holds Python objects beyond tensors and "
                              f"containers, and is not loaded with code execution enabled "
                              f"({_unpickler_reason(e)})") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as e:
        reason = (str(e).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path}: cannot read this checkpoint ({type(e).__name__}: {reason}); the file is "
                              f"corrupt, truncated or not a PyTorch file. Re-download or re-save it.") from None


def _unpickler_reason(error: Exception) -> str:
    """The one sentence of torch's weights_only refusal that says what was refused (without its advice)."""
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", str(error), re.S)
    reason = match.group(1) if match else str(error)
    return reason.strip().split(". Please")[0].splitlines()[0]
