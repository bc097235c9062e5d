"""GPU memory of this process whoever allocates it (torch, ONNX Runtime's arena, TensorRT's activations), which
torch.cuda.max_memory_allocated() cannot see beyond torch's own allocator.

NVML's per-process figure is used where the driver reports this process (it includes the CUDA context); in a
container whose PID namespace hides it from the driver, the device's used memory above what was used when
measuring began (torch.cuda.mem_get_info) stands in, which also counts other processes' allocations meanwhile.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable

SAMPLE_INTERVAL_S = 0.005

NVML_METHOD = "NVML: this process's GPU memory (the driver's figure, CUDA context included), peak of 5 ms samples"
DEVICE_METHOD = ("torch.cuda.mem_get_info: the GPU's used memory above its level when the worker started (NVML "
                 "does not report this process here; other processes' allocations meanwhile count too), peak of "
                 "5 ms samples")


def _nvml_reader(device: int) -> Callable[[], float | None] | None:
    """This process's GPU memory in MB from NVML, or None where pynvml is missing or the driver does not list us."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        # NVML numbers GPUs ignoring CUDA_VISIBLE_DEVICES: find ours by its UUID
        handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(device).uuid}")
    except Exception:  # no pynvml, no driver library, an old torch without .uuid: fall back
        return None

    def read() -> float | None:
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == os.getpid() and process.usedGpuMemory is not None:
                return process.usedGpuMemory / 2 ** 20
        return None

    return read if read() is not None else None


def start_cuda(device: int) -> None:
    """This process's CUDA context on `device`: NVML lists a process only once it has one."""
    import torch

    torch.zeros(1, device=f"cuda:{device}")


class GpuMemory:
    """Created before anything is put on the GPU; `peak()` measures the highest use during a with-block."""

    def __init__(self, device: int = 0):
        import torch

        start_cuda(device)
        nvml = _nvml_reader(device)
        if nvml:
            self.read, self.method = nvml, NVML_METHOD
        else:
            free, total = torch.cuda.mem_get_info(device)
            start = total - free

            def used_since_start() -> float:
                free, total = torch.cuda.mem_get_info(device)
                return (total - free - start) / 2 ** 20

            self.read, self.method = used_since_start, DEVICE_METHOD

    def peak(self) -> PeakSampler:
        return PeakSampler(self.read)


class PeakSampler:
    """Samples `read()` (MB) on a thread every SAMPLE_INTERVAL_S while the with-block runs; `mb` is the highest."""

    def __init__(self, read: Callable[[], float | None]):
        self.read, self.mb = read, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _take(self) -> None:
        value = self.read()
        if value is not None:
            self.mb = max(self.mb, value)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._take()

    def __enter__(self) -> PeakSampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
