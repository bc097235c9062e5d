"""Commands about the package itself: models, pretrain-tiny, order-test, convert-official, env."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import T2LError
from .common import non_negative_int, number, positive_int


def _models(args: argparse.Namespace) -> int:
    from ..models.registry import create_model, list_models

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


def _pretrain_tiny(args: argparse.Namespace) -> int:
    from ..io import check_writable
    from ..training.pretrain_tiny import pretrain_tiny, retrieval_line

    if Path(args.out).is_dir():
        raise T2LError(f"--out {args.out}: a folder; pretrain-tiny writes one backbone file: give a file name such as "
                       f"{Path(args.out) / 'tiny_backbone.safetensors'}")
    check_writable(Path(args.out).parent, "--out")
    summary = pretrain_tiny(Path(args.out), frames=args.frames, steps=args.steps, seed=args.seed)
    print(f"tiny backbone saved to {summary['backbone']} in {summary['seconds']} s; use it with --pretrained "
          f"{summary['backbone']} or pretrained: in a training config")
    print(retrieval_line(summary))
    return 0


def _order_test(args: argparse.Namespace) -> int:
    from ..io import check_writable
    from ..training.order_test import FAST, OrderTestConfig, run_order_sweep, run_order_test

    check_writable(Path(args.out), "--out")
    config = FAST if args.fast else OrderTestConfig()
    if args.seeds:
        if args.backbone:
            raise T2LError("--seeds pre-trains one backbone per seed; drop --backbone")
        sweep = run_order_sweep(Path(args.out), args.seeds, config)
        for name, label in (("t2l_tiny", "T2L"), ("vificlip_tiny", "ViFi-CLIP")):
            result = sweep["models"][name]
            print(f"{label} within pairs over seeds {sweep['seeds']}: min {result['min']:.3f}, median "
                  f"{result['median']:.3f}, max {result['max']:.3f}")
        print(f"report in {Path(args.out) / 'order_sweep.json'}")
        return 0
    report = run_order_test(Path(args.out), config, backbone=Path(args.backbone) if args.backbone else None)
    t2l, vifi = (report["models"][name]["within_pair_accuracy"] for name in ("t2l_tiny", "vificlip_tiny"))
    print(f"within-pair accuracy on {report['clips']['test']} held-out clips: T2L {t2l:.3f}, ViFi-CLIP {vifi:.3f} "
          f"(chance 0.5; head: {report['head']}); report in {Path(args.out) / 'order_test.json'}")
    return 0


def _zero_shot_test(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..io import check_writable
    from ..training.zero_shot_test import FAST, ZeroShotTestConfig, run_zero_shot_test

    check_writable(Path(args.out), "--out")
    if len(args.seeds) > 1 and args.backbone:
        raise T2LError("several --seeds pre-train one backbone per seed; drop --backbone")
    config = replace(FAST if args.fast else ZeroShotTestConfig(), split=args.split)
    for seed in args.seeds:
        folder = Path(args.out) / f"seed_{seed}" if len(args.seeds) > 1 else Path(args.out)
        report = run_zero_shot_test(folder, replace(config, seed=seed),
                                    backbone=Path(args.backbone) if args.backbone else None)
        clip = max(report["clip_tiny"].values(), key=lambda result: result["top1"])
        print(f"seed {seed}, {args.split} split, {report['classes']['unseen']} unseen classes (chance "
              f"{report['classes']['chance']:.3f}): T2L top-1 {report['t2l_tiny']['top1']:.3f}, CLIP frame averaging "
              f"{clip['top1']:.3f} (T2L - CLIP {report['t2l_minus_clip']:+.3f}); within pairs T2L "
              f"{report['t2l_tiny']['within_pair_accuracy']:.3f}, CLIP {clip['within_pair_accuracy']:.3f}; report in "
              f"{folder / 'zero_shot_test.json'}")
    return 0


def _convert_official(args: argparse.Namespace) -> int:
    from ..models.checkpoint import save_checkpoint

    if args.kind == "vificlip":
        from ..models.official_vificlip import load_official_vificlip

        if not args.pretrained:
            raise T2LError("--kind vificlip needs --pretrained: the CLIP weights ViFi-CLIP was fine-tuned from "
                           "('openai' or /path/ViT-B-16.pt); its checkpoints do not hold the token embedding")
        model = load_official_vificlip(args.checkpoint, args.pretrained, model_name=args.model)
    else:
        from ..models.official import load_official_t2l

        if args.pretrained:
            raise T2LError("--pretrained is for --kind vificlip; an official T2L checkpoint holds every weight")
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
    from ..optional import installed_versions, onnxruntime_conflict

    components = ("torch", "torchvision", "open_clip_torch", "av", "nvidia-dali", "onnx", "onnxruntime",
                  "onnxruntime-gpu", "tensorrt", "tensorrt-rtx-cu13", "tritonclient", "fvcore", "openvino")
    facts = installed_versions(components)
    import torch

    facts["cuda_available"] = torch.cuda.is_available()
    facts["onnxruntime_conflict"] = onnxruntime_conflict()
    for key, value in facts.items():
        print(f"{key:<22} {value if value is not None else '-'}")
    return 1 if facts["onnxruntime_conflict"] else 0


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    p = sub.add_parser("models", help="list the registered models with their parameter counts")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=_models)

    p = sub.add_parser("pretrain-tiny", help="pre-train both towers of the tiny CLIP on synthetic frames and their "
                                             "captions (CLIP's objective; CPU, a few minutes)")
    p.add_argument("--out", default="runs/tiny_backbone.safetensors", help="backbone file to write")
    p.add_argument("--frames", type=number(integer=True, minimum=2), default=20_000,
                   help="synthetic frames to pre-train on (a tenth, at least one, is held out)")
    p.add_argument("--steps", type=positive_int, default=1_500, help="optimiser steps (batch 128)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(run=_pretrain_tiny)

    p = sub.add_parser("order-test", help="can T2L and ViFi-CLIP tell an action from its time reversal? (CPU)")
    p.add_argument("--out", default="runs/order_test", help="folder for the report (and the pre-trained backbone)")
    p.add_argument("--backbone", help="a backbone from `t2l pretrain-tiny` (default: pre-train one first)")
    p.add_argument("--fast", action="store_true", help="the small budget of the test suite (not the full test)")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", metavar="S",
                   help="run once per seed (each pre-trains its own backbone) and report min / median / max in "
                   "order_sweep.json")
    p.set_defaults(run=_order_test)

    p = sub.add_parser("zero-shot-test", help="does T2L recognise actions it never trained on better than CLIP "
                                              "frame averaging? (synthetic, in memory, CPU)")
    p.add_argument("--out", default="runs/zero_shot_test", help="folder for the report (and the pre-trained backbone)")
    p.add_argument("--split", choices=["compositional", "unseen-motion"], default="compositional")
    p.add_argument("--backbone", help="a backbone from `t2l pretrain-tiny` (default: pre-train one first)")
    p.add_argument("--fast", action="store_true", help="the small budget of the test suite (not the full test)")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", metavar="S", default=[0],
                   help="run once per seed, each in OUT/seed_S (default: 0)")
    p.set_defaults(run=_zero_shot_test)

    p = sub.add_parser("convert-official", help="convert an official T2L or ViFi-CLIP checkpoint (.pt/.pth)")
    p.add_argument("checkpoint", help="the official file: T2L's {'epoch', 'model_state_dict', ...} .pt, or "
                   "ViFi-CLIP's {'model', 'config', ...} .pth")
    p.add_argument("out_dir", help="folder for the t2l-fast checkpoint")
    p.add_argument("--kind", choices=("t2l", "vificlip"), default="t2l", help="which repository wrote it")
    p.add_argument("--pretrained", help="vificlip: the CLIP weights it was fine-tuned from, for the token embedding "
                   "its files do not hold ('openai', /path/ViT-B-16.pt)")
    p.add_argument("--model", help="registered model name (default: inferred from the weights' shapes)")
    p.add_argument("--backbone", help="save only the learnable weights, on top of this CLIP backbone source "
                   "(e.g. 'openai' or /path/ViT-B-16.pt); default: save the full model")
    p.set_defaults(run=_convert_official)

    p = sub.add_parser("env", help="report installed components, GPU availability and install conflicts")
    p.set_defaults(run=_env)
