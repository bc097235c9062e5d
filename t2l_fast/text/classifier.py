"""Zero-shot classifier: class texts -> class embeddings, encoded in batches and cached on disk."""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import ClassFileError, UnsupportedOptionError
from .prompts import class_prompts, resolve_templates
from .tokenize import tokenize, trim_padding

Combine = Literal["embedding", "score"]
# Parameters that cannot change a text embedding (left out of the cache key's weight fingerprint).
_VISION_ONLY = ("backbone.visual.", "temporal_tokens", "vision_adapters.")


@dataclass
class ZeroShotClassifier:
    """Class embeddings of a model. combine="embedding": one embedding per class, the re-normalized mean over
    templates ([C, D], the open_clip convention). combine="score": one per class and template ([K, C, D]);
    probabilities are the mean over templates of the softmax (the official T2L evaluation)."""

    class_names: list[str]
    embeddings: torch.Tensor  # [C, D] or [K, C, D], L2-normalized
    combine: Combine = "embedding"

    def probabilities(self, video_embeddings: torch.Tensor, logit_scale: float | torch.Tensor) -> torch.Tensor:
        """[B, D] normalized video embeddings -> [B, C] class probabilities."""
        embeddings = self.embeddings.to(video_embeddings)
        if self.combine == "embedding":
            return (logit_scale * video_embeddings @ embeddings.t()).softmax(dim=-1)
        logits = logit_scale * torch.einsum("bd,kcd->kbc", video_embeddings, embeddings)  # [K, B, C]
        return logits.softmax(dim=-1).mean(dim=0)


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "t2l-fast" / "class-embeddings"


def build_classifier(model, class_names: Sequence[str], *, descriptions: Sequence[str] | None = None,
                     templates: str | Sequence[str] | None = None, combine: Combine = "embedding",
                     batch_size: int = 256, cache_dir: str | Path | None = None) -> ZeroShotClassifier:
    """Encode C classes x K templates with `model.encode_text` in batches of `batch_size`.

    descriptions: one text per class (read with read_class_descriptions); used verbatim, as T2L was trained.
    templates: None (the model's own prompt), a set name ("bare", "photo", "video") or a list of templates.
    cache_dir: where to keep the embeddings, keyed by model, text weights, texts and combine mode.
    """
    if combine not in ("embedding", "score"):
        raise UnsupportedOptionError(f"combine must be 'embedding' or 'score', got {combine!r}")
    class_names = list(class_names)
    prompts = build_prompts(model.config, class_names, descriptions, templates)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{_cache_key(model, prompts, combine)}.safetensors"
        if cache_file.is_file():
            from safetensors.torch import load_file

            try:
                return ZeroShotClassifier(class_names, load_file(str(cache_file))["embeddings"], combine)
            except Exception:  # a corrupt cache entry is rebuilt, never trusted
                cache_file.unlink(missing_ok=True)
    embeddings = combine_templates(_encode_prompts(model, prompts, batch_size), combine)
    if cache_file is not None:
        _save_cache(cache_file, embeddings)
    return ZeroShotClassifier(class_names, embeddings, combine)


def build_prompts(config, class_names: Sequence[str], descriptions: Sequence[str] | None = None,
                  templates: str | Sequence[str] | None = None) -> list[list[str]]:
    """[C][K] texts for a model of `config`: each class's description (K = 1), or its name in each template."""
    if descriptions is not None:
        if len(descriptions) != len(class_names):
            raise ClassFileError(f"{len(descriptions)} descriptions for {len(class_names)} classes")
        return [[d] for d in descriptions]  # [C][1]
    if config.text_source == "descriptions":
        warnings.warn(f"{config.name} was trained on class descriptions, and is scored here with bare class names: "
                      f"expect lower accuracy. Pass descriptions (a CSV of class, description).", stacklevel=3)
    return class_prompts(class_names, resolve_templates(templates, config.prompt_template))


def combine_templates(embeddings: torch.Tensor, combine: Combine = "embedding") -> torch.Tensor:
    """[K, C, D] normalized embeddings -> [C, D] (the re-normalized mean over templates) or [K, C, D] as they are."""
    return F.normalize(embeddings.mean(dim=0), dim=-1) if combine == "embedding" else embeddings


def flatten_prompts(prompts: list[list[str]]) -> list[str]:
    """[C][K] -> template-major flat list (all classes of template 0, then template 1, ...), as [K, C] reshapes."""
    return [prompts[c][k] for k in range(len(prompts[0])) for c in range(len(prompts))]


@torch.no_grad()
def _encode_prompts(model, prompts: list[list[str]], batch_size: int) -> torch.Tensor:
    """[C][K] prompts -> [K, C, D] normalized embeddings."""
    num_classes, num_templates = len(prompts), len(prompts[0])
    flat = flatten_prompts(prompts)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        chunks = [model.encode_text(trim_padding(tokenize(flat[i:i + batch_size], model.config.text.context_length))
                                    .to(device)).float().cpu()
                  for i in range(0, len(flat), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks).view(num_templates, num_classes, -1)


def _cache_key(model, prompts: list[list[str]], combine: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"model": model.config.name, "prompts": prompts, "combine": combine}).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith(_VISION_ONLY):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def _save_cache(path: Path, embeddings: torch.Tensor) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"embeddings": embeddings.contiguous()}, str(tmp))
    os.replace(tmp, path)
