"""`t2l export ...`: deployment artifacts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import T2LError
from .common import add_model_arguments, load_model, number, positive_int, random_weights_note

# a batch a graph or engine serves: TensorRT allocates its profile's largest, so 1e9 is a mistake, not a plan
BATCH = number(integer=True, minimum=1, maximum=4096)


def _export_onnx(args: argparse.Namespace) -> int:
    import time

    from ..deploy.onnx_export import ExportOptions, export_with_classes
    from ..io import check_claim, check_replaceable
    from ..runtime.bundle import MANIFEST

    started = time.time()
    if args.descriptions and not args.classes:
        raise T2LError("--descriptions goes with --classes (the classifier graph's classes)")
    check_replaceable(Path(args.out))  # before loading the model
    check_claim(Path(args.out), MANIFEST, "an earlier export")
    if args.precision == "int8":
        _check_int8_arguments(args)
    model, _ = load_model(args, args.checkpoint, device="cpu")
    class_names = descriptions = None
    if args.classes:
        from ..predict import parse_classes
        from ..text.class_files import read_class_descriptions

        class_names = parse_classes(args.classes)
        descriptions = read_class_descriptions(args.descriptions, class_names) if args.descriptions else None
    precision = "fp32" if args.precision == "int8" else args.precision
    options = ExportOptions(opset=args.opset, precision=precision, batch_max=args.batch_max)
    out = Path(args.out)
    print(f"exporting {model.config.name} (T={model.config.frames}, {model.config.vision.image_size}px) to "
          f"{out}{random_weights_note(args)}")
    if args.precision != "int8":
        manifest = export_with_classes(model, out, class_names, descriptions=descriptions, templates=args.templates,
                                       options=options)
    else:
        from ..deploy.int8 import GateRefusedError, quantize_export
        from ..io import staged_folder

        # fp32 and INT8 graphs are swapped in together: an interrupt during either leaves the old export as it was
        # (a refused gate still leaves the new fp32 export). The staging copy starts as the old folder (hard links),
        # so the export inside it keeps what a re-export keeps.
        refused = None
        with staged_folder(out, MANIFEST, "an earlier export", carry=lambda old: [p.name for p in old.iterdir()]) \
                as staging:
            export_with_classes(model, staging, class_names, descriptions=descriptions, templates=args.templates,
                                options=options)
            try:
                quantize_export(staging, mode=args.int8_mode, calibration_list=args.calibration,
                                gate_list=args.gate_list, root=args.root, calibration_clips=args.calibration_clips,
                                min_gate_clips=args.min_gate_clips)
            except GateRefusedError as e:
                refused = e
        if refused is not None:
            raise refused
        manifest = json.loads((out / MANIFEST).read_text())
    print(f"wrote {out / 'manifest.json'} ({', '.join(manifest['graphs'])}) in {time.time() - started:.1f} s")
    return 0


def _check_int8_arguments(args: argparse.Namespace) -> None:
    if not args.gate_list or not args.root:
        raise T2LError("--precision int8 needs --gate-list LIST (held-out clips for the agreement gate) and "
                       "--root DIR" + (", and --calibration LIST for --int8-mode static" if args.int8_mode ==
                                       "static" else ""))
    if not args.classes:
        raise T2LError("--precision int8 needs --classes: the gate compares top-1 of the classifier graph")
    from ..deploy.int8 import check_int8_lists

    check_int8_lists(args.int8_mode, args.calibration, args.gate_list, args.root, args.min_gate_clips)


def _export_trt(args: argparse.Namespace) -> int:
    """Print NVIDIA's equivalent command(s) for each graph, then build with the installed TensorRT flavour."""
    import shlex

    from ..deploy.engine_build import BuildOptions, build_engine, cli_command, parse_frames, profile_shapes
    from ..errors import MissingDependencyError
    from ..runtime.graph_header import read_graph_facts
    from ..runtime.trt_support import FLAVOURS, load_tensorrt

    options = BuildOptions(min_batch=args.min_batch, opt_batch=args.opt_batch, max_batch=args.max_batch,
                           workspace_gb=args.workspace, timing_cache=Path(args.timing_cache) if args.timing_cache
                           else None, version_compatible=args.version_compatible,
                           hardware_compatible=args.hardware_compatible,
                           compute_capabilities=tuple(args.compute_capability), runtime=args.runtime,
                           frames=parse_frames(args.frames) if args.frames else None)
    options.validate()
    graphs = graphs_to_build(Path(args.onnx))
    several, out = len(graphs) > 1 or Path(args.onnx).is_dir(), Path(args.out) if args.out else None
    try:
        flavour, missing = load_tensorrt(args.runtime).flavour.name, None
        options.validate(flavour)
    except MissingDependencyError as e:
        flavour, missing = None, e
    shown = [name for name in FLAVOURS if flavour in (None, "tensorrt-rtx", name)]  # trtexec always
    for graph in graphs:
        facts = read_graph_facts(graph)
        profile = profile_shapes(facts, options)
        for name in shown:
            command = cli_command(name, graph, engine_target(graph, name, out, several), profile, options,
                                  facts.precision)
            print(f"equivalent {FLAVOURS[name].cli} command: {shlex.join(command)}")
    if missing:
        raise missing
    for graph in graphs:
        build_engine(graph, options, engine_target(graph, flavour, out, several), use_cli=args.trtexec)
    return 0


