"""An export folder read back: manifest, sha256 of every file, graph metadata against the manifest, runners."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from ..io import file_sha256, path_part
from ..models.config import InputSpec, ModelConfig
from .base import ArtifactError

MANIFEST = "manifest.json"
FORMAT = "t2l-fast-onnx"  # the manifest's "format": a folder written by `t2l export onnx` (deploy/onnx_export)


def manifest_input_spec(manifest: dict) -> InputSpec:
    """The frames an export takes (T, size, the normalization inside its graphs), from its manifest."""
    m = manifest["model"]
    return InputSpec(frames=m["frames"], image_size=m["image_size"], mean=tuple(m["mean"]), std=tuple(m["std"]))


class ExportedModel:
    """A folder written by `t2l export onnx`, checked before anything runs from it."""

    def __init__(self, directory):
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise ArtifactError(f"{self.directory}: no {MANIFEST}, so not a finished export folder; write one with "
                                f"`t2l export onnx --model NAME --out {self.directory}`")
        try:
            self.manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtifactError(f"{path}: corrupt JSON ({e}); re-export the folder") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            found = self.manifest.get("format") if isinstance(self.manifest, dict) else type(self.manifest).__name__
            raise ArtifactError(f"{path}: format {found!r} is not {FORMAT!r}; re-export the folder")
        missing = _missing_keys(self.manifest)
        if missing:
            raise ArtifactError(f"{path}: incomplete manifest (no {', '.join(missing)}); re-export the folder")
        try:
            self.config = ModelConfig.from_dict(self.manifest["model"]["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(f"{path}: incomplete or malformed manifest ({type(e).__name__}: {e}); re-export "
                                f"the folder") from None

    # ----------------------------------------------------------------- facts
    @property
    def graphs(self) -> dict[str, dict]:
        return self.manifest["graphs"]

    @property
    def class_names(self) -> list | None:
        """The manifest's classes, in the classifier graph's own order (a reordered manifest would give confident
        wrong labels)."""
        names = self.manifest.get("classes")
        if names is not None and "classifier" in self.graphs:
            recorded = json.loads(self.graph_metadata("classifier").get("t2l_fast.class_names", "null"))
            if recorded is not None and recorded != names:
                raise ArtifactError(f"{self.directory / MANIFEST}: classes {names[:3]}... are not the classifier "
                                    f"graph's own {(recorded or [])[:3]}... (the manifest was changed); re-export")
        return names

    @property
    def input_spec(self) -> InputSpec:
        return manifest_input_spec(self.manifest)

    @property
    def logit_scale(self) -> float:
        """The manifest's logit scale: finite, positive, and the one the graphs were exported with."""
        scale = self.manifest["model"].get("logit_scale")
        kind = next(iter(self.graphs))
        recorded = json.loads(self.graph_metadata(kind).get("t2l_fast.logit_scale", "null"))
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0 \
                or recorded not in (None, scale):
            raise ArtifactError(f"{self.directory / MANIFEST}: model.logit_scale {scale!r} is not the positive, finite "
                                f"scale the graphs were exported with ({recorded!r}); re-export the folder")
        return float(scale)

    def graph_metadata(self, kind: str) -> dict[str, str]:
        """Graph `kind`'s metadata, read from its header (no weights) once."""
        from .graph_header import read_graph_header, read_metadata

        cache = self.__dict__.setdefault("_metadata", {})
        if kind not in cache:
            cache[kind] = read_metadata(read_graph_header(self.graph_path(kind)))
        return cache[kind]

    def check_fits(self, model_name: str | None = None, frames: int | None = None,
                   image_size: int | None = None) -> None:
        """Raise if the export is not of `model_name`, or was made for another T or image size."""
        m = self.manifest["model"]
        if model_name and model_name != m["name"]:
            raise ArtifactError(f"{self.directory}: exported from {m['name']}, not {model_name}; export {model_name} "
                                f"or drop --model")
        if frames and frames != m["frames"] and not m["frames_symbolic"]:
            raise ArtifactError(f"{self.directory}: exported for T={m['frames']} frames ({m['name']} has one "
                                f"temporal token per frame); sample {m['frames']} frames, or re-export for T={frames}")
        if image_size and image_size != m["image_size"]:
            raise ArtifactError(f"{self.directory}: exported for {m['image_size']}x{m['image_size']} frames, not "
                                f"{image_size}x{image_size}; resize to {m['image_size']} or re-export")

    # ----------------------------------------------------------------- running
    def graph_path(self, kind: str) -> Path:
        if kind not in self.graphs:
            hint = " (export with --classes to get one)" if kind == "classifier" else ""
            raise ArtifactError(f"{self.directory}: holds no {kind} graph{hint}; it has {sorted(self.graphs)}")
        return self.file(self.graphs[kind]["file"], f"graphs.{kind}.file")

    def file(self, name: object, key: str) -> Path:
        """The path of a file the manifest names at `key`: every path built from a manifest string is made here
        (tests/test_trust.py checks it). A plain name in this folder; it may be a link (a hub snapshot's files
        are): its sha256 is what is trusted."""
        return self.directory / path_part(name, f"{self.directory / MANIFEST}: {key}")

    def external_data_paths(self, kind: str) -> list[Path]:
        """The external-data files of graph `kind`, as the manifest lists them."""
        entries = self.graphs[kind]["external_data"]
        return [self.file(entry["file"], f"graphs.{kind}.external_data") for entry in entries]

    def verified_graph_path(self, kind: str) -> Path:
        """The path of graph `kind`, after checking it and its external data against the manifest's sha256."""
        path = self.graph_path(kind)
        self._check_files([(path, self.graphs[kind]["sha256"])])
        self._check_external_data(kind)
        return path

    def _check_external_data(self, kind: str) -> None:
        self._check_files(zip(self.external_data_paths(kind),
                              [entry["sha256"] for entry in self.graphs[kind]["external_data"]]))

    @staticmethod
    def _check_files(files) -> None:
        for path, sha256 in files:
            if not path.is_file():
                raise ArtifactError(f"{path}: missing (listed in {MANIFEST}); restore it or re-export")
            if file_sha256(path) != sha256:
                raise ArtifactError(f"{path}: does not match {MANIFEST} (sha256 differs: truncated or altered since "
                                    f"export); restore it or re-export")

    def runner(self, kind: str, providers: Sequence[str] = ("cpu",), threads: int | None = None):
        """An OrtRunner of graph `kind`, after checking every file's sha256 against the manifest (the graph's own,
        by the runner before it parses it); on entry, the graph's metadata is checked against the manifest too."""
        from .ort_runner import OrtRunner

        return self._checked(kind, lambda path, sha: OrtRunner(path, providers, expected_sha256=sha, threads=threads))

    def openvino_runner(self, kind: str, precision: str = "fp32", threads: int | None = None):
        """An OpenVinoRunner of graph `kind` at `precision` (fp32, bf16, int8), checked as `runner` checks."""
        from .openvino_runner import OpenVinoRunner

        return self._checked(kind, lambda path, sha: OpenVinoRunner(path, precision, expected_sha256=sha,
                                                                    threads=threads))

    def _checked(self, kind: str, make):
        """`make(graph path, its manifest sha256)`'s runner, wrapped to check the graph's metadata on entry (the
        external data's sha256 is checked now)."""
        path = self.graph_path(kind)
        self._check_external_data(kind)
        return _CheckedRunner(self, kind, make(path, self.graphs[kind]["sha256"]))

    def engine_path(self, kind: str, runtime: str = "auto") -> Path:
        """The engine built from graph `kind` by `t2l export trt` (default name) for the installed TensorRT
        flavour, after checking its sidecar says it was built from this export's graph."""
        from .engine_sidecar import check_built_from, default_engine_path, read_sidecar
        from .trt_support import load_tensorrt

        flavour = load_tensorrt(runtime).flavour.name
        graph = self.graph_path(kind)
        engine = default_engine_path(graph, flavour)
        if not engine.is_file():
            raise ArtifactError(f"{engine}: no {flavour} engine of the {kind} graph; build it with "
                                f"`t2l export trt --onnx {graph} --runtime {flavour}`")
        check_built_from(read_sidecar(engine), self.graphs[kind]["sha256"])
        return engine

    def engine_runner(self, kind: str, runtime: str = "auto", device: int = 0):
        """A TrtRunner of the engine of graph `kind` (see engine_path)."""
        from .trt_runner import TrtRunner

        return TrtRunner(self.engine_path(kind, runtime), device)


