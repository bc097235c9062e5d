"""The two training objectives: callables (video, labels, rng) -> named losses, "loss" being the one minimised.

T2L: alignment (in-batch symmetric soft-target KL, docs/design/T2L_SPEC.md §2.1) between each clip and its class
text, plus tfd_weight x TFD on the unnormalized frame embeddings (§2.2); C and V are logged.
ViFi-CLIP (docs/design/BASELINES_AND_CLAIMS.md §1): soft-target cross-entropy over every training class prompt,
label smoothing over all of them, Mixup/CutMix with a random partner (under torchrun each rank mixes within its own
part of the batch); `vificlip_classes: batch` restricts the prompts to the batch's classes.
Under torchrun both see the global batch: embeddings are gathered with their gradients (distributed.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..text.class_files import read_class_descriptions
from ..text.prompts import class_prompts, resolve_templates
from ..text.tokenize import tokenize, trim_padding
from . import distributed
from .config import DataConfig, TrainConfig
from .losses import alignment_loss, mix_clips, smoothed_targets, soft_cross_entropy, tfd_loss


def class_tokens(data: DataConfig, class_names: Sequence[str], model) -> torch.Tensor:
    """Tokens [C, l] of one training text per class: its description, else the first prompt of the template set
    (the model's own template by default); cut after the longest text (trim_padding: the same embeddings)."""
    if data.descriptions:
        texts = read_class_descriptions(data.descriptions, class_names)
    else:
        templates = resolve_templates(data.templates, model.config.prompt_template)
        texts = [prompts[0] for prompts in class_prompts(class_names, templates)]
    return trim_padding(tokenize(texts, model.config.text.context_length))


class Objective:
    """What both objectives share: the model, the tokens of one text per class [C, L], and the run's precision."""

    def __init__(self, model, class_tokens: torch.Tensor, device: torch.device, config: TrainConfig):
        self.model, self.class_tokens, self.device, self.config = model, class_tokens, device, config
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)

    def autocast(self):
        """Mixed precision for the forward passes (none for fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def encode_classes(self, classes: torch.Tensor) -> torch.Tensor:
        """Text embeddings [N, D] of the classes `classes` [N]."""
        return self.model.encode_text(self.class_tokens[classes.cpu()].to(self.device))

    def __call__(self, video: torch.Tensor, labels: torch.Tensor,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """The losses of normalized clips [b, T, 3, S, S] with labels [b]; rng: this micro-batch's random draws."""
        raise NotImplementedError


class T2LObjective(Objective):
    """T2L: in-batch alignment of clips and class texts plus tfd_weight x TFD (no random draws)."""

    def __call__(self, video: torch.Tensor, labels: torch.Tensor,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        with self.autocast():
            frames = self.model.encode_frames(video)  # [b, T, D] on this rank
            texts = self.encode_classes(labels)  # [b, D]
        frames = distributed.gather_with_grad(frames.float())  # [B, T, D]: the global batch
        texts = distributed.gather_with_grad(texts.float())  # [B, D]
        labels = distributed.gather(labels)  # [B]
        align = alignment_loss(F.normalize(frames.mean(1), dim=-1), texts, labels, self.model.logit_scale().item())
        tfd = tfd_loss(frames)
        return {"loss": align + self.config.tfd_weight * tfd.loss, "align": align, "tfd": tfd.loss,
                "tfd_C": tfd.central_difference, "tfd_V": tfd.variance}


class ViFiCLIPObjective(Objective):
    """ViFi-CLIP's recipe: soft-target CE over every class prompt of the training set (vificlip_classes="all";
    "batch": over the global batch's classes only), label smoothing over those, Mixup/CutMix with a random partner
    (one draw per micro-batch, from `rng`)."""

    def __call__(self, video: torch.Tensor, labels: torch.Tensor,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
        config = self.config
        if config.vificlip_classes == "all":
            classes = torch.arange(len(self.class_tokens), device=labels.device)  # [C]
            index = labels
        else:
            classes = distributed.gather(labels).unique()  # [U]: the global batch's classes
            index = torch.searchsorted(classes, labels)
        targets = smoothed_targets(index, len(classes), config.label_smoothing)  # [b, C or U]
        if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
            video, targets, _, _ = mix_clips(video, targets, rng, mixup_alpha=config.mixup_alpha,
                                             cutmix_alpha=config.cutmix_alpha, switch_prob=config.mix_switch_prob)
        with self.autocast():
            videos = self.model.encode_video(video)  # [b, D]
            texts = self.encode_classes(classes)  # [C or U, D]
        videos = distributed.gather_with_grad(videos.float())  # [B, D]
        targets = distributed.gather(targets)  # [B, C or U]
        logits = self.model.logit_scale() * videos @ texts.float().t()  # [B, C or U]
        loss = soft_cross_entropy(logits, targets)
        return {"loss": loss, "ce": loss}


OBJECTIVES = {"t2l": T2LObjective, "vificlip": ViFiCLIPObjective}


def build_objective(model, class_tokens: torch.Tensor, device: torch.device, config: TrainConfig) -> Objective:
    """The objective config.objective names, over `model` and the class tokens [C, L]."""
    return OBJECTIVES[config.objective](model, class_tokens, device, config)
