"""`--backend auto`: the fastest backend that is installed, runs on this device and passes its gates for this
export, from a short measurement taken once per machine and cached beside the export (backend_choice.json).

The measurement checks each candidate's video encoder on two synthetic clips of the export's own shape in one batch
against the fp32 graph on the CPU (fp32 backends within FP32_GATE, the others within REDUCED_GATE), then times it
on one clip (a warm-up call, then the fastest of CALLS timed calls: the one least disturbed by other work). INT8
backends must also have passed the agreement gate recorded in the manifest when their graphs were written. The cache
is keyed by the machine (CPU model, flags, cores, GPU), the libraries' versions and the export's files; anything
else, or a file that is not a record, means measuring again.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InputFileError, T2LError
from ..io import atomic_write, file_sha256
from ..optional import installed, tensorrt_version
from .base import timed_calls
from .bundle import MANIFEST, ExportedModel
from .compare import FP32_GATE, REDUCED_GATE, compare_outputs
from .export_runners import BACKENDS, backend, export_runner, on_gpu, unavailable_reason
from .machine_id import machine_identity

CHOICE_FILE = "backend_choice.json"
FORMAT = "t2l-fast-backend-choice"
CALLS = 3  # timed calls per backend, after one warm-up call
MEASURED_GRAPH = "video_encoder"


@dataclass(frozen=True)
class Choice:
    backend: str
    device: str
    line: str  # which backend, and why, in one line
    record: dict


def default_device(device: str | None) -> str:
    """The device auto chooses for: the one given, else the first CUDA GPU when torch sees one, else the CPU."""
    if device:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def cache_key(bundle: ExportedModel, device: str, measured: dict | None = None) -> dict[str, object]:
    """What a measurement depends on: machine, device, libraries, the export's files and what is timed (`measured`;
    default: auto's measurement)."""
    from .. import __version__

    files = {name: _stat(bundle.directory / name) for name in sorted(
        {g["file"] for g in bundle.graphs.values()} | {p.name for p in bundle.directory.glob("*.engine")})}
    spec = bundle.input_spec
    versions = {"t2l-fast": __version__, "onnxruntime": installed("onnxruntime") or installed("onnxruntime-gpu"),
                "openvino": installed("openvino"), "tensorrt": tensorrt_version()}
    return {"machine": machine_identity(_gpu_index(device)), "device": device, "versions": versions,
            "export": {"manifest_sha256": file_sha256(bundle.directory / MANIFEST), "files": files},
            "measured": measured or {"graph": MEASURED_GRAPH, "calls": CALLS, "parity_batch": 2,  # records of the
                                     # one-clip parity check measure again
                                     "input": [1, spec.frames, 3, spec.image_size, spec.image_size]}}


def _stat(path: Path) -> list[int] | None:
    """[size, mtime in ns] of a file (None when missing): a changed graph or engine means measuring again."""
    try:
        facts = path.stat()
    except OSError:
        return None
    return [facts.st_size, facts.st_mtime_ns]


def _gpu_index(device: str) -> int | None:
    return int(device.partition(":")[2] or 0) if on_gpu(device) else None


# ----------------------------------------------------------------------------------------------- measuring
def measurement_clips(bundle: ExportedModel) -> np.ndarray:
    """uint8 [2, T, 3, S, S]: two synthetic clips (moving shapes, the test data's kind) of the export's shape; parity
    is checked on both at once (a backend that computes only a batch's first clip fails), speed on the first."""
    from ..data.synthetic import synthetic_clip

    spec, rng = bundle.input_spec, np.random.default_rng(0)
    clips = [synthetic_clip(rng, action, spec.frames, spec.image_size, spec.image_size) for action in (0, 1)]
    return np.ascontiguousarray(np.stack(clips).transpose(0, 1, 4, 2, 3))  # [2, T, H, W, 3] -> [2, T, 3, H, W]


def measure_backends(bundle: ExportedModel, names: Sequence[str], device: str) -> dict[str, dict]:
    """Per backend of `names`: {"ms_per_clip", "parity", "passed", "why"} from a warm-up and the best of CALLS calls of
    its video encoder, checked against the fp32 graph on the CPU (ONNX Runtime, else OpenVINO)."""
    frames = measurement_clips(bundle)
    reference_name = next((n for n in ("onnx", "openvino") if unavailable_reason(n, bundle, "cpu") is None), None)
    if reference_name is None:
        raise T2LError("--backend auto needs ONNX Runtime or OpenVINO to check backends against: pip install "
                       "'t2l-fast[onnx]'")
    with export_runner(bundle, reference_name, MEASURED_GRAPH, device="cpu") as runner:
        reference = runner.infer({"frames": frames})
    return {name: _measure(bundle, name, device, frames, reference) for name in names}


def _measure(bundle: ExportedModel, name: str, device: str, frames: np.ndarray, reference: dict) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what a warning would say (no bf16 here, CPU nodes) is recorded below
            with export_runner(bundle, name, MEASURED_GRAPH, device=device) as runner:
                output = runner.infer({"frames": frames})  # parity: both clips of one batch
                seconds = timed_calls(runner, {"frames": frames[:1]}, CALLS)  # after a warm-up of the timed shape
                in_use = getattr(runner, "precision_in_use", None)
    except (T2LError, RuntimeError, OSError) as e:
        return {"ms_per_clip": None, "parity": None, "passed": False, "why": str(e).splitlines()[0]}
    gate = FP32_GATE if backend(name).precision == "fp32" else REDUCED_GATE
    comparison = compare_outputs(output, reference, {"embedding": gate})
    result = {"ms_per_clip": round(1000 * min(seconds), 3), "parity": comparison.figures["embedding"],
              "passed": comparison.passed, "why": None}
    if not comparison.passed:
        result["why"] = f"fails parity with fp32 ({comparison.failures['embedding']})"
    elif backend(name).precision == "bf16" and in_use != "bf16":
        result |= {"passed": False, "why": f"no bf16 on this CPU (OpenVINO runs it in {in_use})"}
    return result


