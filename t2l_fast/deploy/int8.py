"""INT8 video encoder and classifier for CPU serving (ONNX Runtime), written only behind an agreement gate.

static: QDQ (QuantizeLinear/DequantizeLinear around MatMul/Gemm), int8 activations and weights, symmetric,
    per-channel weights, activation ranges calibrated (min/max) on clips from the data loader. Symmetric int8 QDQ is
    the form TensorRT also reads.
dynamic: int8 weights, activation ranges measured at run time (DynamicQuantizeLinear + MatMulInteger); ONNX
    Runtime on CPUs only, no calibration.

The gate runs the fp32 and INT8 graphs on held-out clips: top-1 of the classifier must agree on >= 99% of at least
`min_gate_clips` clips, and the video embeddings must keep a mean cosine >= 0.99 with fp32. A graph that fails is
not written and the command fails; the fp32 graphs stay. The new graphs are written into a copy of the
folder (hard links) swapped in whole, so a failed or interrupted run leaves the folder as it was.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import T2LError
from ..io import file_sha256, staged_folder
from ..optional import require
from ..runtime.base import ArtifactError
from ..runtime.bundle import MANIFEST, ExportedModel
from ..runtime.export_runners import KEPT_FP32, POOLED_PROJECTION
from ..runtime.graph_header import read_metadata
from ..runtime.machine_id import cpu_info
from . import onnx_graph
from .int8_fp32 import fp32_products
from .onnx_export import write_manifest

MIN_TOP1_AGREEMENT = 0.99
MIN_MEAN_COSINE = 0.99
QUANTIZED_OPS = ["MatMul", "Gemm"]  # less those int8_fp32.fp32_products keeps; Conv (the patch embedding) stays fp32
INT8_KINDS = ("video_encoder", "classifier")  # the graphs quantized
FORMATS = {"static": "QDQ: QuantizeLinear/DequantizeLinear, int8 activations and weights (S8S8), symmetric, "
                     "per-channel weights, min/max calibration",
           "dynamic": "dynamic: int8 weights (per channel), activations quantized at run time "
                      "(DynamicQuantizeLinear + MatMulInteger); ONNX Runtime CPU only"}


def load_clips(list_file: str, root: str, spec, limit: int | None = None) -> np.ndarray:
    """uint8 [N, T, 3, S, S] evaluation clips (centre crop, TSN centre frames) of a list, through the data loader."""
    from ..data import LoaderConfig, build_video_loader

    config = LoaderConfig(frames=spec.frames, size=spec.image_size, backend="pyav", num_workers=0)
    loader = build_video_loader(list_file, root, config, split="val", batch_size=16)
    clips: list[np.ndarray] = []
    for batch in loader:
        clips.append(batch["video"].numpy())
        if limit and sum(len(c) for c in clips) >= limit:
            break
    return np.concatenate(clips)[:limit]


def _batches(clips: np.ndarray, size: int = 8) -> Iterator[np.ndarray]:
    for start in range(0, len(clips), size):
        yield clips[start:start + size]


class GateRefusedError(ArtifactError):
    """The INT8 graphs failed the agreement gate and were not written; `report` holds the gate's figures."""

    def __init__(self, message: str, report: dict[str, object]):
        super().__init__(message)
        self.report = report


class _ClipReader:
    """ONNX Runtime's CalibrationDataReader over uint8 clips."""

    def __init__(self, clips: np.ndarray):
        self._batches = _batches(clips)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"frames": batch}


def quantize_graph(source: Path, target: Path, mode: str, calibration: np.ndarray | None) -> list[str]:
    """Write the INT8 version of graph `source` to `target`; the kinds of products it kept in fp32 (KEPT_FP32)."""
    quantization = require("onnxruntime.quantization", "onnx", "INT8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(f".{target.stem}.prepared.onnx")
    # shapes for every value and ONNX Runtime's graph folding: what the quantizer needs to place Q/DQ pairs well
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    # reduce_range: 7-bit weights. x86 CPUs without VNNI (AVX2 only) multiply int8 pairs with VPMADDUBSW, whose int16
    # sums saturate on full-range weights: on such a CPU (an AMD EPYC here) every tiny model's embedding cosine fell to
    # ~0.978 with full range and rose to >= 0.9995 with reduce_range. A graph may be served on another CPU than the
    # one that quantized it, so the range is always reduced (VNNI CPUs lose one bit of weight precision).
    kept = fp32_products(prepared)
    common = dict(op_types_to_quantize=QUANTIZED_OPS, per_channel=True, reduce_range=True,
                  nodes_to_exclude=sorted({name for names in kept.values() for name in names}))
    try:
        _quantize(quantization, prepared, target, mode, calibration, common)
    finally:
        prepared.unlink(missing_ok=True)
        for leftover in target.parent.glob("augmented_model*.onnx"):  # the static calibrator's scratch file
            leftover.unlink()
    return list(kept)


def _quantize(quantization, source: Path, target: Path, mode: str, calibration, common: dict) -> None:
    if mode == "static":
        quantization.quantize_static(
            str(source), str(target), _ClipReader(calibration), quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True}, **common)
    else:
        quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8, **common)


