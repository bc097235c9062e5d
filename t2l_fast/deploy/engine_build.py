"""TensorRT engines from exported ONNX graphs, with TensorRT or TensorRT for RTX (`t2l export trt`).

Networks are strongly typed: the precision is the graph's (an fp16 graph, or an INT8 graph with explicit Q/DQ), so
no implicit-precision builder flag is set (TensorRT 10 deprecates them with strong typing; TensorRT for RTX has
none). TF32 is off, so fp32 layers compute in fp32. The optimisation profile ranges the batch and a free frame axis
(ViFi-CLIP, CLIP; the model's T unless --frames gives MIN:OPT:MAX); T2L's frame axis is fixed at its trained T.
Profiling verbosity is DETAILED, so the engine inspector shows tactics and what Myelin fused (runtime/engine_layers).
Every engine gets a sidecar (runtime/engine_sidecar).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import T2LError, UnsupportedOptionError
from ..io import file_sha256
from ..runtime.engine_sidecar import DEFAULT_RTX_TARGETS, FORMAT, FORMAT_VERSION, default_engine_path, sidecar_path
from ..runtime.graph_header import GraphFacts, read_graph_facts
from ..runtime.trt_support import FLAVOURS, TensorRT, current_gpu, load_tensorrt

RTX_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")  # ComputeCapability.SM75 ... SM121



class EngineBuildError(T2LError):
    """The ONNX graph did not parse or build in TensorRT (the message names the nodes and the fix)."""


@dataclass(frozen=True)
class BuildOptions:
    min_batch: int = 1
    opt_batch: int | None = None  # the batch the kernels are tuned for; default min(8, max_batch)
    max_batch: int = 32
    workspace_gb: float = 4.0  # builder scratch memory limit
    timing_cache: Path | None = None  # TensorRT only: reuse kernel timings across builds
    version_compatible: bool = False  # TensorRT only: runs on later 10.x releases (lean runtime operators only)
    hardware_compatible: bool = False  # TensorRT only: runs on any GPU of compute capability 8.0+ (ampere+)
    compute_capabilities: tuple[str, ...] = ()  # TensorRT for RTX only: targets ("8.9", "12.0"); () = its default
    runtime: str = "auto"  # tensorrt, tensorrt-rtx or auto
    frames: tuple[int, int, int] | None = None  # (min, opt, max) of a free frame axis; None: the export's T

    @property
    def batches(self) -> tuple[int, int, int]:
        """(min, opt, max) batch of the profile."""
        opt = self.opt_batch if self.opt_batch is not None else max(self.min_batch, min(8, self.max_batch))
        return self.min_batch, opt, self.max_batch

    def validate(self, flavour: str | None = None) -> None:
        """Raise on a bad profile, or (given the flavour) on options that flavour does not have."""
        low, opt, high = self.batches
        if not 1 <= low <= opt <= high:
            raise T2LError(f"batch profile {low}/{opt}/{high} (min/opt/max): need 1 <= min-batch <= opt-batch <= "
                           f"max-batch")
        if self.frames is not None and not 1 <= self.frames[0] <= self.frames[1] <= self.frames[2]:
            raise T2LError(f"--frames {format_frames(self.frames)}: need 1 <= MIN <= OPT <= MAX (e.g. 8:16:32)")
        if self.workspace_gb <= 0:
            raise T2LError(f"--workspace {self.workspace_gb}: give a positive number of GB")
        if flavour == "tensorrt-rtx":
            unsupported = [name for name, given in (("--timing-cache", self.timing_cache),
                                                   ("--version-compatible", self.version_compatible),
                                                   ("--hardware-compatible", self.hardware_compatible)) if given]
            if unsupported:
                raise UnsupportedOptionError(
                    f"{', '.join(unsupported)} do not apply to TensorRT for RTX: its engines are bound to their "
                    f"release, run on the RTX GPUs of compute capability 8.6, 8.9, 12.0, 12.1 by default (or the "
                    f"ones named with --compute-capability), and its timing cache is deprecated; drop the option(s)")
            wrong = [c for c in self.compute_capabilities if c not in RTX_CAPABILITIES]
            if wrong:
                raise T2LError(f"--compute-capability {', '.join(wrong)}: TensorRT for RTX targets "
                               f"{', '.join(RTX_CAPABILITIES)}")
        elif flavour == "tensorrt" and self.compute_capabilities:
            raise UnsupportedOptionError("--compute-capability is for TensorRT for RTX (ahead-of-time targets); "
                                         "TensorRT builds for the GPU it runs on (add --hardware-compatible for "
                                         "any GPU of compute capability 8.0+)")


def parse_frames(text: str) -> tuple[int, int, int]:
    """`--frames T` or `--frames MIN:OPT:MAX` as (min, opt, max)."""
    parts = text.split(":")
    if len(parts) not in (1, 3) or not all(part.isdigit() for part in parts):
        raise T2LError(f"--frames {text!r}: give a frame count T or MIN:OPT:MAX (e.g. 8:16:32)")
    counts = [int(part) for part in parts]
    return (counts[0],) * 3 if len(counts) == 1 else (counts[0], counts[1], counts[2])


def format_frames(frames: tuple[int, int, int]) -> str:
    """(8, 16, 32) -> "8:16:32"; (8, 8, 8) -> "8" (the form --frames takes)."""
    return str(frames[0]) if len(set(frames)) == 1 else ":".join(map(str, frames))


def frame_axis_is_free(facts: GraphFacts) -> bool:
    """Whether an input of the graph has a free axis besides the batch (the frame axis of ViFi-CLIP and CLIP)."""
    return any(not isinstance(d, int) for entry in facts.inputs for d in entry["shape"][1:])


def frame_range(facts: GraphFacts, options: BuildOptions) -> tuple[int, int, int] | None:
    """(min, opt, max) frames of the graph's free frame axis (the export's T unless options.frames), or None for a
    graph without one; refuses --frames for a video graph whose frame axis is fixed."""
    if not frame_axis_is_free(facts):
        if options.frames is not None and facts.kind != "text_encoder":  # text graphs have no frame axis to range
            raise UnsupportedOptionError(
                f"--frames {format_frames(options.frames)}: {facts.path} ({facts.model}) has its frame axis fixed "
                f"at {facts.frames or 'its exported size'} (T2L runs at the frame count it was trained with); "
                f"drop --frames")
        return None
    if options.frames is not None:
        return options.frames
    if facts.frames is None:
        raise EngineBuildError(f"{facts.path}: free axes besides the batch and no t2l_fast.frames metadata to fix "
                               f"them; export it with `t2l export onnx`, or give --frames MIN:OPT:MAX")
    return (facts.frames,) * 3


def profile_shapes(facts: GraphFacts, options: BuildOptions) -> dict[str, dict[str, list[int]]]:
    """{input: {"min"|"opt"|"max": shape}}: batch (the first axis) from the options, a free frame axis over
    frame_range()."""
    frames = frame_range(facts, options)
    profile = {}
    for entry in facts.inputs:
        shape = entry["shape"]
        if isinstance(shape[0], int):
            raise EngineBuildError(f"{facts.path}: input {entry['name']} has a fixed batch {shape[0]}; re-export it "
                                   f"with `t2l export onnx` (symbolic batch)")
        profile[entry["name"]] = {key: [batch] + [d if isinstance(d, int) else count for d in shape[1:]]
                                  for key, batch, count in zip(("min", "opt", "max"), options.batches,
                                                               frames or (None,) * 3)}
    return profile


# ------------------------------------------------------------------------------------------- equivalent commands
def _shape_flags(profile: dict[str, dict[str, list[int]]]) -> list[str]:
    return [f"--{key}Shapes=" + ",".join(f"{name}:{'x'.join(map(str, shapes[key]))}" for name, shapes in
                                         profile.items()) for key in ("min", "opt", "max")]


def cli_command(flavour: str, onnx_path: Path, engine: Path, profile, options: BuildOptions,
                precision: str = "fp32") -> list[str]:
    """NVIDIA's command-line builder doing the same build: trtexec (TensorRT) or tensorrt_rtx (TensorRT for RTX).
    An fp16 trtexec build also dumps its layers (ENGINE.layers.json), which show whether attention was fused."""
    command = [FLAVOURS[flavour].cli, f"--onnx={onnx_path}", f"--saveEngine={engine}", *_shape_flags(profile)]
    if flavour == "tensorrt":
        command += ["--stronglyTyped", "--noTF32", f"--memPoolSize=workspace:{round(options.workspace_gb * 1024)}",
                    "--profilingVerbosity=detailed"]
        if precision == "fp16":
            command += ["--dumpLayerInfo", f"--exportLayerInfo={engine.with_name(engine.name + '.layers.json')}"]
        if options.timing_cache:
            command.append(f"--timingCacheFile={options.timing_cache}")
        if options.version_compatible:
            command.append("--versionCompatible")
        if options.hardware_compatible:
            command.append("--hardwareCompatibilityLevel=ampere+")
    elif options.compute_capabilities:
        command.append("--computeCapabilities=" + ",".join(c.replace(".", "") for c in options.compute_capabilities))
    return command + ["--skipInference"]


def rebuild_command(onnx_path: Path, engine: Path, flavour: str, options: BuildOptions) -> str:
    """The `t2l export trt` command that builds this engine again."""
    low, opt, high = options.batches
    words = ["t2l", "export", "trt", "--onnx", str(onnx_path), "--out", str(engine), "--runtime", flavour,
             "--min-batch", str(low), "--opt-batch", str(opt), "--max-batch", str(high)]
    words += [w for flag, on in (("--version-compatible", options.version_compatible),
                                 ("--hardware-compatible", options.hardware_compatible)) if on for w in (flag,)]
    words += [w for c in options.compute_capabilities for w in ("--compute-capability", c)]
    if options.frames is not None:
        words += ["--frames", format_frames(options.frames)]
    return shlex.join(words)


# ------------------------------------------------------------------------------------------- building
def build_engine(onnx_path: Path, options: BuildOptions = BuildOptions(), out: Path | None = None, *,
                 use_cli: bool = False, log: Callable[[str], None] = print) -> dict[str, object]:
    """Build one engine from `onnx_path` (Python API, or NVIDIA's CLI with use_cli), write it and its sidecar;
    return the sidecar."""
    facts = read_graph_facts(Path(onnx_path))
    if facts.dynamic_int8:
        raise EngineBuildError(f"{facts.path}: a dynamic INT8 graph (DynamicQuantizeLinear/MatMulInteger) is for "
                               f"ONNX Runtime on CPUs; TensorRT takes INT8 as explicit Q/DQ: export with "
                               f"--precision int8 --int8-mode static")
    tensorrt = load_tensorrt(options.runtime)
    flavour = tensorrt.flavour.name
    options.validate(flavour)
    engine = Path(out) if out else default_engine_path(facts.path, flavour)
    if engine.resolve() == facts.path.resolve():
        raise EngineBuildError(f"--out {engine}: that is the ONNX graph being built; give the engine another path")
    profile = profile_shapes(facts, options)
    engine.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # built into a partial file and renamed over the engine: an interrupted or failed build (a full disk) leaves the
    # old engine whole
    partial = engine.with_name(f".{engine.name}.partial")
    try:
        if use_cli:
            cli_version = _build_with_cli(flavour, facts, partial, profile, options, log)
            if cli_version and cli_version != tensorrt.version:
                log(f"note: {FLAVOURS[flavour].cli} reports TensorRT {cli_version}, the Python module "
                    f"{tensorrt.version}; the sidecar records {cli_version}")
                tensorrt = TensorRT(tensorrt.flavour, tensorrt.trt, cli_version)
        else:
            partial.write_bytes(_build_with_api(tensorrt, facts, profile, options))
        os.replace(partial, engine)
        layers = partial.with_name(partial.name + ".layers.json")  # NVIDIA's CLI's --exportLayerInfo, if asked
        if layers.is_file():
            os.replace(layers, engine.with_name(engine.name + ".layers.json"))
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.time() - started
    sidecar = _sidecar(tensorrt, facts, engine, profile, options, seconds, "cli" if use_cli else "python")
    write_sidecar(engine, sidecar)
    frames = f", frames {format_frames(tuple(sidecar['frames'].values()))}" if sidecar["frames"] else ""
    log(f"{engine} ({engine.stat().st_size / 1e6:.1f} MB, {facts.precision}, batch {options.min_batch}-"
        f"{options.max_batch}{frames}) built by {flavour} {tensorrt.version} in {seconds:.1f} s")
    return sidecar


def write_sidecar(engine: Path, sidecar: dict[str, object]) -> Path:
    """Write the sidecar of `engine` beside it (via a temporary file, so a reader never sees half of it)."""
    path = sidecar_path(engine)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(sidecar, indent=2) + "\n")
    temporary.replace(path)
    return path


def collecting_logger(trt):
    """A TensorRT logger that keeps errors for the exception message and prints nothing."""

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, message):
            harmless = "Thread context has not been set" in message  # TensorRT for RTX's notice at start-up
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR) and not harmless:
                self.errors.append(message)

    return Logger()


def _build_with_api(tensorrt: TensorRT, facts: GraphFacts, profile, options: BuildOptions) -> bytes:
    trt = tensorrt.trt
    logger = collecting_logger(trt)
    try:
        builder = trt.Builder(logger)
    except TypeError:  # the bindings return None (no CUDA device or driver) and pybind rejects it
        raise EngineBuildError(f"{tensorrt.flavour.name} {tensorrt.version} could not create a builder (no usable "
                               f"GPU or driver: {'; '.join(logger.errors[-2:]) or 'nothing logged'}); full TensorRT "
                               f"builds on the GPU it targets: build there, or with --runtime tensorrt-rtx for RTX "
                               f"GPUs ahead of time") from None
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(facts.path)):  # from the file: external weights resolve beside it
        raise EngineBuildError(explain_parser_errors(facts.path, [parser.get_error(i) for i in
                                                                  range(parser.num_errors)], logger.errors))
    config = builder.create_builder_config()
    optimisation = builder.create_optimization_profile()
    for name, shapes in profile.items():
        optimisation.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(optimisation)
    config.clear_flag(trt.BuilderFlag.TF32)
    # the engine inspector then names each layer's tactic and Myelin's fused insides (is attention fused?);
    # it adds names and metadata to the engine file, not work to its kernels
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gb * (1 << 30)))
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if options.compute_capabilities:
        config.num_compute_capabilities = len(options.compute_capabilities)
        for index, capability in enumerate(options.compute_capabilities):
            config.set_compute_capability(getattr(trt.ComputeCapability, "SM" + capability.replace(".", "")), index)
    cache = _load_timing_cache(config, options.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{facts.path}: {tensorrt.flavour.name} {tensorrt.version} could not build an "
                               f"engine: {'; '.join(logger.errors[-3:]) or 'no error logged'}")
    if cache is not None:
        options.timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(serialized)


def _load_timing_cache(config, path: Path | None):
    if path is None:
        return None
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


# (op type or text in the parser's message, why, the export option that avoids it)
PARSER_FIXES: Sequence[tuple[str, str]] = (
    ("LayerNormalization", "LayerNormalization is opset 17+: re-export with `t2l export onnx --opset 18`"),
    ("ArgMax", "export with t2l-fast's text encoder (int32 arg-max EOT pooling, which TensorRT takes)"),
    ("scaled_dot_product", "re-export with `t2l export onnx` (it turns the MHA fast path off)"),
    ("MatMulInteger", "dynamic INT8 is for ONNX Runtime: export with --precision int8 --int8-mode static"),
    ("DynamicQuantizeLinear", "dynamic INT8 is for ONNX Runtime: export with --precision int8 --int8-mode static"),
    ("Cast", "mixed fp16/fp32 types: export on the CPU with `t2l export onnx --precision fp16` (its converter "
             "keeps consistent islands)"),
)


def explain_parser_errors(path: Path, errors, logged: Sequence[str]) -> str:
    """One line per parser error: node index, name and op type, TensorRT's reason, and the fix."""
    lines = [f"{path}: TensorRT's ONNX parser rejected {len(errors)} node(s):"]
    for error in errors:
        op, name = error.node_operator() or "?", error.node_name() or ""
        reason = f"{getattr(error.code(), 'name', error.code())}: {error.desc()} (in {error.func()})"
        fix = next((f for key, f in PARSER_FIXES if key in op or key in error.desc()),
                   "TensorRT's ONNX parser does not take this op here (see its operator support list); re-export "
                   "with `t2l export onnx` (opset 18, the default), or serve this graph with ONNX Runtime")
        lines.append(f"  node {error.node()} {name!r} ({op}): {reason}; fix: {fix}")
    if not errors:
        lines += [f"  TensorRT: {' '.join(message.split())}" for message in logged[-2:]]
    return "\n".join(lines)


def _build_with_cli(flavour: str, facts: GraphFacts, engine: Path, profile, options: BuildOptions,
                    log) -> str | None:
    """Run NVIDIA's CLI; the TensorRT version it reports, if it does."""
    command = cli_command(flavour, facts.path, engine, profile, options, facts.precision)
    if not shutil.which(command[0]):
        raise T2LError(f"--trtexec: {command[0]} is not on PATH (it ships in NVIDIA's TensorRT containers and "
                       f"tarballs, not in the pip wheels); drop --trtexec to build with the Python API")
    log("running " + shlex.join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not engine.is_file():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise EngineBuildError(f"{command[0]} failed (exit {result.returncode}) on {facts.path}:\n{tail}")
    reported = re.search(r"TensorRT(?:-RTX)? version: ([0-9][0-9.]*[0-9])", result.stdout)
    return reported.group(1) if reported else None


def _sidecar(tensorrt: TensorRT, facts: GraphFacts, engine: Path, profile, options: BuildOptions, seconds: float,
             builder: str) -> dict[str, object]:
    flavour, frames = tensorrt.flavour.name, frame_range(facts, options)
    if flavour == "tensorrt-rtx":
        gpu, capabilities = None, list(options.compute_capabilities) or DEFAULT_RTX_TARGETS
    else:
        gpu = current_gpu()
        if gpu is None:
            raise EngineBuildError("TensorRT built an engine but no GPU is visible to record as its target")
        capabilities = [gpu[1]]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "engine": {"file": engine.name, "sha256": file_sha256(engine), "bytes": engine.stat().st_size},
        "runtime": {"name": flavour, "module": tensorrt.flavour.module, "version": tensorrt.version},
        "target": {"compute_capabilities": capabilities, "build_gpu": gpu and {"name": gpu[0], "capability": gpu[1]},
                   "hardware_compatibility": "ampere+" if options.hardware_compatible else "none",
                   "version_compatible": options.version_compatible},
        "onnx": {"file": facts.path.name, "path": str(facts.path.resolve()), "sha256": facts.sha256,
                 "graph": facts.kind, "model": facts.model},
        "precision": facts.precision,
        "profile": profile,
        "frames": dict(zip(("min", "opt", "max"), frames)) if frames else None,  # None: no free frame axis
        "inputs": facts.inputs, "outputs": facts.outputs,
        "build": {"builder": builder, "strongly_typed": True, "tf32": False, "workspace_gb": options.workspace_gb,
                  "timing_cache": str(options.timing_cache) if options.timing_cache else None,
                  "seconds": round(seconds, 2), "t2l_fast_version": __version__},
        "rebuild": rebuild_command(facts.path, engine, flavour, options),
    }
