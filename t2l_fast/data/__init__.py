"""Video data: lists and splits, frame sampling, augmentation, decoding, loaders, the synthetic dataset."""


def build_video_loader(*args, **kwargs):
    """See t2l_fast.data.loader.build_video_loader (imported on first use: it pulls in torch and PyAV)."""
    from .loader import build_video_loader as build

    return build(*args, **kwargs)
