"""Which machine this is, as far as inference speed goes: the CPU (model, instruction flags, usable cores) and the
GPU, from /proc/cpuinfo and torch (a measurement taken on one machine is never reused on another)."""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path


def cpu_info() -> tuple[str, set[str]]:
    """(CPU model name, its instruction flags) from /proc/cpuinfo; the platform's processor string and no flags
    where that file is not there (macOS, Windows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), set()
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", platform.machine()), set(fields.get("flags", "").split())


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_identity(gpu_index: int | None = None) -> dict[str, object]:
    """The CPU's model, a hash of its flags and the usable cores; with `gpu_index`, that CUDA GPU's name and compute
    capability too."""
    model, flags = cpu_info()
    identity: dict[str, object] = {"cpu": model, "cpu_flags_sha256": hashlib.sha256(
        " ".join(sorted(flags)).encode()).hexdigest()[:16], "cpus": usable_cpus()}
    if gpu_index is not None:
        import torch

        major, minor = torch.cuda.get_device_capability(gpu_index)
        identity["gpu"] = f"{torch.cuda.get_device_name(gpu_index)} (compute capability {major}.{minor})"
    return identity
