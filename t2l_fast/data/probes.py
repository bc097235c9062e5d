"""Validity probes of an order-only dataset: order-blind classifiers must fail, order-aware ones must succeed.

Clips are read through the evaluation loader (centre frames, resize, centre crop). Per frame we measure where the
shape is and how it looks: foreground mass, centroid, second and third central moments of |frame - background|,
and its heading relative to the clip's mean heading (every feature is a function of the frame and of the unordered
set of frames, never of the order).
  order-blind   a probe on the frame-mean of those features, and a ridge probe on frame-mean pixels;
  order-aware   the same probe on the features of all frames concatenated in order.
Metric: within-pair accuracy, the share of held-out clips whose class scores above its time-reversed twin.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..text.class_files import read_class_names
from .lists import VideoListError
from .loader import LoaderConfig, build_video_loader
from .synthetic import pair_of


def frame_features(video: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, 3, H, W] -> [B, T, 11]: mass, centroid (2), 2nd moments (3), 3rd moments (4) of the foreground,
    and the shape's heading relative to the clip's mean heading."""
    x = video.float() / 255
    b, t, _, h, w = x.shape
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)  # [B, T, 3, 2H+2W]
    background = border.permute(0, 2, 1, 3).reshape(b, 3, -1).median(dim=-1).values  # [B, 3], static per clip
    fg = (x - background[:, None, :, None, None]).abs().sum(dim=2)  # [B, T, H, W]
    fg = (fg - 0.15).clamp_min(0)  # ignore the background's texture and codec noise
    mass = fg.sum(dim=(2, 3)).clamp_min(1e-6)  # [B, T]
    ys = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w).view(1, 1, 1, w)
    cx, cy = (fg * xs).sum(dim=(2, 3)) / mass, (fg * ys).sum(dim=(2, 3)) / mass
    dx, dy = xs - cx[..., None, None], ys - cy[..., None, None]

    def moment(p: int, q: int) -> torch.Tensor:
        return (fg * dx ** p * dy ** q).sum(dim=(2, 3)) / mass

    m30, m03, m21, m12 = moment(3, 0), moment(0, 3), moment(2, 1), moment(1, 2)
    # Heading of a pointed shape (first harmonic of the third moments), relative to the clip's circular mean
    # heading: a statistic of the set of frames, so the feature itself carries no order.
    heading = torch.atan2(m03 + m21, m30 + m12)  # [B, T]
    mean_heading = torch.atan2(heading.sin().mean(1, keepdim=True), heading.cos().mean(1, keepdim=True))
    turn = torch.remainder(heading - mean_heading + torch.pi, 2 * torch.pi) - torch.pi
    return torch.stack([mass / (h * w), cx, cy, moment(2, 0), moment(0, 2), moment(1, 1), m30, m03, m21, m12, turn],
                       dim=-1)


def _load(list_file: Path, root: Path, frames: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    loader = build_video_loader(list_file, root, LoaderConfig(frames=frames, size=size, backend="pyav", num_workers=2),
                                split="val", batch_size=64)
    features, pixels, labels = [], [], []
    for batch in loader:
        features.append(frame_features(batch["video"]))
        pixels.append(batch["video"].float().mean(dim=1).flatten(1) / 255)
        labels.append(batch["label"])
    return torch.cat(features), torch.cat(pixels), torch.cat(labels)


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def mlp_probe(train_x, train_y, test_x, num_classes: int, steps: int = 400, seed: int = 0) -> torch.Tensor:
    """Scores [N_test, C] of a one-hidden-layer MLP trained full-batch on (train_x, train_y)."""
    train_x, test_x = _standardise(train_x, test_x)
    generator = torch.Generator().manual_seed(seed)
    w1 = (torch.randn(train_x.shape[1], 128, generator=generator) / train_x.shape[1] ** 0.5).requires_grad_()
    w2 = (torch.randn(128, num_classes, generator=generator) / 128 ** 0.5).requires_grad_()
    b1, b2 = torch.zeros(128, requires_grad=True), torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.Adam([w1, w2, b1, b2], lr=1e-2, weight_decay=1e-4)

    def scores(x):
        return torch.relu(x @ w1 + b1) @ w2 + b2

    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(scores(train_x), train_y).backward()
        optimizer.step()
    with torch.no_grad():
        return scores(test_x)


def ridge_probe(train_x, train_y, test_x, num_classes: int, alpha: float = 1.0) -> torch.Tensor:
    """Scores [N_test, C] of one-vs-rest ridge regression (solved in its dual: fine for many features)."""
    train_x, test_x = _standardise(train_x.double(), test_x.double())
    targets = torch.nn.functional.one_hot(train_y, num_classes).double()
    kernel = train_x @ train_x.t()
    dual = torch.linalg.solve(kernel + alpha * train_x.shape[1] * torch.eye(len(train_x), dtype=kernel.dtype), targets)
    return (test_x @ (train_x.t() @ dual)).float()


def _pair_hits(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, list[bool]]:
    """"a / b" pair -> for each clip of either class: does its true class score above its time-reversed twin?"""
    hits: dict[str, list[bool]] = {}
    for row, label in zip(scores, labels.tolist()):
        partner = pair_of(class_names, label)
        if partner is not None:
            pair = " / ".join(class_names[i] for i in sorted((label, partner)))
            hits.setdefault(pair, []).append(bool(row[label] > row[partner]))
    if not hits:
        raise VideoListError("no clip has its time-reversed twin class in this dataset")
    return hits


def within_pair_accuracy(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> float:
    """Share of clips whose true class scores above its time-reversed twin (clips without a twin are skipped)."""
    hits = [hit for pair in _pair_hits(scores, labels, class_names).values() for hit in pair]
    return sum(hits) / len(hits)


def pair_accuracies(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, float]:
    """Within-pair accuracy of each time-reversed pair ("a / b" -> share)."""
    return {pair: sum(hits) / len(hits) for pair, hits in _pair_hits(scores, labels, class_names).items()}


def order_probes(dataset_dir: Path, frames: int = 8, size: int = 64, eval_split: str = "test") -> dict[str, float]:
    """Within-pair accuracies of the order-blind and order-aware probes (train on train, score `eval_split`)."""
    dataset_dir = Path(dataset_dir)
    class_names = read_class_names(dataset_dir / "classes.txt")
    train_f, train_p, train_y = _load(dataset_dir / "train.txt", dataset_dir, frames, size)
    test_f, test_p, test_y = _load(dataset_dir / f"{eval_split}.txt", dataset_dir, frames, size)
    c = len(class_names)
    results = {
        "order_blind_features": mlp_probe(train_f.mean(1), train_y, test_f.mean(1), c),
        "order_blind_pixels": ridge_probe(train_p, train_y, test_p, c),
        "order_aware_features": mlp_probe(train_f.flatten(1), train_y, test_f.flatten(1), c),
    }
    return {name: within_pair_accuracy(scores, test_y, class_names) for name, scores in results.items()}
