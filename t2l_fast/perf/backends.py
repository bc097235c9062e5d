"""The inference backends the throughput benchmark compares, each as `run(uint8 clips [B, T, 3, S, S]) -> video
embeddings [B, D]` over the same video-encoder computation (normalization inside), with the parity gate its figure
must pass against torch eager fp32 in the same run."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import BackendError, UnsupportedOptionError
from ..runtime.compare import FP32_GATE, REDUCED_GATE, Tolerance


@dataclass
class Backend:
    name: str
    precision: str  # fp32 | bf16 | fp16 | int8: the matmul peak its FLOP/s are compared with
    run: Callable[[np.ndarray], np.ndarray]
    gate: Tolerance
    setup_seconds: float = 0.0  # building it: compile, session, quantization
    takes_tensors: bool = False  # run() also takes a torch tensor where it lies (a loader's CUDA batch: no copy)
    row_facts: dict = field(default_factory=dict)  # added to each benchmark row (ORT GPU: nodes_per_provider)
    profile: Callable[[np.ndarray], dict] | None = None  # facts added to a model's last row (time_by_op, kernels)

    def feed(self, video: torch.Tensor):
        """A loader's uint8 batch as this backend takes it: the tensor itself, or a host numpy array."""
        return video if self.takes_tensors else video.cpu().numpy()

    @property
    def handoff(self) -> str:
        """How a loader's batch reaches this backend (stated in the end-to-end report)."""
        return "tensor where the loader left it (no copy)" if self.takes_tensors else "host numpy array (.cpu())"


def _is_available(name: str) -> bool:
    from ..optional import installed
    from ..runtime.ort_runner import PROVIDERS

    on_gpu = "cuda" in name or "tensorrt" in name
    if on_gpu and not torch.cuda.is_available():
        return False
    if name.startswith("onnxruntime"):
        if not (installed("onnxruntime") or installed("onnxruntime-gpu")):
            return False
        import onnxruntime

        provider = PROVIDERS.get(name.split("-")[1])  # None for the CPU's fp32/int8
        return provider is None or provider in onnxruntime.get_available_providers()
    if name.startswith("openvino"):
        return bool(installed("openvino")) and (name != "openvino-nncf" or bool(installed("nncf")))
    if name.startswith("tensorrt"):
        from ..runtime.trt_support import engines_cannot_run_reason

        return engines_cannot_run_reason() is None
    return True


def available(names: list[str]) -> list[str]:
    """The backends of `names` whose libraries are installed (and the GPU ones only where torch sees a GPU)."""
    return [name for name in names if _is_available(name)]


def _torch_backend(graph: torch.nn.Module, autocast: torch.dtype | None = None, device: str = "cpu") -> Callable:
    def run(clips) -> np.ndarray:  # numpy, or a tensor on any device (moved only if it is elsewhere)
        frames = torch.as_tensor(clips).to(device)
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=autocast,
                                                    enabled=autocast is not None):
            out = graph(frames)
        if device != "cpu":
            torch.cuda.synchronize()
        return out.float().cpu().numpy()

    return run


def build_backend(name: str, model, work_dir: Path, calibration: np.ndarray, max_batch: int = 8,
                  frame_counts: tuple[int, ...] = ()) -> Backend:
    """Backend `name` for the video encoder of `model`, for batches up to `max_batch` and clips of `frame_counts`
    frames (default the model's T) (ONNX graphs are exported into `work_dir` once; TensorRT engines are built for
    1..max_batch)."""
    from ..models.graphs import build_graph

    started = time.perf_counter()
    graph = build_graph("video_encoder", model.eval())
    if name == "torch-eager":
        backend = Backend(name, "fp32", _torch_backend(graph), FP32_GATE, takes_tensors=True)
    elif name == "openvino-nncf":
        backend = _nncf_backend(graph, calibration, frame_counts)
    elif name == "torch-bf16":
        backend = Backend(name, "bf16", _torch_backend(graph, torch.bfloat16), REDUCED_GATE, takes_tensors=True)
    elif name == "torch-compile":
        compiled = torch.compile(graph)
        backend = Backend(name, "fp32", _torch_backend(compiled), FP32_GATE, takes_tensors=True)
        backend.run(calibration[:1])  # compile now, not inside the timing
    elif name in ("torch-cuda-fp16", "torch-cuda-fp32"):
        dtype = torch.float16 if name.endswith("fp16") else None
        on_gpu = graph.to("cuda")
        gate = REDUCED_GATE if dtype else FP32_GATE
        backend = Backend(name, "fp16" if dtype else "fp32", _torch_backend(on_gpu, dtype, "cuda"), gate,
                          takes_tensors=True)
    elif name.startswith("onnxruntime"):
        backend = _onnxruntime_backend(name, model, work_dir, calibration)
    elif name == "tensorrt-fp16":
        backend = _tensorrt_backend(model, work_dir, calibration, max_batch,
                                    frame_counts or (model.config.frames,))
    elif name.startswith("openvino"):
        backend = _openvino_backend(name, model, work_dir, calibration)
    else:
        raise UnsupportedOptionError(f"unknown backend {name!r}")
    backend.setup_seconds = time.perf_counter() - started
    if name.startswith("torch") and not name.startswith("torch-cuda"):
        backend.row_facts["isa"] = f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}"
    return backend


