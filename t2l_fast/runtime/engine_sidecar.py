"""The JSON sidecar of a TensorRT engine (ENGINE.json): what built it, for which GPUs, from which ONNX graph, with
which shapes and flags, and the engine's sha256. A loader checks it before the engine's bytes are deserialised,
because an engine is executable code bound to a TensorRT release and to GPU architectures.

Compatibility, per NVIDIA's documentation:
- TensorRT: an engine runs on the TensorRT release that built it; built version-compatible, on that release and
  later ones of the same major version, and on the next majors NVIDIA's support matrices list (8 -> 9, 10;
  10 -> 11). It runs on GPUs of the build GPU's compute capability; built with hardware compatibility level
  ampere+, on any GPU of compute capability 8.0 or newer.
- TensorRT for RTX: an engine runs only on the release that built it. Built ahead of time without targets, it runs
  on the RTX GPUs of its default set (compute capability 8.6, 8.9, 12.0, 12.1); with explicit targets, on those.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from .base import ArtifactError, TensorSpec
from .trt_support import FLAVOURS, RTX_DEFAULT_SET, version_tuple

FORMAT = "t2l-fast-trt-engine"
FORMAT_VERSION = 1
DEFAULT_RTX_TARGETS = "default"  # TensorRT for RTX's own portable set: RTX_DEFAULT_SET
AMPERE = (8, 0)
CROSS_MAJOR = {(8, 9), (8, 10), (10, 11)}  # (built by, runs on) for version-compatible engines


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def default_engine_path(onnx_path: Path, flavour: str) -> Path:
    """classifier.onnx -> classifier.trt.engine (TensorRT) or classifier.trtrtx.engine (TensorRT for RTX)."""
    return onnx_path.with_name(f"{onnx_path.stem}.{FLAVOURS[flavour].tag}.engine")


def read_sidecar(engine: Path) -> dict[str, object]:
    """The sidecar of `engine`, or an ArtifactError naming the file and the fix."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise ArtifactError(f"{engine}: no sidecar {path.name}, so nothing says which TensorRT, GPU and graph it is "
                            f"for; rebuild it with `t2l export trt` (engines are executable: never load one of "
                            f"unknown origin)")
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: corrupt JSON ({e}); rebuild the engine with `t2l export trt`") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a t2l-fast engine sidecar (format {FORMAT!r}); rebuild the engine")
    required = {"engine": ("file", "sha256"), "runtime": ("name", "version"), "target": ("compute_capabilities",),
                "onnx": ("file", "sha256", "graph"), "inputs": (), "outputs": (), "profile": (), "rebuild": ()}
    missing = [key for key, inner in required.items() if key not in sidecar or
               any(not isinstance(sidecar[key], dict) or k not in sidecar[key] for k in inner)]
    missing += _profile_problems(sidecar)
    if missing:
        raise ArtifactError(f"{path}: incomplete sidecar (no {', '.join(missing)}); rebuild the engine")
    return sidecar


def _profile_problems(sidecar: dict) -> list[str]:
    """What the sidecar lacks for its optimisation profile: a min/opt/max shape of whole numbers per input."""
    profile, inputs = sidecar.get("profile"), sidecar.get("inputs")
    if not isinstance(profile, dict) or not profile or not isinstance(inputs, list) or not inputs:
        return ["profile of its inputs"]
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in inputs]
    return [f"profile.{name} min/opt/max shapes" for name in names
            if not isinstance(profile.get(name), dict) or not _shapes(profile[name])]


def _shapes(limits: dict) -> bool:
    shapes = [limits.get(key) for key in ("min", "opt", "max")]
    return all(isinstance(shape, list) and shape and len(shape) == len(shapes[0]) and
               all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape) for shape in shapes)


def check_engine_bytes(engine: Path, sidecar: dict[str, object]) -> bytes:
    """The engine's bytes, if their sha256 is the sidecar's; else an ArtifactError (the file changed since it was
    built, or is not the one the sidecar describes)."""
    if not engine.is_file():
        raise ArtifactError(f"{engine}: no such engine file; build it with: {sidecar['rebuild']}")
    data = engine.read_bytes()
    if hashlib.sha256(data).hexdigest() != sidecar["engine"]["sha256"]:
        raise ArtifactError(f"{engine}: sha256 differs from its sidecar's: the engine changed since it was built "
                            f"(tampered, truncated or overwritten); refusing to load it. Rebuild: "
                            f"{sidecar['rebuild']}")
    return data


def parse_capability(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in str(text).split("."))
    except ValueError:
        raise ArtifactError(f"compute capability {text!r} is not M.m (e.g. 8.9)") from None
    return major, minor


