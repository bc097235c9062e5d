"""What this machine can do, measured in the same run as the benchmarks: dense matmul peaks (fp32, bf16, int8) and
peak memory of a measurement. FLOP/s here are FLOPs (2 x multiply-adds), as peaks are usually quoted."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


def _best_rate(run, flops: float, repeats: int) -> float:
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return flops / best


PROBE_SIZE = 256
CALL_BUDGET_S = 0.25  # one timed matmul at most about this long: a precision the CPU lacks gets a smaller matrix


def torch_matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float | None:
    """Best FLOP/s of size x size matmuls in torch at `dtype` (on the GPU when there is one); None if unsupported.
    A precision the CPU only emulates (bf16 without AVX512-BF16/AMX: minutes per 2048 matmul) is measured on the
    largest matrix whose matmul a small probe says takes at most CALL_BUDGET_S."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.inference_mode():
        if device == "cuda":
            size = max(size, 8192)  # enough work to fill a GPU; a small probe there would time launches, not math
        else:
            probe = _matmul(dtype, PROBE_SIZE, device)
            if probe is None:
                return None
            fitting = int((CALL_BUDGET_S * _best_rate(probe, 2.0 * PROBE_SIZE ** 3, 2) / 2) ** (1 / 3))
            size = max(PROBE_SIZE, min(size, fitting))
        run = _matmul(dtype, size, device)
        return None if run is None else _best_rate(run, 2.0 * size ** 3, repeats)


def _matmul(dtype: torch.dtype, size: int, device: str):
    """A call of one size x size matmul at `dtype` on `device` (synchronised on a GPU); None if unsupported."""
    try:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
    except (RuntimeError, TypeError):
        return None

    def run():
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()

    return run


def matmul_graph(size: int, int8: bool):
    """An ONNX graph y = x @ W (x [size, size] fp32 input, W a constant): plain, or with x and W quantized to int8
    through QuantizeLinear/DequantizeLinear pairs (the QDQ form our INT8 graphs have, which runtimes fuse into
    int8 matmuls)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    if not int8:
        weight = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), "w")
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        initializers = [weight]
    else:
        weight = numpy_helper.from_array(rng.integers(-127, 127, (size, size), dtype=np.int8), "w_q")
        scale = numpy_helper.from_array(np.array(0.02, np.float32), "s")
        zero = numpy_helper.from_array(np.array(0, np.int8), "z")
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["x_q"]),
                 helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x_dq"]),
                 helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w_dq"]),
                 helper.make_node("MatMul", ["x_dq", "w_dq"], ["y"])]
        initializers = [weight, scale, zero]
    graph = helper.make_graph(nodes, "matmul_peak", [x], [y], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def onnx_matmul_peaks(size: int = 2048, repeats: int = 5, threads: int | None = None) -> dict[str, float]:
    """Best FLOP/s (int8: integer ops/s) of the same matmul graph in ONNX Runtime and OpenVINO on the CPU, per
    precision, where they are installed."""
    from ..optional import installed

    threads = threads or torch.get_num_threads()
    x = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    flops, rates = 2.0 * size ** 3, {}
    graphs = {}
    try:
        graphs = {kind: matmul_graph(size, kind == "int8").SerializeToString() for kind in ("fp32", "int8")}
    except ImportError:
        return rates
    if installed("onnxruntime"):
        from ..optional import import_onnxruntime

        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        for kind, graph in graphs.items():
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            rates[kind] = _best_rate(lambda session=session: session.run(None, {"x": x}), flops, repeats)
    if installed("openvino"):
        import openvino as ov

        from ..runtime.openvino_runner import shared_core

        core = shared_core(ov)
        for kind, hint in (("fp32", "f32"), ("bf16", "bf16"), ("int8", None)):
            config = {"INFERENCE_NUM_THREADS": threads, **({"INFERENCE_PRECISION_HINT": hint} if hint else {})}
            try:
                compiled = core.compile_model(core.read_model(graphs["int8" if kind == "int8" else "fp32"], b""),
                                              "CPU", config)
            except RuntimeError:  # bf16 where the CPU has none
                continue
            rate = _best_rate(lambda compiled=compiled: compiled(x), flops, repeats)
            rates[kind] = max(rate, rates.get(kind, 0.0))
    return rates


def machine_peaks() -> dict[str, float | None]:
    """Dense matmul peak FLOP/s per precision (fp32, bf16, int8; fp16 on a GPU): the best that torch, ONNX Runtime
    and OpenVINO reach on one large matmul in this process, so a backend's fraction says how close it gets to what
    this machine can do with the libraries at hand."""
    peaks = {"fp32": torch_matmul_peak(torch.float32), "bf16": torch_matmul_peak(torch.bfloat16), "int8": None}
    if torch.cuda.is_available():
        peaks["fp16"] = torch_matmul_peak(torch.float16)
        return peaks
    for kind, rate in onnx_matmul_peaks().items():
        peaks[kind] = max(rate, peaks[kind] or 0.0)
    return peaks


# the CPU instruction sets that decide which matmul kernels the libraries can use (Linux /proc/cpuinfo names)
ISA_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8")


def cpu_isa() -> str:
    """The matmul-relevant instruction sets this CPU has ("avx2 fma avx512f ..."), or "unknown" off Linux."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    return " ".join(flag for flag in ISA_FLAGS if flag in flags) or "unknown"


# ------------------------------------------------------------------------------------------- memory
def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux: /proc/self/clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb(field: str = "VmHWM") -> float | None:
    """VmHWM (peak since the last reset) or VmRSS (now) of this process in MB, from /proc/self/status."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