# ----------------------------------------------------------------------------------------------- the record
def read_choice(path: Path, check: Callable[[dict], None] | None = None, what: str = "backend choice"
                ) -> dict | None:
    """The record in `path`, or None when there is none; a file that `check` (default: a backend choice's) does not
    accept is warned about (and measured again), never trusted."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        (check or _check_record)(record)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as e:
        warnings.warn(f"{path}: not a {what} record ({type(e).__name__}: {e}); ignored, measuring again",
                      RuntimeWarning, stacklevel=3)
        return None
    return record


def _check_record(record) -> None:
    """Raise InputFileError (a ValueError) unless `record` has the format, a key and results of known backends
    with sane figures."""
    if record.get("format") != FORMAT or not isinstance(record["key"], dict):
        raise InputFileError(f"format is not {FORMAT!r}")
    check_time(record)
    for name, result in record["results"].items():
        milliseconds = result["ms_per_clip"]
        if name not in BACKENDS or not isinstance(result["passed"], bool) or (milliseconds is not None and not (
                isinstance(milliseconds, (int, float)) and math.isfinite(milliseconds) and milliseconds > 0)):
            raise InputFileError(f"result {name!r} is not a measurement of a known backend")


def check_time(record: dict) -> None:
    """Raise ValueError unless the record's measured_at is an ISO time (it is printed)."""
    if not isinstance(record["measured_at"], str):
        raise InputFileError("measured_at is not a time")
    datetime.fromisoformat(record["measured_at"])


def write_choice(path: Path, record: dict) -> str:
    """Write the record atomically beside the export; where it went, or why not."""
    if not os.access(path.parent, os.W_OK):
        return f"not cached: {path.parent} is read-only"
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
    return f"cached in {path}"


def changed(old: dict, new: dict) -> str:
    """What differs between two cache keys, for the one-line reason."""
    parts = [part for part in ("machine", "device", "versions", "export", "measured") if old.get(part) != new[part]]
    return f"{' and '.join(parts)} changed"


# ----------------------------------------------------------------------------------------------- choosing
def choose_backend(bundle: ExportedModel, device: str | None = None,
                   measure: Callable[[ExportedModel, Sequence[str], str], dict[str, dict]] = measure_backends
                   ) -> Choice:
    """The fastest backend for this export here, measured once and cached; one line says which and why."""
    device = default_device(device)
    key, path = cache_key(bundle, device), bundle.directory / CHOICE_FILE
    excluded = {name: reason for name in BACKENDS if (reason := unavailable_reason(name, bundle, device))}
    record = read_choice(path)
    if record is not None and record["key"] == key:
        chosen = _fastest(record, excluded)  # availability and the INT8 gate are checked again on a cached record
        how = f"measured {record['measured_at']} on this machine ({path})"
    else:
        why = changed(record["key"], key) if record else "first run here"
        results = measure(bundle, [name for name in BACKENDS if name not in excluded], device)
        record = {"format": FORMAT, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "key": key, "results": results, "excluded": excluded}
        chosen = record["chosen"] = _fastest(record, excluded)
        how = f"measured now ({why}); {write_choice(path, record)}"
    if chosen is None:
        raise T2LError(f"--backend auto: no backend can run {bundle.directory} here: {_reasons(record, excluded)}")
    return Choice(chosen, device, _line(record, chosen, excluded, how), record)


def _fastest(record: dict, excluded: dict[str, str]) -> str | None:
    passed = {name: r["ms_per_clip"] for name, r in record["results"].items()
              if r["passed"] and r["ms_per_clip"] is not None and name not in excluded}
    return min(passed, key=passed.get) if passed else None


def _reasons(record: dict, excluded: dict[str, str]) -> str:
    """Why each backend that is not used is not, names with the same reason together (its first clause, without a
    leading file or folder)."""
    failed = {name: r["why"] for name, r in record["results"].items() if not r["passed"] and name not in excluded}
    grouped: dict[str, list[str]] = {}
    for name, why in {**excluded, **failed}.items():
        where, colon, what = why.split("; ")[0].partition(": ")
        grouped.setdefault(what if colon and "/" in where else where + colon + what, []).append(name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in grouped.items())


def _line(record: dict, chosen: str, excluded: dict[str, str], how: str) -> str:
    timed = sorted((r["ms_per_clip"], name) for name, r in record["results"].items()
                   if r["passed"] and r["ms_per_clip"] is not None and name not in excluded)
    figures = ", ".join(f"{name} {ms:g}" for ms, name in timed)
    others = _reasons(record, excluded)
    return (f"backend auto: {chosen} ({backend(chosen).describe()} on {record['key']['device']}), the fastest that "
            f"passed its gates: {figures} ms per clip {record['key']['measured']['input']}"
            + (f"; not used: {others}" if others else "") + f"; {how}")
