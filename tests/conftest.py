import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a model hub in tests

import pytest
import torch

TINY_MODELS = ["t2l_tiny", "vificlip_tiny", "clip_tiny"]


def _no_cuda() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False on this machine)"
    return None


def _no_dali_gpu() -> str | None:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return "needs NVIDIA DALI on a CUDA GPU: pip install 't2l-fast[dali]'"
    return _no_cuda() and "needs a CUDA GPU with NVDEC (torch.cuda.is_available() is False on this machine)"


def _no_tensorrt_gpu() -> str | None:
    from t2l_fast.runtime.trt_support import engines_cannot_run_reason

    return engines_cannot_run_reason()


def _gpu_present() -> str | None:
    if torch.cuda.is_available():
        return "a CUDA GPU is present: this test checks the refusal without one, and its GPU twin runs instead"
    return None


# marker -> why its tests cannot run here (None: they run). One reason per marker, checked before any fixture.
SKIP_RULES = {"gpu": _no_cuda, "dali_gpu": _no_dali_gpu, "tensorrt_gpu": _no_tensorrt_gpu, "without_gpu": _gpu_present}


def pytest_runtest_setup(item):
    for marker, reason_to_skip in SKIP_RULES.items():
        if item.get_closest_marker(marker) and (reason := reason_to_skip()):
            pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """Tiny-model exports shared by the export, engine, CMake, Triton and trust tests (export_cache.TinyExports)."""
    from export_cache import TinyExports

    return TinyExports(tmp_path_factory)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_video(model, batch: int = 2) -> torch.Tensor:
    spec = model.input_spec
    return torch.randn(batch, spec.frames, 3, spec.image_size, spec.image_size)
