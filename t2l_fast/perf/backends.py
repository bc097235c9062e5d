"""The inference backends the throughput benchmark compares, each as `run(uint8 clips [B, T, 3, S, S]) -> video
embeddings [B, D]` over the same video-encoder computation (normalisation inside), with the parity gate its figure
must pass against torch eager fp32 in the same run."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..runtime.compare import Tolerance

FP32_GATE = Tolerance(max_abs=1e-4)  # embeddings are L2-normalised
REDUCED_GATE = Tolerance(min_cosine=0.99)  # bf16 and int8: every clip's embedding keeps its direction


@dataclass
class Backend:
    name: str
    precision: str  # fp32 | bf16 | fp16 | int8: the matmul peak its FLOP/s are compared with
    run: Callable[[np.ndarray], np.ndarray]
    gate: Tolerance
    setup_seconds: float = 0.0  # building it: compile, session, quantisation


def available(names: List[str]) -> List[str]:
    """The backends of `names` whose libraries are installed (and CUDA ones only with a GPU)."""
    from ..optional import installed

    needs = {"onnxruntime-fp32": "onnxruntime", "onnxruntime-int8": "onnxruntime", "openvino-fp32": "openvino",
             "openvino-bf16": "openvino", "openvino-int8": "openvino"}
    keep = []
    for name in names:
        if name in needs and not (installed(needs[name]) or installed(needs[name] + "-gpu")):
            continue
        if name.startswith("torch-cuda") and not torch.cuda.is_available():
            continue
        keep.append(name)
    return keep


def _torch_backend(graph: torch.nn.Module, autocast: Optional[torch.dtype] = None, device: str = "cpu") -> Callable:
    def run(clips: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(clips).to(device)
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=autocast,
                                                    enabled=autocast is not None):
            out = graph(frames)
        if device != "cpu":
            torch.cuda.synchronize()
        return out.float().cpu().numpy()

    return run


def build_backend(name: str, model, work_dir: Path, calibration: np.ndarray) -> Backend:
    """Backend `name` for the video encoder of `model` (ONNX graphs are exported into `work_dir` once)."""
    from ..deploy.graphs import build_graph

    started = time.perf_counter()
    graph = build_graph("video_encoder", model.eval())
    if name == "torch-eager":
        backend = Backend(name, "fp32", _torch_backend(graph), FP32_GATE)
    elif name == "torch-bf16":
        backend = Backend(name, "bf16", _torch_backend(graph, torch.bfloat16), REDUCED_GATE)
    elif name == "torch-compile":
        compiled = torch.compile(graph)
        backend = Backend(name, "fp32", _torch_backend(compiled), FP32_GATE)
        backend.run(calibration[:1])  # compile now, not inside the timing
    elif name in ("torch-cuda-fp16", "torch-cuda-fp32"):
        dtype = torch.float16 if name.endswith("fp16") else None
        on_gpu = graph.to("cuda")
        gate = REDUCED_GATE if dtype else FP32_GATE
        backend = Backend(name, "fp16" if dtype else "fp32", _torch_backend(on_gpu, dtype, "cuda"), gate)
    elif name.startswith("onnxruntime"):
        backend = _onnxruntime_backend(name, model, work_dir, calibration)
    elif name.startswith("openvino"):
        backend = _openvino_backend(name, model, work_dir, calibration)
    else:
        raise ValueError(f"unknown backend {name!r}")
    backend.setup_seconds = time.perf_counter() - started
    return backend


def onnx_graphs(model, work_dir: Path, calibration: np.ndarray, int8: bool) -> Dict[str, Path]:
    """The fp32 video encoder graph of `model` in `work_dir` (exported once), and its static INT8 QDQ version."""
    from ..deploy.int8 import quantise_graph
    from ..deploy.onnx_export import ExportOptions, export_onnx

    folder = work_dir / model.config.name
    graphs = {"fp32": folder / "video_encoder.onnx", "int8": folder / "video_encoder_int8.onnx"}
    if not graphs["fp32"].is_file():
        export_onnx(model, folder, options=ExportOptions(), check=False, log=lambda line: None)
    if int8 and not graphs["int8"].is_file():
        quantise_graph(graphs["fp32"], graphs["int8"], "static", calibration)
    return graphs


def _onnxruntime_backend(name: str, model, work_dir: Path, calibration: np.ndarray) -> Backend:
    from ..runtime.ort_runner import OrtRunner

    int8 = name.endswith("int8")
    path = onnx_graphs(model, work_dir, calibration, int8)["int8" if int8 else "fp32"]
    runner = OrtRunner(path, ("cpu",), threads=torch.get_num_threads()).__enter__()
    gate = REDUCED_GATE if int8 else FP32_GATE
    return Backend(name, "int8" if int8 else "fp32", lambda clips: runner.infer({"frames": clips})["embedding"], gate)


def _openvino_backend(name: str, model, work_dir: Path, calibration: np.ndarray) -> Backend:
    import openvino as ov

    int8 = name.endswith("int8")
    path = onnx_graphs(model, work_dir, calibration, int8)["int8" if int8 else "fp32"]
    precision = name.rsplit("-", 1)[-1]
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"}
    if precision in ("fp32", "bf16"):
        config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16"}[precision]
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    output = compiled.output(0)
    gate = FP32_GATE if precision == "fp32" else REDUCED_GATE
    return Backend(name, precision, lambda clips: np.asarray(compiled(clips)[output]), gate)
