"""`t2l bench ...`: parameters and GFLOPs, throughput, training cost, the verdict on the paper's claims, and
serving."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..perf.reports import FULL_MODELS, QUICK_MODELS
from .common import EXPORT_BACKENDS, RUN_BATCH_HELP, positive_float, positive_int, run_batch


def _outputs_first(run):
    """`run`, after checking that its output folders can be written (cheap), before any counting or measuring."""
    def checked(args: argparse.Namespace) -> int:
        from ..io import check_writable

        check_writable(args.out, "--out")
        json, work_dir = getattr(args, "json", None), getattr(args, "work_dir", None)  # flops; throughput
        for option, folder in (("--json", json and Path(json).parent), ("--work-dir", work_dir)):
            if folder:
                check_writable(folder, option)
        return run(args)

    return checked


def _flops(args: argparse.Namespace) -> int:
    from ..perf.reports import flops_report

    flops_report(args.models or (QUICK_MODELS if args.quick else FULL_MODELS), args.frames, args.out, args.json)
    return 0


def _throughput(args: argparse.Namespace) -> int:
    from ..perf.reports import end_to_end_report, throughput_plan, throughput_report

    plan = throughput_plan(args.quick, args.gpu, args.backends, args.seconds, args.models)
    throughput_report(plan, args.out, args.work_dir)
    if args.end_to_end:
        end_to_end_report(plan, 2 if args.quick else 4, args.data, args.out, args.work_dir or args.out / "graphs")
    return 0


def _training(args: argparse.Namespace) -> int:
    from ..perf.reports import training_report

    t2l, vificlip = ("t2l_tiny", "vificlip_tiny") if args.quick else ("t2l_vit_b16", "vificlip_vit_b16")
    training_report(t2l, vificlip, args.batch or (4 if args.quick else 2), args.steps, args.out)
    return 0


def _claims(args: argparse.Namespace) -> int:
    from ..perf.reports import claims_report

    claims_report(args.out, args.flops, args.throughput, args.training)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..perf.reports import serve_report

    serve_report(args.onnx, args.backend, args.clients, args.requests, args.max_batch, args.calls, args.out,
                 run_batch=args.run_batch)
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
    p.add_argument("--frames", nargs="+", type=positive_int, default=[8, 16, 32],
                   help="frame counts of the frame-averaging models (default 8 16 32)")
    p.add_argument("--quick", action="store_true", help="tiny models (seconds)")
    p.add_argument("--json", metavar="OUT.json", help="also write the rows as a JSON list")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_outputs_first(_flops))

    p = bench.add_parser("throughput", help="T2L vs ViFi-CLIP vs CLIP clips/s per backend in one run, gated",
                         description="Default: ViT-B/16 on this CPU (about 40 min on 2 cores); --quick: tiny models "
                         "(under a minute); --gpu: the GPU plan (fp16, batch 32-128).")
    p.add_argument("--quick", action="store_true", help="tiny models, short budgets (tests and the demo)")
    p.add_argument("--gpu", action="store_true", help="the GPU plan (torch CUDA fp32/fp16 at batch 32-128)")
    p.add_argument("--backends", nargs="+", help="a subset of the plan's backends")
    p.add_argument("--models", nargs="+", help="a subset of the plan's models (e.g. t2l_vit_b16)")
    p.add_argument("--seconds", type=positive_float, help="time budget of one measurement's timed calls")
    p.add_argument("--work-dir", type=Path, help="keep the exported ONNX graphs here (default: a temporary folder)")
    p.add_argument("--end-to-end", action="store_true", help="also time the loader (decode + augment, PyAV and, "
                   "where installed, DALI) feeding the model, and say which stage limits")
    p.add_argument("--data", type=Path, help="with --end-to-end: a folder with val.txt (default: synthetic videos)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_outputs_first(_throughput))

    p = bench.add_parser("training", help="T2L vs ViFi-CLIP optimiser-step time and peak memory (checkpointing "
                         "on and off)")
    p.add_argument("--quick", action="store_true", help="tiny models (seconds)")
    p.add_argument("--batch", type=positive_int, help="clips per step (default 2; --quick 4)")
    p.add_argument("--steps", type=positive_int, default=2, help="timed steps after the warm-up step (default 2)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_outputs_first(_training))

    p = bench.add_parser("claims", help="the paper's efficiency claims against what was measured, with verdicts")
    p.add_argument("--flops", metavar="JSON", help="rows of `t2l bench flops --json` (default: count now, ~30 s)")
    p.add_argument("--throughput", metavar="JSON", help="a `t2l bench throughput` report (runs/bench/throughput.json)")
    p.add_argument("--training", metavar="JSON", help="a `t2l bench training` report")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_outputs_first(_claims))
    _register_serve(bench)


def _register_serve(bench) -> None:
    p = bench.add_parser("serve", help="t2l serve at 1/4/16/64 clients vs the same backend in process at its best "
                         "batch: clips/s, p50/p90/p99 latency, batch sizes formed",
                         description="The video encoder of an export folder: in process at batch 1..--max-batch, "
                         "then served by `t2l serve` (a real Triton server on this machine) to concurrent HTTP "
                         "clients sending one clip per request.")
    p.add_argument("--onnx", metavar="DIR", type=Path, required=True, help="a folder written by `t2l export onnx`")
    p.add_argument("--backend", choices=EXPORT_BACKENDS, default="onnx",
                   help="as in `t2l serve`; auto is resolved once and both sides run what it chose (default onnx)")
    p.add_argument("--clients", nargs="+", type=positive_int, default=[1, 4, 16, 64],
                   help="concurrent client counts (default 1 4 16 64)")
    p.add_argument("--requests", type=positive_int, default=256,
                   help="requests per client count, shared among its clients (default 256)")
    p.add_argument("--max-batch", type=positive_int, default=32, help="the server's batch limit (default 32)")
    p.add_argument("--run-batch", type=run_batch, default=None, metavar="N|auto",
                   help="as in `t2l serve`: " + RUN_BATCH_HELP)
    p.add_argument("--calls", type=positive_int, default=20, help="timed in-process calls per batch (default 20)")
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="report folder (default runs/bench)")
    p.set_defaults(run=_outputs_first(_serve))
