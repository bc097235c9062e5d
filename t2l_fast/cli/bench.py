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
    "gflops_full": "fvcore trace, with a handle for scaled_dot_product_attention (which fvcore skips), MHA fast path off",
    "gflops_attention_blind": "the same trace with every nn.MultiheadAttention counted as zero, as thop 0.1.1 does",
    "gflops_analytic": "closed form from the config (t2l_fast/perf/analytic.py); the traced counts must agree within 1%",
    "text_gflops_*": "text encoder, per prompt (77 tokens); class embeddings are computed once and cached",
    "learnable_params": "parameters trained by the model's recipe (T2L: tokens + adapters; ViFi-CLIP: both towers)",
}


def _flops(args: argparse.Namespace) -> int:
    from ..perf.flops import count_model
    from ..perf.report import conditions, markdown_table, write_report

    models = args.models or (QUICK_MODELS if args.quick else FULL_MODELS)
    rows = [row for name in models for row in count_model(name, args.frames)]
    print("GFLOPs are 10^9 multiply-adds per view (1 clip x 1 crop), vision tower; text per prompt.")
    print(markdown_table(rows, FLOPS_COLUMNS))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")
    for row in rows:
        row["label"] = f"{row['model']} {row['frames']}f"
    paths = write_report(args.out, "flops", title="Parameters and GFLOPs (multiply-adds) per view", rows=rows,
                         columns=FLOPS_COLUMNS, conditions=conditions(counter="fvcore + SDPA handle"),
                         definitions=FLOPS_DEFINITIONS, plot={"label": "label", "value": "gflops_full"},
                         notes=["Elementwise ops (additions, activations, layer norms) are not counted; their "
                                "estimated size is in the JSON (uncounted_elementwise_g)."])
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    return 0


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
    bench = sub.add_parser("bench", help="benchmarks: GFLOPs, throughput, training cost, claims verdict").add_subparsers(
        dest="bench_command", metavar="BENCH_COMMAND", required=True)
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

    p = bench.add_parser("claims", help="the paper's efficiency claims against what was measured, with verdicts")
    p.add_argument("--flops", metavar="JSON", help="rows of `t2l bench flops --json` (default: count now, ~30 s)")
    p.add_argument("--throughput", metavar="JSON", help="a `t2l bench throughput` report (runs/bench/throughput.json)")
    p.add_argument("--training", metavar="JSON", help="a `t2l bench training` report")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_claims)
