"""`t2l export onnx`: a model -> a folder of ONNX graphs and a manifest.json, each graph checked after export.

    OUT/video_encoder.onnx  OUT/text_encoder.onnx  OUT/classifier.onnx (with --classes)  OUT/manifest.json

Checks before the manifest is written (a failure raises and leaves no manifest, so the folder is never served):
onnx.checker's full check; symbolic batch (and frames for ViFi-CLIP/CLIP) read back from the file; ONNX Runtime
against PyTorch at B = 1 and B = 3 on synthetic clips (fp32: max-abs <= 1e-4 on embeddings, identical top-1; fp16:
cosine >= 0.999, plus a lint of its fp32 islands and constants).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import T2LError
from ..io import atomic_write, file_sha256, staged_folder
from ..models.base import VideoTextModel
from ..models.graphs import GRAPH_KINDS, INPUTS, OUTPUTS, build_graph
from ..optional import installed
from ..runtime.base import ArtifactError
from ..runtime.bundle import FORMAT, MANIFEST
from ..runtime.compare import Tolerance, compare_outputs
from . import onnx_graph

PRECISIONS = ("fp32", "fp16")
# Parity gates (docs/design/RELIABILITY.md §4): ORT fp32 vs torch at 1e-4 (logits, 100x cosines: 1e-2); fp16 by cosine.
FP32_TOLERANCES = {"embedding": Tolerance(max_abs=1e-4), "probabilities": Tolerance(max_abs=1e-4),
                   "logits": Tolerance(max_abs=1e-2)}
FP16_TOLERANCES = {"embedding": Tolerance(min_cosine=0.999), "logits": Tolerance(min_cosine=0.999),
                   "probabilities": Tolerance(max_abs=2e-2)}


@dataclass(frozen=True)
class ExportOptions:
    opset: int = onnx_graph.DEFAULT_OPSET
    precision: str = "fp32"
    batch_max: int = 64  # largest batch the graphs are meant for (recorded; TensorRT profiles read it)
    external_data_threshold: int = onnx_graph.EXTERNAL_DATA_THRESHOLD

    def validate(self) -> None:
        max_opset = onnx_graph.onnx_module().defs.onnx_opset_version()
        if not onnx_graph.MIN_OPSET <= self.opset <= max_opset:
            raise T2LError(f"--opset {self.opset}: choose {onnx_graph.MIN_OPSET}..{max_opset} (LayerNormalization "
                           f"needs 17; {onnx_graph.DEFAULT_OPSET} is torch's native opset)")
        if self.precision not in PRECISIONS:
            raise T2LError(f"--precision {self.precision!r}: choose {', '.join(PRECISIONS)} (int8 quantizes an "
                           f"fp32 export: see `t2l export onnx --precision int8 --help`)")
        if self.batch_max < 1:
            raise T2LError(f"--batch-max must be >= 1, got {self.batch_max}")


def carried_files(old: Path) -> list[str]:
    """What a re-export keeps of the export folder `old`: everything but the earlier export's own files (its
    manifest, the graphs and data files it lists, and the names this export writes), e.g. engines built beside it."""
    try:
        graphs = json.loads((old / MANIFEST).read_text()).get("graphs", {})
        listed = {str(e.get("file")) for e in graphs.values()} | {str(d.get("file")) for e in graphs.values()
                                                                   for d in e.get("external_data", [])}
    except (OSError, ValueError, AttributeError, TypeError):  # an unreadable manifest lists nothing to drop
        listed = set()
    written = {MANIFEST} | {f"{kind}.onnx{data}" for kind in GRAPH_KINDS for data in ("", ".data")}
    return sorted(p.name for p in old.iterdir() if p.name not in listed | written)


def example_inputs(kind: str, model: VideoTextModel, batch: int) -> dict[str, torch.Tensor]:
    """Inputs of graph `kind` for a batch of `batch`: random uint8 frames, or token ids with the EOT in a different
    place in each row."""
    if kind == "text_encoder":
        from ..text.tokenize import tokenize

        texts = [" ".join(["action"] * (1 + 3 * i)) for i in range(batch)]
        return {"token_ids": tokenize(texts, model.config.text.context_length)}
    spec = model.input_spec
    generator = torch.Generator().manual_seed(batch)
    return {"frames": torch.randint(0, 256, (batch, spec.frames, 3, spec.image_size, spec.image_size),
                                    dtype=torch.uint8, generator=generator)}


def parity_clips(model: VideoTextModel, count: int) -> torch.Tensor:
    """uint8 [count, T, 3, S, S] synthetic action clips (one class each) at the model's input size."""
    from ..data.synthetic_frames import order_clips

    spec = model.input_spec
    clips, _ = order_clips(1, seed=7, frames=spec.frames, size=spec.image_size)
    return clips[:count]


