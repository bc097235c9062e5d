"""Backend name + export folder -> runner of one of its graphs: what `t2l predict` and `t2l serve` both open."""
from __future__ import annotations

from collections.abc import Callable

from ..errors import T2LError
from .bundle import ExportedModel

EXPORT_BACKENDS = ("onnx", "tensorrt")  # backends that run an export folder's graphs (or engines built from them)


def runner_factory(bundle: ExportedModel, backend: str, device: str | None = "cpu",
                   trt_runtime: str = "auto") -> Callable[[str], object]:
    """`open_runner(kind)` giving a checked runner (context manager) of graph `kind` on `backend`."""
    if backend == "tensorrt":
        return lambda kind: bundle.engine_runner(kind, trt_runtime)
    if backend == "onnx":
        providers = ["cuda", "cpu"] if device == "cuda" else ["cpu"]
        return lambda kind: bundle.runner(kind, providers)
    raise T2LError(f"--backend {backend}: not a backend of export folders; use one of {', '.join(EXPORT_BACKENDS)}")


def backend_title(backend: str) -> str:
    """What a backend runs, for one-line summaries."""
    return {"onnx": "ONNX Runtime", "tensorrt": "TensorRT engines"}.get(backend, backend)
