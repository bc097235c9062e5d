"""Helpers of the engine, CMake and Triton tests: tiny-model exports (each model and precision exported once per
session, each test gets its own copy) and a stand-in for NVIDIA's command-line builders."""
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


def stand_in_cli(bin_dir: Path, name: str) -> Path:
    """An executable `name` in `bin_dir` standing in for trtexec / tensorrt_rtx: it writes its own command line
    into the --saveEngine file, so a test can check what it was given."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text('#!/bin/sh\nfor a in "$@"; do case $a in --saveEngine=*) echo "$@" > "${a#--saveEngine=}";; '
                    'esac; done\n')
    path.chmod(0o755)
    return path
