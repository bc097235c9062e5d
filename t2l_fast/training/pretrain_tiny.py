"""`t2l pretrain-tiny`: pre-train both towers of the tiny CLIP together, as a stand-in for the image-text
pre-trained CLIP every real model starts from.

Data: single synthetic frames (synthetic_frames.py) paired with captions of what each shows (captions.py: shape,
colour, position, size, opacity, heading, in varied words and word order; a fresh caption per frame and step).
Objective: CLIP's symmetric InfoNCE between image and caption embeddings in the batch, with a learned temperature,
where each caption also brings a hard negative, the same words with one fact turned to its opposite (NegCLIP), and
two auxiliary readouts:
- from each caption's embedding, the side of the frame it names (right or left, bottom or top; side_loss). Without
  it the text tower gave "a shape on the left" and "... on the right" the same embedding (cosine 0.996; zero-shot
  left/right 0.55), so a video model trained on class texts had no signal to tell "moving left" from "moving right";
  with it, cosine 0.16 and 0.99, and held-out R@1 rose from 0.10 to 0.37;
- from the image embedding and from the mean output patch token, the frame's attributes (where the shape is, how
  large and opaque, its heading and shape). The second makes every token carry what the frame shows, as a large
  pre-trained ViT's tokens do; T2L's temporal tokens start from each frame's token mean (without it, T2L learned
  order much more slowly in the order test: within-pair 0.74 against 0.87 after the same budget).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.captions import COLOURS, named_sides, position_words
from ..data.synthetic import SHAPES
from ..data.synthetic_frames import NUM_ATTRIBUTES, frame_captions, synthetic_frames
from ..models.registry import create_model
from ..text.tokenize import tokenize, trim_padding
from ..video_ops import normalize_video

POINTER = SHAPES.index("pointer")
CAPTIONS_PER_FRAME = 4
GALLERY = 256  # held-out frames per retrieval gallery (R@1 chance: 1/256)


def attribute_loss(predicted: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """predicted [B, 6 + shapes], attributes [B, 7+] -> 10 x MSE of the continuous attributes (the heading only
    for pointed shapes: others look the same at many headings) + cross-entropy of the shape."""
    error = (predicted[:, :NUM_ATTRIBUTES] - attributes[:, :NUM_ATTRIBUTES]) ** 2  # [B, 6]
    shape = attributes[:, NUM_ATTRIBUTES].long()  # [B]
    error[:, 4:] = error[:, 4:] * (shape == POINTER).float()[:, None]
    return 10 * error.mean() + F.cross_entropy(predicted[:, NUM_ATTRIBUTES:], shape)


def clip_loss(images: torch.Tensor, texts: torch.Tensor, negatives: torch.Tensor, usable: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of normalized image [B, D] and caption [B, D] embeddings (pair i matches pair i), with
    each caption's hard negative [B, D] as one more wrong caption for every image (NegCLIP; `usable` [B] is False
    where the negative says the same as its caption)."""
    logits = logit_scale * images @ texts.t()  # [B, B]
    negative_logits = (logit_scale * images @ negatives.t()).masked_fill(~usable[None, :], float("-inf"))  # [B, B]
    target = torch.arange(len(images))
    return (F.cross_entropy(torch.cat([logits, negative_logits], 1), target) + F.cross_entropy(logits.t(), target)) / 2


