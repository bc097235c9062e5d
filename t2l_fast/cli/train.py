"""`t2l train` and `t2l eval` (one process or under torchrun)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import T2LError
from ..io import inside
from .common import EXPORT_BACKENDS, add_model_arguments, load_model, no_weights, open_export, positive_int


def _train(args: argparse.Namespace) -> int:
    from ..training import distributed
    from ..training.config import load_config
    from ..training.trainer import Trainer

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

    from ..training import distributed

    dist = distributed.init_distributed(args.device)
    args.export_device = args.device  # --onnx: the export backend's device is the user's (auto: GPU if any)
    args.device = str(dist.device)
    if args.onnx and dist.world > 1 and args.export_backend in (None, "auto"):
        raise T2LError("--onnx under torchrun: name the backend (--export-backend onnx, tensorrt, ...): each process "
                       "measuring for auto at once would disturb the others and could choose differently")
    torch.manual_seed(0)  # a randomly initialised --model is the same model on every rank and in every run
    try:
        with contextlib.redirect_stdout(sys.stdout if dist.is_main else io.StringIO()):
            return _run_eval(args, write=dist.is_main)
    finally:
        distributed.shutdown()


def _run_eval(args: argparse.Namespace, write: bool) -> int:
    from ..training.evaluate import EvalConfig, save_results

    if sum(map(bool, (args.list, args.protocol, args.split_lists, args.base_to_novel))) != 1:
        raise T2LError("give one of: --list LIST --classes FILE [--subsets ...], --protocol ucf101|hmdb51 "
                       "--split-dir DIR, --split-lists LIST CLASSES [LIST CLASSES ...], or --base-to-novel "
                       "BASE_LIST BASE_CLASSES NOVEL_LIST NOVEL_CLASSES")
    if args.protocol and not args.split_dir:
        raise T2LError(f"--protocol {args.protocol} needs --split-dir (the folder of its published split files)")
    if args.split_lists and len(args.split_lists) % 2:
        raise T2LError("--split-lists takes pairs: LIST CLASSES [LIST CLASSES ...]")
    checkpoints = args.checkpoint or [None]
    if len(checkpoints) > 1 and not args.base_to_novel:
        raise T2LError(f"{len(checkpoints)} --checkpoint folders given: several (one per seed) are for "
                       f"--base-to-novel only; evaluate one checkpoint at a time otherwise")
    if min(args.clips, args.crops) < 1:
        raise T2LError(f"--clips and --crops must be >= 1, got --clips {args.clips} --crops {args.crops}")
    views = (args.clips, args.crops)
    if views != (1, 1):
        print(f"{args.clips} clip(s) x {args.crops} crop(s) per video, softmax scores averaged over the views")
    options = dict(config=EvalConfig(templates=args.templates, batch_size=args.batch_size, backend=args.backend,
                                     views=views))
    if args.onnx and len(checkpoints) > 1:
        raise T2LError("--onnx DIR is one model: evaluate each seed's export on its own")
    if args.export_backend and not args.onnx:
        raise T2LError(f"--export-backend {args.export_backend} runs an export folder's graphs: give --onnx DIR too")
    if args.base_to_novel:
        results, model_name = _eval_base_to_novel(args, checkpoints, options)
        class_names = None
    else:
        model, model_name = _model_or_export(args, checkpoints[0])
        results, class_names = _eval_one_model(args, model, model_name, options, write)
    results.update(model=model_name, views={"clips": args.clips, "crops": args.crops})
    out = _results_path(args, model_name)
    for path in save_results(results, out, class_names) if write else []:
        print(f"wrote {path}")
    return 0


def _model_or_export(args: argparse.Namespace, checkpoint: str | None):
    """(what scores the videos, model name): the PyTorch model, or with --onnx DIR the export's graphs on
    --export-backend (scoring.ExportScorers)."""
    if not args.onnx:
        model, _ = load_model(args, checkpoint)
        return model, model.config.name
    from ..scoring import ExportScorers

    no_weights(args, "--onnx")
    bundle, backend, open_runner = open_export(args.onnx, args.export_backend or "auto", device=args.export_device,
                                               model_name=args.model)
    print(f"{bundle.config.name} from {args.onnx} on {backend}")
    return ExportScorers(bundle, open_runner, backend), bundle.config.name


def _results_path(args: argparse.Namespace, model_name: str) -> Path:
    return Path(args.out) if args.out else inside(Path("runs") / "eval", f"{model_name}.json", "model name")


def _eval_one_model(args: argparse.Namespace, model, model_name: str, options: dict, write: bool = False):
    """(results, class names for the confusion plot or None) of --protocol, or --list [--subsets]."""
    from ..text.class_files import read_class_descriptions, read_class_names
    from ..training.evaluate import evaluate, evaluate_protocol, evaluate_split_lists, evaluate_subsets

    if args.protocol or args.split_lists:
        out = _results_path(args, model_name)

        def save_split(partial: dict) -> None:  # a finished split is never lost to a later failure
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({**partial, "model": model_name}, indent=2) + "\n")
            print(f"split {partial['splits'][-1]['split']} done; partial results in {out}")

        common = dict(descriptions_csv=args.descriptions, on_split=save_split if write else None, **options)
        if args.protocol:
            results = evaluate_protocol(model, args.protocol, args.split_dir, args.root, **common)
        else:
            pairs = list(zip(args.split_lists[::2], args.split_lists[1::2]))
            results = evaluate_split_lists(model, pairs, args.root, **common)
        for split in results["splits"]:
            print(f"split {split['split']}: top-1 {split['top1']:.4f}  top-5 {split['top5']:.4f}  "
                  f"({split['videos']} videos)")
        _print_mean_std(f"{results['protocol']}, {len(results['splits'])} splits", results)
        return results, None
    if not args.classes:
        raise T2LError("--list needs --classes FILE")
    if not Path(args.classes).is_file():
        raise T2LError(f"--classes {args.classes}: no such file; eval reads the class names, in label order, from "
                       f"a file (one per line, or id,name CSV)")
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


def _eval_base_to_novel(args: argparse.Namespace, checkpoints: list[str | None], options: dict):
    """(results, model name) of --base-to-novel for one model, or for several seeds' checkpoints: each seed's
    base / novel / HM, then mean +- std over the seeds and the HM of the means."""
    from ..training.evaluate import base_to_novel_over_seeds, evaluate_base_to_novel

    base_list, base_classes, novel_list, novel_classes = args.base_to_novel
    runs, names = [], set()
    for checkpoint in checkpoints:
        model, name = _model_or_export(args, checkpoint)
        names.add(name)
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


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    p = sub.add_parser("train", help="train a model from a YAML config (see train/configs/)")
    p.add_argument("--config", help="YAML config (keys of t2l_fast.training.config.TrainConfig)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set optim.lr=1e-4 data.root=/data (repeatable)")
    p.add_argument("--resume", help="continue from a `last.pt` state (mid-epoch, same samples)")
    p.set_defaults(run=_train)

    p = sub.add_parser("eval", help="zero-shot evaluation on a list, or a standard protocol over its 3 splits")
    add_model_arguments(p, several_checkpoints="; with --base-to-novel, several (one per seed's trained model): "
                         "per-seed results, mean +- std over seeds, HM of the means")
    p.add_argument("--root", required=True, help="data root of the videos")
    p.add_argument("--list", help="list of test videos (relative/path label)")
    p.add_argument("--classes", help="class-name file of --list")
    p.add_argument("--protocol", choices=["ucf101", "hmdb51"], help="mean +- std over the 3 published test splits")
    p.add_argument("--split-dir", help="folder of the published split files (ucfTrainTestlist/, ...)")
    p.add_argument("--split-lists", nargs="+", metavar="LIST CLASSES",
                   help="published per-split evaluation lists, each followed by its class file (ViFi-CLIP's "
                   "val1.txt labels.csv val2.txt labels.csv ..., or ZS_split1_K600_eval.txt ZS_split1_K600.csv ...): "
                   "mean +- std over them")
    p.add_argument("--subsets", nargs="+", metavar="CLASSES_FILE",
                   help="with --list: class-subset files (K600 zero-shot); mean +- std over them")
    p.add_argument("--base-to-novel", nargs=4, metavar=("BASE_LIST", "BASE_CLASSES", "NOVEL_LIST", "NOVEL_CLASSES"),
                   help="base-to-novel: top-1 on base and novel validation lists, and their harmonic mean")
    p.add_argument("--clips", type=positive_int, default=1, help="temporal clips per video, evenly spaced (default 1)")
    p.add_argument("--crops", type=positive_int, default=1, help="spatial crops per clip: 1 centre crop (short side "
                   "256/224 x input), 3 along the long side (short side = input); scores averaged over "
                   "clips x crops views; multi-view needs the PyAV backend (default 1)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="videos per batch (each view is a batch of this "
                   "many clips through the model)")
    p.add_argument("--backend", default="auto", choices=["auto", "dali", "pyav"], help="the video loader")
    p.add_argument("--onnx", metavar="DIR", help="score with a folder written by `t2l export onnx` instead of the "
                   "PyTorch model (its graphs hold the weights: no --checkpoint/--pretrained)")
    p.add_argument("--export-backend", choices=EXPORT_BACKENDS,
                   help="with --onnx: what runs its graphs, as `t2l predict --backend` (default auto: the fastest "
                   "backend that passed its gates for that export on this machine, measured once and cached in "
                   "DIR/backend_choice.json)")
    p.add_argument("--out", help="results JSON (default runs/eval/MODEL.json); a confusion PNG goes beside it")
    p.set_defaults(run=_eval)

