"""Output folders that are never someone else's: a command writes into a new or empty folder, or into one that an
earlier run of the same command marked as its own."""
from __future__ import annotations

from pathlib import Path

from .errors import T2LError


def claim_folder(folder: Path, marker: str, owner: str) -> None:
    """Create `folder`, or accept it when empty or holding `marker` (left by `owner`); refuse anything else."""
    if folder.exists() and not folder.is_dir():
        raise T2LError(f"--out {folder}: exists and is not a folder; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise T2LError(f"--out {folder}: not empty and not {owner} (no {marker}); the command writes only into a "
                       f"new or empty folder, or one it wrote before: give another --out")
    folder.mkdir(parents=True, exist_ok=True)