def side_loss(predicted: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """The text readout: logits [B, 2] of "right" and "bottom" from a caption's embedding against sides [B, 2]
    (1: right / bottom, 0: left / top, -1: the caption names no side on that axis), binary cross-entropy where named."""
    named = sides >= 0
    if not named.any():
        return predicted.sum() * 0
    return F.binary_cross_entropy_with_logits(predicted[named], sides[named].float())


def caption_tokens(attributes: torch.Tensor, seed: int, context_length: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[N, K, L] tokens of K random captions per frame, [N, K, L] of their hard negatives (each distinct text
    tokenized once), and [N, K, 2] the sides each caption names (side_loss)."""
    captions, negatives = frame_captions(attributes, seed, CAPTIONS_PER_FRAME)
    unique = sorted({text for texts in (*captions, *negatives) for text in texts})
    tokens = tokenize(unique, context_length)  # [U, L]
    index = {text: i for i, text in enumerate(unique)}
    sides = torch.tensor([[named_sides(text, x, y) for text in texts]
                          for texts, (x, y) in zip(captions, attributes[:, :2].tolist())])
    return (*(tokens[torch.tensor([[index[text] for text in texts] for texts in part])]
              for part in (captions, negatives)), sides)


def readout_heads(clip) -> tuple[torch.nn.Linear, torch.nn.Linear, torch.nn.Linear]:
    """The auxiliary readouts: attributes from the image embedding, attributes from the mean output patch token,
    and the named sides (right? bottom?) from a caption's embedding."""
    outputs = NUM_ATTRIBUTES + len(SHAPES)
    return (torch.nn.Linear(clip.config.embed_dim, outputs), torch.nn.Linear(clip.config.vision.width, outputs),
            torch.nn.Linear(clip.config.embed_dim, 2))


def pretrain_tiny(out_file: Path, *, model: str = "clip_tiny", frames: int = 20_000, steps: int = 1_500,
                  batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 0.05, seed: int = 0,
                  log: Callable[[str], None] | None = print) -> dict:
    """Pre-train `model`'s two towers and save the whole backbone (a CLIP state dict) to `out_file`
    (.safetensors): load it with create_model(..., pretrained=out_file). Returns a summary with held-out
    retrieval and zero-shot frame figures."""
    from safetensors.torch import save_file

    started = time.time()
    torch.manual_seed(seed)
    clip = create_model(model)
    backbone = clip.backbone
    images, attributes = synthetic_frames(frames, seed, size=clip.input_spec.image_size)
    tokens, negative_tokens, sides = caption_tokens(attributes, seed, clip.config.text.context_length)
    held_out = min(max(1, frames // 10), 4 * GALLERY)
    images = normalize_video(images, clip.input_spec)  # [N, 3, S, S]
    with torch.no_grad():  # CLIP's initial temperature (0.07); learned from there, capped at 100
        backbone.logit_scale.fill_(math.log(1 / 0.07))
    head, token_head, side_head = readout_heads(clip)
    parameters = [*backbone.requires_grad_(True).parameters(), *head.parameters(), *token_head.parameters(),
                  *side_head.parameters()]
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
        pick = torch.randint(0, CAPTIONS_PER_FRAME, (batch_size,), generator=generator)
        embedding, patch_tokens = backbone.visual(images[batch])
        positive, negative = tokens[batch, pick], negative_tokens[batch, pick]  # [B, L] each
        texts = clip.encode_text(trim_padding(torch.cat([positive, negative])))  # [2B, D], normalized
        usable = (positive != negative).any(1)  # [B]
        contrastive = clip_loss(F.normalize(embedding, dim=-1), texts[:batch_size], texts[batch_size:], usable,
                                backbone.logit_scale.exp().clamp(max=100))
        loss = (contrastive + side_loss(side_head(texts[:batch_size]), sides[batch, pick])
                + attribute_loss(head(embedding), attributes[batch])
                + attribute_loss(token_head(patch_tokens.mean(1)), attributes[batch]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if log and (step + 1) % max(1, steps // 10) == 0:
            log(f"   pre-training step {step + 1}/{steps}: contrastive loss {contrastive.item():.4f}, "
                f"total {loss.item():.4f}")
    backbone.visual.output_tokens = False
    backbone.eval()
    figures = held_out_figures(backbone, images[train_count:], attributes[train_count:], tokens[train_count:, 0],
                               negative_tokens[train_count:, 0], clip.config.text.context_length)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in backbone.state_dict().items()}, str(out_file))
    return {"backbone": str(out_file), "model": model, "frames": frames, "steps": steps, **figures,
            "seconds": round(time.time() - started, 1)}


@torch.no_grad()
def held_out_figures(backbone, images: torch.Tensor, attributes: torch.Tensor, tokens: torch.Tensor,
                     negative_tokens: torch.Tensor, context_length: int) -> dict:
    """Retrieval R@1/R@5 both ways over galleries of GALLERY held-out frame-caption pairs (mean over galleries;
    one smaller gallery of them all if fewer are held out); how often a frame scores its caption above the caption's
    hard negative (chance 0.5); and zero-shot frame accuracy by prompt: which shape ("a circle", ...), which colour
    ("a red shape", ...) and which side ("a shape on the left" / "... right", frames off the middle)."""
    gallery = min(GALLERY, len(images))
    image_embeddings = backbone.encode_image(images, normalize=True)  # [H, D]
    text_embeddings = backbone.encode_text(tokens, normalize=True)  # [H, D]
    recalls = {"caption_to_image_r1": [], "caption_to_image_r5": [], "image_to_caption_r1": [],
               "image_to_caption_r5": []}
    for start in range(0, len(images) - gallery + 1, gallery):
        similarity = text_embeddings[start:start + gallery] @ image_embeddings[start:start + gallery].t()
        for direction, scores in (("caption_to_image", similarity), ("image_to_caption", similarity.t())):
            rank = (scores > scores.diagonal()[:, None]).sum(1)  # [G]: how many beat the true pair
            recalls[f"{direction}_r1"].append(float((rank < 1).float().mean()))
            recalls[f"{direction}_r5"].append(float((rank < 5).float().mean()))
    figures = {name: round(sum(v) / len(v), 4) for name, v in recalls.items()}
    figures["gallery"] = gallery
    usable = (tokens != negative_tokens).any(1)  # [H]
    negatives = backbone.encode_text(negative_tokens[usable], normalize=True)  # [H', D]
    right = ((image_embeddings[usable] * text_embeddings[usable]).sum(1)
             > (image_embeddings[usable] * negatives).sum(1))  # [H']
    figures["caption_over_negative_accuracy"] = _share(right)
    side = torch.tensor([{"left": 0, "right": 1}.get(position_words(x, y)[1], -1)
                         for x, y in attributes[:, :2].tolist()])  # [H]: -1 near the middle
    for name, words, truth in (("shape", [f"a {s}" for s in ("circle", "square", "diamond", "triangle")],
                                attributes[:, 6].long()),
                               ("colour", [f"a {c} shape" for c in COLOURS], attributes[:, 7].long()),
                               ("side", ["a shape on the left", "a shape on the right"], side)):
        prompts = backbone.encode_text(tokenize(words, context_length), normalize=True)  # [K, D]
        predicted = (image_embeddings @ prompts.t()).argmax(1)
        figures[f"zero_shot_{name}_accuracy"] = _share((predicted == truth)[truth >= 0])
    return figures


def _share(hits: torch.Tensor) -> float | None:
    """The share of True in a bool tensor, rounded; None where it is empty (e.g. no held-out frame off the
    middle)."""
    return round(float(hits.float().mean()), 4) if len(hits) else None


def retrieval_line(summary: dict) -> str:
    """The held-out figures of a pre-training summary in one line, with their chance levels."""
    def f(key: str) -> str:
        return "n/a" if summary[key] is None else f"{summary[key]:.3f}"  # None: nothing held out to measure it on

    return (f"held-out retrieval over galleries of {summary['gallery']} frame-caption pairs (chance R@1 "
            f"{1 / summary['gallery']:.4f}): caption->image R@1 {f('caption_to_image_r1')}, R@5 "
            f"{f('caption_to_image_r5')}; image->caption R@1 {f('image_to_caption_r1')}, R@5 "
            f"{f('image_to_caption_r5')}; caption over its hard negative {f('caption_over_negative_accuracy')} "
            f"(chance 0.5); zero-shot by prompt: shape {f('zero_shot_shape_accuracy')} (chance 0.25), colour "
            f"{f('zero_shot_colour_accuracy')} (chance {1 / len(COLOURS):.3f}), side (left / right) "
            f"{f('zero_shot_side_accuracy')} (chance 0.5)")
