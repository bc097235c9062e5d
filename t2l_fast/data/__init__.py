"""Video data: lists and splits, frame sampling, augmentation, decoding, loaders, the synthetic dataset.

`build_video_loader` and `LoaderConfig` (t2l_fast.data.loader) load on first use: they pull in torch and PyAV.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .loader import LoaderConfig, build_video_loader

__all__ = ["LoaderConfig", "build_video_loader"]


def __getattr__(name: str):
    if name in __all__:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module 't2l_fast.data' has no attribute {name!r}")
