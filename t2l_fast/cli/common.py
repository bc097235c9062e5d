"""Arguments and model loading shared by several commands."""
from __future__ import annotations

import argparse

from ..errors import T2LError


def add_model_arguments(parser: argparse.ArgumentParser, several_checkpoints: str = "") -> None:
    """The options every command that runs a model shares. several_checkpoints: --checkpoint takes several folders
    (a list), and this says what they are for."""
    parser.add_argument("--model", help="registered model name (see `t2l models`)")
    several = dict(action="extend", nargs="+", metavar="DIR") if several_checkpoints else {}
    parser.add_argument("--checkpoint", **several,
                        help="a t2l-fast checkpoint folder (its config names the model)" + several_checkpoints)
    parser.add_argument("--pretrained", help="CLIP weights: open_clip tag, OpenAI ViT-B-16.pt, state dict, "
                        "local-dir:DIR")
    parser.add_argument("--descriptions", help="CSV of class name, description (what T2L was trained to read)")
    parser.add_argument("--templates", help="prompt templates: video, photo or bare (default: the model's own)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")


def load_model(args: argparse.Namespace, checkpoint: str | None, device: str | None = None):
    """(model in eval mode, device) from `checkpoint` or --model, with --pretrained/--device."""
    import torch

    from ..models.build import load_checkpoint
    from ..models.registry import create_model

    if not (args.model or checkpoint):
        raise T2LError("give --model NAME (see `t2l models`) or --checkpoint DIR")
    device = device or args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if checkpoint:
        model = load_checkpoint(checkpoint, pretrained=args.pretrained, device=device)
    else:
        model = create_model(args.model, pretrained=args.pretrained, device=device)
    return model.eval(), device