def _run(bundle: ExportedModel, kind: str, clips: np.ndarray, output: str) -> np.ndarray:
    with bundle.runner(kind) as runner:
        return np.concatenate([runner.infer({"frames": batch})[output] for batch in _batches(clips)])


def agreement(bundle: ExportedModel, clips: np.ndarray, suffix: str = "_int8") -> dict:
    """Top-1 agreement of classifier vs classifier{suffix}, cosines of video_encoder vs its INT8 copy, and where
    the top-1 flips: per fp32 top-1 class, and the fp32 margin (top-1 minus top-2 logit) of flipped clips against
    all clips (flat scores flip first)."""
    logits = _run(bundle, "classifier", clips, "logits")  # [N, C]
    reference = logits.argmax(-1)
    quantized = _run(bundle, f"classifier{suffix}", clips, "logits").argmax(-1)
    fp32 = _run(bundle, "video_encoder", clips, "embedding")
    int8 = _run(bundle, f"video_encoder{suffix}", clips, "embedding")
    cosine = (fp32 * int8).sum(-1) / np.maximum(np.linalg.norm(fp32, axis=-1) * np.linalg.norm(int8, axis=-1), 1e-12)
    top2 = np.sort(logits, axis=-1)[:, -2:]  # [N, 2] (one column for a one-class classifier)
    margin, flipped = top2[:, -1] - top2[:, 0], reference != quantized  # [N] each
    names = bundle.class_names or [str(c) for c in range(logits.shape[1])]
    return {"clips": int(len(clips)), "top1_agreement": float((reference == quantized).mean()),
            "mean_cosine": float(cosine.mean()), "p1_cosine": float(np.percentile(cosine, 1)),
            "min_cosine": float(cosine.min()),
            "flips_per_class": {names[c]: int(n) for c, n in zip(*np.unique(reference[flipped], return_counts=True))},
            "median_margin": float(np.median(margin)),
            "median_margin_flipped": float(np.median(margin[flipped])) if flipped.any() else None}


def quantize_export(out_dir, *, mode: str = "static", calibration_list: str | None = None,
                    gate_list: str, root: str, calibration_clips: int = 64, min_gate_clips: int = 200,
                    log: Callable[[str], None] = print) -> dict[str, object]:
    """Add gated INT8 video encoder and classifier graphs to the fp32 export in `out_dir`; the gate's figures."""
    if mode not in FORMATS:
        raise T2LError(f"int8 mode {mode!r}: choose {', '.join(FORMATS)}")
    bundle = ExportedModel(out_dir)
    if bundle.manifest["precision"] != "fp32" or "classifier" not in bundle.graphs:
        raise T2LError(f"{out_dir}: INT8 quantizes an fp32 export with a classifier graph (export with --classes "
                       f"and --precision fp32 first)")
    check_int8_lists(mode, calibration_list, gate_list, root, min_gate_clips)
    spec = bundle.input_spec
    calibration = None
    if mode == "static":
        calibration = load_clips(calibration_list, root, spec, calibration_clips)
    gate_clips = load_clips(gate_list, root, spec)
    _check_gate_size(gate_list, len(gate_clips), min_gate_clips)
    directory = Path(out_dir)
    started = time.time()
    names = {f"{kind}_int8.onnx" for kind in INT8_KINDS}  # written here (and their quantizer's scratch files)
    written = names | {f".{kind}_int8.prepared.onnx" for kind in INT8_KINDS}
    with staged_folder(directory, MANIFEST, "an earlier export",
                       carry=lambda old: sorted(p.name for p in old.iterdir() if p.name not in written)) as staging:
        report = _add_int8_graphs(ExportedModel(staging), directory, mode, calibration, gate_clips, log)
        gate = report["gate"]
        report["gate"] = {**gate, "list": str(gate_list)}
        report["calibration"] = ({"list": str(calibration_list), "clips": int(len(calibration))}
                                 if calibration is not None else None)
        if not gate["passed"]:  # the staged graphs go: the folder stays as it was
            raise GateRefusedError(f"{directory}: refused to write the INT8 graphs: they fail the agreement gate "
                                   f"(top-1 agreement {gate['top1_agreement']:.3f}, mean cosine "
                                   f"{gate['mean_cosine']:.4f}); the fp32 graphs are kept. Calibrate on clips like "
                                   f"the ones served (--calibration, more --calibration-clips) or try --int8-mode "
                                   f"dynamic", report)
        bundle = ExportedModel(staging)
        bundle.manifest["int8"] = report
        bundle.manifest["graphs"] = report.pop("graphs")
        write_manifest(staging, bundle.manifest)
    log(f"   INT8 graphs written ({', '.join(sorted(names))}) in {time.time() - started:.1f} s")
    return report