def parity_feeds(model: VideoTextModel, kind: str) -> dict[str, dict[str, np.ndarray]]:
    """Inputs of the parity check: batches of 1 and 3 (and, where frames are free, 2 clips at half the frames)."""
    if kind == "text_encoder":
        return {f"batch_{b}": {"token_ids": example_inputs(kind, model, b)["token_ids"].numpy()} for b in (1, 3)}
    clips = parity_clips(model, 4).numpy()
    feeds = {"batch_1": {"frames": clips[:1]}, "batch_3": {"frames": clips[1:]}}
    if model.config.kind != "t2l":
        feeds["batch_2_half_frames"] = {"frames": np.ascontiguousarray(clips[:2, ::2])}
    return feeds


def graph_metadata(model: VideoTextModel, kind: str, options: ExportOptions, weights_sha: str,
                   class_names: Sequence[str] | None) -> dict[str, object]:
    c = model.config
    metadata = {"t2l_fast.version": __version__, "t2l_fast.graph": kind, "t2l_fast.model": c.name,
                "t2l_fast.model_kind": c.kind, "t2l_fast.frames": c.frames, "t2l_fast.frames_symbolic":
                c.kind != "t2l", "t2l_fast.image_size": c.vision.image_size, "t2l_fast.mean": list(c.input_mean),
                "t2l_fast.std": list(c.input_std), "t2l_fast.weights_sha256": weights_sha,
                "t2l_fast.opset": options.opset, "t2l_fast.precision": options.precision,
                "t2l_fast.logit_scale": float(model.logit_scale().detach())}
    if kind == "classifier":
        metadata["t2l_fast.class_names"] = list(class_names)
    return metadata


def export_one(model: VideoTextModel, kind: str, path: Path, options: ExportOptions, metadata: dict[str, object],
               class_embeddings: torch.Tensor | None) -> dict[str, object]:
    """Export, convert, save and check one graph; its manifest entry."""
    graph = build_graph(kind, model, class_embeddings)
    symbolic_frames = model.config.kind != "t2l"
    proto = onnx_graph.export_torch_graph(graph, kind, example_inputs(kind, model, batch=2), opset=options.opset,
                                          batch_max=options.batch_max, symbolic_frames=symbolic_frames)
    head = onnx_graph.head_node_names(proto)
    if kind != "text_encoder" and not head:
        raise ArtifactError(f"{path}: found no nodes of the graph's head in the export (torch's exporter changed "
                            f"its name scopes?); the fp16 conversion could not keep it in fp32")
    onnx_graph.strip_exporter_notes(proto)
    onnx_graph.set_metadata(proto, metadata)
    if options.precision == "fp16":
        proto = onnx_graph.to_fp16(proto, head)
        problems = onnx_graph.lint_fp16(proto, head)
        if problems:
            raise ArtifactError(f"{path}: the fp16 graph fails its lint: {'; '.join(problems[:3])}")
    files = onnx_graph.save_model(proto, path, options.external_data_threshold)
    onnx_graph.check_graph_file(path)
    onnx_graph.check_symbolic_dims(proto, kind, symbolic_frames, path)
    return {"file": path.name, "sha256": file_sha256(path), "bytes": sum(f.stat().st_size for f in files),
            "external_data": [{"file": f.name, "sha256": file_sha256(f)} for f in files[1:]],
            "precision": options.precision, "inputs": [_io_entry(proto, name) for name in INPUTS[kind]],
            "outputs": list(OUTPUTS[kind])}


def _io_entry(proto, name: str) -> dict[str, object]:
    dtype = {"frames": "uint8", "token_ids": "int64"}[name]
    return {"name": name, "dtype": dtype, "shape": onnx_graph.input_dims(proto, name)}


def check_parity(model: VideoTextModel, kind: str, path: Path, precision: str,
                 class_embeddings: torch.Tensor | None) -> dict[str, object]:
    """ONNX Runtime (CPU) against PyTorch fp32 at B = 1 and B = 3 (and half the frames where T is free)."""
    from ..runtime.ort_runner import OrtRunner
    from ..runtime.torch_runner import TorchRunner

    tolerances = FP32_TOLERANCES if precision == "fp32" else FP16_TOLERANCES
    tolerances = {name: tolerances[name] for name in OUTPUTS[kind]}
    feeds = parity_feeds(model, kind)
    report: dict[str, object] = {}
    with TorchRunner(model, kind, class_embeddings, device="cpu") as reference, OrtRunner(path) as runner:
        failures: list[str] = []
        agreement = []
        for label, feed in feeds.items():
            expected, actual = reference.infer(feed), runner.infer(feed)
            comparison = compare_outputs(actual, expected, tolerances)
            report[label] = comparison.figures
            failures += [f"{label} {name}: {why}" for name, why in comparison.failures.items()]
            if kind == "classifier":
                agreement.append(actual["logits"].argmax(-1) == expected["logits"].argmax(-1))
        if agreement:
            report["top1_agreement"] = float(np.concatenate(agreement).mean())
            if precision == "fp32" and report["top1_agreement"] < 1.0:
                failures.append(f"top-1 differs from PyTorch on {1 - report['top1_agreement']:.0%} of the clips")
    report["passed"] = not failures
    if failures:
        raise ArtifactError(f"{path}: ONNX Runtime disagrees with PyTorch ({'; '.join(failures[:3])}); no manifest "
                            f"was written. Report this with the model name and `t2l env`")
    return report


