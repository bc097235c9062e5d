"""ONNX Runtime runner (CPU, CUDA and TensorRT execution providers), with the graph file checked before loading."""
from __future__ import annotations

import importlib
import json
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import T2LError
from ..io import file_sha256
from ..optional import import_onnxruntime, onnxruntime_conflict
from .base import ArtifactError, Runner, TensorSpec, cache_folder
from .graph_header import check_sha256, read_graph_header

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
GPU_PROVIDERS = ("cuda", "tensorrt")
# What a compiled-in GPU provider needs at load time: onnxruntime-gpu 1.21-1.24 are built against CUDA 12, cuDNN 9
# and TensorRT 10 (1.21: 10.8, 1.22: 10.9, 1.24: 10.14), the pairs pinned by the onnx-gpu extra.
PROVIDER_LIBRARIES = {
    "cuda": "CUDA 12 and cuDNN 9 (pip install 'onnxruntime-gpu[cuda,cudnn]', or put them on LD_LIBRARY_PATH)",
    "tensorrt": "TensorRT 10's libnvinfer.so.10 (pip install 'tensorrt-cu12>=10.8,<11' so that `import tensorrt` "
                "loads it, or put TensorRT's lib folder on LD_LIBRARY_PATH before starting Python)",
}
_ONNX_TYPES = {"tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
               "tensor(float)": np.float32, "tensor(float16)": np.float16}
CACHE_DIR = ".ort-cache"  # beside the graph: optimised graphs and TensorRT EP engines
CPU_OPS_SHOWN = 5  # op types named in the CPU-fallback warning


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


def load_gpu_libraries(ort, requested: Sequence[str]) -> list[str]:
    """Load what the GPU providers in `requested` dlopen by name, before the session is created (ONNX Runtime
    silently drops a provider whose libraries it cannot open); notes on what could not be loaded."""
    if not any(name in GPU_PROVIDERS for name in requested):
        return []
    notes = []
    if hasattr(ort, "preload_dlls"):  # onnxruntime >= 1.21: CUDA 12 and cuDNN 9, from site-packages/nvidia first
        try:
            ort.preload_dlls()
        except Exception as e:  # a failed preload is a reason to report, the session decides what loads
            notes.append(f"onnxruntime.preload_dlls() failed ({e})")
    else:
        notes.append(f"onnxruntime {ort.__version__} has no preload_dlls() (1.21+), so CUDA and cuDNN must already "
                     f"be on the library path")
    if "tensorrt" in requested:
        try:  # pip's TensorRT keeps libnvinfer in tensorrt_libs, which only `import tensorrt` loads
            importlib.import_module("tensorrt")
        except (ImportError, OSError) as e:
            notes.append(f"`import tensorrt` failed ({e}), so libnvinfer.so.10 was not loaded")
    return notes


def provider_fallback(requested: Sequence[str], registered: Sequence[str], compiled_in: Sequence[str],
                      notes: Sequence[str] = ()) -> str | None:
    """Why GPU providers in `requested` are missing from the session's `registered` ones, with the fix; None when
    every one asked for is there."""
    missing = [name for name in requested if name in GPU_PROVIDERS and PROVIDERS[name] not in registered]
    if not missing:
        return None
    reasons = []
    for name in missing:
        if PROVIDERS[name] not in compiled_in:
            reasons.append(f"{PROVIDERS[name]} is not in this onnxruntime build (it has {list(compiled_in)}): "
                           f"install t2l-fast[onnx-gpu] and only it (onnxruntime-gpu, not onnxruntime)")
        else:
            reasons.append(f"{PROVIDERS[name]} is compiled in but could not load its libraries (ONNX Runtime "
                           f"printed the one it could not open on stderr): it needs {PROVIDER_LIBRARIES[name]}")
    return (f"requested execution provider(s) {missing} are not in use (ONNX Runtime runs this graph on "
            f"{list(registered)}): {'; '.join([*reasons, *notes])}. GPU figures from this session would be CPU "
            f"figures")


