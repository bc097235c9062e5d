"""Small layers of T2L: the residual adapter, per-sample stochastic depth, and the spatial attention with the
temporal token as an extra key/value."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Adapter(nn.Module):
    """x + fc2(GELU(fc1(x))), applied in series on the residual stream; fc2 starts at zero, so A(x) = x at init."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()  # exact GELU, not the backbone's QuickGELU
        self.fc2 = nn.Linear(hidden, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples (dim 0), rescale the rest."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:.3f}"


class TokenAttention(nn.Module):
    """A frozen nn.MultiheadAttention's attention of the first `queries` rows of `tokens` over all of them, as one
    contiguous q/k/v projection and one fused scaled_dot_product_attention. (Calling the MHA with q = tokens[:, :n]
    leaves PyTorch's fused path and falls back to bmm on strided inputs.) No parameters of its own: the weights are
    the MHA's; a module, so that FLOP counters see an attention here (perf/flops.py)."""

    def forward(self, attention: nn.MultiheadAttention, tokens: torch.Tensor, queries: int) -> torch.Tensor:
        batch, rows, width = tokens.shape  # [B*T, N+1, W]
        heads = attention.num_heads
        qkv = F.linear(tokens, attention.in_proj_weight, attention.in_proj_bias)  # [B*T, N+1, 3W]
        qkv = qkv.view(batch, rows, 3, heads, width // heads).permute(2, 0, 3, 1, 4)  # [3, B*T, H, N+1, W/H]
        q, k, v = qkv[0][:, :, :queries], qkv[1], qkv[2]  # the token's own query row is dropped
        dropout = attention.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # [B*T, H, N, W/H]
        out = out.transpose(1, 2).reshape(batch, queries, width)  # [B*T, N, W]
        return F.linear(out, attention.out_proj.weight, attention.out_proj.bias)