def graphs_to_build(onnx: Path) -> list[Path]:
    """The ONNX file `onnx`, or every graph of the export folder `onnx` that TensorRT takes (all but dynamic
    INT8), after checking each against the folder's manifest."""
    from ..runtime.bundle import ExportedModel

    if not onnx.is_dir():
        return [onnx]
    bundle = ExportedModel(onnx)
    dynamic = bundle.manifest.get("int8", {}).get("mode") == "dynamic"
    return [bundle.verified_graph_path(kind) for kind, entry in bundle.graphs.items()
            if not (dynamic and entry.get("precision") == "int8")]


def engine_target(onnx_path: Path, flavour: str, out: Path | None, several: bool) -> Path:
    """Where the engine of `onnx_path` goes: `out` (a file, or a folder when building several), else beside it."""
    from ..runtime.engine_sidecar import default_engine_path

    if out is None:
        return default_engine_path(onnx_path, flavour)
    return out / default_engine_path(onnx_path, flavour).name if several else out


def _export_triton(args: argparse.Namespace) -> int:
    from ..deploy.triton import write_triton_repository

    write_triton_repository(Path(args.onnx), Path(args.out), args.engine, name=args.name,
                            max_batch_size=args.max_batch, queue_delay_us=args.queue_delay_us)
    return 0


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    export = sub.add_parser("export", help="export a model for deployment (ONNX, TensorRT, Triton)").add_subparsers(
        dest="export_command", metavar="EXPORT_COMMAND", required=True)
    _register_onnx(export)
    _register_trt(export)
    _register_triton(export)


def _register_onnx(export) -> None:
    p = export.add_parser("onnx", help="video encoder, text encoder and classifier graphs + manifest.json, checked",
                          description="Writes OUT/{video_encoder,text_encoder,classifier}.onnx (uint8 frames in, "
                          "normalization inside) and OUT/manifest.json, after onnx.checker, a symbolic-batch check "
                          "and ONNX Runtime vs PyTorch parity at B=1 and B=3. --precision int8 adds INT8 video "
                          "encoder and classifier graphs, written only if they pass the agreement gate.")
    add_model_arguments(p)
    p.add_argument("--out", required=True, help="folder for the graphs (new, empty, or an earlier export)")
    p.add_argument("--classes", help="class-name file or comma-separated names: bakes the classifier graph")
    p.add_argument("--opset", type=number(integer=True, minimum=17), default=18,
                   help="ONNX opset, 17 or newer (default 18, torch's native)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                   help="fp16: LayerNorm, Softmax and the final normalization stay fp32 (for GPUs); int8: the fp32 "
                   "graphs plus ONNX Runtime INT8 video encoder and classifier for CPU serving, behind a gate")
    p.add_argument("--batch-max", type=BATCH, default=64, help="largest batch the graphs serve (recorded for "
                   "engine profiles; the batch axis is symbolic)")
    p.add_argument("--int8-mode", choices=["static", "dynamic"], default="static",
                   help="static: QDQ with activation ranges calibrated on --calibration clips (TensorRT reads it "
                   "too); dynamic: weights only, activation ranges at run time (ONNX Runtime CPU only)")
    p.add_argument("--calibration", metavar="LIST", help="video list of calibration clips (int8 static)")
    p.add_argument("--calibration-clips", type=positive_int, default=64, help="clips to calibrate on (default 64)")
    p.add_argument("--gate-list", metavar="LIST", help="held-out video list the INT8 gate is measured on")
    p.add_argument("--min-gate-clips", type=positive_int, default=200, help="fewest gate clips accepted (default 200)")
    p.add_argument("--root", help="data root of --calibration and --gate-list")
    p.set_defaults(run=_export_onnx)


