"""A Triton Inference Server model repository from an export folder (`t2l export triton`).

One Triton model per graph: NAME_video_encoder, NAME_text_encoder and NAME_classifier on the ONNX Runtime backend,
plus NAME_<graph>_trt on the TensorRT backend for each engine given. Each has a config.pbtxt (names, dtypes and
shapes from the graph, batch as Triton's implicit first axis, dynamic batching) and the classifier a labels.txt.
The client flow is in docs/TRITON.md.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import T2LError
from ..io import inside, path_part, staged_folder
from ..runtime.base import ArtifactError
from ..runtime.bundle import ExportedModel
from ..runtime.engine_sidecar import check_built_from, check_engine_bytes, read_sidecar
from ..runtime.graph_header import read_graph_facts

TRITON_TYPES = {"uint8": "TYPE_UINT8", "int64": "TYPE_INT64", "int32": "TYPE_INT32", "float32": "TYPE_FP32",
                "float16": "TYPE_FP16"}
GRAPHS = ("video_encoder", "text_encoder", "classifier")
LABELS = "labels.txt"
CONFIG = "config.pbtxt"


def _dims(shape: Sequence[object], fixed: dict[int, int] | None = None) -> list[int]:
    """Triton dims of a graph shape: the batch axis dropped (max_batch_size > 0), free axes -1 unless `fixed`."""
    fixed = fixed or {}
    return [d if isinstance(d, int) else fixed.get(i, -1) for i, d in enumerate(shape) if i > 0]


def _tensor_block(entries, fixed_frames: int | None, labels: str | None = None) -> str:
    blocks = []
    for entry in entries:
        fixed = {1: fixed_frames} if fixed_frames and entry["name"] == "frames" else None
        dims = ", ".join(str(d) for d in _dims(entry["shape"], fixed))
        label = f'\n    label_filename: "{labels}"' if labels and entry["name"] == "probabilities" else ""
        if entry["dtype"] not in TRITON_TYPES:
            raise ArtifactError(f"tensor {entry['name']!r} is {entry['dtype']}, which this writer does not map to a "
                                f"Triton type ({', '.join(TRITON_TYPES)}); export with `t2l export onnx`")
        blocks.append(f'  {{\n    name: "{entry["name"]}"\n    data_type: {TRITON_TYPES[entry["dtype"]]}\n'
                      f'    dims: [ {dims} ]{label}\n  }}')
    return ",\n".join(blocks)


# A version-compatible engine carries TensorRT's lean runtime as host code, which Triton's TensorRT backend runs only
# when the server is started with this backend setting (Triton 23.09 and later).
VERSION_COMPATIBLE_NOTE = ("# A version-compatible TensorRT engine: start the server with\n"
                           "#   tritonserver --backend-config=tensorrt,version-compatible=true ...\n"
                           "# (Triton 23.09+). The server then runs the engine's embedded runtime code: serve only "
                           "engines you built.\n")


def model_config(name: str, platform: str, inputs, outputs, max_batch_size: int, preferred: Sequence[int],
                 queue_delay_us: int, fixed_frames: int | None = None, labels: str | None = None,
                 gpu: bool = False, extra: str = "") -> str:
    """config.pbtxt text of one model; platform "python" is Triton's Python backend; `extra` is appended."""
    preferred = ", ".join(str(b) for b in sorted(set(preferred)) if b <= max_batch_size)
    runs_on = 'backend: "python"' if platform == "python" else f'platform: "{platform}"'
    text = (f'name: "{name}"\n{runs_on}\nmax_batch_size: {max_batch_size}\n'
            f'input [\n{_tensor_block(inputs, fixed_frames)}\n]\n'
            f'output [\n{_tensor_block(outputs, fixed_frames, labels)}\n]\n'
            f'dynamic_batching {{\n  preferred_batch_size: [ {preferred} ]\n'
            f'  max_queue_delay_microseconds: {queue_delay_us}\n}}\n')
    if gpu:
        text += "instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n  }\n]\n"
    return text + extra


