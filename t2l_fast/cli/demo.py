"""`t2l demo`: the product end to end on built-in synthetic data, into one run folder with its report."""
from __future__ import annotations

import argparse
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..io import check_writable

    check_writable(Path(args.out), "--out")
    run_demo(args.out, fast=args.fast, force=args.force)
    return 0


def register(sub) -> None:
    """Add the `demo` command to the `t2l` sub-parsers."""
    p = sub.add_parser("demo", help="the product end to end on built-in synthetic data: DALI loading, training, "
                       "evaluation, the order test, ONNX, INT8, a TensorRT engine, benchmarks, a report")
    p.add_argument("--out", default="runs/demo", help="run folder: report.md, report.html, summary.json and every "
                   "stage's files (default: runs/demo; never a folder the demo did not write)")
    p.add_argument("--fast", action="store_true", help="the test suite's budget: every stage, in about 2.5 "
                   "minutes instead of about 12.5 on 2 cores (the learning results are not meaningful)")
    p.add_argument("--force", action="store_true", help="redo the stages a previous run finished")
    p.set_defaults(run=_demo)
