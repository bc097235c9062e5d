"""ViFi-CLIP (fully fine-tuned CLIP) and vanilla CLIP: every frame through the image encoder, mean over T."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backbone import project_text
from .base import VideoTextModel
from .config import ModelConfig


class FrameAveragedCLIP(VideoTextModel):
    """CLIP applied frame by frame. kind "vificlip": everything but the token embedding trains (124,323,841
    parameters for ViT-B/16); kind "clip": everything is frozen (zero-shot)."""

    def __init__(self, config: ModelConfig, backbone: torch.nn.Module):
        super().__init__(config, backbone)
        for name, p in self.backbone.named_parameters():
            p.requires_grad = config.kind == "vificlip" and not name.startswith("token_embedding.")

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        self.check_video(video)
        b, t = video.shape[:2]
        frames = self.backbone.encode_image(video.flatten(0, 1))  # [B*T, D]
        return frames.view(b, t, -1)  # [B, T, D]

    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        bb = self.backbone
        length = token_ids.shape[1]  # the context, or fewer positions (text.tokenize.trim_padding)
        x = bb.token_embedding(token_ids) + bb.positional_embedding[:length]  # [N, L, W]
        x = bb.transformer(x, attn_mask=bb.attn_mask[:length, :length])
        return F.normalize(project_text(bb, x, token_ids), dim=-1)  # [N, D]: open_clip's encode_text
