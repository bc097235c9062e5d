"""`t2l predict`: zero-shot labels for videos."""
from __future__ import annotations

import argparse
import json
import sys

from ..backend_names import BACKENDS
from ..errors import T2LError
from .common import (
    EXPORT_BACKENDS,
    add_model_arguments,
    load_model,
    no_weights,
    number,
    open_export,
    positive_int,
    random_weights_note,
)


def _predict(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from ..predict import find_videos, format_prediction, parse_classes, predict_video
    from ..text.class_files import read_class_descriptions

    videos, classes = find_videos(args.videos), parse_classes(args.classes)
    started = time.time()
    descriptions = read_class_descriptions(args.descriptions, classes) if args.descriptions else None
    on_torch = args.backend == "torch" or (args.backend == "auto" and not args.onnx)
    make = _served_scorer if args.server else _torch_scorer if on_torch else _export_scorer
    scorer, what = make(args, classes, descriptions)
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
    from ..scoring import TorchScorer
    from ..text.classifier import build_classifier, default_cache_dir

    if args.onnx:
        raise T2LError("--onnx DIR goes with the export backends (--backend auto, the default, or onnx, openvino, "
                       "tensorrt, ...), not --backend torch")
    model, device = load_model(args, args.checkpoint)
    classifier = build_classifier(model, classes, descriptions=descriptions, templates=args.templates,
                                  cache_dir=None if args.no_cache else default_cache_dir())
    what = f"{model.config.name} on {device} (PyTorch){random_weights_note(args)}"
    return TorchScorer(model, classifier), what


def _export_scorer(args: argparse.Namespace, classes, descriptions):
    if not args.onnx:
        raise T2LError(f"--backend {args.backend} needs --onnx DIR (a folder written by `t2l export onnx`"
                       + (", with engines from `t2l export trt --onnx DIR`)" if args.backend == "tensorrt" else ")"))
    no_weights(args, f"--backend {args.backend}")
    bundle, name, open_runner = open_export(args.onnx, args.backend, device=args.device, model_name=args.model,
                                            trt_runtime=args.trt_runtime,
                                            log=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    return _scorer(bundle, name, args, classes, descriptions, f"{bundle.config.name} from {args.onnx} (", open_runner)


def _served_scorer(args: argparse.Namespace, classes, descriptions):
    from ..deploy.client import ServedExport

    if args.onnx:
        raise T2LError("--onnx DIR and --server URL exclude each other: the server runs its own export")
    if args.backend != "auto":
        raise T2LError(f"--backend {args.backend} does not apply to --server: the server runs the backend it was "
                       f"started with (`t2l serve --backend NAME`); drop --backend")
    no_weights(args, "--server")
    served = ServedExport(args.server)
    served.check_fits(model_name=args.model)
    return _scorer(served, served.backend, args, classes, descriptions,
                   f"{served.config.name} served at {served.url} (on the server: ", served.runner)


def _scorer(bundle, name: str, args: argparse.Namespace, classes, descriptions, what: str, open_runner):
    """An ExportScorer of `bundle` (an export folder, or the one a server serves) on backend `name`, whose runners
    `open_runner(kind)` gives; local and served predictions score and print through it alike."""
    from ..scoring import ExportScorer

    scorer = ExportScorer(bundle, classes, descriptions, args.templates, open_runner=open_runner, backend=name)
    runs = BACKENDS[name].describe() if name in BACKENDS else name
    return scorer, f"{what}{runs}, {scorer.via})"


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
    p.add_argument("--backend", choices=["torch", *EXPORT_BACKENDS], default="auto",
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
    p.add_argument("--server", metavar="URL", help="score on a `t2l serve` (or Triton) server instead: "
                   "http://HOST:PORT or grpc://HOST:PORT; frames are decoded and sampled here, as locally")
    p.set_defaults(run=_predict)

