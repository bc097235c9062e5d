"""The `t2l` command. Sub-commands import what they need when they run, so `t2l --help` is instant."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import __version__
from .errors import T2LError


def _models(args: argparse.Namespace) -> int:
    from .models.registry import create_model, list_models

    rows = []
    for name in list_models():
        model = create_model(name, device="meta")  # shapes only: instant, no memory
        learnable, total = model.count_parameters()
        c = model.config
        rows.append({"name": name, "kind": c.kind, "learnable_params": learnable, "total_params": total,
                     "frames": c.frames, "image_size": c.vision.image_size})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<18} {'kind':<9} {'frames':>6} {'image':>5} {'learnable':>13} {'total':>13}")
    for r in rows:
        print(f"{r['name']:<18} {r['kind']:<9} {r['frames']:>6} {r['image_size']:>5} "
              f"{r['learnable_params']:>13,} {r['total_params']:>13,}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out)
    return 0


def _convert_official(args: argparse.Namespace) -> int:
    from .models.checkpoint import save_checkpoint
    from .models.official import load_official_t2l

    model = load_official_t2l(args.checkpoint, model_name=args.model)
    if args.backbone:
        model.backbone_source = args.backbone
    out = save_checkpoint(model, args.out_dir, full=not args.backbone)
    learnable, total = model.count_parameters()
    kind = "learnable weights only (backbone: " + args.backbone + ")" if args.backbone else "full model"
    print(f"converted {args.checkpoint} -> {out} as {model.config.name}, T={model.config.frames}, {kind}; "
          f"{learnable:,} learnable of {total:,} parameters")
    return 0


def _env(args: argparse.Namespace) -> int:
    from .optional import installed, onnxruntime_conflict

    facts = {name: installed(name) for name in ("torch", "torchvision", "open_clip_torch", "av", "nvidia-dali-cuda130",
                                                "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "fvcore")}
    import torch

    facts["cuda_available"] = torch.cuda.is_available()
    facts["onnxruntime_conflict"] = onnxruntime_conflict()
    for key, value in facts.items():
        print(f"{key:<22} {value if value is not None else '-'}")
    return 1 if facts["onnxruntime_conflict"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2l", description="Efficient zero-shot video action recognition: "
                                     "T2L, ViFi-CLIP and CLIP.")
    parser.add_argument("--version", action="version", version=f"t2l-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the registered models with their parameter counts")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=_models)

    p = sub.add_parser("demo", help="run the pipeline end to end on built-in synthetic data (no downloads)")
    p.add_argument("--out", default="runs/demo", help="folder for the demo's summary (default: runs/demo)")
    p.set_defaults(run=_demo)

    p = sub.add_parser("convert-official", help="convert an official T2L repository checkpoint (.pt)")
    p.add_argument("checkpoint", help="the official .pt file ({'epoch', 'model_state_dict', ...})")
    p.add_argument("out_dir", help="folder for the t2l-fast checkpoint")
    p.add_argument("--model", help="registered model name (default: inferred from the weights' shapes)")
    p.add_argument("--backbone", help="save only the learnable weights, on top of this CLIP backbone source "
                   "(e.g. 'openai' or /path/ViT-B-16.pt); default: save the full model")
    p.set_defaults(run=_convert_official)

    p = sub.add_parser("env", help="report installed components, GPU availability and install conflicts")
    p.set_defaults(run=_env)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except T2LError as e:
        print(f"t2l {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