def onnx_graph(model, work_dir: Path, calibration: np.ndarray, precision: str) -> Path:
    """The video encoder graph of `model` in `work_dir` at `precision` (exported once): fp32, fp16, or the static
    INT8 QDQ version of the fp32 graph."""
    from ..deploy.int8 import quantize_graph
    from ..deploy.onnx_export import ExportOptions, export_onnx

    folder = work_dir / model.config.name
    if precision == "int8":
        path = folder / "video_encoder_int8.onnx"
        if not path.is_file():
            quantize_graph(onnx_graph(model, work_dir, calibration, "fp32"), path, "static", calibration)
        return path
    if precision == "fp16":
        folder = folder.with_name(folder.name + "-fp16")
    path = folder / "video_encoder.onnx"
    if not path.is_file():
        export_onnx(model, folder, options=ExportOptions(precision=precision), check=False, log=lambda line: None)
    return path


def _onnxruntime_backend(name: str, model, work_dir: Path, calibration: np.ndarray) -> Backend:
    """onnxruntime-{fp32,int8} on the CPU; onnxruntime-{cuda,tensorrt}-fp16 on the GPU (refused if ONNX Runtime
    fell back to the CPU: a CPU figure must not pass for a GPU one; their rows record where the nodes ran)."""
    from ..runtime.ort_runner import OrtRunner

    provider, precision = {"fp32": ("cpu", "fp32"), "int8": ("cpu", "int8"), "cuda-fp16": ("cuda", "fp16"),
                           "tensorrt-fp16": ("tensorrt", "fp16")}[name.split("-", 1)[1]]
    path = onnx_graph(model, work_dir, calibration, precision)
    providers = ("tensorrt", "cuda") if provider == "tensorrt" else (provider,)
    runner = OrtRunner(path, providers, threads=torch.get_num_threads()).__enter__()
    gate = FP32_GATE if precision == "fp32" else REDUCED_GATE
    backend = Backend(name, precision, lambda clips: runner.infer({"frames": clips})["embedding"].astype(np.float32),
                      gate)
    if provider == "cpu":
        from .op_profiles import ort_time_shares

        backend.profile = lambda clips: {"time_by_op": ort_time_shares(path, torch.get_num_threads(),
                                                                       {"frames": clips})}
    else:
        backend.run(calibration[:1])  # the profiled first inference: where the nodes really ran
        refuse_cpu_fallback(runner, provider)
        backend.row_facts = {"nodes_per_provider": runner.nodes_per_provider}
    return backend


def refuse_cpu_fallback(runner, provider: str) -> None:
    """Raise when ONNX Runtime did not register `provider` for the runner's graph, or ran none of its nodes there."""
    from ..runtime.ort_runner import PROVIDERS

    if runner.provider_fallback:
        raise BackendError(f"{runner.path}: {runner.provider_fallback}")
    if not (runner.nodes_per_provider or {}).get(PROVIDERS[provider]):
        raise BackendError(f"{runner.path}: ONNX Runtime registered {PROVIDERS[provider]} but ran none of the "
                           f"graph's nodes on it (nodes per provider: {runner.nodes_per_provider}), so its figures "
                           f"would be another provider's: check the graph's precision and opset against what "
                           f"{PROVIDERS[provider]} supports")


