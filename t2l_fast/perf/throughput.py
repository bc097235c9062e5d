"""Model throughput of T2L, ViFi-CLIP and CLIP over the available backends, in one run (`t2l bench throughput`).

Each (model, backend) is measured in a fresh subprocess (so memory figures are its own): for every frame count and
batch, warm-up, then timed calls until a time budget (at least `min_iterations`); latency median/p90/p99, clips/s,
frames/s, achieved FLOP/s against the machine's matmul peak of the backend's precision, peak resident memory, and
the parity gate against torch eager fp32 on the same clips (a figure counts only if its gate passed). Decoding is
excluded (uint8 clips in memory); class text embeddings are cached, as deployment does, so only the video encoder
runs.
"""
from __future__ import annotations

import contextlib
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import analytic
from .gpu_memory import GpuMemory
from .isolation import report_progress, run_isolated, worker_main
from .machine import cpu_isa, machine_peaks, reset_peak_rss, rss_mb

CPU_BACKENDS = ("torch-eager", "torch-bf16", "torch-compile", "onnxruntime-fp32", "onnxruntime-int8",
                "openvino-fp32", "openvino-bf16", "openvino-int8", "openvino-nncf")
NNCF = "openvino-nncf"  # OpenVINO's own INT8 recipe: what our best backend is compared with, not one of ours
GPU_BACKENDS = ("torch-cuda-fp32", "torch-cuda-fp16", "onnxruntime-cuda-fp16", "onnxruntime-tensorrt-fp16",
                "tensorrt-fp16")


@dataclass
class Plan:
    """What to measure: (model, frames, batches) points, backends, and the time spent per measurement."""

    points: list[tuple[str, int, tuple[int, ...]]]
    backends: tuple[str, ...]
    seconds: float = 10.0  # time budget of the timed calls of one measurement
    min_iterations: int = 3
    max_iterations: int = 50
    warmup: int = 1
    threads: int = field(default_factory=torch.get_num_threads)
    process_per: str = "backend"  # a fresh subprocess per (model, backend), or per "model" (quicker, shared memory)
    block_pair: tuple[str, str, int, int] | None = None  # (T2L, plain CLIP, frames, batch) timed in alternation
    block_rounds: int = 10


def quick_plan() -> Plan:
    points = [("t2l_tiny", 8, (1, 4)), ("vificlip_tiny", 8, (1, 4)), ("vificlip_tiny", 16, (1,)),
              ("vificlip_tiny", 32, (1,)), ("clip_tiny", 8, (1, 4))]
    backends = tuple(b for b in CPU_BACKENDS if b not in ("torch-compile", NNCF))
    return Plan(points, backends, seconds=0.2, min_iterations=3, warmup=2, process_per="model",
                block_pair=("t2l_tiny", "clip_tiny", 8, 1), block_rounds=20)


def cpu_plan() -> Plan:
    """ViT-B/16 on a CPU: B <= 4 at the equal-frame point, ViFi-CLIP's 16/32-frame operating points at B = 1."""
    points = [("t2l_vit_b16", 8, (1, 4)), ("vificlip_vit_b16", 8, (1, 4)), ("vificlip_vit_b16", 16, (1,)),
              ("vificlip_vit_b16", 32, (1,)), ("clip_vit_b16", 8, (1,))]
    return Plan(points, CPU_BACKENDS, seconds=8.0, block_pair=("t2l_vit_b16", "clip_vit_b16", 8, 1))


def gpu_plan() -> Plan:
    """The paper's settings on a GPU: fp16, batch 32-256 (B = clips; frames = clips x T)."""
    points = [("t2l_vit_b16", 8, (32, 64, 128)), ("vificlip_vit_b16", 8, (32, 64, 128)),
              ("vificlip_vit_b16", 16, (32, 64)), ("vificlip_vit_b16", 32, (32,)), ("clip_vit_b16", 8, (32, 64, 128))]
    return Plan(points, GPU_BACKENDS, seconds=5.0, min_iterations=10, warmup=5,
                block_pair=("t2l_vit_b16", "clip_vit_b16", 8, 32), block_rounds=30)


