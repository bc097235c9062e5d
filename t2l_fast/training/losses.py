"""T2L's losses (docs/design/T2L_SPEC.md §2): in-batch symmetric soft-target KL alignment, and the TFD loss."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def alignment_loss(video: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, logit_scale: float = 100.0,
                   target_sharpness: float = 10.0) -> torch.Tensor:
    """Symmetric in-batch KL between softmax(logit_scale * v t^T) and the soft targets row-softmax(10 * G).

    video, text: [B, D] L2-normalized; text[i] is the text of video i's class. labels: [B]; G[i, j] = 1 where
    labels agree, so duplicated classes in a batch share the target mass.
    """
    similarity = logit_scale * video @ text.t()  # [B, B]
    same_class = (labels[:, None] == labels[None, :]).to(similarity.dtype)  # G [B, B], symmetric
    target = (target_sharpness * same_class).softmax(dim=-1)  # Q [B, B]
    video_to_text = F.kl_div(similarity.log_softmax(dim=-1), target, reduction="batchmean")
    text_to_video = F.kl_div(similarity.t().log_softmax(dim=-1), target, reduction="batchmean")
    return 0.5 * (video_to_text + text_to_video)


class TFDLoss(NamedTuple):
    loss: torch.Tensor  # 1 / (1 + C + V)
    central_difference: torch.Tensor  # C: mean |e[t+1] - e[t-1]| / 2, edges replicated
    variance: torch.Tensor  # V: mean over (b, d) of the unbiased variance over t


def tfd_loss(frames: torch.Tensor) -> TFDLoss:
    """Temporal Feature Diversity loss of unnormalized frame embeddings [B, T, D] (T >= 2)."""
    t = frames.shape[1]
    if t < 2:
        raise ConfigError(f"the TFD loss needs at least 2 frames per clip, got T={t}")
    steps = torch.arange(t, device=frames.device)
    following = frames[:, (steps + 1).clamp(max=t - 1)]  # e[min(t+1, T-1)]
    preceding = frames[:, (steps - 1).clamp(min=0)]  # e[max(t-1, 0)]
    central_difference = ((following - preceding).abs() / 2).mean()
    variance = frames.var(dim=1, unbiased=True).mean()
    return TFDLoss(1.0 / (1.0 + central_difference + variance), central_difference, variance)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum(targets * log_softmax(logits)); targets [B, C] rows sum to 1."""
    return -(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


def smoothed_targets(positions: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """[B, C] one-hot rows with `smoothing` spread uniformly: (1 - s) * onehot + s / C."""
    return F.one_hot(positions, num_classes).float() * (1 - smoothing) + smoothing / num_classes


def mix_clips(video: torch.Tensor, targets: torch.Tensor, rng, *, mixup_alpha: float, cutmix_alpha: float,
              switch_prob: float):
    """Mixup or CutMix of a batch of clips [B, T, C, H, W] with a random permutation of it (one lambda per batch,
    one box for all frames of a clip, as ViFi-CLIP's CutmixMixupBlending does). Returns (video, targets, lambda,
    partner order [B])."""
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
    lam = float(rng.beta(cutmix_alpha, cutmix_alpha) if use_cutmix else rng.beta(mixup_alpha, mixup_alpha))
    order = torch.from_numpy(rng.permutation(video.shape[0])).to(video.device)  # [B]
    partner = video[order]
    if use_cutmix:
        height, width = video.shape[-2:]
        cut_h, cut_w = int(height * (1 - lam) ** 0.5), int(width * (1 - lam) ** 0.5)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        video = video.clone()
        video[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / (height * width)  # the area actually pasted
    else:
        video = lam * video + (1 - lam) * partner
    return video, lam * targets + (1 - lam) * targets[order], lam, order
