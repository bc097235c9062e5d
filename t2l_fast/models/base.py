"""The one API every model exposes: encode_frames / encode_video / encode_text / forward."""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VideoShapeError
from .config import InputSpec, ModelConfig


class VideoTextModel(nn.Module):
    """A video encoder and a text encoder sharing one embedding space, on top of an open_clip CLIP `backbone`.

    Subclasses implement `encode_frames` and `encode_text`; they decide which parameters train.
    """

    def __init__(self, config: ModelConfig, backbone: nn.Module):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.backbone_source: str | None = None  # where the CLIP weights came from (None: random or a full file)
        self.grad_checkpointing = False

    # ----------------------------------------------------------------- the contract
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] normalized frames -> [B, T, D] unnormalized frame embeddings."""
        raise NotImplementedError

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        """[N, L] token ids (L: the context, or fewer with text.tokenize.trim_padding) -> [N, D] L2-normalized text
        embeddings."""
        raise NotImplementedError

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, D]: mean over frames, then L2-normalized."""
        return pool_frames(self.encode_frames(video))

    def forward(self, video: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] of videos [B, T, 3, H, W] against L2-normalized class embeddings [C, D]."""
        return self.logit_scale() * self.encode_video(video) @ class_embeddings.t()

    # ----------------------------------------------------------------- facts about the model
    def logit_scale(self) -> torch.Tensor:
        return self.backbone.logit_scale.exp()

    @property
    def input_spec(self) -> InputSpec:
        c = self.config
        return InputSpec(frames=c.frames, image_size=c.vision.image_size, mean=c.input_mean, std=c.input_std)

    def named_learnable_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)

    def learnable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_learnable_parameters()]

    def count_parameters(self) -> tuple[int, int]:
        """(learnable, total) parameter counts."""
        params = list(self.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward: less memory, ~30% more compute."""
        self.grad_checkpointing = enable
        self.backbone.set_grad_checkpointing(enable)

    def check_video(self, video: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape if `video` does not fit this model."""
        spec = self.input_spec
        if video.ndim != 5 or video.shape[2] != 3 or video.shape[3:] != (spec.image_size, spec.image_size):
            raise VideoShapeError(f"{self.config.name}: expected video [B, T, 3, {spec.image_size}, "
                                  f"{spec.image_size}], got {tuple(video.shape)}")


def pool_frames(frame_embeddings: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> [B, D]: mean over T, L2-normalized."""
    return F.normalize(frame_embeddings.mean(dim=1), dim=-1)

