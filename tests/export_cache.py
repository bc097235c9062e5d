"""Tiny-model exports shared by the engine, CMake and Triton tests: each model and precision is exported once per
session and each test gets its own copy."""
import shutil
from pathlib import Path

from test_export import export_tiny

_EXPORTS = {}


def exported_copy(tmp_path_factory, destination: Path, name: str = "t2l_tiny", precision: str = "fp32") -> Path:
    """A fresh copy of the export of tiny model `name` (each model and precision is exported once per session)."""
    if (name, precision) not in _EXPORTS:
        out = tmp_path_factory.mktemp(f"{name}-{precision}")
        export_tiny(name, out, precision=precision)
        _EXPORTS[name, precision] = out
    shutil.copytree(_EXPORTS[name, precision], destination, dirs_exist_ok=True)
    return destination