def check_compatible(sidecar: dict[str, object], runtime: str, version: str, capability: str,
                     gpu_name: str = "") -> None:
    """Raise an ArtifactError with the rebuild command if an engine described by `sidecar` cannot run on TensorRT
    flavour `runtime` at `version`, on a GPU of compute capability `capability` ('M.m')."""
    built, target, rebuild = sidecar["runtime"], sidecar["target"], sidecar["rebuild"]
    where = sidecar["engine"]["file"]
    if built["name"] != runtime:
        rebuild = rebuild.replace(f"--runtime {built['name']}", f"--runtime {runtime}")
        raise ArtifactError(f"{where}: built by {built['name']}, but this process runs {runtime}; engines of the "
                            f"two are not interchangeable. Rebuild with {runtime}: {rebuild}")
    have, want = version_tuple(version), version_tuple(built["version"])
    if target.get("version_compatible") and runtime == "tensorrt":
        later = have >= want and (have[0] == want[0] or (want[0], have[0]) in CROSS_MAJOR)
        if not later:
            raise ArtifactError(f"{where}: built version-compatible by TensorRT {built['version']}, which runs on "
                                f"later {want[0]}.x releases (and the next majors NVIDIA lists), not on {version}; "
                                f"rebuild: {rebuild}")
    elif have[:3] != want[:3]:
        raise ArtifactError(f"{where}: built by {runtime} {built['version']}, loading with {version}: an engine is "
                            f"bound to the release that built it; rebuild: {rebuild}")
    have_cc = parse_capability(capability)
    gpu = f"{gpu_name} (compute capability {capability})" if gpu_name else f"a GPU of compute capability {capability}"
    covered, covers = _covers(target, have_cc)
    if not covered:
        raise ArtifactError(f"{where}: built for {covers}, not for {gpu}; rebuild on or for this GPU: {rebuild}")


def _covers(target: dict[str, object], capability: tuple[int, int]) -> tuple[bool, str]:
    """(whether `capability` is among the engine's targets, the targets in words)."""
    targets = target["compute_capabilities"]
    if targets == DEFAULT_RTX_TARGETS:
        return capability in RTX_DEFAULT_SET, "RTX GPUs of compute capability 8.6, 8.9, 12.0, 12.1 (the default set)"
    if target.get("hardware_compatibility") == "ampere+":
        return capability >= AMPERE, "GPUs of compute capability 8.0 and newer (hardware compatibility ampere+)"
    listed = [parse_capability(t) for t in targets]
    return capability in listed, "compute capability " + ", ".join(targets)


def io_specs(entries: Sequence[dict[str, object]]) -> tuple[TensorSpec, ...]:
    """TensorSpecs of the sidecar's inputs (or outputs)."""
    import numpy as np

    return tuple(TensorSpec(e["name"], np.dtype(e["dtype"]), tuple(e["shape"])) for e in entries)


def describe_target(sidecar: dict[str, object]) -> str:
    built, target = sidecar["runtime"], sidecar["target"]
    _, covers = _covers(target, (0, 0))
    flags = " version-compatible" if target.get("version_compatible") else ""
    return f"{built['name']} {built['version']}{flags}, for {covers}"


def check_built_from(sidecar: dict[str, object], onnx_sha256: str) -> None:
    """Raise if the engine was built from another ONNX file than the one with `onnx_sha256`."""
    if sidecar["onnx"]["sha256"] != onnx_sha256:
        raise ArtifactError(f"{sidecar['engine']['file']}: built from another {sidecar['onnx']['file']} (sha256 "
                            f"{sidecar['onnx']['sha256'][:12]}, the export's is {onnx_sha256[:12]}): the graph was "
                            f"re-exported since; rebuild: {sidecar['rebuild']}")


def check_frame_count(sidecar: dict[str, object], frames: int) -> None:
    """Raise if the engine's free frame axis was built for a range without `frames` (the range and the rebuild
    command in one line); engines of fixed-frame graphs (no "frames" entry) are left to the profile check."""
    built = sidecar.get("frames")
    if not built or built["min"] <= frames <= built["max"]:
        return
    wanted = f"{min(built['min'], frames)}:{built['opt']}:{max(built['max'], frames)}"
    rebuild = re.sub(r" --frames \S+", "", sidecar["rebuild"]) + f" --frames {wanted}"
    raise ArtifactError(f"{sidecar['engine']['file']}: built for {built['min']}..{built['max']} frames (tuned for "
                        f"{built['opt']}), not {frames}; rebuild: {rebuild}")
