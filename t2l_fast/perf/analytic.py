"""Closed-form multiply-add counts of the models, from their configs alone (written apart from the model code, so
that the traced counts in perf/flops.py are checked against an independent derivation).

One MAC is one multiply-add; only matrix products and convolutions are counted (the convention of every GFLOPs
figure in the paper and its peers); norms, activations, softmax and additions are not. Biases are not counted.
`attention=False` gives the attention-blind count: every multi-head attention (projections included) as zero, as
thop 0.1.1 counts nn.MultiheadAttention.
"""
from __future__ import annotations

from ..models.config import ModelConfig

MLP_RATIO = 4  # open_clip blocks: MLP hidden width = 4 x width


def attention_macs(queries: int, keys: int, width: int) -> int:
    """One multi-head attention: Q projection of `queries` rows, K and V projections of `keys` rows, scores and
    weighted sum (heads x queries x keys x head width, twice), output projection."""
    projections = queries * width * width + 2 * keys * width * width + queries * width * width
    return projections + 2 * queries * keys * width


def block_macs(tokens: int, width: int, attention: bool, keys: int = None) -> int:
    """A transformer block without extras: attention over `keys` (default: the tokens themselves) and the MLP."""
    mlp = 2 * tokens * width * MLP_RATIO * width
    return mlp + (attention_macs(tokens, keys or tokens, width) if attention else 0)


def vision_macs(config: ModelConfig, frames: int, attention: bool = True) -> int:
    """MACs of encoding one clip of `frames` frames (the image tower per frame, plus T2L's temporal path)."""
    v = config.vision
    grid = (v.image_size // v.patch_size) ** 2
    tokens, width = grid + 1, v.width  # + the class token
    per_frame = grid * width * 3 * v.patch_size ** 2  # patch embedding
    per_frame += v.layers * block_macs(tokens, width, attention) + width * config.embed_dim  # + projection
    if config.kind != "t2l":
        return frames * per_frame
    hidden = int(width * config.adapter_ratio)
    adapters = v.layers * tokens * 2 * width * hidden  # per frame: down and up projection of every token
    # The temporal token: attention across the T frame tokens of each layer, and one extra key/value row in each
    # frame's spatial attention (the N spatial tokens query N + 1 keys). The q/k/v projection is one product over
    # all N + 1 rows, so the token's query row is projected too (and dropped before the scores).
    temporal = v.layers * attention_macs(frames, frames, width) if attention else 0
    extra_key = v.layers * (attention_macs(tokens, tokens + 1, width) - attention_macs(tokens, tokens, width)
                            + width * width)
    return frames * (per_frame + adapters + (extra_key if attention else 0)) + temporal


def text_macs(config: ModelConfig, attention: bool = True) -> int:
    """MACs of encoding one prompt (the full context, as the towers compute it; the EOT token is projected)."""
    t = config.text
    total = t.layers * block_macs(t.context_length, t.width, attention) + t.width * config.embed_dim
    if config.kind == "t2l":
        total += t.layers * t.context_length * 2 * t.width * int(t.width * config.adapter_ratio)
    return total
