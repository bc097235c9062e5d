"""The runner contract: named, checked inputs; numpy arrays in and out."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import T2LError

Dim = int | str  # a fixed size, or the name of a symbolic one ("batch")


class ArtifactError(T2LError, ValueError):
    """An exported graph or engine is missing, corrupt, tampered with or does not fit (the message names the file
    and the fix)."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype
    shape: tuple[Dim, ...]  # symbolic dimensions are named strings

    def describe(self) -> str:
        return f"{self.name} {np.dtype(self.dtype).name} [{', '.join(str(d) for d in self.shape)}]"


class Runner:
    """Base of TorchRunner, OrtRunner and the TensorRT runner: `with runner: runner.infer({name: array})`.

    Subclasses set `name` (what it runs, for messages), `input_specs` and `output_names` on activation and
    implement `_infer`.
    """

    name: str = "runner"
    input_specs: Sequence[TensorSpec] = ()
    output_names: Sequence[str] = ()
    header = None  # the ONNX graph's header (ModelProto without weights), for runners of an ONNX file

    def activate(self) -> None:
        """Load what is needed to run (a session, an engine)."""

    def deactivate(self) -> None:
        """Release it."""

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def metadata(self) -> dict[str, str]:
        """The graph's metadata_props (model name, frames, image size, ...); empty without an ONNX header."""
        return {p.key: p.value for p in self.header.metadata_props} if self.header is not None else {}

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on `feed` after checking its names, dtypes and ranks/sizes against `input_specs`."""
        arrays = check_feed(self.name, self.input_specs, feed)
        return self._infer(arrays)

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def check_feed(where: str, specs: Sequence[TensorSpec], feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`feed` as contiguous numpy arrays, or an ArtifactError naming the input, what was given and what fits."""
    expected = {s.name: s for s in specs}
    missing, unknown = sorted(set(expected) - set(feed)), sorted(set(feed) - set(expected))
    if missing or unknown:
        raise ArtifactError(f"{where}: inputs {sorted(feed)} do not match the graph's "
                            f"({', '.join(s.describe() for s in specs)}); missing {missing}, unknown {unknown}")
    arrays = {}
    for name, spec in expected.items():
        value = feed[name]
        array = value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else np.asarray(value)
        if array.dtype != spec.dtype:
            raise ArtifactError(f"{where}: input {name!r} is {array.dtype}, the graph takes {spec.describe()}; "
                                f"convert it (e.g. uint8 frames straight from the loader, int64 token ids)")
        fixed = [(i, d) for i, d in enumerate(spec.shape) if isinstance(d, int)]
        if array.ndim != len(spec.shape) or any(array.shape[i] != d for i, d in fixed):
            raise ArtifactError(f"{where}: input {name!r} has shape {list(array.shape)}, the graph takes "
                                f"{spec.describe()} (named dimensions are free)")
        if 0 in array.shape:
            raise ArtifactError(f"{where}: input {name!r} is empty (shape {list(array.shape)})")
        arrays[name] = np.ascontiguousarray(array)
    return arrays


def cache_folder(graph: Path, name: str, enabled: bool = True) -> Path | None:
    """Folder `name` beside `graph` for a runtime's compiled or optimised copies, when caching is on and the graph's
    folder is writable (a cache is never written anywhere else); None otherwise."""
    if not enabled or not os.access(graph.parent, os.W_OK):
        return None
    directory = graph.parent / name
    directory.mkdir(exist_ok=True)
    return directory


def timed_calls(runner, feed: Mapping[str, np.ndarray], calls: int) -> list[float]:
    """Seconds of each of `calls` calls of runner.infer(feed), after one untimed warm-up call."""
    runner.infer(feed)
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        runner.infer(feed)
        seconds.append(time.perf_counter() - started)
    return seconds