def _add_int8_graphs(bundle: ExportedModel, directory: Path, mode: str, calibration: np.ndarray | None,
                     gate_clips: np.ndarray, log: Callable[[str], None]) -> dict[str, object]:
    """Quantize the video encoder and classifier of `bundle` into its folder and measure the gate; the report
    (with the manifest's graphs entry, new graphs included)."""
    found = []  # the kinds of products each graph kept in fp32
    for kind in INT8_KINDS:
        target = bundle.directory / f"{kind}_int8.onnx"
        found.append(quantize_graph(bundle.graph_path(kind), target, mode, calibration))
        _mark_int8(target)
        bundle.graphs[f"{kind}_int8"] = dict(bundle.graphs[kind], file=target.name, sha256=file_sha256(target),
                                             bytes=target.stat().st_size, external_data=[], precision="int8",
                                             graph=kind)
    figures = agreement(bundle, gate_clips)
    passed = figures["top1_agreement"] >= MIN_TOP1_AGREEMENT and figures["mean_cosine"] >= MIN_MEAN_COSINE
    gate = {**figures, "min_top1_agreement": MIN_TOP1_AGREEMENT, "min_mean_cosine": MIN_MEAN_COSINE,
            "passed": passed}
    log(f"   INT8 ({mode}) gate on {figures['clips']} held-out clips: top-1 agreement "
        f"{figures['top1_agreement']:.3f} (need >= {MIN_TOP1_AGREEMENT}), embedding cosine mean "
        f"{figures['mean_cosine']:.4f} (need >= {MIN_MEAN_COSINE}), p1 {figures['p1_cosine']:.4f}, min "
        f"{figures['min_cosine']:.4f}" + (f"; flips per fp32 class {figures['flips_per_class']}, fp32 top-1 margin "
                                         f"{figures['median_margin_flipped']:.3f} on flipped clips against "
                                         f"{figures['median_margin']:.3f} on all (medians)"
                                         if figures.get("flips_per_class") else ""))
    return {"mode": mode, "format": FORMATS[mode], "ops": QUANTIZED_OPS, "weights": "int8, reduce_range (7 bit)",
            "kept_fp32": _kept_by_all(found), "gate": gate, "cpu_int8_instructions": cpu_int8_instructions(),
            "graphs": bundle.graphs}


def _kept_by_all(found: list[list[str]]) -> list[str]:
    """The kinds of products kept in fp32 by any graph; the frame-pooled projection only when every graph kept it
    (OpenVINO runs an export's INT8 graphs only when the manifest lists it)."""
    return [kind for kind in KEPT_FP32 if (all if kind == POOLED_PROJECTION else any)(kind in f for f in found)]


def check_int8_lists(mode: str, calibration_list: str | None, gate_list: str, root: str, min_gate_clips: int) -> None:
    """Read the calibration and gate lists (a second's work), so that a missing, empty or short one is reported
    before the export and quantization it would otherwise end."""
    from ..data.lists import read_video_list

    if mode == "static":
        if not calibration_list:
            raise T2LError("--int8-mode static needs --calibration LIST (clips to calibrate activation ranges on)")
        read_video_list(calibration_list, root)
    _check_gate_size(gate_list, len(read_video_list(gate_list, root)), min_gate_clips)


def _check_gate_size(gate_list: str, clips: int, min_gate_clips: int) -> None:
    if clips < min_gate_clips:
        raise T2LError(f"--gate-list {gate_list}: {clips} clips, the INT8 gate needs at least {min_gate_clips} "
                       f"held-out clips; give a longer list")


def _mark_int8(path: Path) -> None:
    """Record precision int8 in the quantized graph's metadata (the quantizer keeps the fp32 graph's)."""
    onnx = onnx_graph.onnx_module()
    model = onnx.load(str(path))
    metadata = read_metadata(model) | {"t2l_fast.precision": "int8"}
    onnx_graph.set_metadata(model, metadata)
    onnx.save_model(model, str(path))


def cpu_int8_instructions() -> list[str]:
    """The x86 int8 dot-product extensions this CPU has (what ONNX Runtime's int8 kernels use), from /proc/cpuinfo."""
    present = cpu_info()[1]
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
    return [flag for flag in wanted if flag in present]
