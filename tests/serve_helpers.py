"""Helpers of the `t2l serve` tests: a served tiny export, random clips, and the Triton availability check."""
import numpy as np
import pytest

from t2l_fast.deploy.serve import ServeOptions, TritonServer
from t2l_fast.errors import MissingDependencyError

MAX_BATCH = 8


def start_server(folder, **options) -> TritonServer:
    """A started server on free loopback ports, on ONNX Runtime on the CPU running batches of up to MAX_BATCH unless
    `options` say otherwise; skips the test where the PyTriton wheel is not installed."""
    options = {"backend": "onnx", "device": "cpu", "run_batch": MAX_BATCH, **options}
    try:
        return TritonServer(folder, ServeOptions(host="127.0.0.1", http_port=0, grpc_port=0, metrics_port=0,
                                                 max_batch=MAX_BATCH, exit_timeout_s=3, **options)).start()
    except MissingDependencyError as e:
        pytest.skip(f"no Triton server here: {e}")


def clips(batch: int, frames: int = 8, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 [B, T, 3, S, S], as `t2l predict` sends."""
    return np.random.default_rng(seed).integers(0, 256, (batch, frames, 3, size, size), dtype=np.uint8)
