"""The two TensorRT flavours behind one name: TensorRT (`tensorrt`: data-centre and RTX GPUs; its builder needs the
GPU) and TensorRT for RTX (`tensorrt_rtx`: RTX GPUs only; its builder compiles ahead of time without a GPU). Both
share the Builder / OnnxParser / IBuilderConfig / Runtime API this project uses; the differences are kept here."""
from __future__ import annotations

import importlib
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import MissingDependencyError, T2LError


@dataclass(frozen=True)
class Flavour:
    name: str  # how users and sidecars name it
    module: str  # Python module
    tag: str  # in engine file names: classifier.<tag>.engine
    cli: str  # NVIDIA's command-line builder
    gpus: str
    install: str


FLAVOURS = {
    "tensorrt": Flavour("tensorrt", "tensorrt", "trt", "trtexec", "data-centre and RTX GPUs (builds need the GPU)",
                        "use NVIDIA's container (nvcr.io/nvidia/tensorrt or nvcr.io/nvidia/pytorch), or pip install "
                        "'t2l-fast[onnx-gpu]' (TensorRT 10 for CUDA 12, the one onnxruntime-gpu's TensorRT "
                        "provider loads)"),
    "tensorrt-rtx": Flavour("tensorrt-rtx", "tensorrt_rtx", "trtrtx", "tensorrt_rtx",
                            "RTX GPUs of compute capability 8.6, 8.9, 12.x, and 7.5 as an explicit target (builds "
                            "ahead of time, no GPU needed)",
                            "pip install 't2l-fast[tensorrt-rtx]' (TensorRT for RTX, from PyPI)"),
}


# Where an engine built for TensorRT for RTX's default targets runs: Ampere, Ada and Blackwell RTX GPUs. NVIDIA's
# pages disagree on 8.0 (A100): the CPU-only AOT page puts it in the default set, while the support matrices of
# 1.0-1.5 list only 8.6, 8.9 and 12.0 (12.1 from 1.5) as supported hardware. We follow the support matrices, so an
# A100, like an H100/H200 (9.0, which TensorRT for RTX has no target for), is sent to full TensorRT. 7.5 (Turing)
# is never a default target: it must be asked for explicitly.
RTX_DEFAULT_SET = ((8, 6), (8, 9), (12, 0), (12, 1))


@dataclass(frozen=True)
class TensorRT:
    """An imported TensorRT flavour: `trt` is the module."""

    flavour: Flavour
    trt: object
    reported_version: str | None = None  # what NVIDIA's CLI said it is, when it built the engine

    @property
    def version(self) -> str:
        return self.reported_version or self.trt.__version__


def install_hint() -> str:
    return "; ".join(f"{f.name} ({f.gpus}): {f.install}" for f in FLAVOURS.values())


def load_tensorrt(runtime: str = "auto") -> TensorRT:
    """The flavour named by `runtime` (tensorrt, tensorrt-rtx, or auto: TensorRT if installed and a GPU is visible,
    since it can neither build nor run without one, else TensorRT for RTX); a MissingDependencyError naming what to
    install when it is absent."""
    if runtime != "auto" and runtime not in FLAVOURS:
        raise T2LError(f"runtime {runtime!r}: choose auto, {', '.join(FLAVOURS)}")
    wanted = list(FLAVOURS.values()) if runtime == "auto" else [FLAVOURS[runtime]]
    problems = []
    for flavour in wanted:
        try:
            module = importlib.import_module(flavour.module)
        except ImportError as e:  # also a stub package that raises on import
            problems.append(f"{flavour.module}: {e}")
            continue
        if int(module.__version__.split(".")[0]) < 10 and flavour.name == "tensorrt":
            problems.append(f"tensorrt {module.__version__} is older than 10 (strongly typed networks, "
                            f"execute_async_v3 and int64 inputs need 10 or newer)")
            continue
        if runtime == "auto" and flavour.name == "tensorrt" and current_gpu() is None:
            problems.append("tensorrt is installed but no GPU is visible, and its builder needs one")
            continue
        return TensorRT(flavour, module)
    hint = install_hint() if runtime == "auto" else f"{wanted[0].name} ({wanted[0].gpus}): {wanted[0].install}"
    raise MissingDependencyError(f"no usable TensorRT module ({'; '.join(problems)}). Install one: {hint}")


def engines_cannot_run_reason(device: int = 0) -> str | None:
    """Why no installed TensorRT flavour can run engines on CUDA device `device` (None: one can). TensorRT for RTX
    runs only on RTX compute capabilities, so on a data-centre GPU (A100 8.0, H100/H200 9.0) it needs full TensorRT."""
    import torch

    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU (torch.cuda.is_available() is False): engines are built here, not run"
    try:
        tensorrt = load_tensorrt("auto")
    except MissingDependencyError as e:
        return str(e)
    capability = torch.cuda.get_device_capability(device)
    if tensorrt.flavour.name == "tensorrt-rtx" and capability not in RTX_DEFAULT_SET:
        return (f"only TensorRT for RTX is installed, which does not run on this GPU (compute capability "
                f"{capability[0]}.{capability[1]}); install full TensorRT: {FLAVOURS['tensorrt'].install}")
    return None


def version_tuple(version: str) -> tuple[int, ...]:
    """'10.8.0.43' -> (10, 8, 0, 43)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise T2LError(f"version {version!r} is not dotted integers") from None


def current_gpu(device: int = 0) -> tuple[str, str] | None:
    """(name, compute capability 'M.m') of CUDA device `device`, from torch or else nvidia-smi; None without one."""
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(device)
        return torch.cuda.get_device_name(device), f"{major}.{minor}"
    if shutil.which("nvidia-smi"):
        try:
            line = subprocess.run(["nvidia-smi", f"--id={device}", "--query-gpu=name,compute_cap",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=30,
                                  check=True).stdout.strip().splitlines()[0]
            name, capability = (part.strip() for part in line.rsplit(",", 1))
            return name, capability
        except (subprocess.SubprocessError, OSError, IndexError, ValueError):
            return None
    return None
