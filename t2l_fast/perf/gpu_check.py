"""One GPU check for the day a GPU is lent: every GPU test marker its installed components allow, the training
equivalence tests on CUDA, the throughput of T2L against ViFi-CLIP (the paper's 4x claim), and whether TensorRT
fused attention in T2L's fp16 video encoder (engine_layers.json), in about 8 minutes.

    python -m t2l_fast.perf.gpu_check [--out DIR] [--budget-s 480] [--dry-run]
    (bench/gpu_check.sh installs what is missing first, never replacing the machine's torch)

One line per check (PASS / FAIL / SKIP: reason); `gpu_check.json` and the throughput report land in --out.
--dry-run plans every step and runs none (a CPU test runs it, so the script cannot rot).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

GPU_TEST_MARKERS = ("gpu", "dali_gpu", "tensorrt_gpu")
CHECK_MODELS = (("t2l_vit_b16", (8,)), ("vificlip_vit_b16", (8, 16, 32)))
CHECK_BATCHES = (1, 32)
CHECK_BACKENDS = ("torch-cuda-fp32", "torch-cuda-fp16", "onnxruntime-cuda-fp16")  # the plan drops what is missing
MARKER_TIMEOUT_S = {"gpu": 90, "dali_gpu": 45, "tensorrt_gpu": 100}  # with the steps below: about the 480 s budget
LAYERS_MODEL = "t2l_vit_b16"  # whose fp16 video-encoder engine the engine-layers step inspects


@dataclasses.dataclass
class Step:
    """One check: a command to run (in a subprocess, so a crash is one FAIL), or why it cannot run here."""

    name: str
    command: list[str]
    timeout_s: float
    skip_reason: str | None = None
    shows_finding: bool = False  # the command's last output line is its finding, shown on the PASS line
    pytest: bool = False  # a pytest run: it passes only if some test passed (all skipped is exit 0 too)


def _cuda_missing() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (torch.cuda.is_available() is False)"
    return None


def _dali_missing() -> str | None:
    from ..optional import dali_version

    return None if dali_version() else "NVIDIA DALI is not installed (pip install 't2l-fast[dali]')"


def _tensorrt_missing() -> str | None:
    from ..runtime.trt_support import engines_cannot_run_reason

    return engines_cannot_run_reason()


MARKER_NEEDS: dict[str, Callable[[], str | None]] = {"gpu": lambda: None, "dali_gpu": _dali_missing,
                                                         "tensorrt_gpu": _tensorrt_missing}


def plan_steps(out: Path) -> list[Step]:
    """Every step in order of value: the tests first (minutes), then the throughput run and the claims verdict."""
    cuda = _cuda_missing()
    python = [sys.executable, "-m"]
    steps = [Step(f"pytest -m {marker}", [*python, "pytest", "-q", "-rs", "-m", marker, "-p", "no:cacheprovider",
                                          "tests"],
                  timeout_s=MARKER_TIMEOUT_S[marker], skip_reason=cuda or MARKER_NEEDS[marker](), pytest=True)
             for marker in GPU_TEST_MARKERS]
    steps.append(Step("throughput (T2L vs ViFi-CLIP: torch fp32/fp16, ONNX Runtime CUDA where installed)",
                      [*python, "t2l_fast.perf.gpu_check", "--throughput-only", "--out", str(out)],
                      timeout_s=150, skip_reason=cuda))
    steps.append(Step("claims verdict", [*python, "t2l_fast.perf.gpu_check", "--claims-only", "--out", str(out)],
                      timeout_s=30, skip_reason=cuda, shows_finding=True))
    steps.append(Step(f"engine layers ({LAYERS_MODEL} fp16 video encoder: is attention fused?)",
                      [*python, "t2l_fast.perf.gpu_check", "--engine-layers-only", "--out", str(out)], timeout_s=100,
                      skip_reason=cuda or _tensorrt_missing(), shows_finding=True))
    return steps


def check_plan():
    """The throughput points of the check: T2L at 8 frames, ViFi-CLIP at 8/16/32, batch 1 and 32, short budgets.
    TensorRT is left to the tensorrt_gpu tests and the engine-layers step: building ViT-B/16 engines for four frame
    counts would take most of the 8 minutes (bench/gpu.sh times it)."""
    from .throughput import Plan

    points = [(name, frames, CHECK_BATCHES) for name, frame_counts in CHECK_MODELS for frames in frame_counts]
    return Plan(points, CHECK_BACKENDS, seconds=1.0, min_iterations=5, warmup=3, process_per="model",
                block_pair=("t2l_vit_b16", "clip_vit_b16", 8, 32), block_rounds=10)


def run_step(step: Step, deadline: float) -> dict:
    """Run one step within its timeout and what is left of the budget; its verdict and the tail of its output."""
    if step.skip_reason:
        return {"name": step.name, "verdict": "SKIP", "reason": step.skip_reason}
    left = deadline - time.monotonic()
    if left < 10:
        return {"name": step.name, "verdict": "SKIP", "reason": "the check's time budget is spent"}
    started = time.monotonic()
    try:
        result = subprocess.run(step.command, capture_output=True, text=True, timeout=min(step.timeout_s, left))
        output, code = result.stdout + result.stderr, result.returncode
        printed = [line for line in result.stdout.splitlines() if line.strip()]
    except subprocess.TimeoutExpired as e:
        output, code, printed = f"{e.stdout or ''}{e.stderr or ''}\ntimed out after {e.timeout:.0f} s", None, []
    tail = [line for line in output.splitlines() if line.strip()][-15:]
    verdict, reason = _verdict(step, code, tail)
    return {"name": step.name, "verdict": verdict, "exit_code": code, "seconds": round(time.monotonic() - started, 1),
            "reason": reason, "tail": tail,
            # the finding is the last line on stdout: a library's warning on stderr must not take its place
            "finding": printed[-1] if step.shows_finding and code == 0 and printed else None}


def _verdict(step: Step, code: int | None, tail: list[str]) -> tuple[str, str | None]:
    """PASS, FAIL or SKIP with its reason. pytest exits 5 when no test was selected and 0 when every selected test
    skipped: neither ran a GPU path, so neither is a pass."""
    if code == 5:
        return "SKIP", "no test selected"
    if code != 0:
        return "FAIL", None
    if step.pytest and not re.search(r"\b[1-9]\d* passed", tail[-1] if tail else ""):
        skipped = [line.split(": ", 1)[-1] for line in tail if line.startswith("SKIPPED")]
        return "SKIP", f"every test skipped ({skipped[0] if skipped else 'no reason printed'})"
    return "PASS", None


def engine_layers(out: Path) -> str:
    """Build LAYERS_MODEL's fp16 video-encoder engine, write the inspector's layers and their summary to
    out/engine_layers.json, and return the summary line."""
    from ..deploy.engine_build import BuildOptions, build_engine
    from ..models.registry import create_model
    from ..runtime.engine_layers import describe_layers, engine_information, summarize_layers
    from .backends import onnx_graph
    from .throughput import clips_for

    model = create_model(LAYERS_MODEL).eval()
    clips = clips_for(model.config.vision.image_size, model.config.frames, 1)  # calibrates int8 only: unused here
    graph = onnx_graph(model, out / "engine_layers", clips, "fp16")
    engine = graph.with_name("video_encoder_fp16.engine")
    build_engine(graph, BuildOptions(max_batch=8), engine, log=lambda line: None)
    information = engine_information(engine)
    summary = summarize_layers(information)
    report = {"model": LAYERS_MODEL, "engine": str(engine), "summary": summary, "inspector": json.loads(information)}
    (out / "engine_layers.json").write_text(json.dumps(report, indent=2) + "\n")
    return describe_layers(summary)


def environment() -> dict:
    """What this check ran on: the GPU, torch and CUDA, and each optional component's version."""
    import torch

    from ..optional import installed_versions
    from ..runtime.trt_support import current_gpu

    gpu = current_gpu()
    return {"gpu": gpu[0] if gpu else None, "compute_capability": gpu[1] if gpu else None,
            "torch": torch.__version__, "cuda": torch.version.cuda,
            **installed_versions(("nvidia-dali", "onnxruntime-gpu", "onnxruntime", "tensorrt", "tensorrt-rtx-cu13",
                                  "nvidia-ml-py"))}