def clips_for(size: int, frames: int, batch: int) -> np.ndarray:
    """uint8 [batch, frames, 3, size, size] synthetic action clips (the same in every run)."""
    from ..data.synthetic_frames import order_clips

    clips, _ = order_clips(-(-batch // 12), seed=11, frames=frames, size=size, source_frames=max(24, frames))
    return clips[:batch].numpy()


def time_calls(run, clips: np.ndarray, plan: Plan) -> list[float]:
    for _ in range(plan.warmup):
        run(clips)
    seconds: list[float] = []
    while len(seconds) < plan.min_iterations or (sum(seconds) < plan.seconds and len(seconds) < plan.max_iterations):
        started = time.perf_counter()
        run(clips)
        seconds.append(time.perf_counter() - started)
    return seconds


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


REFERENCES = ("torch-eager", "torch-cuda-fp32")  # the backend every other one is gated against (CPU, GPU)


def points_of(plan: Plan, name: str) -> list[tuple[int, int]]:
    """(frames, batch) of model `name` in `plan`."""
    return [(f, b) for n, f, batches in plan.points if n == name for b in batches]


def _gate(backend_name: str, gate, outputs: np.ndarray, reference_path: Path):
    """A reference backend saves its embeddings at `reference_path`; another is compared with them (None: no
    reference, so not gated)."""
    from ..runtime.compare import compare_outputs

    if backend_name in REFERENCES:
        np.save(reference_path, outputs)
    if not reference_path.is_file():
        return None
    return compare_outputs({"embedding": outputs}, {"embedding": np.load(reference_path)}, {"embedding": gate})


def measure_backend(name: str, backend_name: str, plan: Plan, work_dir: Path, references: Path,
                    peaks: dict[str, float | None]) -> list[dict]:
    """Every (frames, batch) point of model `name` on one backend (the worker subprocess side). A reference backend
    saves its embeddings under `references`; any other one is gated against them."""
    from ..models.registry import create_model
    from .backends import build_backend

    torch.set_num_threads(plan.threads)
    torch.manual_seed(0)
    model = create_model(name).eval()
    config = model.config
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    points = points_of(plan, name)
    gpu_memory = GpuMemory() if torch.cuda.is_available() else None  # before anything is on the GPU
    try:
        calibration = clips_for(config.vision.image_size, config.frames, 8)
        backend = build_backend(backend_name, model, work_dir, calibration, max_batch=max(b for _, b in points),
                                frame_counts=tuple(sorted({f for f, _ in points})))
    except Exception as e:  # a backend that cannot be built is reported, and the rest go on
        return [{"model": name, "backend": backend_name, "error": f"{type(e).__name__}: {e}"[:300]}]
    del model  # ONNX Runtime, OpenVINO and TensorRT backends hold their own copy of the weights
    gc.collect()
    rows = []
    for frames, batch in points:
        clips = clips_for(config.vision.image_size, frames, batch)
        reset_peak_rss()
        before = rss_mb("VmRSS")
        try:
            with gpu_memory.peak() if gpu_memory else contextlib.nullcontext() as sampled:
                outputs = backend.run(clips)
                seconds = time_calls(backend.run, clips, plan)
        except Exception as e:
            rows.append({"model": name, "frames": frames, "batch": batch, "backend": backend_name,
                         "error": f"{type(e).__name__}: {e}"[:300]})
            report_progress(f"{name} {frames}f B={batch} {backend_name}: failed")
            continue
        peak = sampled.mb if gpu_memory else rss_mb("VmHWM")
        comparison = _gate(backend_name, backend.gate, outputs, references / f"{name}_{frames}f_b{batch}.npy")
        median = statistics.median(seconds)
        macs = analytic.vision_macs(config, frames)
        achieved = 2.0 * macs * batch / median
        peak_rate = peaks.get(backend.precision)
        rows.append({
            "model": name, "kind": config.kind, "frames": frames, "batch": batch, "backend": backend_name,
            "precision": backend.precision, "device": device, "iterations": len(seconds),
            "median_s": median, "p90_s": _percentile(seconds, 90), "p99_s": _percentile(seconds, 99),
            "clips_per_s": batch / median, "frames_per_s": batch * frames / median,
            "gmac_per_clip": macs / 1e9, "achieved_gflop_s": achieved / 1e9,
            "peak_fraction": achieved / peak_rate if peak_rate else None,
            "peak_memory_mb": peak, "memory_before_mb": before, "setup_s": backend.setup_seconds,
            "memory_method": gpu_memory.method if gpu_memory else "VmHWM: peak resident memory of the process",
            "parity": comparison.figures.get("embedding") if comparison else None,
            "passed": bool(comparison and comparison.passed), **backend.row_facts})
        report_progress(f"{name} {frames}f B={batch} {backend_name}: {batch / median:.3g} clips/s")
    if backend.profile and rows and "error" not in rows[-1]:
        try:  # after the timing: profiling compiles the model again
            rows[-1].update(backend.profile(clips))
        except Exception as e:  # a profile that fails must not cost the measured rows
            rows[-1]["profile_error"] = f"{type(e).__name__}: {e}"[:300]
    return rows


def interleaved_block_ratio(t2l: str, tower: str, frames: int, batch: int, rounds: int, threads: int) -> dict:
    """T2L's video encoder time over the plain CLIP image tower's on the same clips, the two called in alternation
    in one process (torch eager fp32; CUDA when present), so that machine noise falls on both alike."""
    from ..models.registry import create_model
    from ..video_ops import normalize_video

    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    models = [create_model(name, frames=frames).eval().to(device) for name in (t2l, tower)]
    video = torch.from_numpy(clips_for(models[0].config.vision.image_size, frames, batch)).to(device)
    seconds: list[list[float]] = [[], []]
    with torch.inference_mode():
        inputs = [normalize_video(video, model.input_spec) for model in models]
        for round_ in range(rounds + 1):  # round 0 warms up
            for index in (0, 1) if round_ % 2 else (1, 0):  # alternate who goes first
                started = time.perf_counter()
                models[index].encode_video(inputs[index])
                if device == "cuda":
                    torch.cuda.synchronize()
                if round_:
                    seconds[index].append(time.perf_counter() - started)
    medians = [statistics.median(s) for s in seconds]
    return {"t2l": t2l, "tower": tower, "frames": frames, "batch": batch, "rounds": rounds, "device": device,
            "t2l_median_s": medians[0], "tower_median_s": medians[1], "ratio": medians[0] / medians[1]}


def block_ratio_lines(rows: Sequence[dict], interleaved: dict | None) -> list[str]:
    """The T2L block's cost: T2L's time per clip over the plain CLIP image tower's (same frames, batch and backend,
    both gated), and the interleaved torch eager figure against the target (<= 1.05x)."""
    lines = []
    towers = {(r["model"], r["frames"], r["batch"], r["backend"]): r for r in rows
              if r.get("kind") == "clip" and r.get("passed")}
    for r in rows:
        tower = towers.get((r.get("model", "").replace("t2l_", "clip_", 1), r.get("frames"), r.get("batch"),
                            r.get("backend")))
        if r.get("kind") == "t2l" and r.get("passed") and tower:
            lines.append(f"T2L block: {r['model']} {r['frames']}f B={r['batch']} on {r['backend']} takes "
                         f"{tower['clips_per_s'] / r['clips_per_s']:.2f}x the time of {tower['model']}'s image tower "
                         f"(separate processes, one after the other)")
    if interleaved:
        ratio = interleaved["ratio"]
        lines.append(f"T2L block, interleaved ({interleaved['rounds']} alternating calls, torch eager fp32 on "
                     f"{interleaved['device']}): {interleaved['t2l']} {interleaved['frames']}f B="
                     f"{interleaved['batch']} takes {ratio:.3f}x the time of {interleaved['tower']} "
                     f"({interleaved['t2l_median_s']:.3g} s vs {interleaved['tower_median_s']:.3g} s; target <= "
                     f"1.05x: {'met' if ratio <= 1.05 else 'missed'})")
    return lines


def run_plan(plan: Plan, work_dir: Path | None = None, progress=print) -> tuple[list[dict], dict[str, object]]:
    """Measure every model of `plan` on every available backend (the reference first), each (model, backend) in a
    fresh subprocess, or each model (plan.process_per); (rows with speed-ups, machine facts)."""
    from ..progress import progress_bar
    from .backends import available

    peaks = machine_peaks()
    backends = sorted(available(list(plan.backends)), key=lambda b: b not in REFERENCES)
    names = list(dict.fromkeys(name for name, _, _ in plan.points))
    rows: list[dict] = []
    total = sum(len(points_of(plan, name)) for name in names) * len(backends)
    with tempfile.TemporaryDirectory(prefix="t2l-bench-") as scratch, \
            progress_bar(total=total, desc="throughput", unit="point", leave=False) as bar:
        work = Path(work_dir) if work_dir else Path(scratch)
        for index, name in enumerate(names, 1):
            progress(f"[{index}/{len(names)}] {name}: {', '.join(backends)}")
            groups = [backends] if plan.process_per == "model" else [[b] for b in backends]
            for group in groups:
                spec = {"name": name, "backends": group, "plan": asdict(plan), "work_dir": str(work),
                        "references": scratch, "peaks": peaks}
                rows += run_isolated("t2l_fast.perf.throughput", spec, on_progress=lambda text: (
                    bar.set_postfix_str(text, refresh=False), bar.update()))
        interleaved = None
        if plan.block_pair:
            progress(f"T2L block against the plain image tower: {plan.block_rounds} alternating calls")
            t2l, tower, frames, batch = plan.block_pair
            spec = {"interleaved": dict(t2l=t2l, tower=tower, frames=frames, batch=batch, rounds=plan.block_rounds,
                                        threads=plan.threads)}
            interleaved = run_isolated("t2l_fast.perf.throughput", spec)[0]
    add_speedups(rows)
    return rows, {"matmul_peak_gflop_s": {k: v and v / 1e9 for k, v in peaks.items()}, "threads": plan.threads,
                  "cpu_isa": cpu_isa(),
                  "backends_available": backends, "block_ratio_interleaved": interleaved}


def add_speedups(rows: list[dict]) -> None:
    """speedup_vs_eager: clips/s over torch eager fp32's at the same model, frames and batch."""
    eager = {(r["model"], r["frames"], r["batch"]): r["clips_per_s"] for r in rows
             if r.get("backend") in ("torch-eager", "torch-cuda-fp32") and "clips_per_s" in r}
    for r in rows:
        base = eager.get((r.get("model"), r.get("frames"), r.get("batch")))
        r["speedup_vs_eager"] = r["clips_per_s"] / base if base and "clips_per_s" in r else None


def targets(rows: Sequence[dict], model: str = "t2l_vit_b16") -> list[str]:
    """Where the performance targets stand: our best gated CPU backend >= 3x torch eager and >= 1.1x OpenVINO's
    own INT8 recipe (openvino-nncf) (model at its T, same batch); the INT8 paths at >= 60% of the INT8 matmul
    peak."""
    lines = []
    for batch in sorted({r["batch"] for r in rows if r.get("model") == model and "batch" in r}):
        same = [r for r in rows if r.get("model") == model and r.get("batch") == batch and r.get("passed")]
        ours = [r for r in same if r["backend"] != NNCF]
        if not ours:
            continue
        best = max(ours, key=lambda r: r["clips_per_s"])
        eager = next((r for r in same if r["backend"] == "torch-eager"), None)
        nncf = next((r for r in rows if r.get("model") == model and r.get("backend") == NNCF
                     and r.get("batch") in (batch, None)), None)  # an error row has no batch
        if eager:
            ratio = best["clips_per_s"] / eager["clips_per_s"]
            lines.append(f"{model} B={batch}: best gated backend {best['backend']} at {ratio:.2f}x torch eager "
                         f"(target 3x: {'met' if ratio >= 3 else 'missed'})")
        if nncf:
            lines.append(_nncf_line(model, batch, best, nncf))
        for r in same:
            if r["precision"] == "int8" and r.get("peak_fraction") is not None:
                lines.append(f"{model} B={batch}: {r['backend']} at {r['peak_fraction']:.0%} of the INT8 matmul "
                             f"peak (target 60%: {'met' if r['peak_fraction'] >= 0.6 else 'missed'})")
    return lines


def _nncf_line(model: str, batch: int, best: dict, nncf: dict) -> str:
    """Our best gated backend against OpenVINO's own recipe; a recipe that failed the gate is no rival, and its
    speed is stated for what it is."""
    from ..runtime.compare import REDUCED_GATE

    if "clips_per_s" not in nncf:
        return f"{model} B={batch}: OpenVINO's own recipe ({NNCF}) not measured: {nncf.get('error', '?')}"
    ratio = best["clips_per_s"] / nncf["clips_per_s"]
    head = f"{model} B={batch}: {best['backend']} at {ratio:.2f}x OpenVINO's own recipe ({NNCF}: convert_model + " \
           f"nncf.quantize)"
    verdict = "met" if ratio >= 1.1 else "missed"
    if nncf.get("passed"):
        return f"{head}; target 1.1x: {verdict}"
    cosine = (nncf.get("parity") or {}).get("min_cosine", float("nan"))
    return (f"{head}; the recipe's graph failed the gate (min cosine {cosine:.4f} < {REDUCED_GATE.min_cosine}): "
            f"target 1.1x {verdict}, against a rival that does not reach our accuracy")


def kernel_lines(rows: Sequence[dict]) -> list[str]:
    """Per model and backend (its last point): the instruction set or matmul kernels it ran, and (OpenVINO) where
    one call's time went."""
    last = {(r["model"], r["backend"]): r for r in rows}
    lines = []
    for r in last.values():
        facts = [f"{key} {r[key]}" for key in ("isa", "matmul_kernels", "time_by_op") if r.get(key)]
        if facts:
            lines.append(f"{r['model']} {r['frames']}f B={r['batch']} {r['backend']}: " + "; ".join(facts))
    return lines


def _measure(spec: dict) -> list[dict]:
    if "interleaved" in spec:
        return [interleaved_block_ratio(**spec["interleaved"])]
    plan = Plan(**{**spec["plan"], "points": [tuple(p[:2]) + (tuple(p[2]),) for p in spec["plan"]["points"]],
                   "backends": tuple(spec["plan"]["backends"])})
    return [row for backend in spec["backends"] for row in measure_backend(
        spec["name"], backend, plan, Path(spec["work_dir"]), Path(spec["references"]), spec["peaks"])]


if __name__ == "__main__":
    worker_main(_measure)