@dataclass(frozen=True)
class NodePlacement:
    """Where a session's nodes ran in one profiled inference."""

    nodes_per_provider: dict[str, int]
    cpu_op_types: tuple[str, ...]  # sorted, each once


def node_placement(events: Sequence[Mapping]) -> NodePlacement:
    """Node counts per execution provider from the events of an ONNX Runtime profile (`cat` "Node" events carry
    `args.provider` and `args.op_name`; a node that emits several events is counted once, by event name)."""
    nodes = {event["name"]: (event["args"]["provider"], event["args"].get("op_name", "?")) for event in events
             if event.get("cat") == "Node" and "provider" in event.get("args", {})}
    counts = Counter(provider for provider, _ in nodes.values())
    cpu_ops = sorted({op for provider, op in nodes.values() if provider == PROVIDERS["cpu"]})
    return NodePlacement(dict(sorted(counts.items())), tuple(cpu_ops))


def cpu_fallback_warning(graph: str, placement: NodePlacement, requested: Sequence[str]) -> str | None:
    """A warning when nodes ran on the CPU although a GPU provider was asked for (None otherwise)."""
    asked = [name for name in requested if name in GPU_PROVIDERS]
    on_cpu = placement.nodes_per_provider.get(PROVIDERS["cpu"], 0)
    if not asked or not on_cpu:
        return None
    shown = list(placement.cpu_op_types[:CPU_OPS_SHOWN])
    more = len(placement.cpu_op_types) - len(shown)
    return (f"{graph}: {on_cpu} of {sum(placement.nodes_per_provider.values())} nodes ran on the CPU although "
            f"{asked} was asked for (nodes per provider: {placement.nodes_per_provider}; op types on the CPU: "
            f"{', '.join(shown)}{f' and {more} more' if more else ''}). ONNX Runtime keeps small shape ops on the "
            f"CPU on purpose; compute ops there (MatMul, Conv, Softmax, ...) have no GPU kernel at this precision "
            f"or opset and copy across PCIe on every call: re-export with `t2l export onnx` at a precision and "
            f"opset the provider supports")


def profiled_placement(session) -> NodePlacement:
    """End `session`'s profiling, read where its nodes ran from the profile, and delete the profile file."""
    path = session.end_profiling()  # "" when profiling was not on
    if not path:
        return NodePlacement({}, ())
    try:
        return node_placement(json.loads(Path(path).read_text()))
    finally:
        Path(path).unlink(missing_ok=True)


