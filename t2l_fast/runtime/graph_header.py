"""An ONNX graph's header read without its weights: the checked ModelProto, its t2l_fast metadata, and the facts an
engine builder or a serving config needs (inputs, outputs, precision, frames)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import file_sha256
from ..optional import require
from .base import ArtifactError, TensorSpec

_ELEMENT_TYPES = {1: "float32", 2: "uint8", 6: "int32", 7: "int64", 10: "float16"}  # onnx.TensorProto codes


def read_graph_header(path: Path):
    """The ModelProto of `path` without its external weights; an ArtifactError for a missing, corrupt or truncated
    file, or external data that would be read from outside the graph's folder."""
    onnx = require("onnx", "onnx", "reading ONNX graphs")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such ONNX file; export it with `t2l export onnx`")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ArtifactError(f"{path}: not a readable ONNX graph ({type(e).__name__}: {e}); the file is corrupt or "
                            f"truncated: re-export it") from None
    if not model.graph.node:
        raise ArtifactError(f"{path}: the ONNX file holds no graph (truncated or not ONNX); re-export it")
    check_external_data(model, path)
    return model


def _all_tensors(model):
    """Every TensorProto of a graph: initializers (dense and sparse) and Constant values, subgraphs included."""
    def walk(graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                    yield from walk(sub)
    return walk(model.graph)


def check_external_data(model, path: Path) -> None:
    """Every external tensor's file must be a plain file inside the graph's folder (CVE-2024-27318 and kin), and
    hold the bytes the graph says the tensor has there (a truncated file is named, not left to the runtime)."""
    folder = path.parent.resolve()
    for tensor in _all_tensors(model):
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location")
        if location is None:
            continue
        resolved = (path.parent / location).resolve()
        if Path(location).is_absolute() or folder not in resolved.parents:
            raise ArtifactError(f"{path}: tensor {tensor.name!r} points its weights at {location!r}, outside the "
                                f"graph's folder {folder}; refused. Re-export the graph, keeping its .data file "
                                f"beside it")
        if not resolved.is_file():
            raise ArtifactError(f"{path}: its weights file {location!r} is missing; copy it beside the graph")
        end = int(entries.get("offset", 0)) + int(entries.get("length", 0))
        if end > resolved.stat().st_size:
            raise ArtifactError(f"{resolved}: the weights file is truncated: tensor {tensor.name!r} of {path.name} "
                                f"needs its bytes up to {end:,}, the file has {resolved.stat().st_size:,}; copy the "
                                f"whole file again or re-export the graph")


def read_metadata(model) -> dict[str, str]:
    """A graph's metadata_props as a dict of strings."""
    return {p.key: p.value for p in model.metadata_props}


@dataclass
class GraphFacts:
    """What the builder needs to know about an ONNX graph, read from its header (no weights loaded)."""

    path: Path
    sha256: str
    kind: str  # t2l_fast.graph, or "graph" for a foreign ONNX file
    model: str
    precision: str  # fp32, fp16 or int8
    frames: int | None
    inputs: list[dict[str, object]] = field(default_factory=list)  # {"name", "dtype", "shape"}
    outputs: list[dict[str, object]] = field(default_factory=list)
    dynamic_int8: bool = False


def read_graph_facts(path: Path) -> GraphFacts:
    """The facts of the ONNX graph in `path`, read from its header."""
    header = read_graph_header(path)
    metadata = read_metadata(header)
    ops = {node.op_type for node in header.graph.node}
    precision = "int8" if "QuantizeLinear" in ops else metadata.get("t2l_fast.precision") or (
        "fp16" if any(i.data_type == 10 for i in header.graph.initializer) else "fp32")  # 10: FLOAT16
    frames = metadata.get("t2l_fast.frames")
    return GraphFacts(path, file_sha256(path), metadata.get("t2l_fast.graph", "graph"),
                      metadata.get("t2l_fast.model", "?"), precision, int(frames) if frames else None,
                      [_value_entry(v) for v in header.graph.input], [_value_entry(v) for v in header.graph.output],
                      dynamic_int8=bool(ops & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}))


def _value_entry(value) -> dict[str, object]:
    tensor = value.type.tensor_type
    shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"name": value.name, "dtype": _ELEMENT_TYPES.get(tensor.elem_type, f"onnx-type-{tensor.elem_type}"),
            "shape": shape}


def check_sha256(path: Path, expected: str | None) -> str | None:
    """The file's sha256 when one is `expected`, checked before anything parses it: bytes that are not the exported
    ones are never read as a graph."""
    if not expected:
        return None
    if not path.is_file():
        raise ArtifactError(f"{path}: no such ONNX file; export it with `t2l export onnx`")
    sha = file_sha256(path)
    if sha != expected:
        raise ArtifactError(f"{path}: sha256 {sha[:16]}... does not match the manifest's {expected[:16]}...; the file "
                            f"was changed or damaged after export: re-export it (or restore the original)")
    return sha


def input_specs(model) -> list[TensorSpec]:
    """The graph inputs of a header as TensorSpecs (symbolic dimensions by their names)."""
    specs = []
    for value in model.graph.input:
        entry = _value_entry(value)
        if str(entry["dtype"]).startswith("onnx-type"):
            raise ArtifactError(f"{entry['name']}: input type {entry['dtype']} is none a t2l-fast graph takes; "
                                f"re-export the graph with `t2l export onnx`")
        dims = tuple(d if isinstance(d, str) else int(d) for d in entry["shape"])
        specs.append(TensorSpec(entry["name"], np.dtype(entry["dtype"]), dims))
    return specs
