"""Optional dependencies: imported where needed, with an error naming the extra to install."""
from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Sequence
from importlib import metadata

from .errors import MissingDependencyError


def require(module: str, extra: str, purpose: str):
    """Import `module` or raise a MissingDependencyError that says which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{purpose} needs the Python module {module!r} ({e}); install it with "
                                     f"pip install 't2l-fast[{extra}]'") from None


def installed(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _first_version(pattern: str) -> str | None:
    """The version of the first installed distribution whose normalized name matches `pattern`, or None."""
    for distribution in metadata.distributions():
        if re.fullmatch(pattern, (distribution.metadata["Name"] or "").lower().replace("_", "-")):
            return distribution.version
    return None


def dali_version() -> str | None:
    """The version of the installed NVIDIA DALI wheel, whichever CUDA build it is (nvidia-dali-cuda130,
    nvidia-dali-cuda120, ...), or None."""
    return _first_version(r"nvidia-dali.*")


def tensorrt_version() -> str | None:
    """The version of full TensorRT, whichever wheel brings it (tensorrt, tensorrt-cu12, tensorrt-cu13), or None."""
    return _first_version(r"tensorrt(-cu\d+)?")


ANY_BUILD = {"nvidia-dali": dali_version, "tensorrt": tensorrt_version}  # names that stand for any of their wheels


def installed_versions(components: Sequence[str]) -> dict[str, str | None]:
    """Installed version (or None) of each distribution in `components`; "nvidia-dali" and "tensorrt" stand for
    any of their CUDA builds' wheels."""
    return {name: ANY_BUILD[name]() if name in ANY_BUILD else installed(name) for name in components}


def onnxruntime_conflict() -> str | None:
    """A message if both onnxruntime and onnxruntime-gpu are installed (they share one folder and break each
    other), else None."""
    cpu, gpu = installed("onnxruntime"), installed("onnxruntime-gpu")
    if cpu and gpu:
        return (f"both onnxruntime {cpu} and onnxruntime-gpu {gpu} are installed; they overwrite each other's files. "
                f"Fix: pip uninstall -y onnxruntime onnxruntime-gpu, then install one extra: "
                f"'t2l-fast[onnx]' (CPU) or 't2l-fast[onnx-gpu]' (NVIDIA GPU)")
    return None


def import_onnxruntime():
    """onnxruntime, after warning about a CPU/GPU double install."""
    conflict = onnxruntime_conflict()
    if conflict:
        warnings.warn(conflict, RuntimeWarning, stacklevel=2)
    return require("onnxruntime", "onnx", "ONNX Runtime inference")
