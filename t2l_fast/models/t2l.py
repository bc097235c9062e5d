"""T2L: a frozen CLIP with learned per-layer, per-frame temporal tokens and residual adapters in both towers.

Vision block l, for the tokens x [B*T, N, W] of B videos with T frames (docs/design/T2L_SPEC.md §1.2):
  (a) summary   m = mean of each frame's N tokens                            [B, T, W]
  (b) token     z = Dropout(P[l]) + m                                        [B, T, W]
  (c) cross-frame u = DropPath(MHA_l(LN1_l(z))) over the T tokens of a video, no residual
  (d)+(e) spatial attention over [x; u] with the frozen LN1_l/MHA_l, keeping the N original rows
  (f) adapter, (g) MLP residual.
The token u is rebuilt in every layer and never carried over. Text blocks get the adapter between attention and MLP.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import MissingDependencyError, VideoShapeError
from .backbone import project_text
from .base import VideoTextModel
from .config import ModelConfig
from .layers import Adapter, DropPath, TokenAttention


def drop_path_rates(layers: int, max_rate: float) -> list:
    """Per-layer stochastic-depth rates linspace(0, max_rate, layers)."""
    if layers == 1:
        return [0.0]
    return [max_rate * i / (layers - 1) for i in range(layers)]


class T2L(VideoTextModel):
    """Temporal Token Learning on a frozen CLIP. Learnable: `temporal_tokens`, `vision_adapters`, `text_adapters`."""

    def __init__(self, config: ModelConfig, backbone: nn.Module):
        super().__init__(config, backbone)
        self.backbone.requires_grad_(False)  # every CLIP weight, logit_scale included, stays frozen
        v, t = config.vision, config.text
        # P [L, T, W], uniform in +-sqrt(6 / (3 * patch^2 + W)) (= 0.0625 for ViT-B/16)
        bound = math.sqrt(6.0 / (3 * v.patch_size ** 2 + v.width))
        self.temporal_tokens = nn.Parameter(torch.empty(v.layers, config.frames, v.width).uniform_(-bound, bound))
        self.token_dropout = nn.Dropout(config.token_dropout)
        self.vision_adapters = nn.ModuleList(
            Adapter(v.width, int(v.width * config.adapter_ratio)) for _ in range(v.layers))
        self.text_adapters = nn.ModuleList(
            Adapter(t.width, int(t.width * config.adapter_ratio)) for _ in range(t.layers))
        self.token_attention = TokenAttention()  # (d)+(e), with each block's frozen MHA weights
        self.vision_drop_paths = nn.ModuleList(DropPath(r) for r in drop_path_rates(v.layers, config.drop_path))
        self.text_drop_paths = nn.ModuleList(DropPath(r) for r in drop_path_rates(t.layers, config.drop_path))
        vision_blocks, text_blocks = self.backbone.visual.transformer.resblocks, self.backbone.transformer.resblocks
        for blocks, drop_paths in ((vision_blocks, self.vision_drop_paths), (text_blocks, self.text_drop_paths)):
            for block, drop_path in zip(blocks, drop_paths):
                if not block.attn.batch_first:
                    raise MissingDependencyError("T2L needs open_clip blocks with batch_first attention: pip install "
                                                 "'open_clip_torch>=3'")
                if config.attention_dropout:
                    block.attn.dropout = drop_path.rate  # attention-weight dropout in the frozen MHA (training)

    # ----------------------------------------------------------------- vision
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        self.check_video(video)
        b, t = video.shape[:2]
        if t != self.config.frames:
            raise VideoShapeError(f"{self.config.name} learned one temporal token per frame for "
                                  f"T={self.config.frames}; got a clip of {t} frames. Sample {self.config.frames} "
                                  f"frames per clip.")
        visual = self.backbone.visual
        x = visual.conv1(video.flatten(0, 1))  # [B*T, W, g, g]
        x = x.flatten(2).transpose(1, 2)  # [B*T, g*g, W]
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # [B*T, 1, W]
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # [B*T, N, W]
        x = visual.ln_pre(visual.patch_dropout(x))
        for layer, block in enumerate(visual.transformer.resblocks):
            x = self._run(self._vision_block, layer, block, x, b)
        frames = visual.ln_post(x[:, 0]) @ visual.proj  # [B*T, D]
        return frames.view(b, t, -1)  # [B, T, D]

    def _vision_block(self, layer: int, block: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
        bt, n, w = x.shape
        t = bt // batch
        drop_path = self.vision_drop_paths[layer]
        summary = x.view(batch, t, n, w).mean(dim=2)  # [B, T, W]
        token = self.token_dropout(self.temporal_tokens[layer]) + summary  # [B, T, W], dropout mask shared by the batch
        token = drop_path(block.attention(block.ln_1(token)))  # [B, T, W]: attention across the T frames of a video
        extended = block.ln_1(torch.cat([x, token.reshape(bt, 1, w)], dim=1))  # [B*T, N+1, W]
        # Only the N original tokens are queried: the temporal token is an extra key/value, and its own output
        # (which the reference computes and throws away) is never computed.
        attended = self.token_attention(block.attn, extended, n)  # [B*T, N, W]
        x = x + drop_path(block.ls_1(attended))
        x = self.vision_adapters[layer](x)
        return x + drop_path(block.ls_2(block.mlp(block.ln_2(x))))

    # ----------------------------------------------------------------- text
    def encode_text(self, token_ids: torch.Tensor) -> torch.Tensor:
        bb = self.backbone
        length = token_ids.shape[1]  # the context, or fewer positions (text.tokenize.trim_padding)
        x = bb.token_embedding(token_ids) + bb.positional_embedding[:length]  # [N, L, W]
        for layer, block in enumerate(bb.transformer.resblocks):
            x = self._run(self._text_block, layer, block, x)
        return F.normalize(project_text(bb, x, token_ids), dim=-1)  # [N, D]

    def _text_block(self, layer: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        drop_path = self.text_drop_paths[layer]
        mask = self.backbone.attn_mask[:x.shape[1], :x.shape[1]]  # causal [L, L]
        x = x + drop_path(block.ls_1(block.attention(block.ln_1(x), attn_mask=mask)))
        x = self.text_adapters[layer](x)
        return x + drop_path(block.ls_2(block.mlp(block.ln_2(x))))

    # ----------------------------------------------------------------- helpers
    def _run(self, block_fn: Callable, *args) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block_fn, *args, use_reentrant=False)
        return block_fn(*args)