def _tensorrt_backend(model, work_dir: Path, calibration: np.ndarray, max_batch: int,
                      frame_counts: tuple[int, ...]) -> Backend:
    """tensorrt-fp16: engines built from the fp16 graph for batches 1..max_batch (tuned for max_batch), one per
    frame count of a free frame axis, run by the TensorRT runner on the GPU."""
    from ..deploy.engine_build import frame_axis_is_free
    from ..runtime.graph_header import read_graph_facts

    graph = onnx_graph(model, work_dir, calibration, "fp16")
    # One engine per frame count, not one MIN:OPT:MAX engine: TensorRT picks kernels for the opt shape only, so a
    # ranged engine would time 16 and 32 frames on kernels tuned for another token count. A fixed frame axis (T2L)
    # needs one engine.
    counts = sorted(set(frame_counts)) if frame_axis_is_free(read_graph_facts(graph)) else [None]
    runners = {count: _tensorrt_runner(graph, max_batch, count) for count in counts}

    def run(clips: np.ndarray) -> np.ndarray:
        runner = runners.get(clips.shape[1], runners.get(None))
        if runner is None:
            raise UnsupportedOptionError(f"tensorrt-fp16 built engines for {counts} frames, not {clips.shape[1]}; "
                                         f"pass the frame count to build_backend(frame_counts=...)")
        return runner.infer({"frames": clips})["embedding"].astype(np.float32)

    return Backend("tensorrt-fp16", "fp16", run, REDUCED_GATE)


def _tensorrt_runner(graph: Path, max_batch: int, frames: int | None):
    """The runner of an engine of `graph` for batches 1..max_batch at `frames` frames (None: the graph's own)."""
    from ..deploy.engine_build import BuildOptions, build_engine
    from ..runtime.trt_runner import TrtRunner

    engine = graph.with_name(f"video_encoder_b{max_batch}" + (f"_f{frames}" if frames else "") + ".engine")
    options = BuildOptions(max_batch=max_batch, opt_batch=max_batch, frames=(frames,) * 3 if frames else None)
    build_engine(graph, options, engine, log=lambda line: None)
    return TrtRunner(engine).__enter__()


def _openvino_backend(name: str, model, work_dir: Path, calibration: np.ndarray) -> Backend:
    """openvino-{fp32,bf16,int8}: the runtime's OpenVINO runner (no compiled-model cache: setup is timed) on the
    fp32 graph, or on the static INT8 QDQ graph; its row records the precision OpenVINO really used."""
    from ..runtime.openvino_runner import OpenVinoRunner

    precision = name.rsplit("-", 1)[-1]
    path = onnx_graph(model, work_dir, calibration, "int8" if precision == "int8" else "fp32")
    runner = OpenVinoRunner(path, precision, threads=torch.get_num_threads(), cache=False).__enter__()
    gate = FP32_GATE if precision == "fp32" else REDUCED_GATE
    backend = Backend(name, precision, lambda clips: runner.infer({"frames": clips})["embedding"], gate)
    return _with_openvino_facts(backend, runner.compiled, str(path), runner.config())


def _nncf_backend(graph: torch.nn.Module, calibration: np.ndarray, frame_counts: tuple[int, ...] = ()) -> Backend:
    """openvino-nncf: OpenVINO's own INT8 recipe, to compare ours with: the PyTorch video encoder converted by
    `openvino.convert_model` (through torch.export, batch axis free) and quantized by `nncf.quantize` with its
    defaults for transformers, calibrated on the same clips as our INT8 graph, gated like ours."""
    from ..optional import require
    from ..runtime.openvino_runner import shared_core

    ov = require("openvino", "bench", "the openvino-nncf backend")
    nncf = require("nncf", "bench", "the openvino-nncf backend")
    axes = {0: torch.export.Dim("batch", min=1, max=1024)}  # traced at batch 2: batch 1 would be specialised away
    if len(set(frame_counts)) > 1:  # ViFi-CLIP/CLIP at several frame counts: a free frame axis too
        axes[1] = torch.export.Dim("frames", min=2, max=max(frame_counts))
    exported = torch.export.export(graph, (torch.from_numpy(calibration[:2]),), dynamic_shapes=(axes,))
    quantized = nncf.quantize(ov.convert_model(exported), nncf.Dataset([clip[None] for clip in calibration]),
                              model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration))
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"}
    compiled = shared_core(ov).compile_model(quantized, "CPU", config)
    backend = Backend("openvino-nncf", "int8", lambda clips: np.asarray(compiled(clips)[0], dtype=np.float32),
                      REDUCED_GATE)
    return _with_openvino_facts(backend, compiled, quantized, config)


def _with_openvino_facts(backend: Backend, compiled, model, config: dict) -> Backend:
    """Rows of an OpenVINO backend say which precision it ran in; its last row also which matmul kernels it ran, and
    where one call's time went."""
    from ..runtime.openvino_runner import precision_in_use
    from .op_profiles import matmul_kernels, time_shares

    backend.row_facts = {"precision_in_use": precision_in_use(compiled)}
    # kernels are picked at the first call on a shape, so both are read after the timing
    backend.profile = lambda clips: {"matmul_kernels": matmul_kernels(compiled),
                                     "time_by_op": time_shares(model, config, clips)}
    return backend
