"""ONNX Runtime runner (CPU, CUDA and TensorRT execution providers), with the graph file checked before loading."""
from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import T2LError
from ..io import file_sha256
from ..optional import import_onnxruntime, onnxruntime_conflict
from .base import ArtifactError, Runner, TensorSpec
from .graph_header import read_graph_header

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_ONNX_TYPES = {"tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
               "tensor(float)": np.float32, "tensor(float16)": np.float16}
CACHE_DIR = ".ort-cache"  # beside the graph: optimised graphs and TensorRT EP engines


def _holds_fp16(model) -> bool:
    from onnx import TensorProto

    return any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)


def provider_list(requested: Sequence[str], cache_dir: Path | None) -> list[object]:
    """ONNX Runtime provider entries for names among cpu/cuda/tensorrt (the CPU always last, as the fallback)."""
    unknown = [p for p in requested if p not in PROVIDERS]
    if unknown:
        raise T2LError(f"unknown execution provider(s) {unknown}; choose from {', '.join(PROVIDERS)}")
    entries: list[object] = []
    for name in requested:
        if name == "tensorrt":
            options = {"trt_fp16_enable": "True"}
            if cache_dir is not None:
                options |= {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache_dir / "trt"),
                            "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(cache_dir / "trt")}
            entries.append((PROVIDERS[name], options))
        elif name != "cpu":
            entries.append(PROVIDERS[name])
    return entries + [PROVIDERS["cpu"]]


class OrtRunner(Runner):
    """Runs one ONNX graph. providers: cpu, cuda, tensorrt (in order of preference); `providers_in_use` is what the
    session really got, and a requested GPU provider that fell back to the CPU is warned about."""

    def __init__(self, path: str | Path, providers: Sequence[str] = ("cpu",), *,
                 expected_sha256: str | None = None, threads: int | None = None, cache: bool = True):
        self.path = Path(path)
        self.name = str(self.path)
        self.requested = list(providers)
        self.expected_sha256, self.threads, self.cache = expected_sha256, threads, cache
        self.session = None
        self.providers_in_use: list[str] = []
        self.header = None

    def activate(self) -> None:
        conflict = onnxruntime_conflict()
        if conflict:
            raise T2LError(conflict)
        ort = import_onnxruntime()
        sha = None
        if self.expected_sha256:  # before parsing: bytes that are not the exported ones are never read as a graph
            if not self.path.is_file():
                raise ArtifactError(f"{self.path}: no such ONNX file; export it with `t2l export onnx`")
            sha = file_sha256(self.path)
            if sha != self.expected_sha256:
                raise ArtifactError(f"{self.path}: sha256 {sha[:16]}... does not match the manifest's "
                                    f"{self.expected_sha256[:16]}...; the file was changed or damaged after export: "
                                    f"re-export it (or restore the original)")
        self.header = read_graph_header(self.path)
        cache_dir = self._cache_dir()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.requested == ["cpu"] and _holds_fp16(self.header):
            # ONNX Runtime 1.32's level-ALL (layout) passes crash the process on our fp16 graphs on the CPU; fp16
            # is a GPU format, and the CPU run only checks it, so the CPU gets the level below.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
        providers = provider_list(self.requested, cache_dir)
        source = self.path
        cached = self._cached_graph(cache_dir, sha) if self.requested == ["cpu"] else None
        if cached is not None and cached.is_file():
            source = cached
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # optimised already
        elif cached is not None:
            fd, staging = tempfile.mkstemp(prefix=".staging.", suffix=".onnx", dir=cached.parent)
            os.close(fd)
            options.optimized_model_filepath = staging
        try:
            self.session = ort.InferenceSession(str(source), sess_options=options, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
            if options.optimized_model_filepath:
                Path(options.optimized_model_filepath).unlink(missing_ok=True)
            if source != self.path:  # a damaged cache entry is dropped, never trusted
                source.unlink(missing_ok=True)
                return self.activate()
            raise ArtifactError(f"{self.path}: ONNX Runtime cannot load this graph ({str(e).splitlines()[0]}); "
                                f"re-export it with `t2l export onnx`") from None
        if options.optimized_model_filepath:
            os.replace(options.optimized_model_filepath, cached)
        self.providers_in_use = list(self.session.get_providers())
        fell_back = [p for p in self.requested if p != "cpu" and PROVIDERS[p] not in self.providers_in_use]
        if fell_back:
            warnings.warn(f"{self.path}: requested execution provider(s) {fell_back} are not in use (ONNX Runtime "
                          f"runs this graph on {self.providers_in_use}); GPU figures from this session would be CPU "
                          f"figures. Install t2l-fast[onnx-gpu] (only it) and check CUDA/cuDNN/TensorRT libraries",
                          RuntimeWarning, stacklevel=2)
        self.input_specs = [TensorSpec(i.name, np.dtype(_ONNX_TYPES.get(i.type, np.float32)),
                                       tuple(d if isinstance(d, int) else str(d) for d in i.shape))
                            for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def deactivate(self) -> None:
        self.session = None

    def metadata(self) -> dict[str, str]:
        """The graph's metadata_props (model name, frames, image size, ...)."""
        return {p.key: p.value for p in self.header.metadata_props} if self.header is not None else {}

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.session is None:
            raise T2LError(f"{self.path}: use the runner inside `with` (it loads the session on entry)")
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def _cache_dir(self) -> Path | None:
        """`.ort-cache/` beside the graph when that folder is writable (nothing is written anywhere else)."""
        if not self.cache or not os.access(self.path.parent, os.W_OK):
            return None
        directory = self.path.parent / CACHE_DIR
        directory.mkdir(exist_ok=True)
        return directory

    def _cached_graph(self, cache_dir: Path | None, sha: str | None) -> Path | None:
        """Where the CPU-optimised copy of this graph lives, keyed by its content and ONNX Runtime's version;
        None for graphs with external weights or without a cache folder."""
        if cache_dir is None or any(t.external_data for t in self.header.graph.initializer):
            return None
        ort = import_onnxruntime()
        if sha is None:
            sha = file_sha256(self.path)
        return cache_dir / f"{self.path.stem}.{sha[:16]}.ort-{ort.__version__}.cpu.onnx"
