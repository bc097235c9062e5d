"""The backends that run an export folder's graphs, by name: `export_runner(folder, backend, kind)` is the one
factory that `t2l predict`, `t2l serve` and `--backend auto` open runners with.

    with export_runner("exports/t2l_b16", "openvino-int8", "classifier") as runner:
        probabilities = runner.infer({"frames": clips})["probabilities"]
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..backend_names import BACKENDS, ExportBackend
from ..errors import T2LError
from .base import ArtifactError
from .bundle import MANIFEST, ExportedModel

INT8_GRAPHS = ("video_encoder", "classifier")  # the graphs `t2l export onnx --precision int8` quantizes


def backend(name: str) -> ExportBackend:
    if name not in BACKENDS:
        raise T2LError(f"backend {name!r}: choose from {', '.join(BACKENDS)} (or auto)")
    return BACKENDS[name]


def on_gpu(device: str | None) -> bool:
    """Whether `device` names a CUDA GPU (None: the CPU, except for TensorRT, which only runs on a GPU)."""
    return bool(device) and str(device).startswith("cuda")


def int8_refusal(bundle: ExportedModel, kind: str = "video_encoder", runtime: str | None = None) -> str | None:
    """Why the INT8 version of graph `kind` must not run on `runtime` (None: it passed the agreement gate recorded in
    the manifest when it was written, and OpenVINO computes it right)."""
    if f"{kind}_int8" not in bundle.graphs:
        return (f"{bundle.directory}: holds no INT8 {kind} graph; add the gated INT8 graphs with `t2l export onnx "
                f"--precision int8 --calibration LIST --gate-list LIST --root DIR`")
    gate = (bundle.manifest.get("int8") or {}).get("gate") or {}
    if gate.get("passed") is not True:
        return (f"{bundle.directory / MANIFEST}: the INT8 graphs did not pass the agreement gate (top-1 agreement "
                f"{gate.get('top1_agreement', '?')}, mean cosine {gate.get('mean_cosine', '?')}), so they are never "
                f"run; use the fp32 backends, or re-quantize with `t2l export onnx --precision int8` on clips like "
                f"the ones served")
    return openvino_int8_refusal(bundle) if runtime == "OpenVINO" else None


# the kinds of products deploy.int8_fp32 leaves unquantized; an INT8 export's manifest records those its graphs have
# (int8.kept_fp32). OpenVINO refuses INT8 graphs without the frame-pooled projection
ACTIVATION_PRODUCTS, POOLED_PROJECTION = "activation x activation products", "frame-pooled projection"
BOTTLENECKS, CLASS_HEAD, PATCH_EMBEDDING = "bottlenecks (T2L's adapters)", "class head", "patch embedding"
KEPT_FP32 = [ACTIVATION_PRODUCTS, POOLED_PROJECTION, BOTTLENECKS, CLASS_HEAD, PATCH_EMBEDDING]


def openvino_int8_refusal(bundle: ExportedModel) -> str | None:
    """Why OpenVINO must not run this export's INT8 graphs: written before the frame-pooled projection was kept in
    fp32, on which OpenVINO 2026.4 computes only a batch's first clip (None: safe)."""
    kept = (bundle.manifest.get("int8") or {}).get("kept_fp32") or []
    if POOLED_PROJECTION in kept:
        return None
    return (f"{bundle.directory / MANIFEST}: these INT8 graphs quantize the frame-pooled projection, on which OpenVINO "
            f"returns zeros for every clip of a batch after the first; re-export them with `t2l export onnx "
            f"--precision int8` (ONNX Runtime runs them correctly: --backend onnx-int8)")


def unavailable_reason(name: str, bundle: ExportedModel, device: str | None = None) -> str | None:
    """Why backend `name` cannot run this export's video encoder here (None: it can be tried)."""
    spec = backend(name)
    if not (spec.gpu if on_gpu(device) else spec.cpu):
        return f"runs on {'the CPU' if spec.cpu else 'an NVIDIA GPU'} only"
    if spec.module == "tensorrt":
        from .trt_support import engines_cannot_run_reason

        reason = engines_cannot_run_reason(_device_index(device))
        if reason is None and not list(bundle.directory.glob("video_encoder.*.engine")):
            reason = f"no engines built; build them with `t2l export trt --onnx {bundle.directory}`"
        return reason
    if importlib.util.find_spec(spec.module) is None:
        return f"the Python module {spec.module!r} is not installed (pip install 't2l-fast[onnx]')"
    if spec.precision != "int8":
        return None
    return int8_refusal(bundle, runtime=spec.runtime)


def export_runner(export: ExportedModel | str | Path, name: str, kind: str, *, device: str | None = None,
                  trt_runtime: str = "auto", threads: int | None = None):
    """A runner (context manager) of graph `kind` of the export folder `export` on backend `name`. INT8 backends
    run the gated `KIND_int8` graph (refused when its gate did not pass) and the text encoder in fp32."""
    bundle = export if isinstance(export, ExportedModel) else ExportedModel(export)
    spec = backend(name)
    if on_gpu(device) and not spec.gpu:
        raise T2LError(f"--backend {name} runs on the CPU, not on --device {device}; use --device cpu, or --backend "
                       f"onnx or tensorrt on a GPU")
    if spec.runtime == "TensorRT":
        return bundle.engine_runner(kind, trt_runtime, _device_index(device))
    graph, precision = kind, spec.precision
    if spec.precision == "int8" and kind in INT8_GRAPHS:
        refusal = int8_refusal(bundle, kind, spec.runtime)
        if refusal:
            raise ArtifactError(refusal)
        graph = f"{kind}_int8"
    elif spec.precision == "int8":
        precision = "fp32"  # no INT8 version of this graph (the text encoder): its fp32 graph
    if spec.runtime == "OpenVINO":
        return bundle.openvino_runner(graph, precision, threads)
    return bundle.runner(graph, ["cuda", "cpu"] if on_gpu(device) else ["cpu"], threads)


def _device_index(device: str | None) -> int:
    """cuda:N -> N; cuda or None -> 0."""
    _, _, index = str(device or "cuda").partition(":")
    if index and not index.isdigit():
        raise T2LError(f"--device {device!r}: not a device; use cpu, cuda or cuda:N")
    return int(index or 0)
