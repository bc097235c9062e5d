import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a model hub in tests

import pytest
import torch

TINY_MODELS = ["t2l_tiny", "vificlip_tiny", "clip_tiny"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_video(model, batch: int = 2) -> torch.Tensor:
    spec = model.input_spec
    return torch.randn(batch, spec.frames, 3, spec.image_size, spec.image_size)