def write_triton_repository(onnx_dir: Path, out: Path, engines: Sequence[Path] = (), *, name: str | None = None,
                            max_batch_size: int = 32, preferred: Sequence[int] | None = None,
                            queue_delay_us: int = 2000, log=print) -> list[Path]:
    """Write (or refresh) the repository `out`; returns the model folders written. preferred: batch sizes the
    dynamic batcher aims for (default 8 and max_batch_size)."""
    bundle = ExportedModel(onnx_dir)
    prefix = path_part(name or bundle.config.name, "--name" if name else f"{onnx_dir}: the model name")
    if max_batch_size < 1:
        raise T2LError(f"--max-batch {max_batch_size}: Triton batches these graphs, give 1 or more")
    preferred = preferred or (min(8, max_batch_size), max_batch_size)
    out = Path(out)
    sidecars = [(Path(engine), _checked_sidecar(bundle, Path(engine))) for engine in engines]  # before any write
    kinds = [sidecar["onnx"]["graph"] for _, sidecar in sidecars]
    if len(set(kinds)) < len(kinds):
        raise T2LError(f"--engine: two engines of the same graph ({', '.join(kinds)}); give one per graph")
    written = []
    for kind in (k for k in GRAPHS if k in bundle.graphs):
        graph = bundle.verified_graph_path(kind)
        facts = read_graph_facts(graph)
        name = f"{prefix}_{kind}"
        with _model_folder(out, name) as folder:
            for source in [graph, *bundle.external_data_paths(kind)]:
                shutil.copy2(source, folder / "1" / ("model.onnx" if source == graph else source.name))
            labels = _write_labels(name, folder, bundle.class_names) if kind == "classifier" else None
            (folder / CONFIG).write_text(model_config(
                name, "onnxruntime_onnx", facts.inputs, facts.outputs, max_batch_size, preferred,
                queue_delay_us, labels=labels))
        written.append(out / name)
    for engine, sidecar in sidecars:
        written.append(_write_engine_model(bundle, prefix, engine, sidecar, out, queue_delay_us))
    log(f"wrote Triton model repository {out}: {', '.join(f.name for f in written)} (serve it with "
        f"tritonserver --model-repository={out.resolve()})")
    return written


def _checked_sidecar(bundle: ExportedModel, engine: Path) -> dict:
    """The sidecar of `engine`, if the engine is intact, of one of this export's graphs, and full TensorRT's."""
    sidecar = read_sidecar(engine)
    check_engine_bytes(engine, sidecar)
    kind = sidecar["onnx"]["graph"]
    if kind not in bundle.graphs:
        raise ArtifactError(f"{engine}: built from a {kind} graph, which this export does not have; rebuild: "
                            f"{sidecar['rebuild']}")
    check_built_from(sidecar, bundle.graphs[kind]["sha256"])
    if sidecar["runtime"]["name"] != "tensorrt":
        raise ArtifactError(f"{engine}: a {sidecar['runtime']['name']} engine; Triton's TensorRT backend runs "
                            f"TensorRT engines of its own TensorRT release. Build one inside the Triton container "
                            f"with `t2l export trt --runtime tensorrt`, or serve the ONNX models")
    low = next(iter(sidecar["profile"].values()))["min"][0]
    if low != 1:
        raise ArtifactError(f"{engine}: its profile starts at batch {low}; Triton sends any batch from 1 to "
                            f"max_batch_size, so rebuild it with --min-batch 1: {sidecar['rebuild']}")
    return sidecar


def _write_engine_model(bundle: ExportedModel, prefix: str, engine: Path, sidecar: dict, out: Path,
                        queue_delay_us: int) -> Path:
    kind = sidecar["onnx"]["graph"]
    profile = next(iter(sidecar["profile"].values()))
    name = f"{prefix}_{kind}_trt"
    # a frame range (t2l export trt --frames MIN:OPT:MAX) stays free (-1); the engine's profile bounds it
    frames = profile["max"][1] if kind != "text_encoder" and profile["min"][1] == profile["max"][1] else None
    with _model_folder(out, name) as folder:
        shutil.copy2(engine, folder / "1" / "model.plan")
        labels = _write_labels(name, folder, bundle.class_names) if kind == "classifier" else None
        config = model_config(name, "tensorrt_plan", sidecar["inputs"], sidecar["outputs"], profile["max"][0],
                              (profile["opt"][0], profile["max"][0]), queue_delay_us, fixed_frames=frames,
                              labels=labels, gpu=True)
        if sidecar.get("target", {}).get("version_compatible"):
            config = VERSION_COMPATIBLE_NOTE + config
        (folder / CONFIG).write_text(config)
    return out / name


@contextmanager
def _model_folder(out: Path, name: str) -> Iterator[Path]:
    """A staged copy of model folder `name` in `out` to write into, swapped in whole when the block ends (an
    interrupt leaves the old model folder). It keeps what the user added beside ours (other versions); a folder
    that is not a model this command wrote (no config.pbtxt) is refused."""
    folder = inside(out, name, "Triton model name (--name or the export's model name, plus the graph)")
    ours = ("1", CONFIG, LABELS)
    with staged_folder(folder, CONFIG, "a Triton model folder",
                       carry=lambda old: [p.name for p in old.iterdir() if p.name not in ours]) as staging:
        (staging / "1").mkdir()
        yield staging


def _write_labels(name: str, folder: Path, class_names: Sequence[str] | None) -> str:
    if not class_names:
        raise ArtifactError(f"{name}: the export has a classifier graph but no class names in its manifest; "
                            f"re-export with --classes")
    (folder / LABELS).write_text("".join(f"{c}\n" for c in class_names))
    return LABELS
