"""Benchmarks: the FLOP counts (traced in two accountings, closed form), the claims verdict on crafted inputs, and
the report files' schema."""
import importlib.util
import json

import pytest

from t2l_fast.cli import main
from t2l_fast.errors import T2LError
from t2l_fast.models.registry import get_model_config
from t2l_fast.perf import analytic, claims, flops

pytest.importorskip("fvcore", reason="pip install 't2l-fast[bench]' (fvcore)")


@pytest.mark.parametrize("name", ["t2l_tiny", "vificlip_tiny", "clip_tiny"])
def test_traced_counts_agree_with_the_closed_form(name):
    for row in flops.count_model(name, (8, 16)):  # check=True raises beyond 1%
        assert row["gflops_full"] == pytest.approx(row["gflops_analytic"], rel=0.01)
        assert row["gflops_attention_blind"] == pytest.approx(row["gflops_analytic_attention_blind"], rel=0.01)
        assert row["gflops_attention_blind"] < row["gflops_full"]
        assert sum(row["by_module_gflops"].values()) == pytest.approx(row["gflops_full"])
        assert row["by_module_gflops"]["attention"] == pytest.approx(row["gflops_full"] - row["gflops_attention_blind"])
        assert (row["by_module_gflops"]["adapters"] > 0) == (name == "t2l_tiny")


def test_the_closed_form_gives_the_hand_computed_figures():
    """docs/design/BASELINES_AND_CLAIMS.md and docs/design/T2L_SPEC.md, computed by hand: CLIP ViT-B/16 17.56 GMAC per
    frame, 2.98 per prompt; T2L ~146.6 per 8-frame clip (ours skips the temporal token's own query: 146.45), ~95.7
    attention-blind, ~3.1 per prompt (2.06 attention-blind)."""
    clip, t2l = get_model_config("clip_vit_b16"), get_model_config("t2l_vit_b16")
    assert analytic.vision_macs(clip, 1) / 1e9 == pytest.approx(17.56, abs=0.01)
    assert analytic.vision_macs(clip, 16) / 1e9 == pytest.approx(281.0, abs=0.1)  # ViFi-CLIP's published 281
    assert analytic.text_macs(clip) / 1e9 == pytest.approx(2.98, abs=0.01)
    assert analytic.vision_macs(t2l, 8) / 1e9 == pytest.approx(146.6, abs=0.2)
    assert analytic.vision_macs(t2l, 8, attention=False) / 1e9 == pytest.approx(95.7, abs=0.1)
    assert analytic.text_macs(t2l) / 1e9 == pytest.approx(3.1, abs=0.01)
    assert analytic.text_macs(t2l, attention=False) / 1e9 == pytest.approx(2.06, abs=0.01)


def test_an_op_fvcore_cannot_count_fails_the_count(monkeypatch):
    monkeypatch.setattr(flops, "ELEMENTWISE", set())  # now additions and products of vectors are "unknown" ops
    with pytest.raises(T2LError, match="fvcore cannot count .*aten::mul.*add a handle"):
        flops.trace_count(__import__("t2l_fast").create_model("clip_tiny"), "encode_video",
                          __import__("torch").randn(1, 8, 3, 32, 32))


def test_a_heavy_op_outside_aten_fails_the_count():
    """An autograd Function is traced as prim::PythonOp.NAME: fvcore cannot count it, and its estimate (one per
    output element) must reach the share check under that name."""
    import torch

    class Repeat(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.repeat(1, 200)  # 12,800 outputs beside the Linear's 4,096 multiply-adds

        @staticmethod
        def backward(ctx, grad):
            return grad

    class Model(torch.nn.Module):
        config = type("Config", (), {"name": "repeat"})

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 64)

        def encode_video(self, x):
            return Repeat.apply(self.linear(x))

    with pytest.raises(T2LError, match=r"fvcore cannot count prim::PythonOp\.Repeat"):
        flops.trace_count(Model(), "encode_video", torch.randn(1, 64))


