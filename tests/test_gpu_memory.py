"""GPU memory whoever allocates it: NVML's per-process figure where the driver lists this process, else the
device's used memory above its starting level; the peak of samples taken while the calls run."""
import os
import sys
import time
import types

import pytest
import torch

from t2l_fast.perf import gpu_memory
from t2l_fast.perf.gpu_memory import DEVICE_METHOD, NVML_METHOD, GpuMemory, PeakSampler


@pytest.fixture(autouse=True)
def _no_cuda_context(monkeypatch):
    monkeypatch.setattr(gpu_memory, "start_cuda", lambda device: None)  # no GPU here: the readers are faked


def test_the_peak_is_the_highest_sample_taken_while_the_block_ran():
    samples, taken = [10.0, 300.0, 50.0], []

    def read():
        taken.append(samples[min(len(taken), len(samples) - 1)])
        return taken[-1]

    with PeakSampler(read) as sampled:
        deadline = time.monotonic() + 5
        while len(taken) < 4 and time.monotonic() < deadline:  # the thread samples the spike and after it
            time.sleep(0.001)
    assert sampled.mb == 300.0 and taken[-1] == 50.0


def _fake_nvml(monkeypatch, pids_and_bytes):
    process = types.SimpleNamespace
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByUUID=lambda uuid: uuid,
        nvmlDeviceGetComputeRunningProcesses=lambda handle: [process(pid=p, usedGpuMemory=b)
                                                              for p, b in pids_and_bytes])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(uuid="abc"))


def test_nvml_reads_this_processs_memory_where_the_driver_lists_it(monkeypatch):
    _fake_nvml(monkeypatch, [(1, 5 * 2 ** 20), (os.getpid(), 700 * 2 ** 20)])
    memory = GpuMemory()
    assert memory.method == NVML_METHOD and memory.read() == 700.0


@pytest.mark.parametrize("nvml", ["not listed", "not installed"])
def test_without_nvml_the_devices_use_above_its_start_stands_in(monkeypatch, nvml):
    if nvml == "not listed":  # a container: the driver reports host PIDs
        _fake_nvml(monkeypatch, [(1, 5 * 2 ** 20)])
    else:
        monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    free = iter([8 * 2 ** 30, 6 * 2 ** 30])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=0: (next(free), 16 * 2 ** 30))
    memory = GpuMemory()
    assert memory.method == DEVICE_METHOD and memory.read() == 2048.0  # 2 GiB more in use than at the start
