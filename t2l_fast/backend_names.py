"""The names of the backends that run an export folder (`t2l predict --backend NAME`), and what each is; plain data,
so that the CLI's parser can list them without importing a runtime."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportBackend:
    name: str
    runtime: str  # ONNX Runtime | OpenVINO | TensorRT
    precision: str  # fp32 | bf16 | int8 (the gated INT8 QDQ graphs) | engine (whatever the engine was built at)
    module: str  # the Python module it needs
    cpu: bool = True  # runs on the CPU
    gpu: bool = False  # runs on a CUDA GPU

    def describe(self) -> str:
        return self.runtime if self.precision in ("fp32", "engine") else f"{self.runtime} {self.precision}"


BACKENDS = {b.name: b for b in (
    ExportBackend("onnx", "ONNX Runtime", "fp32", "onnxruntime", gpu=True),
    ExportBackend("onnx-int8", "ONNX Runtime", "int8", "onnxruntime"),
    ExportBackend("openvino", "OpenVINO", "fp32", "openvino"),
    ExportBackend("openvino-bf16", "OpenVINO", "bf16", "openvino"),
    ExportBackend("openvino-int8", "OpenVINO", "int8", "openvino"),
    ExportBackend("tensorrt", "TensorRT", "engine", "tensorrt", cpu=False, gpu=True),
)}
