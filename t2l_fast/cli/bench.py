"""`t2l bench ...`: parameters and GFLOPs, throughput, training cost, and the verdict on the paper's claims."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

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


def _flops(args: argparse.Namespace) -> int:
    from ..perf.flops import count_model
    from ..perf.report import Panel, conditions, markdown_table, write_report

    models = args.models or (QUICK_MODELS if args.quick else FULL_MODELS)
    rows = [row for name in models for row in count_model(name, args.frames)]
    print("GFLOPs are 10^9 multiply-adds per view (1 clip x 1 crop), vision tower; text per prompt.")
    print(markdown_table(rows, FLOPS_COLUMNS))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")
    accountings = {"full count": "gflops_full", "attention-blind": "gflops_attention_blind",
                   "closed form": "gflops_analytic"}
    panel = Panel("GMACs per view", [f"{r['model']} {r['frames']}f" for r in rows],
                  {name: [r[column] for r in rows] for name, column in accountings.items()})
    paths = write_report(args.out, "flops", title="Parameters and GFLOPs (multiply-adds) per view", rows=rows,
                         columns=FLOPS_COLUMNS, conditions=conditions(counter="fvcore + SDPA handle"),
                         definitions=FLOPS_DEFINITIONS, panels=[panel],
                         notes=["Elementwise ops (additions, activations, layer norms) are not counted; their "
                                "estimated size is in the JSON (uncounted_elementwise_g)."])
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    return 0


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
                      "alone (high-water mark reset before each point; GPU: peak allocated)",
}


def _throughput(args: argparse.Namespace) -> int:
    import dataclasses

    from ..perf.report import conditions, markdown_table, pivot, write_report
    from ..perf.throughput import block_ratio_lines, cpu_plan, gpu_plan, quick_plan, run_plan, targets

    plan = quick_plan() if args.quick else gpu_plan() if args.gpu else cpu_plan()
    if args.backends:
        plan = dataclasses.replace(plan, backends=tuple(args.backends))
    if args.seconds:
        plan = dataclasses.replace(plan, seconds=args.seconds)
    rows, machine = run_plan(plan, args.work_dir)
    measured = [r for r in rows if "clips_per_s" in r]
    failed = [r for r in rows if "error" in r]
    print(markdown_table(measured, THROUGHPUT_COLUMNS))
    interleaved = machine["block_ratio_interleaved"]
    standing = targets(measured) + block_ratio_lines(
        measured, interleaved if interleaved and "error" not in interleaved else None)
    if interleaved and "error" in interleaved:
        failed.append({"model": "T2L block (interleaved)", **interleaved})
    for line in standing + [f"not measured: {r['model']} {r.get('backend', '')}: {r['error']}" for r in failed]:
        print(line)
    panels = [pivot([r for r in measured if r["passed"]], lambda r: f"{r['model']} {r['frames']}f B={r['batch']}",
                    lambda r: r["backend"], value, label) for value, label in (
        ("clips_per_s", "clips/s (gated backends)"), ("speedup_vs_eager", "x torch eager fp32"))]
    notes = standing + [f"peak dense matmul on this machine (GFLOP/s): {machine['matmul_peak_gflop_s']}",
                        "Each (model, backend) ran in a fresh subprocess, the reference (torch eager fp32) first."
                        if plan.process_per == "backend" else "Each model ran in a fresh subprocess, its backends one "
                        "after another (the reference first): memory figures include the backends before"]
    notes += [f"not measured: {r['model']} {r.get('backend', '')}: {r['error']}" for r in failed]
    paths = write_report(args.out, "throughput", title="Model throughput per backend (video encoder, one run)",
                         rows=measured, columns=THROUGHPUT_COLUMNS, definitions=THROUGHPUT_DEFINITIONS,
                         conditions=conditions(plan=dataclasses.asdict(plan), **machine), notes=notes,
                         panels=panels)
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    if args.end_to_end:
        _end_to_end(args, plan)
    return 0


TRAINING_COLUMNS = ("model", "frames", "batch", "checkpointing", "recipe", "step_s", "step_time_vs_t2l",
                    "peak_memory_gb", "peak_memory_vs_t2l", "learnable_params")
TRAINING_DEFINITIONS = {
    "step_s": "median wall time of one optimiser step (forward, backward, AdamW on the learnable parameters) after "
              "a warm-up step",
    "peak_memory_gb": "high-water mark of the process's resident memory over the timed steps (GPU: peak allocated); "
                      "includes the weights",
    "step_time_vs_t2l / peak_memory_vs_t2l": "over T2L's at the same frames, batch and checkpointing (T2L: 1)",
    "recipe": "the model's published training frames (T2L 8, ViFi-CLIP 32)",
}


def _training(args: argparse.Namespace) -> int:
    from ..perf.report import conditions, markdown_table, pivot, write_report
    from ..perf.training_cost import run_training_cost

    t2l, vificlip = ("t2l_tiny", "vificlip_tiny") if args.quick else ("t2l_vit_b16", "vificlip_vit_b16")
    batch = args.batch or (4 if args.quick else 2)
    rows = run_training_cost(t2l, vificlip, batch, args.steps)
    print(markdown_table(rows, TRAINING_COLUMNS))
    measured = [r for r in rows if "step_s" in r]
    panels = [pivot(measured, lambda r: f"{r['model']} {r['frames']}f", lambda r: f"checkpointing {r['checkpointing']}",
                    value, label) for value, label in (("step_s", "seconds per step"), ("peak_memory_gb", "peak GB"))]
    paths = write_report(args.out, "training", title="Training cost: one optimiser step, T2L vs ViFi-CLIP",
                         rows=measured, columns=TRAINING_COLUMNS, definitions=TRAINING_DEFINITIONS,
                         conditions=conditions(batch=batch, steps=args.steps), panels=panels,
                         notes=[f"not measured: {r['model']}: {r['error']}" for r in rows if "error" in r])
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    return 0


E2E_COLUMNS = ("model", "frames", "batch", "backend", "loader", "loader_clips_per_s", "model_clips_per_s",
               "end_to_end_clips_per_s", "limited_by")


def _end_to_end(args: argparse.Namespace, plan) -> None:
    from ..optional import installed
    from ..perf.backends import available
    from ..perf.end_to_end import run_end_to_end
    from ..perf.report import conditions, markdown_table, write_report

    models = list(dict.fromkeys(name for name, _, _ in plan.points if not name.startswith("clip")))
    backends = available(["torch-eager", "onnxruntime-int8"])
    loaders = ["pyav"] + (["dali"] if installed("nvidia-dali-cuda130") else [])
    rows = run_end_to_end(models, backends, 2 if args.quick else 4, args.data, args.out,
                          args.work_dir or args.out / "graphs", loaders)
    print(markdown_table(rows, E2E_COLUMNS))
    paths = write_report(args.out, "end_to_end", title="End to end: loader (decode + augment) feeding the model",
                         rows=[r for r in rows if "error" not in r], columns=E2E_COLUMNS,
                         conditions=conditions(data=rows[0].get("source") if rows else None),
                         definitions={"loader_clips_per_s": "the loader alone, one epoch after a warm-up epoch",
                                      "model_clips_per_s": "the backend alone on the loader's batches in memory",
                                      "end_to_end_clips_per_s": "the loader feeding the backend, one epoch",
                                      "limited_by": "the slower stage alone"},
                         notes=[f"not measured: {r}" for r in rows if "error" in r])
    print(f"report: {', '.join(str(p) for p in paths.values())}")


def _rows(path) -> list:
    """Rows of a benchmark JSON: a list of rows, or a report document with "rows"."""
    if not path:
        return []
    data = json.loads(Path(path).read_text())
    return data["rows"] if isinstance(data, dict) else data


def _claims(args: argparse.Namespace) -> int:
    from ..perf.claims import COLUMNS, DEFINITIONS, HOLDS_FRACTION, claims_table
    from ..perf.flops import count_model
    from ..perf.report import conditions, markdown_table, write_report

    flops = _rows(args.flops) or [row for name, frames in (("t2l_vit_b16", ()), ("vificlip_vit_b16", (8, 16, 32)))
                                  for row in count_model(name, frames)]
    throughput, training = _rows(args.throughput), _rows(args.training)
    rows = claims_table(flops, throughput, training)
    print(markdown_table(rows, COLUMNS))
    print(f"\nholds: measured >= {HOLDS_FRACTION} x claimed. GFLOPs: multiply-adds per view. Throughput rows come "
          f"from {args.throughput or 'no report'}; training rows from {args.training or 'no report'}.")
    sources = {"flops": args.flops or "computed now", "throughput": args.throughput, "training": args.training}
    devices = sorted({r.get("device", "") for r in throughput + training} - {""})
    paths = write_report(args.out, "claims", title="T2L's efficiency claims: verdict", rows=rows, columns=COLUMNS,
                         conditions=conditions(sources=sources, measured_on=devices or None),
                         definitions=DEFINITIONS)
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    return 0


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    bench = sub.add_parser("bench", help="benchmarks: GFLOPs, throughput, training cost, claims verdict")
    bench = bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND", required=True)
    p = bench.add_parser("flops", help="parameters and GFLOPs per view: full, attention-blind and closed-form counts",
                         description="T2L at its T; ViFi-CLIP and CLIP at 8, 16 and 32 frames (or --frames); the text "
                         "encoder per prompt. The traced counts must agree with the closed form within 1%%.")
    p.add_argument("--models", nargs="+", help=f"registered models (default: {' '.join(FULL_MODELS)}; --quick: "
                   f"{' '.join(QUICK_MODELS)})")
    p.add_argument("--frames", nargs="+", type=int, default=[8, 16, 32], help="frame counts of the frame-averaging "
                   "models (default 8 16 32)")
    p.add_argument("--quick", action="store_true", help="tiny models (seconds)")
    p.add_argument("--json", metavar="OUT.json", help="also write the rows as a JSON list")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_flops)

    p = bench.add_parser("throughput", help="T2L vs ViFi-CLIP vs CLIP clips/s per backend in one run, gated",
                         description="Default: ViT-B/16 on this CPU (about 40 min on 2 cores); --quick: tiny models "
                         "(under a minute); --gpu: the GPU plan (fp16, batch 32-128).")
    p.add_argument("--quick", action="store_true", help="tiny models, short budgets (tests and the demo)")
    p.add_argument("--gpu", action="store_true", help="the GPU plan (torch CUDA fp32/fp16 at batch 32-128)")
    p.add_argument("--backends", nargs="+", help="a subset of the plan's backends")
    p.add_argument("--seconds", type=float, help="time budget of one measurement's timed calls")
    p.add_argument("--work-dir", type=Path, help="keep the exported ONNX graphs here (default: a temporary folder)")
    p.add_argument("--end-to-end", action="store_true", help="also time the loader (decode + augment, PyAV and, "
                   "where installed, DALI) feeding the model, and say which stage limits")
    p.add_argument("--data", type=Path, help="with --end-to-end: a folder with val.txt (default: synthetic videos)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_throughput)

    p = bench.add_parser("training", help="T2L vs ViFi-CLIP optimiser-step time and peak memory (checkpointing "
                         "on and off)")
    p.add_argument("--quick", action="store_true", help="tiny models (seconds)")
    p.add_argument("--batch", type=int, help="clips per step (default 2; --quick 4)")
    p.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up step (default 2)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_training)

    p = bench.add_parser("claims", help="the paper's efficiency claims against what was measured, with verdicts")
    p.add_argument("--flops", metavar="JSON", help="rows of `t2l bench flops --json` (default: count now, ~30 s)")
    p.add_argument("--throughput", metavar="JSON", help="a `t2l bench throughput` report (runs/bench/throughput.json)")
    p.add_argument("--training", metavar="JSON", help="a `t2l bench training` report")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_claims)