class OrtRunner(Runner):
    """Runs one ONNX graph. providers: cpu, cuda, tensorrt (in order of preference). `providers_in_use` is what the
    session really got (`provider_fallback` says why a requested GPU provider is missing, and is warned about);
    with a GPU provider asked for, the first inference is profiled: `nodes_per_provider` says where its nodes ran,
    and nodes on the CPU are warned about once."""

    def __init__(self, path: str | Path, providers: Sequence[str] = ("cpu",), *,
                 expected_sha256: str | None = None, threads: int | None = None, cache: bool = True):
        self.path = Path(path)
        self.name = str(self.path)
        self.requested = list(providers)
        self.expected_sha256, self.threads, self.cache = expected_sha256, threads, cache
        self.session = None
        self.providers_in_use: list[str] = []
        self.provider_fallback: str | None = None
        self.nodes_per_provider: dict[str, int] | None = None  # set by the first inference when a GPU was asked for
        self.header = None
        self._profiling = False

    @property
    def wants_gpu(self) -> bool:
        """Whether a GPU provider was asked for (then its libraries are loaded and the first inference profiled)."""
        return any(name in GPU_PROVIDERS for name in self.requested)

    def activate(self) -> None:
        conflict = onnxruntime_conflict()
        if conflict:
            raise T2LError(conflict)
        ort = import_onnxruntime()
        sha = check_sha256(self.path, self.expected_sha256)
        self.header = read_graph_header(self.path)
        cache_dir = cache_folder(self.path, CACHE_DIR, self.cache)
        notes = load_gpu_libraries(ort, self.requested)
        self.session = self._create_session(ort, cache_dir, sha)
        self._profiling = self.wants_gpu
        self.providers_in_use = list(self.session.get_providers())
        self.provider_fallback = provider_fallback(self.requested, self.providers_in_use,
                                                   ort.get_available_providers(), notes)
        if self.provider_fallback:
            warnings.warn(f"{self.path}: {self.provider_fallback}", RuntimeWarning, stacklevel=2)
        self.input_specs = [TensorSpec(i.name, np.dtype(_ONNX_TYPES.get(i.type, np.float32)),
                                       tuple(d if isinstance(d, int) else str(d) for d in i.shape))
                            for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _session_options(self, ort):
        """Threads, optimisation level, log level, and profiling when a GPU provider was asked for."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or os.cpu_count() or 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.requested == ["cpu"] and _holds_fp16(self.header):
            # ONNX Runtime 1.32's level-ALL (layout) passes crash the process on our fp16 graphs on the CPU; fp16
            # is a GPU format, and the CPU run only checks it, so the CPU gets the level below.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # errors only: ORT's warnings about unused initializers are noise here; node placement is read from a
        # profile of the first inference instead (its "not assigned to the preferred provider" warning is hidden)
        options.log_severity_level = 3
        if self.wants_gpu:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"t2l-ort-{os.getpid()}-{id(self)}")
        return options

    def _create_session(self, ort, cache_dir: Path | None, sha: str | None):
        """The session, from the CPU-optimised copy of the graph when one is cached (a damaged copy is dropped and
        the graph loaded instead)."""
        options = self._session_options(ort)
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
            session = ort.InferenceSession(str(source), sess_options=options, providers=provider_list(
                self.requested, cache_dir))
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
            if options.optimized_model_filepath:
                Path(options.optimized_model_filepath).unlink(missing_ok=True)
            if source != self.path:  # a damaged cache entry is dropped, never trusted
                source.unlink(missing_ok=True)
                return self._create_session(ort, cache_dir, sha)
            raise ArtifactError(f"{self.path}: ONNX Runtime cannot load this graph ({str(e).splitlines()[0]}); "
                                f"re-export it with `t2l export onnx`") from None
        if options.optimized_model_filepath:
            os.replace(options.optimized_model_filepath, cached)
        return session

    def deactivate(self) -> None:
        if self._profiling:  # never inferred: end the profile so that its file is not left behind
            self._profiling = False
            profiled_placement(self.session)
        self.session = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.session is None:
            raise T2LError(f"{self.path}: use the runner inside `with` (it loads the session on entry)")
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feed)))
        if self._profiling:
            self._record_placement()
        return outputs

    def _record_placement(self) -> None:
        """Read where the profiled inference's nodes ran (profiling ends with it) and warn about CPU nodes."""
        self._profiling = False
        placement = profiled_placement(self.session)
        self.nodes_per_provider = placement.nodes_per_provider
        message = cpu_fallback_warning(str(self.path), placement, self.requested)
        on_gpu = any(PROVIDERS[name] in self.providers_in_use for name in GPU_PROVIDERS)
        if message and on_gpu:  # with no GPU provider at all, the provider_fallback warning has said so already
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _cached_graph(self, cache_dir: Path | None, sha: str | None) -> Path | None:
        """Where the CPU-optimised copy of this graph lives, keyed by its content and ONNX Runtime's version;
        None for graphs with external weights or without a cache folder."""
        if cache_dir is None or any(t.external_data for t in self.header.graph.initializer):
            return None
        ort = import_onnxruntime()
        if sha is None:
            sha = file_sha256(self.path)
        return cache_dir / f"{self.path.stem}.{sha[:16]}.ort-{ort.__version__}.cpu.onnx"
