"""TensorRT runner: a serialised engine behind the runner contract, with device buffers as torch CUDA tensors (no
extra CUDA Python package). Before any engine byte is deserialised, its sidecar is read, its sha256 checked and its
TensorRT release and GPU targets compared with this process's (runtime/engine_sidecar)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from ..errors import T2LError
from .base import ArtifactError, Runner
from .engine_sidecar import check_compatible, check_engine_bytes, describe_target, io_specs, read_sidecar
from .trt_support import current_gpu, load_tensorrt


class TrtRunner(Runner):
    """Runs one TensorRT engine on CUDA device `device` (the flavour recorded in its sidecar)."""

    def __init__(self, engine: Union[str, Path], device: int = 0):
        self.path = Path(engine)
        self.name, self.device = str(self.path), device
        self.sidecar: Optional[dict] = None
        self.engine = self.context = None

    def activate(self) -> None:
        import torch

        self.sidecar = read_sidecar(self.path)
        data = check_engine_bytes(self.path, self.sidecar)
        tensorrt = load_tensorrt(self.sidecar["runtime"]["name"])
        gpu = current_gpu(self.device) if torch.cuda.is_available() else None
        if gpu is None:
            raise T2LError(f"{self.path}: running a TensorRT engine needs an NVIDIA GPU with CUDA, and torch sees "
                           f"none (torch.cuda.is_available() is False); engines can be built here, not run. Use "
                           f"--backend onnx on this machine")
        check_compatible(self.sidecar, tensorrt.flavour.name, tensorrt.version, gpu[1], gpu[0])
        trt = tensorrt.trt
        self._trt = trt
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ArtifactError(f"{self.path}: {tensorrt.flavour.name} {tensorrt.version} could not deserialise "
                                f"the engine (built for {describe_target(self.sidecar)}); rebuild: "
                                f"{self.sidecar['rebuild']}")
        if hasattr(self.engine, "create_runtime_config"):  # TensorRT for RTX: JIT-specialises for this GPU here
            self.context = self.engine.create_execution_context(self.engine.create_runtime_config())
        else:
            self.context = self.engine.create_execution_context()
        self.input_specs = io_specs(self.sidecar["inputs"])
        self.output_names = [entry["name"] for entry in self.sidecar["outputs"]]

    def deactivate(self) -> None:
        self.context = self.engine = None

    def _infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        import torch

        device = torch.device("cuda", self.device)
        buffers = {}
        for name, array in feed.items():
            self._check_profile(name, array.shape)
            buffers[name] = torch.from_numpy(array).to(device)
            self.context.set_input_shape(name, tuple(array.shape))
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = _torch_dtype(self._trt, self.engine.get_tensor_dtype(name))
            buffers[name] = torch.empty(shape, dtype=dtype, device=device)
        for name, tensor in buffers.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream(device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise T2LError(f"{self.path}: TensorRT failed to enqueue the engine (see its log above)")
        stream.synchronize()
        return {name: buffers[name].cpu().numpy() for name in self.output_names}

    def _check_profile(self, name: str, shape) -> None:
        limits = self.sidecar["profile"][name]
        if any(not low <= size <= high for size, low, high in zip(shape, limits["min"], limits["max"])):
            raise ArtifactError(f"{self.path}: input {name!r} of shape {list(shape)} is outside the engine's "
                                f"profile {limits['min']} .. {limits['max']}; split the batch, or rebuild with a "
                                f"larger --max-batch: {self.sidecar['rebuild']}")


def _torch_dtype(trt, dtype):
    import torch

    return {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
            trt.DataType.INT64: torch.int64, trt.DataType.UINT8: torch.uint8}[dtype]
