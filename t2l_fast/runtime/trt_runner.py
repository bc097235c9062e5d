"""TensorRT runner: a serialised engine behind the runner contract, with device buffers as torch CUDA tensors (no
extra CUDA Python package). Before any engine byte is deserialised, its sidecar is read, its sha256 checked and its
TensorRT release and GPU targets compared with this process's (runtime/engine_sidecar)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import T2LError
from .base import ArtifactError, Runner
from .engine_sidecar import (
    check_compatible,
    check_engine_bytes,
    check_frame_count,
    describe_target,
    io_specs,
    read_sidecar,
)
from .trt_support import current_gpu, load_tensorrt


class TrtRunner(Runner):
    """Runs one TensorRT engine on CUDA device `device` (the flavour recorded in its sidecar). A batch larger than
    the engine's profile is run in chunks of the profile's largest batch."""

    def __init__(self, engine: str | Path, device: int = 0):
        self.path = Path(engine)
        self.name, self.device = str(self.path), device
        self.sidecar: dict | None = None
        self.engine = self.context = self._runtime_config = self._stream = None

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
        trt = self._trt = tensorrt.trt
        with torch.cuda.device(self.device):
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            if self.sidecar["target"].get("version_compatible"):
                self._runtime.engine_host_code_allowed = True  # the engine carries its own lean runtime
            self.engine = self._runtime.deserialize_cuda_engine(data)
            if self.engine is None:
                raise ArtifactError(f"{self.path}: {tensorrt.flavour.name} {tensorrt.version} could not deserialise "
                                    f"the engine (built for {describe_target(self.sidecar)}); rebuild: "
                                    f"{self.sidecar['rebuild']}")
            if hasattr(self.engine, "create_runtime_config"):  # TensorRT for RTX: JIT-specialises for this GPU
                self._runtime_config = self.engine.create_runtime_config()
                self.context = self.engine.create_execution_context(self._runtime_config)
            else:
                self.context = self.engine.create_execution_context()
            if self.context is None:
                raise ArtifactError(f"{self.path}: TensorRT could not create an execution context (out of GPU "
                                    f"memory?)")
            self._stream = torch.cuda.Stream(self.device)
        self.input_specs = io_specs(self.sidecar["inputs"])
        self.output_names = [entry["name"] for entry in self.sidecar["outputs"]]

    def deactivate(self) -> None:
        self.context = self.engine = self._runtime_config = self._stream = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        largest = min(self.sidecar["profile"][name]["max"][0] for name in feed)
        batch = next(iter(feed.values())).shape[0]
        chunks = [self._infer_chunk({name: array[start:start + largest] for name, array in feed.items()})
                  for start in range(0, batch, largest)]
        return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in self.output_names}

    def _infer_chunk(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        device = torch.device("cuda", self.device)
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            buffers = {}
            for name, array in feed.items():
                self._check_profile(name, array.shape)
                buffers[name] = torch.from_numpy(array).to(device, non_blocking=False)
                self.context.set_input_shape(name, tuple(array.shape))
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = _torch_dtype(self._trt, self.engine.get_tensor_dtype(name))
                buffers[name] = torch.empty(shape, dtype=dtype, device=device)
            for name, tensor in buffers.items():
                self.context.set_tensor_address(name, tensor.data_ptr())
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise T2LError(f"{self.path}: TensorRT failed to enqueue the engine (see its log above)")
            outputs = {name: buffers[name].cpu() for name in self.output_names}  # .cpu() waits for the stream
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def _check_profile(self, name: str, shape) -> None:
        if len(shape) == 5:  # [B, T, 3, S, S]: a frame count outside the built range gets its own message
            check_frame_count(self.sidecar, shape[1])
        limits = self.sidecar["profile"][name]
        if any(not low <= size <= high for size, low, high in zip(shape[1:], limits["min"][1:], limits["max"][1:])) \
                or shape[0] < limits["min"][0]:
            raise ArtifactError(f"{self.path}: input {name!r} of shape {list(shape)} is outside the engine's "
                                f"profile {limits['min']} .. {limits['max']}; rebuild for it: "
                                f"{self.sidecar['rebuild']}")


def _torch_dtype(trt, dtype):
    import torch

    return {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
            trt.DataType.INT64: torch.int64, trt.DataType.UINT8: torch.uint8}[dtype]
