"""OpenVINO runner (CPU): an exported ONNX graph compiled by OpenVINO in fp32, in bf16 (its inference precision
hint) or as the INT8 QDQ graph, with the compiled model cached beside the graph."""
from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import T2LError
from ..io import atomic_write, file_sha256
from ..optional import require
from .base import ArtifactError, Runner, cache_folder
from .graph_header import check_sha256, input_specs, read_graph_header

# precision -> OpenVINO's INFERENCE_PRECISION_HINT. int8: the graph's Q/DQ pairs say where int8 runs, and the other
# ops get OpenVINO's default precision for this CPU (bf16 where it has AMX or AVX512-BF16, else f32)
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": None}
_TYPE_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}  # OpenVINO element type -> ours
CACHE_DIR = ".openvino-cache"  # beside the graph: OpenVINO's compiled models (CACHE_DIR), one folder per graph
CACHE_RECORD = "blobs.json"  # sha256 of each compiled blob this runner saw OpenVINO write


class OpenVinoRunner(Runner):
    """Runs one ONNX graph on OpenVINO's CPU plugin. `precision_in_use` is the precision OpenVINO really computes in
    after compiling ("fp32" when a bf16 hint meets a CPU without bf16 instructions: warned about)."""

    def __init__(self, path: str | Path, precision: str = "fp32", *, expected_sha256: str | None = None,
                 threads: int | None = None, cache: bool = True):
        if precision not in PRECISION_HINTS:
            raise T2LError(f"OpenVINO precision {precision!r}: choose {', '.join(PRECISION_HINTS)}")
        self.path = Path(path)
        self.name = f"{self.path} (OpenVINO {precision})"
        self.precision, self.expected_sha256, self.threads, self.cache = precision, expected_sha256, threads, cache
        self.compiled = None
        self.precision_in_use: str | None = None

    def activate(self) -> None:
        ov = require("openvino", "onnx", "OpenVINO inference")
        sha = check_sha256(self.path, self.expected_sha256)
        self.header = read_graph_header(self.path)  # also refuses external data outside the graph's folder
        cache = self._cache_dir(sha, ov.__version__)
        config = self.config()
        if cache is not None:
            drop_unrecorded_blobs(cache)
            config["CACHE_DIR"] = str(cache)  # a compile property: the process's one Core keeps no cache setting
        try:
            self.compiled = shared_core(ov).compile_model(str(self.path), "CPU", config)
        except RuntimeError as e:  # OpenVINO raises RuntimeError (or its subclasses) for unreadable graphs
            raise ArtifactError(f"{self.path}: OpenVINO cannot compile this graph ({str(e).strip().splitlines()[0]}); "
                                f"re-export it with `t2l export onnx`") from None
        if cache is not None:
            record_blobs(cache)
        self.precision_in_use = precision_in_use(self.compiled)
        if self.precision == "bf16" and self.precision_in_use != "bf16":
            warnings.warn(f"{self.path}: OpenVINO runs this graph in {self.precision_in_use}, not bf16: this CPU has "
                          f"no bf16 instructions (AMX or AVX512-BF16), so the bf16 backend gives fp32 speed here",
                          RuntimeWarning, stacklevel=2)
        self.input_specs = input_specs(self.header)
        self._outputs = [(port.get_any_name(), port) for port in self.compiled.outputs]
        self.output_names = [name for name, _ in self._outputs]

    def config(self) -> dict[str, object]:
        """The compile properties of this runner (threads, latency hint, precision hint)."""
        config: dict[str, object] = {"INFERENCE_NUM_THREADS": self.threads or os.cpu_count() or 1,
                                     "PERFORMANCE_HINT": "LATENCY"}
        if PRECISION_HINTS[self.precision]:
            config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[self.precision]
        return config

    def _cache_dir(self, sha: str | None, version: str) -> Path | None:
        """`.openvino-cache/NAME.SHA.ov-VERSION/` beside the graph (keyed by the graph's content, so a re-exported
        graph never meets the old one's compiled model); None when caching is off or the folder is read-only."""
        root = cache_folder(self.path, CACHE_DIR, self.cache)
        if root is None:
            return None
        folder = root / f"{self.path.stem}.{(sha or file_sha256(self.path))[:16]}.ov-{version.split('-')[0]}"
        folder.mkdir(exist_ok=True)
        return folder

    def deactivate(self) -> None:
        self.compiled = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.compiled is None:
            raise T2LError(f"{self.path}: use the runner inside `with` (it compiles the graph on entry)")
        results = self.compiled(feed)
        return {name: np.array(results[port], dtype=np.float32) for name, port in self._outputs}


def precision_in_use(compiled) -> str:
    """The precision a compiled model computes its non-quantized ops in ("fp32", "bf16", ...)."""
    used = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return _TYPE_NAMES.get(used, used)


@functools.cache
def shared_core(ov):
    """The process's one OpenVINO Core: its CPU plugin and thread pools load once, as OpenVINO advises (one Core per
    application), instead of once per graph."""
    return ov.Core()


def _read_record(folder: Path) -> dict[str, str]:
    try:
        record = json.loads((folder / CACHE_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def drop_unrecorded_blobs(folder: Path) -> list[str]:
    """Delete every file in a cache folder that is not a blob this runner recorded with the same sha256 (a changed
    or foreign blob is never loaded as a compiled model); the names deleted."""
    record = _read_record(folder)
    dropped = []
    for path in folder.iterdir():
        if path.is_file() and path.name != CACHE_RECORD and record.get(path.name) != file_sha256(path):
            path.unlink()
            dropped.append(path.name)
    return dropped


def record_blobs(folder: Path) -> None:
    """Record the sha256 of every blob in a cache folder (after OpenVINO compiled, and maybe wrote, one)."""
    record = {path.name: file_sha256(path) for path in sorted(folder.iterdir())
              if path.is_file() and path.name != CACHE_RECORD and not path.name.startswith(".")}
    if record != _read_record(folder):
        atomic_write(folder / CACHE_RECORD, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))
