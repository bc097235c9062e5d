"""The Triton Python-backend model `t2l serve` loads: one graph of an export folder on a runner of the runner
factory (runtime/export_runners.py), inside Triton's Python-backend stub process (one process per model). Triton's
dynamic batcher hands it several requests at once; each is checked alone (a bad one gets its own error response),
the good ones run together, in parts of at most the server's run batch, and their outputs are split back.
"""
from __future__ import annotations

import ctypes
import json
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import BackendError, T2LError
from ..runtime.base import check_feed

# DLPack's name of a consumed capsule; the stub marks the capsules it takes "used_dlpack" instead
CONSUMED, STUB_CONSUMED = b"used_dltensor", b"used_dlpack"
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_set_name = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_SetName", ctypes.pythonapi))


class RequestError(T2LError):
    """A request the model refuses (the message goes back to the client)."""


def check_request(runner, feed: Mapping[str, np.ndarray], max_frames: int | None) -> dict[str, np.ndarray]:
    """One request's inputs, checked against the graph (names, dtypes, fixed sizes) and the frame limit."""
    arrays = check_feed(runner.name, runner.input_specs, feed)
    frames = arrays.get("frames")
    if frames is not None and max_frames and frames.shape[1] > max_frames:
        raise RequestError(f"{frames.shape[1]} frames per clip; this server takes at most {max_frames}")
    return arrays


def run_batched(runner, feeds: Sequence[dict | Exception], run_batch: int | None = None) -> list[dict | str]:
    """Outputs of each checked feed (the good ones concatenated on the batch axis, run in parts of `run_batch`, all
    at once when None, split back), or the error message of a feed that is an exception, or of the batch when it
    failed."""
    good = [i for i, feed in enumerate(feeds) if not isinstance(feed, Exception)]
    results: list[dict | str] = [str(feed) for feed in feeds]
    if not good:
        return results
    names = list(feeds[good[0]])
    sizes = [len(feeds[i][names[0]]) for i in good]
    try:
        batch = {n: np.concatenate([feeds[i][n] for i in good]) for n in names}  # [sum(B_i), ...]
        step = run_batch or len(batch[names[0]])
        parts = [_batch_major(runner.infer({n: value[start:start + step] for n, value in batch.items()}),
                              min(step, sum(sizes) - start)) for start in range(0, sum(sizes), step)]
        outputs = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    except Exception as e:  # noqa: BLE001 - a failed batch answers each of its requests, the model lives on
        return [results[i] if i not in good else f"inference failed: {type(e).__name__}: {e}"
                for i in range(len(feeds))]
    bounds = np.cumsum([0] + sizes)
    for k, i in enumerate(good):
        results[i] = {name: value[bounds[k]:bounds[k + 1]] for name, value in outputs.items()}
    return results


def _batch_major(outputs: dict, size: int) -> dict:
    """`outputs` of a call on `size` items, checked to be one row per item (they are split back by rows)."""
    for name, value in outputs.items():
        if np.ndim(value) == 0 or len(value) != size:
            raise BackendError(f"output {name!r} has shape {np.shape(value)}, not one row per item of {size}")
    return outputs


def output_tensor(pb_utils, name: str, array: np.ndarray):
    """`array` as the stub's output tensor `name`, through DLPack (the stub's Tensor(name, array) reads numpy 1's
    dtype layout: under numpy 2 the output leaves empty). The stub owns the tensor it took (it calls its deleter) but
    renames the capsule "used_dlpack", which numpy's capsule destructor does not know as consumed: it would log a
    `PyCapsule_GetPointer called with incorrect name` traceback per output. Renamed to DLPack's consumed name, the
    destructor leaves it alone."""
    capsule = np.ascontiguousarray(array).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    if _capsule_is_valid(capsule, STUB_CONSUMED):
        _capsule_set_name(capsule, CONSUMED)  # keeps a pointer to the bytes: CONSUMED, a module constant
    return tensor


class TritonPythonModel:
    """Triton's Python-backend entry points (initialize, execute, finalize)."""

    def initialize(self, args: dict) -> None:
        from ..runtime.bundle import ExportedModel
        from ..runtime.export_runners import export_runner

        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        bundle = ExportedModel(params["t2l_export_dir"])
        self.context = export_runner(bundle, params["t2l_backend"], params["t2l_graph"],
                                     device=params.get("t2l_device", "cpu"))
        self.runner = self.context.__enter__()
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]
        self.max_frames = int(params.get("t2l_max_frames") or 0) or None
        self.run_batch = max(0, int(params.get("t2l_run_batch") or 0)) or None  # 0 or less: whole batches

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils  # provided by the stub process

        feeds = []
        for request in requests:
            try:
                tensors = {name: pb_utils.get_input_tensor_by_name(request, name) for name in self.inputs}
                # DLPack both ways: the stub's as_numpy() reads numpy 1's dtype layout (under numpy 2 every clip of a
                # request is read as the same values); outputs: output_tensor
                arrays = {name: np.from_dlpack(tensor) for name, tensor in tensors.items() if tensor is not None}
                feeds.append(check_request(self.runner, arrays,
                                           self.max_frames))
            except T2LError as e:
                feeds.append(e)
        responses = []
        for result in run_batched(self.runner, feeds, self.run_batch):
            if isinstance(result, str):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(result)))
                continue
            responses.append(pb_utils.InferenceResponse([
                output_tensor(pb_utils, name, result[name]) for name in self.outputs]))
        return responses

    def finalize(self) -> None:
        self.context.__exit__(None, None, None)
