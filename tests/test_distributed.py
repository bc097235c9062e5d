"""The process group from torchrun's environment: checks that need no second process."""
import pytest
import torch

from t2l_fast.errors import T2LError
from t2l_fast.training.distributed import init_distributed


def test_more_processes_than_gpus_is_one_clear_error(monkeypatch):
    """Rank 1 of 2 on a one-GPU host: refused before torch.cuda.set_device(1) dies with 'invalid device ordinal'."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: pytest.fail(f"set_device({index}) was called"))
    with pytest.raises(T2LError, match=r"LOCAL_RANK=1, but this machine shows 1 CUDA GPU\(s\).*--nproc_per_node"):
        init_distributed("cuda")


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed("cpu").device == torch.device("cpu") and not init_distributed("cpu").enabled
