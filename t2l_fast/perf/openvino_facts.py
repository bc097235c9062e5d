"""What OpenVINO really ran, for the throughput report: the kernel of each matrix product (its instruction set and
precision, e.g. `jit_gemm_i8`, `brgemm_avx512_amx_bf16`) and where an inference's time goes, from OpenVINO's own
performance counters."""
from __future__ import annotations

from collections import Counter

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
    totals: Counter = Counter()
    for _ in range(calls):
        request.infer([feed])
        for node in request.profiling_info:
            totals[f"{node.node_type}/{node.exec_type}"] += node.real_time.total_seconds()
    whole = sum(totals.values()) or 1.0
    return ", ".join(f"{name} {seconds / whole:.0%}" for name, seconds in totals.most_common(top))
