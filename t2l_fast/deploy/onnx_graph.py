"""One graph to one ONNX file: dynamo export, metadata, fp16 conversion, checks, deterministic save.

Kept apart from what the graphs compute (graphs.py) and from the folder of graphs and its manifest (onnx_export.py).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from ..models.graphs import HEAD_SCOPE, INPUTS, OUTPUTS
from ..optional import require
from ..runtime.base import ArtifactError

MIN_OPSET, DEFAULT_OPSET = 17, 18  # LayerNormalization is an op from 17; torch's exporter emits 18 natively
# Protobuf cannot hold a message over 2 GiB: larger graphs keep their weights in one `<file>.data` beside them.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
FP16_MAX = 65504.0
FP16_SAFE_LIMIT = 1e4  # -inf masks and other non-fp16 constants become +-1e4: x + (-1e4) still masks, never overflows
FP32_OPS = ("LayerNormalization", "Softmax")  # kept in fp32 in fp16 graphs (besides the head)
_TORCH_NODE_METADATA = ("pkg.torch.onnx.", "namespace")  # the exporter's per-node notes (stack traces, local paths)


def onnx_module():
    return require("onnx", "onnx", "ONNX export")


@contextlib.contextmanager
def mha_fast_path_off():
    """nn.MultiheadAttention's fused fast path does not trace into ONNX ops we want; the plain path does."""
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


def export_torch_graph(graph: torch.nn.Module, kind: str, inputs: Mapping[str, torch.Tensor], *, opset: int,
                       batch_max: int, symbolic_frames: bool):
    """The ONNX ModelProto of `graph` (torch's dynamo exporter), batch symbolic (and frames, if asked)."""
    require("onnxscript", "onnx", "ONNX export (torch's exporter)")
    Dim = torch.export.Dim
    batch = Dim("batch", min=1, max=max(batch_max, 2))
    dims = {0: batch} | ({1: Dim("frames", min=1, max=256)} if symbolic_frames and kind != "text_encoder" else {})
    args = tuple(inputs[name] for name in INPUTS[kind])
    dynamic_shapes = {name: dims for name in INPUTS[kind]}
    with mha_fast_path_off(), torch.no_grad(), warnings.catch_warnings(), quiet_loggers("onnxscript", "torch.onnx"):
        warnings.simplefilter("ignore")  # the exporter's own deprecation and tracing notices
        program = torch.onnx.export(graph, args, dynamo=True, dynamic_shapes=dynamic_shapes, opset_version=opset,
                                    input_names=list(INPUTS[kind]), external_data=False, verbose=False)
    model = program.model_proto
    rename_outputs(model, OUTPUTS[kind])
    return model


