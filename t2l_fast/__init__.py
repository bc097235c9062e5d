"""t2l-fast: efficient zero-shot video action recognition (T2L, ViFi-CLIP, CLIP).

Heavy modules (torch, open_clip) load on first use, so `import t2l_fast` and `t2l --help` stay instant.
"""
__version__ = "0.1.0"

_LAZY = {
    "create_model": "t2l_fast.models.registry",
    "list_models": "t2l_fast.models.registry",
    "get_model_config": "t2l_fast.models.registry",
    "load_checkpoint": "t2l_fast.models.build",
    "save_checkpoint": "t2l_fast.models.checkpoint",
    "load_official_t2l": "t2l_fast.models.official",
    "load_official_vificlip": "t2l_fast.models.official_vificlip",
    "build_classifier": "t2l_fast.text.classifier",
    "tokenize": "t2l_fast.text.tokenize",
    "normalize_video": "t2l_fast.video_ops",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't2l_fast' has no attribute {name!r}")