def export_onnx(model: VideoTextModel, out_dir: Path, *, class_names: Sequence[str] | None = None,
                class_embeddings: torch.Tensor | None = None, class_texts: list[list[str]] | None = None,
                options: ExportOptions = ExportOptions(), check: bool = True,
                log: Callable[[str], None] = print) -> dict[str, object]:
    """Write the video and text encoders (and the classifier, given class embeddings [C, D]) of `model` to
    `out_dir`, check each, and write manifest.json last; returns the manifest. The export is written into a
    temporary sibling and swapped in whole: a failed or interrupted export leaves an earlier one as it was."""
    options.validate()
    with staged_folder(Path(out_dir), MANIFEST, "an earlier export", carry=carried_files) as staging:
        return _write_export(model, staging, class_names, class_embeddings, class_texts, options, check, log)


def _write_export(model: VideoTextModel, out_dir: Path, class_names: Sequence[str] | None,
                  class_embeddings: torch.Tensor | None, class_texts: list[list[str]] | None,
                  options: ExportOptions, check: bool, log: Callable[[str], None]) -> dict[str, object]:
    model = model.eval().cpu()
    weights_sha = onnx_graph.weights_sha256(model.state_dict())
    kinds = [k for k in GRAPH_KINDS if k != "classifier" or class_embeddings is not None]
    manifest: dict[str, object] = {
        "format": FORMAT, "format_version": 1, "t2l_fast_version": __version__,
        "versions": {name: installed(name) for name in ("torch", "onnx", "onnxscript", "onnxruntime")},
        "model": {"name": model.config.name, "kind": model.config.kind, "frames": model.config.frames,
                  "frames_symbolic": model.config.kind != "t2l", "image_size": model.config.vision.image_size,
                  "mean": list(model.config.input_mean), "std": list(model.config.input_std),
                  "embed_dim": model.config.embed_dim, "context_length": model.config.text.context_length,
                  "logit_scale": float(model.logit_scale().detach()), "config": model.config.to_dict()},
        "weights_sha256": weights_sha, "opset": options.opset, "precision": options.precision,
        "batch_max": options.batch_max, "graphs": {}, "parity": {}}
    if class_embeddings is not None:
        manifest["classes"] = list(class_names)
        manifest["class_texts"] = class_texts
    for kind in kinds:
        started = time.time()
        path = out_dir / f"{kind}.onnx"
        metadata = graph_metadata(model, kind, options, weights_sha, class_names)
        entry = export_one(model, kind, path, options, metadata, class_embeddings)
        manifest["graphs"][kind] = entry
        seconds = time.time() - started
        line = f"   {kind:<14} {path.name} ({entry['bytes'] / 1e6:.1f} MB, {options.precision}) in {seconds:.1f} s"
        if check:
            parity = check_parity(model, kind, path, options.precision, class_embeddings)
            manifest["parity"][kind] = parity
            line += "; ONNX Runtime vs PyTorch: " + _parity_line(parity)
        log(line)
    write_manifest(out_dir, manifest)
    return manifest


def _parity_line(parity: dict[str, object]) -> str:
    figures = [f for label, f in parity.items() if label.startswith("batch_")]
    worst_abs = max(v["max_abs"] for f in figures for v in f.values())
    worst_cos = min(v["min_cosine"] for f in figures for v in f.values())
    text = f"max-abs {worst_abs:.1e}, min cosine {worst_cos:.6f}"
    if "top1_agreement" in parity:
        text += f", top-1 agreement {parity['top1_agreement']:.0%}"
    return text + " (passed)"


def export_with_classes(model: VideoTextModel, out_dir: Path, class_names: Sequence[str] | None = None, *,
                        descriptions: Sequence[str] | None = None,
                        templates: str | Sequence[str] | None = None,
                        options: ExportOptions = ExportOptions(), check: bool = True,
                        log: Callable[[str], None] = print) -> dict[str, object]:
    """export_onnx with the classifier graph of `class_names`: their prompts (each class's description, or its name
    in `templates`) embedded by the model's text tower; without class names, the two encoders only."""
    if class_names is None:
        return export_onnx(model, out_dir, options=options, check=check, log=log)
    from ..text.classifier import build_classifier, build_prompts

    class_texts = build_prompts(model.config, class_names, descriptions, templates)  # [C][K]
    embeddings = build_classifier(model, class_names, descriptions=descriptions, templates=templates).embeddings
    return export_onnx(model, out_dir, class_names=class_names, class_embeddings=embeddings, class_texts=class_texts,
                       options=options, check=check, log=log)


def write_manifest(out_dir: Path, manifest: dict[str, object]) -> Path:
    path = out_dir / MANIFEST
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n"))
    return path
