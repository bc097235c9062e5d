"""CLIP BPE tokenisation (the vocabulary ships inside open_clip: works offline)."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def tokenize(texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
    """Texts -> token ids [N, context_length] (SOT ... EOT, zero-padded; longer texts are cut, keeping EOT)."""
    from open_clip.tokenizer import tokenize as open_clip_tokenize

    if isinstance(texts, str):
        texts = [texts]
    return open_clip_tokenize(list(texts), context_length=context_length)


def trim_padding(token_ids: torch.Tensor) -> torch.Tensor:
    """Token ids [N, L] -> [N, l], cut after the latest end-of-text token (CLIP's largest id). A causal text tower
    pooled at end-of-text, as CLIP's is, gives both the same embeddings, at a fraction of the cost for short texts."""
    length = int(token_ids.to(torch.int32).argmax(dim=-1).max()) + 1
    return token_ids[:, :length]
