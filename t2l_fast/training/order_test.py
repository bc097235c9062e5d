"""The order test: does a video model see temporal order? (`t2l order-test`; `t2l demo` runs a lighter one, on the
models it trained with class texts)

Data: the synthetic classes come in time-reversed pairs ("moving right" / "moving left", ...), drawn so that
no frame and no unordered set of frames tells a pair apart. Metric: within-pair accuracy on held-out clips from
another seed, the share whose true class scores above its time-reversed twin (chance: 0.5).
Models: the tiny T2L and the tiny ViFi-CLIP on the same frozen-then-adapted recipe and budget (clips, epochs,
batch, optimiser). The backbone is first pre-trained on single frames (pretrain_tiny.py), as real models start from
an image-pretrained CLIP. T2L then trains only its temporal tokens and vision adapters (the backbone is frozen,
text adapters are unused); ViFi-CLIP fine-tunes its whole image tower, as its recipe does.

Head: classes are scored against a *prototype head*, one fixed random unit embedding per class, because the tiny
text tower is not pre-trained on language (the test measures the video encoder); the loss is cross-entropy over
the prototypes. T2L's TFD loss is off by default (tfd_weight): at weight 1 the tiny T2L never learned order (50%
within pairs), as frame-varying temporal tokens satisfy it without looking at the frames.
Clips are held in memory (synthetic_frames.order_clips): the loader's evaluation view, without a codec.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.probes import pair_accuracies, within_pair_accuracy
from ..data.synthetic import CLASS_NAMES
from ..data.synthetic_frames import order_clips
from ..errors import ConfigError
from ..models.registry import create_model
from ..video_ops import normalize_video
from .losses import alignment_loss, tfd_loss
from .pretrain_tiny import pretrain_tiny, retrieval_line


@dataclass(frozen=True)
class OrderTestConfig:
    clips_per_class: int = 500  # training clips per class (6,000 in all): 64 per class learn nothing
    test_clips_per_class: int = 20  # held-out clips per class from another seed (240 in all, every pair)
    epochs: int = 16
    batch_size: int = 16
    lr: float = 1e-2  # tiny models need their own recipe (lr 5e-3..1e-2, wd 0.05, fp32)
    weight_decay: float = 0.05
    token_lr_scale: float = 5.0  # T2L's temporal tokens at lr x this (measured: within-pair 0.87 -> 0.9+ sooner)
    warmup_fraction: float = 0.1
    logit_scale: float = 30.0
    tfd_weight: float = 0.0  # T2L's TFD loss; measured on the tiny model at weight 1: order never learned (50%)
    pretrain_steps: int = 1_500
    pretrain_frames: int = 20_000
    seed: int = 0
    test_seed: int = 1
    twin_batches: bool = False  # half of each batch: a clip of each other clip's time-reversed twin class


# The test suite's budget: the whole procedure on a sliver of data, seconds not minutes. Too small for T2L to learn
# order (measured: 0.50 within pairs with 100 clips per class, 4 epochs, 300 pre-training steps); it checks the
# mechanics and that ViFi-CLIP stays at chance.
FAST = OrderTestConfig(clips_per_class=20, test_clips_per_class=20, epochs=1, pretrain_steps=20,
                       pretrain_frames=1_000)


def prototypes(num_classes: int, dim: int, seed: int) -> torch.Tensor:
    """[C, D] fixed random unit class embeddings (the prototype head)."""
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_classes, dim, generator=generator), dim=-1)


def epoch_batches(labels: torch.Tensor, batch_size: int, twins: bool, generator: torch.Generator
                  ) -> list[torch.Tensor]:
    """Index batches of one epoch: a random order cut into batches; with `twins`, each batch is half that order and
    half a random clip of each of those clips' twin class (label ^ 1), so the in-batch loss always meets the twin."""
    if twins and batch_size % 2:
        raise ConfigError(f"twin batches hold whole (clip, twin) pairs; batch_size {batch_size} is odd")
    order = torch.randperm(len(labels), generator=generator)
    if not twins:
        return list(order[:len(order) // batch_size * batch_size].split(batch_size))
    half = batch_size // 2
    order = order[:len(order) // half * half]
    twin_class = labels[order] ^ 1  # [N']
    members = [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]  # indices per class
    picks = torch.stack([members[c][torch.randint(len(members[c]), (1,), generator=generator)][0]
                         for c in twin_class.tolist()])  # [N']
    return [torch.cat(pair) for pair in zip(order.split(half), picks.split(half))][:len(labels) // batch_size]


def adapt(model, clips: torch.Tensor, labels: torch.Tensor, heads: torch.Tensor | None, config: OrderTestConfig,
          log: Callable[[str], None] | None = None, class_tokens: torch.Tensor | None = None) -> None:
    """Train `model` (T2L: temporal tokens and vision adapters; ViFi-CLIP: image tower) on uint8 clips
    [N, T, 3, S, S] against the fixed class embeddings `heads` [C, D] with cross-entropy, or (class_tokens [C, L])
    against the class texts through the text tower with T2L's alignment loss (T2L's text adapters train too);
    + TFD for T2L if weighted; AdamW, warm-up + cosine."""
    is_t2l = model.config.kind == "t2l"
    if is_t2l:  # temporal tokens and vision adapters; text adapters only where class texts are read
        parameters = [p for name, p in model.named_learnable_parameters()
                      if class_tokens is not None or not name.startswith("text")]
    else:  # ViFi-CLIP fine-tunes the image tower
        parameters = list(model.backbone.visual.parameters())
    trained = {id(p) for p in parameters}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    tokens = [p for p in parameters if p is getattr(model, "temporal_tokens", None)]
    rest = [p for p in parameters if p is not getattr(model, "temporal_tokens", None)]
    optimizer = torch.optim.AdamW([{"params": rest}, {"params": tokens, "lr": config.lr * config.token_lr_scale}],
                                  lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(clips) // config.batch_size
    total = config.epochs * steps_per_epoch
    warmup = max(1, round(config.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / total))))
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for epoch in range(config.epochs):
        for batch in epoch_batches(labels, config.batch_size, config.twin_batches, generator):
            frames = model.encode_frames(normalize_video(clips[batch], model.input_spec))  # [B, T, D]
            video = F.normalize(frames.mean(1), dim=-1)  # [B, D]
            if class_tokens is None:
                loss = F.cross_entropy(config.logit_scale * video @ heads.t(), labels[batch])
            else:  # in-batch alignment of each clip with its class text [B, D]
                texts = model.encode_text(class_tokens[labels[batch]])
                loss = alignment_loss(video, texts, labels[batch], model.logit_scale().item())
            if is_t2l and config.tfd_weight:
                loss = loss + config.tfd_weight * tfd_loss(frames).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if log:
            log(f"   {model.config.name} epoch {epoch + 1}/{config.epochs}: loss {loss.item():.4f}")
    model.eval()


@torch.no_grad()
def score(model, clips: torch.Tensor, heads: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Cosine scores [N, C] of uint8 clips [N, T, 3, S, S] against class embeddings [C, D]."""
    model.eval()
    parts = [model.encode_video(normalize_video(clips[i:i + batch_size], model.input_spec)) @ heads.t()
             for i in range(0, len(clips), batch_size)]
    return torch.cat(parts)


def run_order_test(out_dir: Path, config: OrderTestConfig = OrderTestConfig(), backbone: Path | None = None,
                   log: Callable[[str], None] | None = print) -> dict:
    """Pre-train the tiny backbone (unless `backbone` is given), adapt T2L and ViFi-CLIP on it with one budget,
    and report their within-pair accuracies on held-out clips. Writes `order_test.json` to `out_dir`."""
    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"config": asdict(config), "head": "prototypes (fixed random unit class embeddings)"}
    if backbone is None:
        backbone = out_dir / "tiny_backbone.safetensors"
        report["pretraining"] = pretrain_tiny(backbone, frames=config.pretrain_frames, steps=config.pretrain_steps,
                                              seed=config.seed, log=log)
        if log:
            log(f"   pre-trained tiny backbone ({report['pretraining']['seconds']} s): "
                f"{retrieval_line(report['pretraining'])}")
    report["backbone"] = str(backbone)
    train_clips, train_labels = order_clips(config.clips_per_class, config.seed)
    test_clips, test_labels = order_clips(config.test_clips_per_class, config.test_seed)
    report["clips"] = {"train": len(train_labels), "test": len(test_labels)}
    report["models"] = {}
    for name in ("t2l_tiny", "vificlip_tiny"):
        torch.manual_seed(config.seed)
        model = create_model(name, pretrained=str(backbone), **({"drop_path": 0.0, "token_dropout": 0.0}
                                                                   if name.startswith("t2l") else {}))
        heads = prototypes(len(CLASS_NAMES), model.config.embed_dim, config.seed)
        model_started = time.time()
        adapt(model, train_clips, train_labels, heads, config, log=log)
        scores = score(model, test_clips, heads)
        report["models"][name] = {
            "within_pair_accuracy": within_pair_accuracy(scores, test_labels, list(CLASS_NAMES)),
            "per_pair": pair_accuracies(scores, test_labels, list(CLASS_NAMES)),
            "top1": float((scores.argmax(1) == test_labels).float().mean()),
            "trained_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "seconds": round(time.time() - model_started, 1)}
        if log:
            result = report["models"][name]
            log(f"   {name}: within-pair accuracy {result['within_pair_accuracy']:.3f}, top-1 {result['top1']:.3f} "
                f"on {len(test_labels)} held-out clips ({result['trained_parameters']:,} parameters trained)")
    report["seconds"] = round(time.time() - started, 1)
    (out_dir / "order_test.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def run_order_sweep(out_dir: Path, seeds, config: OrderTestConfig = OrderTestConfig(),
                    log: Callable[[str], None] | None = print) -> dict:
    """The order test once per seed (pre-training, clips, initialisation and data order all drawn from it; the
    held-out clips from seed + 1000), each in `seed_S/`, and the min / median / max of each model's within-pair
    accuracy over the seeds in `order_sweep.json`."""
    out_dir = Path(out_dir)
    runs = {}
    for seed in seeds:
        if log:
            log(f"   seed {seed}:")
        runs[seed] = run_order_test(out_dir / f"seed_{seed}", replace(config, seed=seed, test_seed=seed + 1000),
                                    log=log)
    summary = {"seeds": list(runs), "config": asdict(config), "models": {}}
    for name in ("t2l_tiny", "vificlip_tiny"):
        values = [run["models"][name]["within_pair_accuracy"] for run in runs.values()]
        pairs = runs[next(iter(runs))]["models"][name]["per_pair"]
        summary["models"][name] = {"within_pair_accuracy": dict(zip(map(str, runs), values)), "min": min(values),
                                   "median": statistics.median(values), "max": max(values),
                                   "per_pair_min": {pair: min(run["models"][name]["per_pair"][pair]
                                                              for run in runs.values()) for pair in pairs}}
    summary["seconds"] = round(sum(run["seconds"] for run in runs.values()), 1)
    (out_dir / "order_sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