MODEL_KEYS = ("name", "frames", "frames_symbolic", "image_size", "mean", "std", "config")  # what a reader uses
GRAPH_KEYS = ("file", "sha256", "external_data")


def _missing_keys(manifest: dict) -> list[str]:
    """The keys a reader of the manifest needs and does not find (dotted: model.mean, graphs.classifier.file)."""
    missing = [key for key in ("weights_sha256", "model", "graphs") if key not in manifest]
    missing += [f"{key} as a mapping" for key in ("model", "graphs") if not isinstance(manifest.get(key, {}), dict)]
    model, graphs = manifest.get("model"), manifest.get("graphs")
    if isinstance(model, dict):
        missing += [f"model.{key}" for key in MODEL_KEYS if key not in model]
        missing += [f"model.{key} as 3 numbers" for key in ("mean", "std") if key in model and not _three(model[key])]
    if isinstance(graphs, dict):
        missing += [f"graphs.{kind}.{key}" for kind, graph in graphs.items() for key in GRAPH_KEYS
                    if not isinstance(graph, dict) or key not in graph]
        missing += [f"graphs.{kind}.external_data as a list of file and sha256" for kind, graph in graphs.items()
                    if isinstance(graph, dict) and not _file_list(graph.get("external_data", []))]
    return missing


def _file_list(entries: object) -> bool:
    return isinstance(entries, list) and all(isinstance(e, dict) and {"file", "sha256"} <= e.keys() for e in entries)


def _three(values: object) -> bool:
    return isinstance(values, list) and len(values) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


class _CheckedRunner:
    """Context manager around a runner of an ONNX file (ONNX Runtime, OpenVINO) that refuses a graph whose metadata
    disagrees with the manifest."""

    def __init__(self, bundle: ExportedModel, kind: str, runner):
        self.bundle, self.kind, self.runner = bundle, kind, runner

    def __enter__(self):
        self.runner.__enter__()
        metadata, m = self.runner.metadata(), self.bundle.manifest
        expected = {"t2l_fast.graph": self.bundle.graphs[self.kind].get("graph", self.kind),
                    "t2l_fast.model": m["model"]["name"], "t2l_fast.frames": str(m["model"]["frames"]),
                    "t2l_fast.image_size": str(m["model"]["image_size"]),
                    "t2l_fast.weights_sha256": m["weights_sha256"]}
        wrong = {k: (metadata.get(k), v) for k, v in expected.items() if metadata.get(k) != v}
        if wrong:
            self.runner.__exit__(None, None, None)
            key, (found, want) = next(iter(wrong.items()))
            raise ArtifactError(f"{self.runner.path}: graph metadata {key}={found!r} but {MANIFEST} says {want!r}: "
                                f"the file comes from another export; re-export the folder")
        return self.runner

    def __exit__(self, *exc):
        self.runner.__exit__(*exc)
