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