def test_flops_command_writes_rows_and_a_report(tmp_path, capsys):
    assert main(["bench", "flops", "--quick", "--models", "t2l_tiny", "--frames", "8", "--json",
                 str(tmp_path / "rows.json"), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    required = {"model", "frames", "gflops_full", "gflops_attention_blind", "gflops_analytic", "learnable_params",
                "total_params"}
    assert len(rows) == 1 and required <= set(rows[0])
    report = json.loads((tmp_path / "flops.json").read_text())
    assert {"title", "conditions", "definitions", "rows", "notes"} <= set(report)
    assert "multiply-adds" in capsys.readouterr().out and (tmp_path / "flops.md").is_file()


# ------------------------------------------------------------------------------------------- verdicts
def flops_row(model, frames, full, blind, learnable):
    return {"model": model, "frames": frames, "gflops_full": full, "gflops_attention_blind": blind,
            "learnable_params": learnable}


PAPER_LIKE = [flops_row("t2l_vit_b16", 8, 146.5, 95.7, 5.2e6), flops_row("vificlip_vit_b16", 8, 140.5, 90.2, 124.3e6),
              flops_row("vificlip_vit_b16", 16, 281.0, 180.3, 124.3e6),
              flops_row("vificlip_vit_b16", 32, 562.0, 360.7, 124.3e6)]


def test_verdict_thresholds():
    assert claims.verdict(2.7, 3.0) == claims.HOLDS and claims.verdict(2.69, 3.0) == claims.DOES_NOT_HOLD
    assert claims.verdict(5.7, 5.2, larger_is_better=False) == claims.HOLDS  # 5.2 >= 0.9 x 5.7
    assert claims.verdict(5.8, 5.2, larger_is_better=False) == claims.DOES_NOT_HOLD
    assert claims.verdict(None, 3.0) == claims.NOT_MEASURED


def test_gflops_claim_holds_only_under_the_mixed_or_operating_point_accountings():
    rows = claims.gflops_claims(PAPER_LIKE)
    by = {r["accounting"]: r["verdict"] for r in rows}
    assert by["equal frames (8 vs 8), full count"] == claims.DOES_NOT_HOLD
    assert by["ViFi-CLIP 16f vs T2L 8f, full count"] == claims.DOES_NOT_HOLD
    assert by["ViFi-CLIP 32f vs T2L 8f, full count"] == claims.HOLDS
    assert by["ViFi-CLIP 16f full vs T2L 8f attention-blind (the paper's likely accounting)"] == claims.HOLDS
    assert by["overall"].startswith("holds only under accounting ViFi-CLIP 32f")
    cheap = [dict(r, gflops_full=r["gflops_full"] / 4) if r["model"] == "t2l_vit_b16" else r for r in PAPER_LIKE]
    assert claims.gflops_claims(cheap)[-1]["verdict"] == claims.HOLDS  # equal frames holds: the claim holds
    dear = [dict(r, gflops_full=600.0, gflops_attention_blind=600.0) if r["model"] == "t2l_vit_b16" else r
            for r in PAPER_LIKE]
    assert claims.gflops_claims(dear)[-1]["verdict"] == claims.DOES_NOT_HOLD


def test_throughput_claim_per_backend_and_operating_point():
    def row(model, frames, clips_per_s, backend="torch-eager", passed=True):
        return {"model": model, "frames": frames, "backend": backend, "batch": 1, "passed": passed,
                "clips_per_s": clips_per_s, "device": "cpu"}

    measured = [row("t2l_vit_b16", 8, 1.0), row("vificlip_vit_b16", 8, 1.05), row("vificlip_vit_b16", 16, 0.52),
                row("vificlip_vit_b16", 32, 0.24), row("t2l_vit_b16", 8, 9.0, "onnxruntime-int8", passed=False)]
    rows = claims.throughput_claims(measured)
    assert [r["verdict"] for r in rows[:3]] == [claims.DOES_NOT_HOLD, claims.DOES_NOT_HOLD, claims.HOLDS]
    assert rows[-1]["verdict"] == "holds only under accounting ViFi-CLIP 32f vs T2L 8f, torch-eager, batch 1, cpu"
    assert not any("onnxruntime-int8" in r["accounting"] for r in rows)  # a backend that failed its gate is out
    assert claims.throughput_claims([])[0]["verdict"] == claims.NOT_MEASURED


def test_parameter_and_training_claims():
    params = claims.parameter_claims(PAPER_LIKE)
    assert [r["verdict"] for r in params] == [claims.HOLDS, claims.HOLDS]  # 5.2M; 124.3 / 5.2 = 23.9 >= 22.5
    assert claims.training_claims([{"model": "t2l_vit_b16", "device": "cpu", "recipe": True}])[0]["verdict"] == \
        claims.NOT_MEASURABLE
    gpu = [{"model": "t2l_vit_b16", "device": "NVIDIA H200", "recipe": True, "peak_memory_gb": 31.0}]
    assert claims.training_claims(gpu)[0]["verdict"] == claims.HOLDS


def test_claims_command_reads_rows_and_writes_the_table(tmp_path, capsys):
    (tmp_path / "flops.json").write_text(json.dumps(PAPER_LIKE))
    assert main(["bench", "claims", "--flops", str(tmp_path / "flops.json"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| claim | paper | measured | accounting | verdict | note |" in printed
    assert "holds: measured >= 0.9" in printed
    report = json.loads((tmp_path / "claims.json").read_text())
    assert all(set(claims.COLUMNS[:5]) <= set(r) for r in report["rows"])


# ------------------------------------------------------------------------------------------- measurements
def test_throughput_rows_are_gated_and_complete(tmp_path):
    from t2l_fast.perf.throughput import Plan, run_plan, targets

    plan = Plan([("t2l_tiny", 8, (1, 2)), ("vificlip_tiny", 16, (1,))],
                ("torch-eager", "onnxruntime-fp32", "onnxruntime-int8"), seconds=0.05, min_iterations=2, warmup=1)
    rows, machine = run_plan(plan, tmp_path, progress=lambda line: None)
    assert not [r for r in rows if "error" in r], rows
    assert {(r["model"], r["frames"], r["batch"], r["backend"]) for r in rows} == {
        (m, f, b, backend) for m, f, batches in plan.points for b in batches for backend in plan.backends}
    for r in rows:
        assert r["passed"], r  # tiny graphs meet every gate
        assert r["iterations"] >= 2 and r["median_s"] > 0 and r["p99_s"] >= r["median_s"]
        assert r["clips_per_s"] == pytest.approx(r["batch"] / r["median_s"])
        assert r["frames_per_s"] == pytest.approx(r["clips_per_s"] * r["frames"])
        assert r["peak_memory_mb"] > 0 and r["peak_fraction"] > 0
    eager = [r for r in rows if r["backend"] == "torch-eager"]
    assert all(r["speedup_vs_eager"] == 1.0 for r in eager)
    assert machine["matmul_peak_gflop_s"]["fp32"] > 0
    assert targets(rows, "t2l_tiny")[0].startswith("t2l_tiny B=1: best gated backend")
    for backend in ("onnxruntime-fp32", "onnxruntime-int8"):  # its last row: ONNX Runtime's profile of one point
        last = [r for r in rows if r["backend"] == backend and r["model"] == "t2l_tiny"][-1]
        assert "MatMul" in last["time_by_op"] and "%" in last["time_by_op"], last
    assert next(r for r in rows if r["backend"] == "torch-eager")["isa"].startswith("torch CPU capability")


def test_t2l_block_ratio_to_the_plain_image_tower(tmp_path):
    """The report's T2L-block lines: per backend from the rows, and timed in alternation in one fresh process."""
    from t2l_fast.perf.throughput import Plan, block_ratio_lines, run_plan

    plan = Plan([("t2l_tiny", 8, (1,)), ("clip_tiny", 8, (1,))], ("torch-eager",), seconds=0.05, min_iterations=2,
                warmup=1, block_pair=("t2l_tiny", "clip_tiny", 8, 1), block_rounds=4)
    rows, machine = run_plan(plan, tmp_path, progress=lambda line: None)
    interleaved = machine["block_ratio_interleaved"]
    assert interleaved["rounds"] == 4 and interleaved["ratio"] == pytest.approx(
        interleaved["t2l_median_s"] / interleaved["tower_median_s"])
    lines = block_ratio_lines(rows, interleaved)
    t2l, clip = (next(r for r in rows if r["model"] == m) for m in ("t2l_tiny", "clip_tiny"))
    assert lines[0].startswith(f"T2L block: t2l_tiny 8f B=1 on torch-eager takes "
                               f"{clip['clips_per_s'] / t2l['clips_per_s']:.2f}x the time of clip_tiny")
    assert lines[1].startswith("T2L block, interleaved (4 alternating calls") and "target <= 1.05x" in lines[1]


def test_a_backend_that_fails_its_gate_is_marked(tmp_path, monkeypatch):
    from t2l_fast.perf import backends
    from t2l_fast.runtime.compare import Tolerance

    monkeypatch.setattr(backends, "REDUCED_GATE", Tolerance(max_abs=1e-9))  # int8 cannot meet this
    from t2l_fast.perf.throughput import Plan, measure_backend

    plan = Plan([("t2l_tiny", 8, (1,))], ("torch-eager", "onnxruntime-int8"), seconds=0.01, min_iterations=1)
    rows = [row for backend in plan.backends  # the reference first: it leaves its embeddings in tmp_path
            for row in measure_backend("t2l_tiny", backend, plan, tmp_path, tmp_path, {"fp32": 1e11, "int8": 1e11})]
    assert [r["passed"] for r in rows] == [True, False]


def test_training_cost_rows(tmp_path):
    from t2l_fast.perf.training_cost import run_training_cost

    rows = run_training_cost("t2l_tiny", "vificlip_tiny", batch=2, steps=1, progress=lambda line: None,
                             only=[("t2l_tiny", 8, False), ("vificlip_tiny", 8, False)])
    assert [r["model"] for r in rows] == ["t2l_tiny", "vificlip_tiny"], rows
    t2l, vifi = rows
    assert t2l["learnable_params"] == 14_816 and vifi["learnable_params"] == 326_849
    assert t2l["step_time_vs_t2l"] == 1.0 and vifi["step_s"] > 0 and vifi["peak_memory_gb"] > 0
    assert t2l["recipe"] and not vifi["recipe"]  # ViFi-CLIP's recipe is 32 frames
    assert t2l["precision"] == vifi["precision"] == "bf16"  # the trainer's default recipe, not plain fp32


def test_end_to_end_names_the_limiting_stage(tmp_path):
    from t2l_fast.perf.end_to_end import run_end_to_end

    rows = run_end_to_end(["t2l_tiny"], ["torch-eager"], 2, None, tmp_path, tmp_path / "graphs", ["pyav"],
                          progress=lambda line: None)
    assert len(rows) == 1 and "error" not in rows[0], rows
    row = rows[0]
    assert row["clips"] == 24 and row["limited_by"] in ("loader", "model")  # 12 classes x 2 val clips
    slower = min(row["loader_clips_per_s"], row["model_clips_per_s"])
    assert row["limited_by"] == ("loader" if row["loader_clips_per_s"] == slower else "model")
    assert row["end_to_end_clips_per_s"] > 0


def test_gpu_backends_are_left_out_without_a_gpu(monkeypatch):
    import torch

    from t2l_fast.perf.backends import available
    from t2l_fast.perf.throughput import GPU_BACKENDS

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert available(list(GPU_BACKENDS)) == []
    assert available(["torch-eager", "onnxruntime-int8"]) == ["torch-eager", "onnxruntime-int8"]


@pytest.mark.parametrize("capability, runs", [((9, 0), False), ((8, 0), False), ((8, 9), True), ((12, 0), True)])
def test_tensorrt_backend_counts_only_where_an_installed_flavour_runs_on_the_gpu(monkeypatch, capability, runs):
    """With only TensorRT for RTX installed, an H100/H200 (9.0) or an A100 (8.0, see RTX_DEFAULT_SET) gets no
    tensorrt-fp16 row (its engine would build, then be refused); an RTX GPU does. The same rule skips the
    tensorrt_gpu tests."""
    import torch

    from t2l_fast.perf.backends import available
    from t2l_fast.runtime.trt_support import engines_cannot_run_reason

    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX not installed: pip install 't2l-fast[tensorrt-rtx]'")
    if importlib.util.find_spec("tensorrt"):
        pytest.skip("full TensorRT is installed: it runs on every compute capability, so there is no refusal to check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=0: capability)
    assert available(["tensorrt-fp16"]) == (["tensorrt-fp16"] if runs else [])
    reason = engines_cannot_run_reason()
    assert (reason is None) == runs
    if not runs:
        assert f"compute capability {capability[0]}.{capability[1]}" in reason and "install full TensorRT" in reason


@pytest.mark.without_gpu
def test_tensorrt_backend_builds_its_engine_and_refuses_to_run_without_a_gpu(tmp_path):
    from t2l_fast.perf.backends import build_backend
    from t2l_fast.perf.throughput import clips_for

    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX not installed: pip install 't2l-fast[tensorrt-rtx]'")
    from t2l_fast.models.registry import create_model

    model = create_model("t2l_tiny").eval()
    with pytest.raises(T2LError, match="needs an NVIDIA GPU"):
        build_backend("tensorrt-fp16", model, tmp_path, clips_for(model.config.vision.image_size, 8, 2), max_batch=2)
    sidecar = json.loads((tmp_path / "t2l_tiny-fp16" / "video_encoder_b2.engine.json").read_text())
    assert sidecar["precision"] == "fp16" and sidecar["profile"]["frames"]["max"][0] == 2


def expected_gpu_backends() -> dict[str, str]:
    """The GPU backends this machine's installs should give a row, each with why it is expected: torch CUDA always,
    ONNX Runtime's for each GPU provider compiled into onnxruntime-gpu, TensorRT where a flavour runs on this GPU.
    Worked out here, not through `available()`, so that a backend it drops is a failure, not a smaller test."""
    from t2l_fast.optional import installed
    from t2l_fast.runtime.ort_runner import PROVIDERS
    from t2l_fast.runtime.trt_support import engines_cannot_run_reason

    expected = {"torch-cuda-fp32": "torch sees a CUDA GPU", "torch-cuda-fp16": "torch sees a CUDA GPU"}
    if installed("onnxruntime-gpu"):
        import onnxruntime

        for name in ("cuda", "tensorrt"):
            if PROVIDERS[name] in onnxruntime.get_available_providers():
                expected[f"onnxruntime-{name}-fp16"] = (f"onnxruntime-gpu {installed('onnxruntime-gpu')} has "
                                                        f"{PROVIDERS[name]} compiled in")
    if engines_cannot_run_reason() is None:
        expected["tensorrt-fp16"] = "a TensorRT flavour runs on this GPU"
    return expected


@pytest.mark.gpu
def test_gpu_backends_pass_their_gates(tmp_path):
    from t2l_fast.perf.throughput import GPU_BACKENDS, Plan, run_plan
    from t2l_fast.runtime.ort_runner import PROVIDERS

    expected = expected_gpu_backends()
    print("GPU backends expected from the installs:", expected)
    plan = Plan([("t2l_tiny", 8, (1, 4))], GPU_BACKENDS, seconds=0.05, min_iterations=2, warmup=1)
    rows, _ = run_plan(plan, tmp_path, progress=lambda line: None)
    assert not [r for r in rows if "error" in r], rows
    missing = {name: why for name, why in expected.items() if name not in {r["backend"] for r in rows}}
    assert not missing, f"expected GPU backends with no row: {missing}"
    assert all(r["passed"] for r in rows), rows
    for r in rows:
        if r["backend"].startswith("onnxruntime-"):  # where ONNX Runtime really ran the nodes, not what it was asked
            provider = PROVIDERS[r["backend"].split("-")[1]]
            assert r["nodes_per_provider"].get(provider, 0) > 0, r


class _CudaBatch:
    """Stands in for a loader's CUDA uint8 batch: torch refuses .numpy() on it, .cpu() copies it to the host."""

    shape = (1, 8, 3, 4, 4)

    def numpy(self):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                        "host memory first.")

    def cpu(self):
        import torch

        return torch.zeros(self.shape, dtype=torch.uint8)


def test_end_to_end_feeds_a_cuda_batch_as_each_backend_takes_it():
    """torch backends take the batch where the loader left it; host backends get a .cpu() copy, never .numpy() on
    the CUDA tensor (which failed every DALI end-to-end row on a GPU)."""
    import numpy as np

    from t2l_fast.perf.backends import FP32_GATE, Backend
    from t2l_fast.perf.end_to_end import _clips_per_second

    batch, fed = _CudaBatch(), []
    on_device = Backend("torch-cuda-fp32", "fp32", fed.append, FP32_GATE, takes_tensors=True)
    on_host = Backend("onnxruntime-fp32", "fp32", fed.append, FP32_GATE)
    assert "no copy" in on_device.handoff and ".cpu()" in on_host.handoff
    assert _clips_per_second([{"video": batch}], on_device) > 0 and fed.pop() is batch
    assert _clips_per_second([{"video": batch}], on_host) > 0 and isinstance(fed.pop(), np.ndarray)


def test_targets_compare_our_best_with_openvinos_own_recipe():
    """OpenVINO's NNCF recipe is what our best backend is measured against, never a candidate for 'our best'."""
    from t2l_fast.perf.reports import throughput_plan
    from t2l_fast.perf.throughput import kernel_lines, targets

    def row(backend, clips_per_s, precision="int8", **facts):
        return {"model": "t2l_vit_b16", "frames": 8, "batch": 1, "backend": backend, "precision": precision,
                "passed": True, "clips_per_s": clips_per_s, "peak_fraction": None, **facts}

    rows = [row("torch-eager", 1.0, "fp32", isa="torch CPU capability AVX2"), row("onnxruntime-int8", 3.6),
            row("openvino-nncf", 3.0, matmul_kernels="jit_gemm_i8 x48", time_by_op="FullyConnected/jit_gemm_i8 70%")]
    assert targets(rows) == ["t2l_vit_b16 B=1: best gated backend onnxruntime-int8 at 3.60x torch eager (target 3x: "
                             "met)", "t2l_vit_b16 B=1: onnxruntime-int8 at 1.20x OpenVINO's own recipe "
                             "(openvino-nncf: convert_model + nncf.quantize); target 1.1x: met"]
    rows[-1]["clips_per_s"] = 4.0  # NNCF faster: the target is missed, and our best is still ours
    assert targets(rows)[1].endswith("at 0.90x OpenVINO's own recipe (openvino-nncf: convert_model + "
                                     "nncf.quantize); target 1.1x: missed")
    rows[-1].update(passed=False, parity={"min_cosine": 0.9886})  # a recipe that fails the gate is no rival
    assert targets(rows)[1].endswith("failed the gate (min cosine 0.9886 < 0.99): target 1.1x missed, against a "
                                     "rival that does not reach our accuracy")
    assert kernel_lines(rows) == ["t2l_vit_b16 8f B=1 torch-eager: isa torch CPU capability AVX2",
                                  "t2l_vit_b16 8f B=1 openvino-nncf: matmul_kernels jit_gemm_i8 x48; time_by_op "
                                  "FullyConnected/jit_gemm_i8 70%"]
    plan = throughput_plan(models=["t2l_vit_b16"])
    assert {name for name, _, _ in plan.points} == {"t2l_vit_b16"} and plan.block_pair is None
    with pytest.raises(T2LError, match="--models t2l_nope: not in this plan"):
        throughput_plan(models=["t2l_nope"])
