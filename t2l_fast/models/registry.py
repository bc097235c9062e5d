"""Model names -> configs, and `create_model` / `list_models`."""
from __future__ import annotations

import difflib

from ..errors import UnknownModelError
from .config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, TextTowerConfig, VisionTowerConfig

_VIT_B16 = VisionTowerConfig(image_size=224, patch_size=16, width=768, layers=12)
_VIT_B32 = VisionTowerConfig(image_size=224, patch_size=32, width=768, layers=12)
_VIT_L14 = VisionTowerConfig(image_size=224, patch_size=14, width=1024, layers=24)
_TEXT_B = TextTowerConfig(width=512, layers=12, heads=8)
_TEXT_L = TextTowerConfig(width=768, layers=12, heads=12)
# Tiny towers: 32x32 frames in 4x4 patches of 8 px, 4 image blocks (with 2, T2L learned order far slower in the
# order test), 2 text blocks; they run on a CPU in milliseconds.
_VIT_TINY = VisionTowerConfig(image_size=32, patch_size=8, width=64, layers=4, head_width=32)
_TEXT_TINY = TextTowerConfig(width=64, layers=2, heads=2)

_T2L = dict(kind="t2l", prompt_template="{}", text_source="descriptions")
_VIFI = dict(kind="vificlip", prompt_template="a photo of a {}.", input_mean=IMAGENET_MEAN, input_std=IMAGENET_STD)
_CLIP = dict(kind="clip", prompt_template="{}")
_B16 = dict(vision=_VIT_B16, text=_TEXT_B, open_clip_arch="ViT-B-16-quickgelu")
_TINY = dict(vision=_VIT_TINY, text=_TEXT_TINY, embed_dim=64, open_clip_arch=None, default_pretrained=None)

_REGISTRY: dict[str, ModelConfig] = {c.name: c for c in [
    ModelConfig(name="t2l_vit_b16", **_T2L, **_B16),
    ModelConfig(name="t2l_vit_b32", **_T2L, vision=_VIT_B32, text=_TEXT_B, open_clip_arch="ViT-B-32-quickgelu"),
    ModelConfig(name="t2l_vit_l14", **_T2L, vision=_VIT_L14, text=_TEXT_L, embed_dim=768,
                open_clip_arch="ViT-L-14-quickgelu"),
    ModelConfig(name="vificlip_vit_b16", **_VIFI, **_B16),
    ModelConfig(name="clip_vit_b16", **_CLIP, **_B16),
    ModelConfig(name="t2l_tiny", **_T2L, **_TINY),
    ModelConfig(name="vificlip_tiny", **_VIFI, **_TINY),
    ModelConfig(name="clip_tiny", **_CLIP, **_TINY),
]}


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def get_model_config(name: str, **overrides) -> ModelConfig:
    """The config registered under `name`, with `overrides` applied (e.g. frames=16)."""
    try:
        config = _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(f"unknown model {name!r}; {hint}known models: {', '.join(list_models())}") from None
    return config.replace(**overrides) if overrides else config


def create_model(name: str, pretrained: str | None = None, *, checkpoint: str | None = None,
                 device: str | None = None, **overrides):
    """Build a registered model.

    pretrained: CLIP backbone weights: an open_clip tag ("openai"), a file (OpenAI TorchScript `ViT-B-16.pt`,
        a state dict `.pt/.bin`, `.safetensors`) or "local-dir:DIR". None: random initialisation.
    checkpoint: a t2l-fast checkpoint directory (learnable weights on top of `pretrained`, or a full model).
    overrides: config fields to change, e.g. frames=16, drop_path=0.0.
    """
    from .build import build_model

    return build_model(get_model_config(name, **overrides), pretrained=pretrained, checkpoint=checkpoint,
                       device=device)
