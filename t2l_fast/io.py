"""File helpers every room shares: atomic writes, writable and owned output folders, sha256, safe torch loading."""
from __future__ import annotations

import glob
import hashlib
import os
import pickle
import re
import secrets
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


def claim_folder(folder: Path, marker: str, owner: str, *, option: str = "--out", force: bool | None = None,
                 mark: bool = False) -> None:
    """Create `folder`, or accept it when empty or holding `marker` (left by `owner`); refuse anything else.

    Output folders are never someone else's: a command writes into a new or empty folder, or into one that an
    earlier run of the same command marked as its own (`mark`: leave the marker now). `force` True takes the folder
    anyway; False says the command has a --force, which the refusal then names; None: it has none."""
    check_claim(Path(folder), marker, owner, option, force)
    Path(folder).mkdir(parents=True, exist_ok=True)
    if mark:
        (Path(folder) / marker).touch()


def check_claim(folder: Path, marker: str, owner: str, option: str = "--out", force: bool | None = None) -> None:
    """claim_folder's refusal, without creating anything (to refuse before expensive work)."""
    if folder.exists() and not folder.is_dir():
        raise T2LError(f"{option} {folder}: exists and is not a folder; give a new or empty folder")
    if force or not folder.is_dir() or (folder / marker).is_file() or not any(folder.iterdir()):
        return
    way = f"give another {option}" + (", or add --force to write into it anyway" if force is False else "")
    raise T2LError(f"{option} {folder}: not empty and not {owner} (no {marker}); the command writes only into a "
                   f"new or empty folder, or one it wrote before: {way}")


@contextmanager
def staged_folder(folder: Path, marker: str, owner: str,
                  carry: Callable[[Path], Iterable[str]] = lambda old: ()) -> Iterator[Path]:
    """Write a folder whole or not at all: claim `folder` (claim_folder's rule), yield a new hidden sibling holding
    hard links of the old folder's entries that `carry(folder)` names, and swap the sibling in for `folder` when the
    block ends. An exception or interrupt before the swap removes the sibling and leaves `folder` as it was.

    The block must replace a carried file (atomic_write), never write into it: it is the old folder's file too.
    Siblings left by a killed run (SIGKILL, power loss) are dealt with first: see recover_killed_swap."""
    check_replaceable(Path(folder))
    recover_killed_swap(Path(folder).resolve())
    check_claim(Path(folder), marker, owner)
    folder = Path(folder).resolve()  # a link to the folder stays a link to the new one
    folder.parent.mkdir(parents=True, exist_ok=True)
    suffix = f"{os.getpid()}-{secrets.token_hex(4)}"  # the pid tells a later run whether its writer is still alive
    staging, old = folder.parent / f".{folder.name}.partial-{suffix}", folder.parent / f".{folder.name}.old-{suffix}"
    staging.mkdir()
    try:
        if folder.is_dir():
            shutil.copymode(folder, staging)
            for name in carry(folder):
                _link(folder / name, staging / name)
        yield staging
        _swap(staging, folder, old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_replaceable(folder: Path, option: str = "--out") -> None:
    """Refuse to replace the current folder or one holding it (the swap would move the shell's folder away)."""
    if Path.cwd().resolve().is_relative_to(Path(folder).resolve()):
        raise T2LError(f"{option} {folder}: that is (or holds) the current folder, which the command replaces as a "
                       f"whole; give a folder below it (e.g. {option} export) or run the command from elsewhere")


def recover_killed_swap(folder: Path) -> list[str]:
    """Clean up after a staged_folder run that was killed outright (no exception, no cleanup): its `.NAME.partial-*`
    sibling is removed, and its `.NAME.old-*` sibling (the previous folder) is put back when the kill fell between
    the two renames of the swap and `folder` is missing, else removed. Staging nested in a staging folder
    (`..NAME.partial-*.partial-*`) goes too. Siblings of live writers are left alone. Returns one line per action
    (also given as a warning)."""
    actions = []
    for sibling in sorted(folder.parent.glob(f".*{glob.escape(folder.name)}.*-*-*")):
        match = re.fullmatch(rf"(\.+){re.escape(folder.name)}((?:\.(?:partial|old)-\d{{1,9}}-[0-9a-f]+)+)",
                             sibling.name)
        steps = re.findall(r"\.(partial|old)-(\d+)-", match[2]) if match else []
        if not steps or all(_alive(int(pid)) for _, pid in steps):
            continue
        if (match[1], len(steps), steps[0][0]) == (".", 1, "old") and not folder.exists():
            os.rename(sibling, folder)
            actions.append(f"{folder}: put back the previous folder from {sibling.name} (a run was killed mid-swap)")
        else:
            shutil.rmtree(sibling, ignore_errors=True)
            actions.append(f"{folder}: removed {sibling.name}, left by a run that was killed")
    for line in actions:
        warnings.warn(line, RuntimeWarning, stacklevel=2)
    return actions


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return pid != 0


def _link(source: Path, target: Path) -> None:
    """Hard links of `source` (a file, a symlink or a folder tree) at `target`; copies where links are refused."""
    def link(a, b):
        try:
            os.link(a, b, follow_symlinks=False)
        except OSError:
            shutil.copy2(a, b, follow_symlinks=False)

    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=link)
    else:
        link(source, target)


def _swap(new: Path, folder: Path, old: Path) -> None:
    """Rename `folder` (if any) to `old` and `new` to `folder`; an interrupt between the two puts `folder` back."""
    try:
        if folder.exists():
            os.rename(folder, old)
        os.rename(new, folder)
    except BaseException:
        if old.exists() and not folder.exists():
            os.rename(old, folder)
        raise


def check_not_input(output: Path, inputs: Iterable[Path | str | None], option: str = "--out") -> None:
    """No command writes over one of its inputs: refuse `output` when it is one of `inputs` (the same file, links
    followed)."""
    for given in filter(None, inputs):
        if Path(output).exists() and Path(given).exists() and os.path.samefile(output, given):
            raise T2LError(f"{option} {output}: that is the input {given}, which the command would write over; give "
                           f"another {option}")


def check_apart(folder: Path, other: Path, option: str, what: str) -> None:
    """Refuse an output `folder` that is, holds or lies inside the input folder `other` (links followed)."""
    a, b = Path(folder).resolve(), Path(other).resolve()
    if a.is_relative_to(b) or b.is_relative_to(a):
        relation = "is" if a == b else "lies inside" if a.is_relative_to(b) else "holds"
        raise T2LError(f"{option} {folder}: {relation} {what} {other}, whose files the command would write over; "
                       f"give a folder apart from it")


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
