"""The benchmark reports `t2l bench` and the demo write: each one's columns, metric definitions and assembly.

Every function measures (or reads) its rows, logs the table through `log`, writes the report (JSON, Markdown and,
where there are panels, a PNG) into `out` and returns the rows.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import T2LError, UnsupportedOptionError
from .report import Panel, conditions, markdown_table, pivot, write_report

Log = Callable[[str], None]

QUICK_MODELS = ("t2l_tiny", "vificlip_tiny", "clip_tiny")
FULL_MODELS = ("t2l_vit_b16", "vificlip_vit_b16", "clip_vit_b16")
FLOPS_COLUMNS = ("model", "frames", "gflops_full", "gflops_attention_blind", "gflops_analytic", "text_gflops_full",
                 "text_gflops_attention_blind", "learnable_params", "total_params")
FLOPS_DEFINITIONS = {
    "GFLOPs": "10^9 multiply-adds (MACs) per view (one clip of `frames` frames at `image_size`, 1 crop): the "
              "convention of every GFLOPs figure in the paper and its peers (FLOPs = 2 x MACs elsewhere)",
    "gflops_full": "fvcore trace, with a handle for scaled_dot_product_attention (which fvcore skips), MHA fast "
                   "path off",
    "gflops_attention_blind": "the same trace with every nn.MultiheadAttention counted as zero, as thop 0.1.1 does",
    "gflops_analytic": "closed form from the config (t2l_fast/perf/analytic.py); the traced counts must agree "
                       "within 1%",
    "text_gflops_*": "text encoder, per prompt (77 tokens); class embeddings are computed once and cached",
    "learnable_params": "parameters trained by the model's recipe (T2L: tokens + adapters; ViFi-CLIP: both towers)",
}

THROUGHPUT_COLUMNS = ("model", "frames", "batch", "backend", "passed", "clips_per_s", "frames_per_s", "median_s",
                      "p90_s", "p99_s", "speedup_vs_eager", "achieved_gflop_s", "peak_fraction", "peak_memory_mb")
THROUGHPUT_DEFINITIONS = {
    "clips_per_s": "batch / median wall time of one call on uint8 clips in memory (decoding excluded; the video "
                   "encoder only: class text embeddings are cached)",
    "frames_per_s": "clips_per_s x frames",
    "median_s / p90_s / p99_s": "latency of one call of `batch` clips, over the timed calls after warm-up",
    "passed": "the backend's embeddings against torch eager fp32 on the same clips: fp32 max-abs <= 1e-4, "
              "bf16/fp16/int8 cosine >= 0.99 for every clip; a figure that did not pass does not count",
    "speedup_vs_eager": "clips_per_s over torch eager fp32's, same model, frames, batch and machine, same run",
    "achieved_gflop_s": "2 x multiply-adds per clip (closed form) x clips_per_s / 1e9",
    "peak_fraction": "achieved_gflop_s over the machine's dense matmul peak of the backend's precision, measured in "
                     "the same run (int8: ONNX Runtime MatMulInteger)",
    "peak_memory_mb": "peak resident memory during this point's calls, in a fresh process of this model and backend "
                      "alone (high-water mark reset before each point); on a GPU, the GPU memory of the process "
                      "whoever allocated it (torch, ONNX Runtime's arena, TensorRT), measured as its row's "
                      "memory_method says",
}

SERVE_COLUMNS = ("mode", "clients", "batch", "requests", "failures", "clips_per_s", "vs_in_process", "p50_ms",
                 "p90_ms", "p99_ms", "batch_sizes")
SERVE_DEFINITIONS = {
    "mode": "in-process: the backend's runner called directly at `batch`; served: `clients` concurrent HTTP "
            "clients of `t2l serve`, one clip per request, the server batching them",
    "clips_per_s": "clips answered / wall time (served: over all clients, first request to last answer)",
    "vs_in_process": "clips_per_s over the best in-process row's (the backend at its best batch)",
    "p50_ms / p90_ms / p99_ms": "latency of one request (served: one clip, client side) or one call (in-process)",
    "batch_sizes": "batch size the server's dynamic batcher formed -> executions, from the server's statistics",
    "failures": "requests that got an error (must be 0)",
}


TRAINING_COLUMNS = ("model", "frames", "batch", "checkpointing", "recipe", "precision", "step_s", "step_time_vs_t2l",
                    "peak_memory_gb", "peak_memory_vs_t2l", "learnable_params")
TRAINING_DEFINITIONS = {
    "step_s": "median wall time of one optimiser step as the trainer takes it (its objective, forward, backward, "
              "AdamW on the learnable parameters) after a warm-up step",
    "precision": "the trainer's autocast precision (its default bf16; fp32 master weights; a grad scaler for fp16)",
    "peak_memory_gb": "high-water mark of the process's resident memory over the timed steps (GPU: peak allocated); "
                      "includes the weights",
    "step_time_vs_t2l / peak_memory_vs_t2l": "over T2L's at the same frames, batch and checkpointing (T2L: 1)",
    "recipe": "the model's published training frames (T2L 8, ViFi-CLIP 32)",
}

E2E_COLUMNS = ("model", "frames", "batch", "backend", "loader", "loader_clips_per_s", "model_clips_per_s",
               "end_to_end_clips_per_s", "limited_by", "handoff")
E2E_DEFINITIONS = {"loader_clips_per_s": "the loader alone, one epoch after a warm-up epoch",
                   "model_clips_per_s": "the backend alone on the loader's batches in memory",
                   "end_to_end_clips_per_s": "the loader feeding the backend, one epoch",
                   "limited_by": "the slower stage alone",
                   "handoff": "how the loader's batch reaches the backend: torch takes the tensor where it lies (a "
                              "CUDA batch stays on the GPU), ONNX Runtime / OpenVINO / TensorRT get a host copy"}


def _log_paths(paths: dict[str, Path], log: Log) -> None:
    log(f"report: {', '.join(str(p) for p in paths.values())}")


def flops_report(models: Sequence[str], frames: Sequence[int], out: Path, json_path: Path | None = None,
                 log: Log = print) -> list[dict]:
    """Parameters and GFLOPs per view of `models` (the frame-averaging ones at each of `frames`)."""
    from .flops import count_model

    rows = [row for name in models for row in count_model(name, frames)]
    log("GFLOPs are 10^9 multiply-adds per view (1 clip x 1 crop), vision tower; text per prompt.")
    log(markdown_table(rows, FLOPS_COLUMNS))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(rows, indent=2) + "\n")
        log(f"wrote {json_path}")
    accountings = {"full count": "gflops_full", "attention-blind": "gflops_attention_blind",
                   "closed form": "gflops_analytic"}
    panel = Panel("GMACs per view", [f"{r['model']} {r['frames']}f" for r in rows],
                  {name: [r[column] for r in rows] for name, column in accountings.items()})
    paths = write_report(out, "flops", title="Parameters and GFLOPs (multiply-adds) per view", rows=rows,
                         columns=FLOPS_COLUMNS, conditions=conditions(counter="fvcore + SDPA handle"),
                         definitions=FLOPS_DEFINITIONS, panels=[panel],
                         notes=["Elementwise ops (additions, activations, layer norms) are not counted; their "
                                "estimated size is in the JSON (uncounted_elementwise_g)."])
    _log_paths(paths, log)
    return rows


def throughput_plan(quick: bool = False, gpu: bool = False, backends: Sequence[str] | None = None,
                    seconds: float | None = None, models: Sequence[str] | None = None):
    """The throughput plan: quick (tiny models), GPU or CPU, optionally cut to `backends`, `models` and a time
    budget."""
    from .throughput import cpu_plan, gpu_plan, quick_plan

    plan = quick_plan() if quick else gpu_plan() if gpu else cpu_plan()
    if backends:
        plan = dataclasses.replace(plan, backends=tuple(backends))
    if models:
        unknown = sorted(set(models) - {name for name, _, _ in plan.points})
        if unknown:
            raise UnsupportedOptionError(f"--models {' '.join(unknown)}: not in this plan; choose from "
                                         f"{', '.join(dict.fromkeys(name for name, _, _ in plan.points))}")
        points = [point for point in plan.points if point[0] in models]
        pair = plan.block_pair if plan.block_pair and {plan.block_pair[0], plan.block_pair[1]} <= set(models) \
            else None
        plan = dataclasses.replace(plan, points=points, block_pair=pair)
    if seconds:
        plan = dataclasses.replace(plan, seconds=seconds)
    return plan


def throughput_report(plan, out: Path, work_dir: Path | None = None, log: Log = print) -> list[dict]:
    """Clips/s of every model and backend of `plan`, gated against torch eager fp32; the measured rows."""
    from .throughput import block_ratio_lines, kernel_lines, run_plan, targets

    rows, machine = run_plan(plan, work_dir, progress=log)
    measured = [r for r in rows if "clips_per_s" in r]
    failed = [r for r in rows if "error" in r]
    log(markdown_table(measured, THROUGHPUT_COLUMNS))
    interleaved = machine["block_ratio_interleaved"]
    standing = targets(measured) + block_ratio_lines(
        measured, interleaved if interleaved and "error" not in interleaved else None)
    if interleaved and "error" in interleaved:
        failed.append({"model": "T2L block (interleaved)", **interleaved})
    not_measured = [f"not measured: {r['model']} {r.get('backend', '')}: {r['error']}" for r in failed]
    for line in standing + not_measured:
        log(line)
    panels = [pivot([r for r in measured if r["passed"]], lambda r: f"{r['model']} {r['frames']}f B={r['batch']}",
                    lambda r: r["backend"], value, label) for value, label in (
        ("clips_per_s", "clips/s (gated backends)"), ("speedup_vs_eager", "x torch eager fp32"))]
    notes = standing + kernel_lines(measured) + [
        f"peak dense matmul on this machine (GFLOP/s): {machine['matmul_peak_gflop_s']}; CPU instruction sets: "
        f"{machine['cpu_isa']}",
                        "Each (model, backend) ran in a fresh subprocess, the reference (torch eager fp32) first."
                        if plan.process_per == "backend" else "Each model ran in a fresh subprocess, its backends one "
                        "after another (the reference first): memory figures include the backends before"]
    paths = write_report(out, "throughput", title="Model throughput per backend (video encoder, one run)",
                         rows=measured, columns=THROUGHPUT_COLUMNS, definitions=THROUGHPUT_DEFINITIONS,
                         conditions=conditions(plan=dataclasses.asdict(plan), **machine), notes=notes + not_measured,
                         panels=panels)
    _log_paths(paths, log)
    return measured


def end_to_end_report(plan, batch: int, data: Path | None, out: Path, work_dir: Path,
                      log: Log = print) -> list[dict]:
    """The loaders (PyAV and, where installed, DALI) feeding the plan's T2L and ViFi-CLIP models; which stage
    limits."""
    from ..optional import dali_version
    from .backends import available
    from .end_to_end import run_end_to_end

    models = list(dict.fromkeys(name for name, _, _ in plan.points if not name.startswith("clip")))
    backends = available(["torch-eager", "onnxruntime-int8"])
    loaders = ["pyav"] + (["dali"] if dali_version() else [])
    rows = run_end_to_end(models, backends, batch, data, out, work_dir, loaders, progress=log)
    log(markdown_table(rows, E2E_COLUMNS))
    paths = write_report(out, "end_to_end", title="End to end: loader (decode + augment) feeding the model",
                         rows=[r for r in rows if "error" not in r], columns=E2E_COLUMNS,
                         conditions=conditions(data=rows[0].get("source") if rows else None),
                         definitions=E2E_DEFINITIONS, notes=[f"not measured: {r}" for r in rows if "error" in r])
    _log_paths(paths, log)
    return rows


def training_report(t2l: str, vificlip: str, batch: int, steps: int, out: Path, log: Log = print) -> list[dict]:
    """Optimiser-step time and peak memory of T2L against ViFi-CLIP (checkpointing on and off)."""
    from .training_cost import run_training_cost

    rows = run_training_cost(t2l, vificlip, batch, steps, progress=log)
    log(markdown_table(rows, TRAINING_COLUMNS))
    measured = [r for r in rows if "step_s" in r]
    panels = [pivot(measured, lambda r: f"{r['model']} {r['frames']}f", lambda r: f"checkpointing {r['checkpointing']}",
                    value, label) for value, label in (("step_s", "seconds per step"), ("peak_memory_gb", "peak GB"))]
    paths = write_report(out, "training", title="Training cost: one optimiser step, T2L vs ViFi-CLIP",
                         rows=measured, columns=TRAINING_COLUMNS, definitions=TRAINING_DEFINITIONS,
                         conditions=conditions(batch=batch, steps=steps), panels=panels,
                         notes=[f"not measured: {r['model']}: {r['error']}" for r in rows if "error" in r])
    _log_paths(paths, log)
    return measured


def read_rows(path: Path | None) -> list[dict]:
    """Rows of a benchmark JSON: a list of rows, or a report document with "rows" ([] without a path); a file that
    is neither, or holds no rows, is a one-line error naming it."""
    if not path:
        return []
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise T2LError(f"{path}: not a benchmark report (not JSON: {e}); give a JSON that `t2l bench` wrote") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise T2LError(f"{path}: not a benchmark report (no rows); give a JSON that `t2l bench` wrote")
    return rows


def claims_report(out: Path, flops_json: Path | None = None, throughput_json: Path | None = None,
                  training_json: Path | None = None, log: Log = print) -> list[dict]:
    """The paper's efficiency claims against the rows of earlier reports (GFLOPs of ViT-B/16 counted now when no
    flops rows are given), with verdicts."""
    from .claims import COLUMNS, DEFINITIONS, HOLDS_FRACTION, claims_table
    from .flops import count_model

    paper_models = (("t2l_vit_b16", ()), ("vificlip_vit_b16", (8, 16, 32)))
    throughput, training = read_rows(throughput_json), read_rows(training_json)  # cheap checks before counting
    flops = read_rows(flops_json) or [row for name, frames in paper_models for row in count_model(name, frames)]
    rows = claims_table(flops, throughput, training)
    log(markdown_table(rows, COLUMNS))
    log(f"\nholds: measured >= {HOLDS_FRACTION} x claimed. GFLOPs: multiply-adds per view. Throughput rows come "
        f"from {throughput_json or 'no report'}; training rows from {training_json or 'no report'}.")
    sources = {"flops": str(flops_json) if flops_json else "computed now",
               "throughput": str(throughput_json) if throughput_json else None,
               "training": str(training_json) if training_json else None}
    devices = sorted({r.get("device", "") for r in throughput + training} - {""})
    paths = write_report(out, "claims", title="T2L's efficiency claims: verdict", rows=rows, columns=COLUMNS,
                         conditions=conditions(sources=sources, measured_on=devices or None),
                         definitions=DEFINITIONS)
    _log_paths(paths, log)
    return rows


def serve_report(export_dir: Path, backend: str, clients: Sequence[int], requests: int, max_batch: int, calls: int,
                 out: Path, log: Log = print, run_batch: int | None = None) -> list[dict]:
    """`t2l serve` against the same backend in process (video encoder of `export_dir`): throughput, latency
    percentiles, batch sizes formed. run_batch: the server's (None: measured, as `t2l serve` does)."""
    from .serve_bench import run_serve_bench, targets

    rows, choices = run_serve_bench(export_dir, backend, clients, requests, max_batch, calls, log, run_batch)
    backend = rows[0]["backend"]  # auto: the backend it chose
    log(markdown_table(rows, SERVE_COLUMNS))
    failed = sum(r.get("failures", 0) for r in rows)
    for line in targets(rows):
        log(line)
    notes = targets(rows) + choices + [f"{failed} failed request(s)" if failed else "no failed requests",
             "clients and server share this machine's cores: served figures include the clients' own work"]
    paths = write_report(out, "serve", title=f"t2l serve vs in process ({backend}, video encoder of {export_dir})",
                         rows=rows, columns=SERVE_COLUMNS, definitions=SERVE_DEFINITIONS,
                         conditions=conditions(export=str(export_dir), backend=backend, max_batch=max_batch,
                                               run_batch=next(r["run_batch"] for r in rows if r["mode"] == "served"),
                                               requests_per_client_count=requests, calls_per_batch=calls),
                         notes=notes,
                         panels=[pivot(rows, lambda r: f"{r['mode']} {r['clients']}c B={r['batch']}",
                                       lambda r: r["mode"], "clips_per_s", "clips/s")])
    _log_paths(paths, log)
    return rows