@contextlib.contextmanager
def quiet_loggers(*names: str):
    """Loggers at ERROR inside the block (the exporter's optimiser logs every constant it does not fold)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def rename_outputs(model, names) -> None:
    """Give the graph outputs `names`. (Naming them at export can clash: torch names aten.embedding's output
    "embedding", and the exporter then emits two values of that name.) A clashing inner value is renamed first."""
    graph = model.graph
    for output, name in zip(graph.output, names):
        if output.name != name:
            _rename_value(graph, name, f"{name}_inner")
            _rename_value(graph, output.name, name)


def _rename_value(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]
    for value in list(graph.output) + list(graph.value_info) + list(graph.input) + list(graph.initializer):
        if value.name == old:
            value.name = new


def head_node_names(model) -> set[str]:
    """Names of the nodes torch exported from the `head` submodule (read from the exporter's name scopes)."""
    names = set()
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes" and prop.value.startswith(f"['', '{HEAD_SCOPE}'"):
                names.add(node.name)
    return names


def strip_exporter_notes(model) -> None:
    """Drop per-node stack traces and module paths: files depend on the inputs only, not on where code lives."""
    for node in model.graph.node:
        keep = [p for p in node.metadata_props if not p.key.startswith(_TORCH_NODE_METADATA)]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    model.doc_string = ""


def set_metadata(model, metadata: Mapping[str, object]) -> None:
    """Graph metadata_props: strings as they are, everything else as JSON."""
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)


# ------------------------------------------------------------------------------------------------ fp16
def to_fp16(model, keep_fp32_nodes: Iterable[str]):
    """fp16 weights and activations; LayerNorm, Softmax and `keep_fp32_nodes` (the head) stay fp32, inputs and
    outputs keep their types. Constants fp16 cannot hold (the text tower's -inf causal mask) become +-1e4 first."""
    from onnx import numpy_helper
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    for tensor in model.graph.initializer:
        if tensor.data_type == onnx_module().TensorProto.FLOAT:
            values = numpy_helper.to_array(tensor)
            outside = ~np.isfinite(values) | (np.abs(values) > FP16_MAX)
            if outside.any():
                clamped = np.where(outside, np.sign(values) * FP16_SAFE_LIMIT, values).astype(np.float32)
                tensor.CopyFrom(numpy_helper.from_array(clamped, tensor.name))
    del model.graph.value_info[:]  # the exporter's fp32 types of inner values; the converter infers its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-tensor notes about values rounded to fp16's range
        converted = convert_float_to_float16(model, keep_io_types=True,
                                             op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(FP32_OPS),
                                             node_block_list=sorted(keep_fp32_nodes))
    sort_topologically(converted.graph)  # the converter appends its Cast nodes at the end
    return converted


def sort_topologically(graph) -> None:
    """Reorder nodes so each comes after the producers of its inputs, otherwise keeping their order (Kahn's
    algorithm with the original position as priority: the result is deterministic)."""
    import heapq

    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    waiting_on = [{producer[v] for v in node.input if v in producer} for node in nodes]
    consumers: dict[int, list[int]] = {}
    for i, deps in enumerate(waiting_on):
        for d in deps:
            consumers.setdefault(d, []).append(i)
    ready = [i for i, deps in enumerate(waiting_on) if not deps]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for c in consumers.get(i, []):
            waiting_on[c].discard(i)
            if not waiting_on[c]:
                heapq.heappush(ready, c)
    if len(order) != len(nodes):
        raise ArtifactError("the graph has a cycle; it cannot be sorted")
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def lint_fp16(model, head_nodes: set[str]) -> list[str]:
    """Problems of an fp16 graph: non-finite fp16 constants, fp32-only ops or the head running in fp16."""
    onnx = onnx_module()
    from onnx import numpy_helper

    problems = []
    constants = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant"
                                                  for a in n.attribute if a.name == "value"]
    for tensor in constants:
        if tensor.data_type == onnx.TensorProto.FLOAT16 and not np.isfinite(numpy_helper.to_array(tensor)).all():
            problems.append(f"fp16 constant {tensor.name!r} holds inf or NaN")
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types |= {t.name: t.data_type for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in FP32_OPS or node.name in head_nodes:
            float_inputs = [n for n in node.input if types.get(n) in (onnx.TensorProto.FLOAT16,)]
            if float_inputs:
                problems.append(f"{node.op_type} node {node.name!r} reads fp16 {float_inputs}; it must run in fp32")
    return problems


# ------------------------------------------------------------------------------------------------ files
def save_model(model, path: Path, external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> list[Path]:
    """Write `path` (and `<name>.data` beside it when the graph is too large for one protobuf); the files written."""
    onnx = onnx_module()
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    if model.ByteSize() > external_data_threshold:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        return [path, data]
    onnx.save_model(model, str(path))
    return [path]


def check_graph_file(path: Path) -> None:
    """onnx.checker's full check (with shape inference); an ArtifactError naming the file on failure."""
    onnx = onnx_module()
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ArtifactError(f"{path}: the exported graph fails onnx.checker ({str(e).splitlines()[0]})") from None


def input_dims(model, name: str) -> list[object]:
    """Dims of graph input `name`: ints where fixed, names where symbolic, None where unknown."""
    for value in model.graph.input:
        if value.name == name:
            return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
                    for d in value.type.tensor_type.shape.dim]
    raise ArtifactError(f"graph has no input {name!r}")


def check_symbolic_dims(model, kind: str, symbolic_frames: bool, path: Path) -> None:
    """The batch axis (and frames, where asked) of every input must be symbolic in the file."""
    for name in INPUTS[kind]:
        dims = input_dims(model, name)
        axes = [0] + ([1] if symbolic_frames and kind != "text_encoder" else [])
        fixed = [axis for axis in axes if not isinstance(dims[axis], str)]
        if fixed:
            raise ArtifactError(f"{path}: input {name!r} has dims {dims}: axis {fixed} was specialised by the "
                                f"exporter instead of staying symbolic; export with a batch of 2 or more")


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
