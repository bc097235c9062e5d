"""What the runtimes really ran, for the throughput report: OpenVINO's kernel for each matrix product (its
instruction set and precision, e.g. `jit_gemm_i8`, `brgemm_avx512_amx_bf16`), and where an inference's time goes per
operation, from OpenVINO's performance counters or ONNX Runtime's profiler."""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

# the runtime model's layer types that do matrix products (a quantized FullyConnected keeps its old name in places)
MATMUL_LAYERS = ("FullyConnected", "FullyConnectedQuantizedLegacy", "MatMul", "Convolution")


def _rt_info(op, key: str) -> str:
    info = op.get_rt_info()
    return info[key].astype(str) if key in info else "?"


def matmul_kernels(compiled) -> str:
    """The kernels of the compiled model's matrix products, counted: "jit_gemm_i8 x41, brgemm_avx2_f32 x8"."""
    counts = Counter(_rt_info(op, "primitiveType") for op in compiled.get_runtime_model().get_ops()
                     if _rt_info(op, "layerType") in MATMUL_LAYERS)
    return ", ".join(f"{kernel} x{count}" for kernel, count in counts.most_common())


def time_shares(model, config: dict, feed: np.ndarray, calls: int = 3, top: int = 6) -> str:
    """The largest shares of inference time by operation/kernel ("FullyConnected/jit_gemm_I8 71%, ..."), from a
    separate compile of `model` (graph path or ov.Model) with performance counters on, so the timed one is
    untouched."""
    import openvino as ov

    from ..runtime.openvino_runner import shared_core

    request = shared_core(ov).compile_model(model, "CPU", {**config, "PERF_COUNT": True}).create_infer_request()
    request.infer([feed])  # the first call picks kernels for the shape: left out, as in ort_time_shares
    totals: Counter = Counter()
    for _ in range(calls):
        request.infer([feed])
        for node in request.profiling_info:
            totals[f"{node.node_type}/{node.exec_type}"] += node.real_time.total_seconds()
    return _shares(totals, top)


def ort_time_shares(graph: Path, threads: int, feed: dict[str, np.ndarray], calls: int = 3, top: int = 6) -> str:
    """The largest shares of inference time by operator ("MatMulInteger 52%, DynamicQuantizeLinear 9%, ..."), from
    ONNX Runtime's profiler on a separate session of `graph` (CPU, `threads` threads)."""
    from ..optional import import_onnxruntime

    ort = import_onnxruntime()
    with tempfile.TemporaryDirectory(prefix="t2l-ort-profile-") as scratch:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.enable_profiling = threads, True
        options.profile_file_prefix = str(Path(scratch) / "profile")
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        for _ in range(calls + 1):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] + e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    warm = runs[0] if runs else -1  # the first run is cold (allocations, kernel choice): left out
    totals: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] > warm:
            totals[event.get("args", {}).get("op_name", "?")] += event.get("dur", 0) / 1e6
    return _shares(totals, top)


def _shares(totals: Counter, top: int) -> str:
    whole = sum(totals.values()) or 1.0
    return ", ".join(f"{name} {seconds / whole:.0%}" for name, seconds in totals.most_common(top))