def summary_line(result: dict) -> str:
    seconds = f" ({result['seconds']} s)" if result.get("seconds") is not None else ""
    if result["verdict"] == "FAIL":
        return f"FAIL {result['name']}{seconds}: {(result['tail'] or ['no output'])[-1]}"
    if result["verdict"] == "SKIP":
        return f"SKIP {result['name']}: {result['reason']}"
    finding = f": {result['finding']}" if result.get("finding") else ""
    return f"PASS {result['name']}{seconds}{finding}"


def throughput_step(out: Path) -> int:
    """The throughput step (its own process): 0 only if every planned point of every available backend was measured
    and passed its gate against torch fp32; else 1, naming what was not."""
    from .backends import available
    from .reports import throughput_report

    plan = check_plan()
    rows = throughput_report(plan, out)
    backends = available(list(plan.backends))
    planned = {(name, frames, batch, backend) for name, frames, batches in plan.points for batch in batches
               for backend in backends}
    passed = {(r["model"], r["frames"], r["batch"], r["backend"]) for r in rows if r.get("passed")}
    missing = sorted(planned - passed)
    if missing:
        print(f"{len(missing)} of {len(planned)} planned points not measured or not passing their gate, e.g. "
              f"{' '.join(map(str, missing[0]))}")
        return 1
    return 0


def claims_step(out: Path) -> int:
    """The claims step: the verdict table from the throughput report, and the throughput claim's verdict as its last
    line (the finding the check prints)."""
    from .reports import claims_report

    rows = claims_report(out, throughput_json=out / "throughput.json")
    print("; ".join(f"{r['claim']}: {r['verdict']}" for r in rows if "throughput" in r["claim"].lower())
          or "no throughput claim measured")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m t2l_fast.perf.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"), help="folder for gpu_check.json and "
                        "the throughput report (default runs/gpu_check)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole check's time budget (default 480)")
    parser.add_argument("--dry-run", action="store_true", help="plan every step, run none")
    parser.add_argument("--throughput-only", action="store_true", help=argparse.SUPPRESS)  # the throughput step
    parser.add_argument("--engine-layers-only", action="store_true", help=argparse.SUPPRESS)  # the layers step
    parser.add_argument("--claims-only", action="store_true", help=argparse.SUPPRESS)  # the claims step
    args = parser.parse_args(argv)
    if args.engine_layers_only:
        args.out.mkdir(parents=True, exist_ok=True)
        print(engine_layers(args.out))
        return 0
    if args.throughput_only:
        return throughput_step(args.out)
    if args.claims_only:
        return claims_step(args.out)
    steps = plan_steps(args.out)
    if args.dry_run:
        for step in steps:
            print(f"{'SKIP' if step.skip_reason else 'RUN '} {step.name}: {step.skip_reason or ' '.join(step.command)}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    deadline, results = time.monotonic() + args.budget_s, []
    for step in steps:
        results.append(run_step(step, deadline))
        print(summary_line(results[-1]), flush=True)
    report = {"environment": environment(), "budget_s": args.budget_s, "checks": results}
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / 'gpu_check.json'}")
    return 1 if any(r["verdict"] == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
