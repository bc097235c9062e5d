"""The `t2l` command. Sub-commands import what they need when they run, so `t2l --help` is instant."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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

    run_demo(args.out, fast=args.fast)
    return 0


def _pretrain_tiny(args: argparse.Namespace) -> int:
    from .training.pretrain_tiny import pretrain_tiny

    summary = pretrain_tiny(Path(args.out), frames=args.frames, steps=args.steps, seed=args.seed)
    print(f"tiny backbone saved to {summary['backbone']} in {summary['seconds']} s (held-out position R^2 "
          f"{summary['held_out_position_r2']:.3f}, shape accuracy {summary['held_out_shape_accuracy']:.3f}); use it "
          f"with --pretrained {summary['backbone']} or pretrained: in a training config")
    return 0


def _order_test(args: argparse.Namespace) -> int:
    from .training.order_test import FAST, OrderTestConfig, run_order_test

    config = FAST if args.fast else OrderTestConfig()
    report = run_order_test(Path(args.out), config, backbone=Path(args.backbone) if args.backbone else None)
    t2l, vifi = (report["models"][name]["within_pair_accuracy"] for name in ("t2l_tiny", "vificlip_tiny"))
    print(f"within-pair accuracy on {report['clips']['test']} held-out clips: T2L {t2l:.3f}, ViFi-CLIP {vifi:.3f} "
          f"(chance 0.5; head: {report['head']}); report in {Path(args.out) / 'order_test.json'}")
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


def _data_synth(args: argparse.Namespace) -> int:
    import time

    from .data.synthetic import CLASS_NAMES, SynthConfig, write_synthetic_dataset

    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else CLASS_NAMES
    width, height = _parse_size(args.size)
    config = SynthConfig(classes=classes, clips_per_class=args.clips_per_class,
                         eval_clips_per_class=args.eval_clips_per_class, frames=args.frames, width=width,
                         height=height, codec=args.codec, seed=args.seed)
    started = time.time()
    try:
        counts = write_synthetic_dataset(Path(args.out_dir), config, jobs=args.jobs)
    except ValueError as e:
        raise T2LError(str(e)) from None
    print(f"wrote {sum(counts.values())} {args.codec} clips ({', '.join(f'{k} {v}' for k, v in counts.items())}) "
          f"of {len(config.classes)} classes, {args.frames} frames of {width}x{height}, to {args.out_dir} in "
          f"{time.time() - started:.1f} s")
    return 0


def _parse_size(text: str):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise T2LError(f"--size must look like 64x64 (width x height), got {text!r}") from None
    return width, height


def _data_probe(args: argparse.Namespace) -> int:

    from .data.probes import order_probes

    results = order_probes(Path(args.dataset), frames=args.frames, size=args.size)
    blind_ok = all(v <= 0.55 for k, v in results.items() if k.startswith("order_blind"))
    aware_ok = results["order_aware_features"] >= 0.95
    for name, accuracy in results.items():
        print(f"{name:<22} within-pair accuracy {accuracy:.3f}")
    print("valid: only the order tells the classes apart" if blind_ok and aware_ok else
          "NOT valid: " + ("order-blind probes beat chance (order leaks into single frames) " if not blind_ok else "")
          + ("order-aware probe below 0.95" if not aware_ok else ""))
    return 0 if blind_ok and aware_ok else 1


def _data_check(args: argparse.Namespace) -> int:

    from .data.lists import read_video_list
    from .data.preflight import check_list, read_list_lines

    list_file = Path(args.list)
    entries = read_video_list(list_file, args.root, missing="keep")
    out = Path(args.out) if args.out else list_file.with_name(f"{list_file.stem}.check.json")
    result = check_list(entries, Path(args.root), read_list_lines(list_file), out, jobs=args.jobs,
                        timeout=args.timeout)
    for video in result["videos"]:
        detail = video["reason"] if video["verdict"] == "bad" else "; ".join(video["notes"])
        print(f"{video['verdict']:<4} {video['where']:<28} {video['path']}" + (f"  ({detail})" if detail else ""))
    s = result["summary"]
    print(f"\n{s['videos']} videos: {s['ok']} ok ({s['with_gpu_notes']} with notes for GPU decoding), {s['bad']} bad, "
          f"{s['seconds']} s")
    for name, path in result["paths"].items():
        print(f"{name:<10} {path}")
    return 0


def _data_transcode(args: argparse.Namespace) -> int:
    import json

    from .data.transcode import transcode_list

    report = json.loads(Path(args.report).read_text())
    list_file = transcode_list(report, Path(args.out_root), only_flagged=not args.all, gop=args.gop, fps=args.fps)
    print(f"wrote {list_file} ({sum(1 for _ in open(list_file))} videos); check it with: "
          f"t2l data check {list_file} --root {args.out_root}")
    return 0


def _data_fixtures(args: argparse.Namespace) -> int:

    from .data.fixtures import write_fixture_zoo

    for name, purpose in write_fixture_zoo(Path(args.out_dir)).items():
        print(f"{name:<24} {purpose}")
    print(f"\nlist: {Path(args.out_dir) / 'list.txt'}")
    return 0


def _data_fewshot(args: argparse.Namespace) -> int:
    from .data.fewshot import write_few_shot_list

    try:
        chosen = write_few_shot_list(args.list, args.root, args.out, shots=args.shots, seed=args.seed,
                                     classes_file=args.classes, subset_file=args.subset_classes)
    except ValueError as e:  # --shots or --seed out of range (list and class-file errors are T2LErrors already)
        raise T2LError(str(e)) from None
    classes = len(chosen) // args.shots
    subset = f" of {args.subset_classes}, relabelled in its order" if args.subset_classes else ""
    print(f"wrote {args.out}: {len(chosen)} videos, {args.shots} per class for {classes} classes{subset} "
          f"(seed {args.seed})")
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser, several_checkpoints: str = "") -> None:
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


def _load_model(args: argparse.Namespace, checkpoint: Optional[str], device: Optional[str] = None):
    """(model in eval mode, device) from `checkpoint` or --model, with --pretrained/--device."""
    import torch

    from .models.checkpoint import load_checkpoint
    from .models.registry import create_model

    if not (args.model or checkpoint):
        raise T2LError("give --model NAME (see `t2l models`) or --checkpoint DIR")
    device = device or args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if checkpoint:
        model = load_checkpoint(checkpoint, pretrained=args.pretrained, device=device)
    else:
        model = create_model(args.model, pretrained=args.pretrained, device=device)
    return model.eval(), device


def _predict(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from .predict import find_videos, format_prediction, parse_classes, predict_video
    from .text.class_files import read_class_descriptions

    videos, classes = find_videos(args.videos), parse_classes(args.classes)
    started = time.time()
    descriptions = read_class_descriptions(args.descriptions, classes) if args.descriptions else None
    scorer, what = (_onnx_scorer if args.backend == "onnx" else _torch_scorer)(args, classes, descriptions)
    predictions = []
    with scorer:
        if not args.json:
            print(f"{what}, {len(classes)} classes, {len(videos)} video(s); ready in {time.time() - started:.1f} s")
        for path in videos:
            prediction = predict_video(scorer, path, topk=args.topk, window_seconds=args.window_seconds or None)
            predictions.append(prediction)
            if not args.json:
                print(format_prediction(prediction))
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in predictions], indent=2))
    failed = [p.path for p in predictions if p.error]
    if failed:
        print(f"{len(failed)} of {len(predictions)} video(s) could not be read: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _torch_scorer(args: argparse.Namespace, classes, descriptions):
    from .predict import TorchScorer
    from .text.classifier import build_classifier, default_cache_dir

    if args.onnx:
        raise T2LError("--onnx DIR goes with --backend onnx")
    model, device = _load_model(args, args.checkpoint)
    classifier = build_classifier(model, classes, descriptions=descriptions, templates=args.templates,
                                  cache_dir=None if args.no_cache else default_cache_dir())
    what = f"{model.config.name} on {device} (PyTorch)"
    if not (args.pretrained or args.checkpoint):
        what += "; note: no --pretrained or --checkpoint, so the weights are random and so are the scores"
    return TorchScorer(model, classifier), what


def _onnx_scorer(args: argparse.Namespace, classes, descriptions):
    from .deploy.bundle import ExportedModel
    from .predict import OnnxScorer

    if not args.onnx:
        raise T2LError("--backend onnx needs --onnx DIR (a folder written by `t2l export onnx`)")
    if args.checkpoint or args.pretrained:
        raise T2LError("--checkpoint/--pretrained do not apply to --backend onnx: the weights are in the graphs "
                       "(export the checkpoint with `t2l export onnx --checkpoint DIR`)")
    bundle = ExportedModel(args.onnx)
    bundle.check_fits(model_name=args.model)
    providers = ["cuda", "cpu"] if args.device == "cuda" else ["cpu"]
    scorer = OnnxScorer(bundle, classes, descriptions, args.templates, providers)
    return scorer, f"{bundle.config.name} from {args.onnx} (ONNX Runtime, {scorer.via})"


def _export_onnx(args: argparse.Namespace) -> int:
    import time

    from .deploy.onnx_export import ExportOptions, export_onnx

    started = time.time()
    if args.descriptions and not args.classes:
        raise T2LError("--descriptions goes with --classes (the classifier graph's classes)")
    model, _ = _load_model(args, args.checkpoint, device="cpu")
    class_names = class_embeddings = class_texts = None
    if args.classes:
        from .predict import parse_classes
        from .text.class_files import read_class_descriptions
        from .text.classifier import build_classifier, build_prompts

        class_names = parse_classes(args.classes)
        descriptions = read_class_descriptions(args.descriptions, class_names) if args.descriptions else None
        class_texts = build_prompts(model.config, class_names, descriptions, args.templates)
        class_embeddings = build_classifier(model, class_names, descriptions=descriptions,
                                            templates=args.templates).embeddings
    precision = "fp32" if args.precision == "int8" else args.precision
    options = ExportOptions(opset=args.opset, precision=precision, batch_max=args.batch_max)
    out = Path(args.out)
    if args.precision == "int8":
        _check_int8_arguments(args)
    print(f"exporting {model.config.name} (T={model.config.frames}, {model.config.vision.image_size}px) to {out}")
    manifest = export_onnx(model, out, class_names=class_names, class_embeddings=class_embeddings,
                           class_texts=class_texts, options=options)
    if args.precision == "int8":
        from .deploy.int8 import quantize_export

        quantize_export(out, mode=args.int8_mode, calibration_list=args.calibration, gate_list=args.gate_list,
                        root=args.root, calibration_clips=args.calibration_clips, min_gate_clips=args.min_gate_clips)
        manifest = json.loads((out / "manifest.json").read_text())
    print(f"wrote {out / 'manifest.json'} ({', '.join(manifest['graphs'])}) in {time.time() - started:.1f} s")
    return 0


def _check_int8_arguments(args: argparse.Namespace) -> None:
    if not args.gate_list or not args.root:
        raise T2LError("--precision int8 needs --gate-list LIST (held-out clips for the agreement gate) and "
                       "--root DIR" + (", and --calibration LIST for --int8-mode static" if args.int8_mode ==
                                       "static" else ""))
    if args.int8_mode == "static" and not args.calibration:
        raise T2LError("--int8-mode static needs --calibration LIST (clips to calibrate activation ranges on)")
    if not args.classes:
        raise T2LError("--precision int8 needs --classes: the gate compares top-1 of the classifier graph")


def _train(args: argparse.Namespace) -> int:
    from .training import distributed
    from .training.config import load_config
    from .training.trainer import Trainer

    trainer = Trainer(load_config(args.config, args.set))
    try:
        if args.resume:
            trainer.resume(args.resume)
        summary = trainer.run()
    finally:
        distributed.shutdown()
    if trainer.dist.is_main:
        print(f"trained {summary['steps']} steps in {summary['seconds']} s on {summary['processes']} process(es); "
              f"last loss {summary['last'].get('loss', float('nan')):.4f}; state {summary['state']}; "
              f"model {summary['model']}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    """One process, or each rank scoring its shard under torchrun (rank 0 prints and writes)."""
    import contextlib
    import io

    import torch

    from .training import distributed

    dist = distributed.init_distributed(args.device)
    args.device = str(dist.device)
    torch.manual_seed(0)  # a randomly initialised --model is the same model on every rank and in every run
    try:
        with contextlib.redirect_stdout(sys.stdout if dist.is_main else io.StringIO()):
            return _run_eval(args, write=dist.is_main)
    finally:
        distributed.shutdown()


def _run_eval(args: argparse.Namespace, write: bool) -> int:
    from .training.evaluate import save_results

    if sum(map(bool, (args.list, args.protocol, args.base_to_novel))) != 1:
        raise T2LError("give one of: --list LIST --classes FILE [--subsets ...], --protocol ucf101|hmdb51 "
                       "--split-dir DIR, or --base-to-novel BASE_LIST BASE_CLASSES NOVEL_LIST NOVEL_CLASSES")
    checkpoints = args.checkpoint or [None]
    if len(checkpoints) > 1 and not args.base_to_novel:
        raise T2LError(f"{len(checkpoints)} --checkpoint folders given: several (one per seed) are for "
                       f"--base-to-novel only; evaluate one checkpoint at a time otherwise")
    if min(args.clips, args.crops) < 1:
        raise T2LError(f"--clips and --crops must be >= 1, got --clips {args.clips} --crops {args.crops}")
    views = (args.clips, args.crops)
    if views != (1, 1):
        print(f"{args.clips} clip(s) x {args.crops} crop(s) per video, softmax scores averaged over the views")
    options = dict(templates=args.templates, batch_size=args.batch_size, backend=args.backend, views=views)
    if args.base_to_novel:
        results, model_name = _eval_base_to_novel(args, checkpoints, options)
        class_names = None
    else:
        model, _ = _load_model(args, checkpoints[0])
        results, class_names = _eval_one_model(args, model, options)
        model_name = model.config.name
    results.update(model=model_name, views={"clips": args.clips, "crops": args.crops})
    out = Path(args.out or Path("runs") / "eval" / f"{model_name}.json")
    for path in save_results(results, out, class_names) if write else []:
        print(f"wrote {path}")
    return 0


def _eval_one_model(args: argparse.Namespace, model, options: dict):
    """(results, class names for the confusion plot or None) of --protocol, or --list [--subsets]."""
    from .text.class_files import read_class_descriptions, read_class_names
    from .training.evaluate import evaluate, evaluate_protocol, evaluate_subsets

    if args.protocol:
        results = evaluate_protocol(model, args.protocol, args.split_dir, args.root,
                                    descriptions_csv=args.descriptions, **options)
        for split in results["splits"]:
            print(f"split {split['split']}: top-1 {split['top1']:.4f}  top-5 {split['top5']:.4f}  "
                  f"({split['videos']} videos)")
        _print_mean_std(f"{args.protocol}, 3 splits", results)
        return results, None
    if not args.classes:
        raise T2LError("--list needs --classes FILE")
    class_names = read_class_names(args.classes)
    descriptions = read_class_descriptions(args.descriptions, class_names) if args.descriptions else None
    if args.subsets:
        results = evaluate_subsets(model, args.list, args.root, class_names, args.subsets,
                                   descriptions=descriptions, **options)
        _print_mean_std(f"{len(args.subsets)} class subsets", results)
        return results, None
    results = evaluate(model, args.list, args.root, class_names, descriptions=descriptions, **options)
    print(f"top-1 {results['top1']:.4f}  top-5 {results['top5']:.4f}  on {results['videos']} videos")
    return results, class_names


def _eval_base_to_novel(args: argparse.Namespace, checkpoints: List[Optional[str]], options: dict):
    """(results, model name) of --base-to-novel for one model, or for several seeds' checkpoints: each seed's
    base / novel / HM, then mean +- std over the seeds and the HM of the means."""
    from .training.evaluate import base_to_novel_over_seeds, evaluate_base_to_novel

    base_list, base_classes, novel_list, novel_classes = args.base_to_novel
    runs, names = [], set()
    for checkpoint in checkpoints:
        model, _ = _load_model(args, checkpoint)
        names.add(model.config.name)
        run = evaluate_base_to_novel(model, args.root, (base_list, base_classes), (novel_list, novel_classes),
                                     descriptions_csv=args.descriptions, **options)
        source = f"{checkpoint}: " if len(checkpoints) > 1 else ""
        print(f"{source}base {100 * run['base']:.1f}  novel {100 * run['novel']:.1f}  HM {100 * run['hm']:.1f}")
        runs.append({"checkpoint": checkpoint, **run} if len(checkpoints) > 1 else run)
    if len(names) > 1:
        raise T2LError(f"the --checkpoint folders hold different models ({', '.join(sorted(names))}); give the "
                       f"seeds of one model")
    if len(runs) == 1:
        return runs[0], names.pop()
    s = base_to_novel_over_seeds(runs)
    print(f"mean over {len(runs)} seeds: base {100 * s['base']:.1f} +- {100 * s['base_std']:.1f}  novel "
          f"{100 * s['novel']:.1f} +- {100 * s['novel_std']:.1f}  HM {100 * s['hm']:.1f} (HM of the means; the "
          f"seeds' HMs average {100 * s['hm_seeds_mean']:.1f} +- {100 * s['hm_seeds_std']:.1f})")
    return s, names.pop()


def _print_mean_std(label: str, results: dict) -> None:
    print(f"{label}: top-1 {100 * results['top1_mean']:.1f} +- {100 * results['top1_std']:.1f}, "
          f"top-5 {100 * results['top5_mean']:.1f} +- {100 * results['top5_std']:.1f}")


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
    p.add_argument("--fast", action="store_true",
                   help="the order test at the test suite's budget (about 1 minute instead of about 10)")
    p.set_defaults(run=_demo)

    p = sub.add_parser("pretrain-tiny", help="pre-train the tiny CLIP image tower on synthetic frames (CPU, ~2 min)")
    p.add_argument("--out", default="runs/tiny_backbone.safetensors", help="backbone file to write")
    p.add_argument("--frames", type=int, default=20_000, help="synthetic frames to pre-train on")
    p.add_argument("--steps", type=int, default=1_500, help="optimiser steps (batch 256)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_pretrain_tiny)

    p = sub.add_parser("order-test", help="can T2L and ViFi-CLIP tell an action from its time reversal? (CPU)")
    p.add_argument("--out", default="runs/order_test", help="folder for the report (and the pre-trained backbone)")
    p.add_argument("--backbone", help="a backbone from `t2l pretrain-tiny` (default: pre-train one first)")
    p.add_argument("--fast", action="store_true", help="the small budget of the test suite (not the full test)")
    p.set_defaults(run=_order_test)

    p = sub.add_parser("convert-official", help="convert an official T2L repository checkpoint (.pt)")
    p.add_argument("checkpoint", help="the official .pt file ({'epoch', 'model_state_dict', ...})")
    p.add_argument("out_dir", help="folder for the t2l-fast checkpoint")
    p.add_argument("--model", help="registered model name (default: inferred from the weights' shapes)")
    p.add_argument("--backbone", help="save only the learnable weights, on top of this CLIP backbone source "
                   "(e.g. 'openai' or /path/ViT-B-16.pt); default: save the full model")
    p.set_defaults(run=_convert_official)

    data = sub.add_parser("data", help="video datasets: synthetic data, validity probes").add_subparsers(
        dest="data_command", metavar="DATA_COMMAND", required=True)
    p = data.add_parser("synth", help="write the synthetic order-only action dataset (videos, lists, classes)")
    p.add_argument("out_dir")
    p.add_argument("--classes", help="comma-separated subset of the synthetic classes (default: all 12)")
    p.add_argument("--clips-per-class", type=int, default=20, help="training clips per class (default 20)")
    p.add_argument("--eval-clips-per-class", type=int, default=8, help="val and test clips per class (default 8)")
    p.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    p.add_argument("--size", default="64x64", help="WIDTHxHEIGHT, even numbers (default 64x64)")
    p.add_argument("--codec", choices=["h264", "vp9", "mjpeg"], default="h264")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="encoding processes (default 1)")
    p.set_defaults(run=_data_synth)
    p = data.add_parser("probe", help="check that only frame order separates a synthetic dataset's classes")
    p.add_argument("dataset", help="a folder written by `t2l data synth`")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.set_defaults(run=_data_probe)

    p = data.add_parser("check", help="preflight: probe every listed video; write a report, manifest, clean list")
    p.add_argument("list", help="list file (relative/path label per line, or CSV)")
    p.add_argument("--root", required=True, help="data root the list's paths are relative to")
    p.add_argument("--jobs", type=int, default=2, help="probe processes (default 2)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per video before it is called hung")
    p.add_argument("--out", help="report path (default: LIST.check.json beside the list)")
    p.set_defaults(run=_data_check)
    p = data.add_parser("transcode", help="re-encode what GPU decoding dislikes to H.264 yuv420p, CFR, short GOP")
    p.add_argument("report", help="a report written by `t2l data check`")
    p.add_argument("--out-root", required=True, help="folder for the new videos and their list.txt")
    p.add_argument("--all", action="store_true", help="transcode every usable video, not only the flagged ones")
    p.add_argument("--gop", type=int, default=8, help="frames between keyframes (default 8)")
    p.add_argument("--fps", type=float, help="output frame rate (default: the source's average)")
    p.set_defaults(run=_data_transcode)
    p = data.add_parser("fixtures", help="write a folder of good, odd and broken videos (for testing decoders)")
    p.add_argument("out_dir")
    p.set_defaults(run=_data_fixtures)
    p = data.add_parser("fewshot", help="draw K videos per class from a list (few-shot and base-to-novel training)",
                        description="Draws K videos per class, deterministically per seed, optionally from a class "
                        "subset (base-to-novel: the base classes, relabelled in the subset's order). These are our "
                        "draws: to compare with published numbers use ViFi-CLIP's published lists and base/novel "
                        "class splits (see train/configs/README.md); this command never invents a class split.")
    p.add_argument("list", help="list file to draw from (relative/path label per line, or CSV)")
    p.add_argument("--root", required=True, help="data root the list's paths are relative to")
    p.add_argument("--shots", type=int, required=True, help="videos per class (K)")
    p.add_argument("--seed", type=int, default=1, help="draw seed, >= 0 (default 1)")
    p.add_argument("--classes", help="class-name file of LIST (needed for --subset-classes and class names in "
                   "labels or messages)")
    p.add_argument("--subset-classes", help="class-name file of the classes to keep (e.g. the base classes)")
    p.add_argument("--out", required=True, help="list to write (.txt: relative/path label; .csv: with start/end)")
    p.set_defaults(run=_data_fewshot)

    p = sub.add_parser("predict", help="zero-shot labels for videos or folders of videos")
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER")
    _add_model_arguments(p)
    p.add_argument("--classes", required=True, help="class-name file, or names separated by commas")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--window-seconds", type=float, default=10.0,
                   help="longer videos are scored in windows of this length (default 10; 0: one clip)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-cache", action="store_true", help="do not cache class embeddings on disk")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch: the PyTorch model; onnx: the graphs of --onnx DIR on ONNX Runtime (default torch)")
    p.add_argument("--onnx", metavar="DIR", help="with --backend onnx: a folder written by `t2l export onnx`")
    p.set_defaults(run=_predict)

    export = sub.add_parser("export", help="export a model for deployment (ONNX)").add_subparsers(
        dest="export_command", metavar="EXPORT_COMMAND", required=True)
    p = export.add_parser("onnx", help="video encoder, text encoder and classifier graphs + manifest.json, checked",
                          description="Writes OUT/{video_encoder,text_encoder,classifier}.onnx (uint8 frames in, "
                          "normalisation inside) and OUT/manifest.json, after onnx.checker, a symbolic-batch check "
                          "and ONNX Runtime vs PyTorch parity at B=1 and B=3. --precision int8 adds INT8 video "
                          "encoder and classifier graphs, written only if they pass the agreement gate.")
    _add_model_arguments(p)
    p.add_argument("--out", required=True, help="folder for the graphs (new, empty, or an earlier export)")
    p.add_argument("--classes", help="class-name file or comma-separated names: bakes the classifier graph")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, 17 or newer (default 18, torch's native)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                   help="fp16: LayerNorm, Softmax and the final normalisation stay fp32 (for GPUs); int8: the fp32 "
                   "graphs plus ONNX Runtime INT8 video encoder and classifier for CPU serving, behind a gate")
    p.add_argument("--batch-max", type=int, default=64, help="largest batch the graphs serve (recorded for "
                   "engine profiles; the batch axis is symbolic)")
    p.add_argument("--int8-mode", choices=["static", "dynamic"], default="static",
                   help="static: QDQ with activation ranges calibrated on --calibration clips (TensorRT reads it "
                   "too); dynamic: weights only, activation ranges at run time (ONNX Runtime CPU only)")
    p.add_argument("--calibration", metavar="LIST", help="video list of calibration clips (int8 static)")
    p.add_argument("--calibration-clips", type=int, default=64, help="clips to calibrate on (default 64)")
    p.add_argument("--gate-list", metavar="LIST", help="held-out video list the INT8 gate is measured on")
    p.add_argument("--min-gate-clips", type=int, default=200, help="fewest gate clips accepted (default 200)")
    p.add_argument("--root", help="data root of --calibration and --gate-list")
    p.set_defaults(run=_export_onnx)

    p = sub.add_parser("train", help="train a model from a YAML config (see train/configs/)")
    p.add_argument("--config", help="YAML config (keys of t2l_fast.training.config.TrainConfig)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set optim.lr=1e-4 data.root=/data (repeatable)")
    p.add_argument("--resume", help="continue from a `last.pt` state (mid-epoch, same samples)")
    p.set_defaults(run=_train)

    p = sub.add_parser("eval", help="zero-shot evaluation on a list, or a standard protocol over its 3 splits")
    _add_model_arguments(p, several_checkpoints="; with --base-to-novel, several (one per seed's trained model): "
                         "per-seed results, mean +- std over seeds, HM of the means")
    p.add_argument("--root", required=True, help="data root of the videos")
    p.add_argument("--list", help="list of test videos (relative/path label)")
    p.add_argument("--classes", help="class-name file of --list")
    p.add_argument("--protocol", choices=["ucf101", "hmdb51"], help="mean +- std over the 3 published test splits")
    p.add_argument("--split-dir", help="folder of the published split files (ucfTrainTestlist/, ...)")
    p.add_argument("--subsets", nargs="+", metavar="CLASSES_FILE",
                   help="with --list: class-subset files (K600 zero-shot); mean +- std over them")
    p.add_argument("--base-to-novel", nargs=4, metavar=("BASE_LIST", "BASE_CLASSES", "NOVEL_LIST", "NOVEL_CLASSES"),
                   help="base-to-novel: top-1 on base and novel validation lists, and their harmonic mean")
    p.add_argument("--clips", type=int, default=1, help="temporal clips per video, evenly spaced (default 1)")
    p.add_argument("--crops", type=int, default=1, help="spatial crops per clip: 1 centre crop (short side "
                   "256/224 x input), 3 along the long side (short side = input); scores averaged over "
                   "clips x crops views; multi-view needs the PyAV backend (default 1)")
    p.add_argument("--batch-size", type=int, default=16, help="videos per batch (each view is a batch of this "
                   "many clips through the model)")
    p.add_argument("--backend", default="auto", choices=["auto", "dali", "pyav"])
    p.add_argument("--out", help="results JSON (default runs/eval/MODEL.json); a confusion PNG goes beside it")
    p.set_defaults(run=_eval)

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
