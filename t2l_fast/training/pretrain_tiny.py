"""`t2l pretrain-tiny`: pre-train the tiny CLIP image tower on single synthetic frames, as a stand-in for the
image-pretrained CLIP every real model starts from.

Objective: attribute regression and classification (where the shape is (x, y), how large and how opaque it is,
which way a pointed shape heads (sin, cos; pointed shapes only), which shape it is) from two readouts: the image
embedding, and the mean of the output patch tokens. The second makes every token carry what the frame shows, as
a large pre-trained ViT's tokens do; T2L's temporal tokens start from each frame's token mean, and with the image
embedding alone T2L learned order much more slowly (within-pair 0.74 against 0.87 after the same budget).
Only the image tower (and the throw-away attribute head) trains; the text tower keeps its random weights, so the
order test scores classes with a prototype head, not with class texts (see order_test.py).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.synthetic import SHAPES
from ..data.synthetic_frames import NUM_ATTRIBUTES, synthetic_frames
from ..models.registry import create_model
from ..video_ops import normalize_video

POINTER = SHAPES.index("pointer")


def attribute_loss(predicted: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """predicted [B, 6 + shapes], attributes [B, 7] -> 10 x MSE of the continuous attributes (the heading only
    for pointed shapes: others look the same at many headings) + cross-entropy of the shape."""
    error = (predicted[:, :NUM_ATTRIBUTES] - attributes[:, :NUM_ATTRIBUTES]) ** 2  # [B, 6]
    shape = attributes[:, NUM_ATTRIBUTES].long()  # [B]
    error[:, 4:] = error[:, 4:] * (shape == POINTER).float()[:, None]
    return 10 * error.mean() + F.cross_entropy(predicted[:, NUM_ATTRIBUTES:], shape)


def pretrain_tiny(out_file: Path, *, model: str = "clip_tiny", frames: int = 20_000, steps: int = 1_500,
                  batch_size: int = 256, lr: float = 2e-3, weight_decay: float = 0.05, seed: int = 0,
                  log: Callable[[str], None] | None = print) -> dict:
    """Pre-train `model`'s image tower and save the whole backbone (a CLIP state dict) to `out_file`
    (.safetensors): load it with create_model(..., pretrained=out_file). Returns a summary."""
    from safetensors.torch import save_file

    started = time.time()
    torch.manual_seed(seed)
    clip = create_model(model)
    backbone = clip.backbone
    images, attributes = synthetic_frames(frames, seed, size=clip.input_spec.image_size)
    held_out = max(1, frames // 10)
    images = normalize_video(images, clip.input_spec)  # [N, 3, S, S]
    outputs = NUM_ATTRIBUTES + len(SHAPES)
    head = torch.nn.Linear(clip.config.embed_dim, outputs)  # reads the image embedding
    token_head = torch.nn.Linear(clip.config.vision.width, outputs)  # reads the mean output patch token
    parameters = [*backbone.visual.parameters(), *head.parameters(), *token_head.parameters()]
    for p in parameters:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    generator = torch.Generator().manual_seed(seed)
    train_count = frames - held_out
    backbone.train()
    backbone.visual.output_tokens = True  # visual(x) -> (embedding [B, D], patch tokens [B, N-1, W])
    for step in range(steps):
        batch = torch.randint(0, train_count, (batch_size,), generator=generator)
        embedding, tokens = backbone.visual(images[batch])
        loss = (attribute_loss(head(embedding), attributes[batch])
                + attribute_loss(token_head(tokens.mean(1)), attributes[batch]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if log and (step + 1) % max(1, steps // 5) == 0:
            log(f"   pre-training step {step + 1}/{steps}: attribute loss {loss.item():.4f}")
    backbone.visual.output_tokens = False
    backbone.eval()
    with torch.no_grad():
        predicted = head(backbone.encode_image(images[train_count:]))  # [H, 6 + shapes]
        truth = attributes[train_count:]
        position_r2 = 1 - ((predicted[:, :2] - truth[:, :2]) ** 2).mean() / truth[:, :2].var(0).mean()
        shape_accuracy = (predicted[:, NUM_ATTRIBUTES:].argmax(1) == truth[:, NUM_ATTRIBUTES].long()).float().mean()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in backbone.state_dict().items()}, str(out_file))
    return {"backbone": str(out_file), "model": model, "frames": frames, "steps": steps,
            "held_out_position_r2": round(float(position_r2), 4),
            "held_out_shape_accuracy": round(float(shape_accuracy), 4),
            "seconds": round(time.time() - started, 1)}
