"""`t2l predict`: zero-shot labels for videos."""
from __future__ import annotations

import argparse
import json
import sys

from ..backend_names import BACKENDS
from ..errors import T2LError
from .common import add_model_arguments, load_model, number, positive_int


def _predict(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from ..predict import find_videos, format_prediction, parse_classes, predict_video
    from ..text.class_files import read_class_descriptions

    videos, classes = find_videos(args.videos), parse_classes(args.classes)
    started = time.time()
    descriptions = read_class_descriptions(args.descriptions, classes) if args.descriptions else None
    on_torch = args.backend == "torch" or (args.backend == "auto" and not args.onnx)
    scorer, what = (_torch_scorer if on_torch else _export_scorer)(args, classes, descriptions)
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
    from ..predict import TorchScorer
    from ..text.classifier import build_classifier, default_cache_dir

    if args.onnx:
        raise T2LError("--onnx DIR goes with the export backends (--backend auto, the default, or onnx, openvino, "
                       "tensorrt, ...), not --backend torch")
    model, device = load_model(args, args.checkpoint)
    classifier = build_classifier(model, classes, descriptions=descriptions, templates=args.templates,
                                  cache_dir=None if args.no_cache else default_cache_dir())
    what = f"{model.config.name} on {device} (PyTorch)"
    if not (args.pretrained or args.checkpoint):
        what += "; note: no --pretrained or --checkpoint, so the weights are random and so are the scores"
    return TorchScorer(model, classifier), what


def _export_scorer(args: argparse.Namespace, classes, descriptions):
    from ..predict import ExportScorer
    from ..runtime.bundle import ExportedModel
    from ..runtime.export_runners import export_runner

    if not args.onnx:
        raise T2LError(f"--backend {args.backend} needs --onnx DIR (a folder written by `t2l export onnx`"
                       + (", with engines from `t2l export trt --onnx DIR`)" if args.backend == "tensorrt" else ")"))
    if args.checkpoint or args.pretrained:
        raise T2LError(f"--checkpoint/--pretrained do not apply to --backend {args.backend}: the weights are in the "
                       f"graphs (export the checkpoint with `t2l export onnx --checkpoint DIR`)")
    bundle = ExportedModel(args.onnx)
    bundle.check_fits(model_name=args.model)
    name, device = args.backend, args.device
    if name == "auto":
        from ..runtime.backend_choice import choose_backend

        choice = choose_backend(bundle, device)
        print(choice.line, file=sys.stderr if args.json else sys.stdout)
        name, device = choice.backend, choice.device
    scorer = ExportScorer(bundle, classes, descriptions, args.templates, backend=name, open_runner=lambda kind:
                          export_runner(bundle, name, kind, device=device, trt_runtime=args.trt_runtime))
    return scorer, f"{bundle.config.name} from {args.onnx} ({BACKENDS[name].describe()}, {scorer.via})"


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    p = sub.add_parser("predict", help="zero-shot labels for videos or folders of videos")
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER")
    add_model_arguments(p)
    p.add_argument("--classes", required=True, help="class-name file, or names separated by commas")
    p.add_argument("--topk", type=positive_int, default=5)
    p.add_argument("--window-seconds", type=number(minimum=0), default=10.0,
                   help="longer videos are scored in windows of this length (default 10; 0: one clip)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-cache", action="store_true", help="do not cache class embeddings on disk")
    p.add_argument("--backend", choices=["auto", "torch", *BACKENDS], default="auto",
                   help="auto: with --onnx DIR, the fastest backend that is installed, runs on --device and passes "
                   "its gates for that export, measured once per machine and cached in DIR/backend_choice.json "
                   "(without --onnx: torch); torch: the PyTorch model; onnx, onnx-int8: the graphs of --onnx DIR "
                   "on ONNX Runtime (fp32, or the INT8 graphs that passed their gate); openvino, openvino-bf16, "
                   "openvino-int8: the same graphs on OpenVINO (CPU; bf16 needs AMX or AVX512-BF16); tensorrt: "
                   "the engines `t2l export trt` built beside them (NVIDIA GPU) (default auto)")
    p.add_argument("--onnx", metavar="DIR", help="a folder written by `t2l export onnx`, for every backend but torch")
    p.add_argument("--trt-runtime", choices=["auto", "tensorrt", "tensorrt-rtx"], default="auto",
                   help="with --backend tensorrt: whose engines to run (default: TensorRT if installed, else "
                   "TensorRT for RTX)")
    p.set_defaults(run=_predict)

