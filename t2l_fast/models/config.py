"""Model architectures as data: one frozen dataclass per model, every field explained."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ModelConfigError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ViFi-CLIP's recipe normalizes with the ImageNet statistics (mmaction's 123.675/58.395 ... divided by 255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ModelKind = Literal["t2l", "vificlip", "clip"]


@dataclass(frozen=True)
class VisionTowerConfig:
    image_size: int = 224  # input side in pixels (square)
    patch_size: int = 16  # side of the patchifying convolution
    width: int = 768  # token width of the transformer
    layers: int = 12  # number of residual attention blocks
    head_width: int = 64  # width per attention head (heads = width // head_width)

    @property
    def heads(self) -> int:
        return self.width // self.head_width


@dataclass(frozen=True)
class TextTowerConfig:
    context_length: int = 77  # tokens per text, SOT and EOT included
    vocab_size: int = 49408  # CLIP BPE vocabulary
    width: int = 512  # token width of the transformer
    layers: int = 12  # number of residual attention blocks
    heads: int = 8  # attention heads


@dataclass(frozen=True)
class ModelConfig:
    name: str  # registry name, e.g. "t2l_vit_b16"
    kind: ModelKind  # "t2l": frozen CLIP + temporal tokens + adapters; "vificlip": fine-tuned CLIP; "clip": frozen CLIP
    embed_dim: int = 512  # joint video-text embedding size
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    frames: int = 8  # T, frames per clip; T2L learns one token per frame and layer, so T is fixed per checkpoint
    quick_gelu: bool = True  # OpenAI CLIP weights were trained with QuickGELU
    open_clip_arch: str | None = "ViT-B-16-quickgelu"  # open_clip architecture whose pretrained tags fit it
    default_pretrained: str | None = "openai"  # open_clip tag a user normally loads (never loaded implicitly)
    adapter_ratio: float = 0.25  # T2L adapter hidden size as a fraction of the tower width
    drop_path: float = 0.1  # T2L: largest stochastic-depth rate; layer l uses linspace(0, drop_path, layers)[l]
    token_dropout: float = 0.1  # T2L: dropout on the temporal tokens P before they are added to the frame summary
    attention_dropout: bool = True  # T2L: also use the per-layer rate as attention-weight dropout in the frozen MHA
    logit_scale: float = 100.0  # exp(logit_scale) of a randomly initialised backbone (OpenAI weights carry 100)
    input_mean: tuple[float, float, float] = CLIP_MEAN  # per-channel mean of 0..1 RGB input
    input_std: tuple[float, float, float] = CLIP_STD  # per-channel std of 0..1 RGB input
    prompt_template: str = "{}"  # how a class text becomes a prompt ("a photo of a {}." for ViFi-CLIP)
    text_source: Literal["descriptions", "names"] = "names"  # what the model was trained to read

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ModelConfigError(f"{self.name}: frames must be >= 1, got {self.frames}")
        if self.vision.width % self.vision.head_width:
            raise ModelConfigError(f"{self.name}: vision width {self.vision.width} is not a multiple of "
                                   f"head_width {self.vision.head_width}")
        if self.text.width % self.text.heads:
            raise ModelConfigError(f"{self.name}: text width {self.text.width} is not a multiple of heads "
                                   f"{self.text.heads}")
        if "{}" not in self.prompt_template:
            raise ModelConfigError(f"{self.name}: prompt_template {self.prompt_template!r} has no '{{}}' for the "
                                   f"class text")

    def replace(self, **overrides) -> ModelConfig:
        """A copy with some fields changed; unknown field names raise a ValueError naming them."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ModelConfigError(f"unknown model config field(s) {unknown}; known fields: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        vision = VisionTowerConfig(**data.pop("vision"))
        text = TextTowerConfig(**data.pop("text"))
        for key in ("input_mean", "input_std"):
            data[key] = tuple(data[key])
        return cls(vision=vision, text=text, **data)


@dataclass(frozen=True)
class InputSpec:
    """What a loader must feed a model: [B, T, 3, S, S] RGB in 0..1, normalized with mean/std on the device."""

    frames: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