def _register_trt(export) -> None:
    p = export.add_parser("trt", help="TensorRT engines (+ JSON sidecars) from exported graphs, with TensorRT or "
                          "TensorRT for RTX", description="Builds a strongly typed engine per graph (precision from "
                          "the graph: fp32 with TF32 off, fp16, or INT8 Q/DQ) and writes ENGINE.json beside it "
                          "(runtime and version, target GPUs, ONNX sha256, profile, I/O, flags). Always prints "
                          "NVIDIA's equivalent trtexec (and tensorrt_rtx) command. TensorRT for RTX builds ahead of "
                          "time without a GPU; TensorRT builds on the GPU it targets.")
    p.add_argument("--onnx", required=True, metavar="PATH", help="an .onnx graph, or a `t2l export onnx` folder "
                   "(all its graphs TensorRT takes)")
    p.add_argument("--out", metavar="ENGINE", help="engine file (a folder when building several; default: beside "
                   "each graph as NAME.trt.engine or NAME.trtrtx.engine)")
    p.add_argument("--min-batch", type=BATCH, default=1)
    p.add_argument("--opt-batch", type=BATCH, help="the batch the engine is tuned for (default 8, or max-batch if "
                   "smaller)")
    p.add_argument("--max-batch", type=BATCH, default=32)
    p.add_argument("--frames", metavar="T|MIN:OPT:MAX", help="frame counts of a free frame axis (ViFi-CLIP, CLIP), "
                   "tuned for OPT (default: the export's T); refused for T2L, whose frame axis is fixed")
    p.add_argument("--workspace", type=number(above=0, maximum=1024), default=4.0, metavar="GB",
                   help="builder workspace limit (default 4)")
    p.add_argument("--timing-cache", metavar="FILE", help="TensorRT: load and save kernel timings here")
    p.add_argument("--runtime", choices=["auto", "tensorrt", "tensorrt-rtx"], default="auto",
                   help="auto: TensorRT if installed, else TensorRT for RTX")
    p.add_argument("--trtexec", action="store_true", help="build with NVIDIA's CLI (trtexec, or tensorrt_rtx) "
                   "instead of the Python API; the sidecar is written either way")
    p.add_argument("--version-compatible", action="store_true",
                   help="TensorRT: the engine also runs on later releases of its major version (and 10 -> 11)")
    p.add_argument("--hardware-compatible", action="store_true",
                   help="TensorRT: the engine runs on every GPU of compute capability 8.0+ (ampere+), a little slower")
    p.add_argument("--compute-capability", action="append", default=[], metavar="M.m",
                   help="TensorRT for RTX: a target GPU architecture (repeatable: 7.5, 8.6, 8.9, 12.0, ...); default: "
                   "its portable set, RTX GPUs of compute capability 8.6, 8.9, 12.0, 12.1")
    p.set_defaults(run=_export_trt)


def _register_triton(export) -> None:
    p = export.add_parser("triton", help="a Triton Inference Server model repository of an export (ONNX Runtime "
                          "and TensorRT backends)", description="One model per graph (NAME_video_encoder, "
                          "NAME_text_encoder, NAME_classifier with labels.txt), config.pbtxt with the graphs' names, "
                          "dtypes and shapes and dynamic batching; each --engine adds a TensorRT model. Client flow: "
                          "docs/TRITON.md.")
    p.add_argument("--onnx", required=True, metavar="DIR", help="a folder written by `t2l export onnx`")
    p.add_argument("--engine", action="append", default=[], metavar="ENGINE",
                   help="a TensorRT engine (with its sidecar) of one of the graphs, built with --runtime tensorrt in "
                   "the Triton container's TensorRT (repeatable)")
    p.add_argument("--out", required=True, metavar="REPO", help="model repository folder (created or added to)")
    p.add_argument("--name", help="model name prefix (default: the exported model's name)")
    p.add_argument("--max-batch", type=BATCH, default=32, help="max_batch_size of the ONNX models (default 32; an "
                   "engine's is its profile's maximum)")
    p.add_argument("--queue-delay-us", type=number(integer=True, minimum=0, maximum=10_000_000), default=2000,
                   help="how long Triton may hold a request to batch it (default 2000 microseconds)")
    p.set_defaults(run=_export_triton)

