"""The GPU check cannot rot: on any machine it plans every step (--dry-run), and its verdicts mean what they say."""
import subprocess
import sys
from pathlib import Path

from t2l_fast.perf.gpu_check import CHECK_BATCHES, GPU_TEST_MARKERS, Step, check_plan, run_step, summary_line

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_lists_every_step_and_runs_none(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                                              "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("setup: ") and "torch" in lines[0]  # what it would install, torch kept
    steps = [line for line in lines[1:] if line.startswith(("RUN ", "SKIP "))]
    names = " | ".join(steps)
    for marker in GPU_TEST_MARKERS:
        assert f"pytest -m {marker}" in names
    assert "throughput" in names and "claims verdict" in names and "engine layers" in names
    assert len(steps) == len(GPU_TEST_MARKERS) + 3
    assert all(line.startswith("RUN ") or ": " in line for line in steps)  # every skip says why
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


def test_the_check_plan_times_both_models_at_the_claims_operating_points():
    plan = check_plan()
    points = {(name, frames, batch) for name, frames, batches in plan.points for batch in batches}
    assert {("t2l_vit_b16", 8, b) for b in CHECK_BATCHES} <= points
    assert {("vificlip_vit_b16", f, b) for f in (8, 16, 32) for b in CHECK_BATCHES} <= points
    assert set(CHECK_BATCHES) == {1, 32} and "torch-cuda-fp16" in plan.backends


def test_a_step_passes_only_when_its_command_ran_and_succeeded(tmp_path):
    far = 10 ** 9
    ran = run_step(Step("ok", [sys.executable, "-c", "print('fine')"], 30), far)
    failed = run_step(Step("broken", [sys.executable, "-c", "raise SystemExit('it broke')"], 30), far)
    nothing = run_step(Step("empty", [sys.executable, "-c", "raise SystemExit(5)"], 30), far)  # pytest: none ran
    skipped = run_step(Step("gpu", ["false"], 30, skip_reason="no GPU"), far)
    assert (ran["verdict"], failed["verdict"], nothing["verdict"], skipped["verdict"]) == ("PASS", "FAIL", "SKIP",
                                                                                           "SKIP")
    assert summary_line(failed).endswith("it broke") and summary_line(skipped) == "SKIP gpu: no GPU"
    spent = run_step(Step("late", [sys.executable, "-c", "pass"], 30), deadline=0)
    assert spent["verdict"] == "SKIP" and "budget" in spent["reason"]


def test_a_step_with_a_finding_shows_it_on_its_pass_line():
    far = 10 ** 9
    script = "import sys; print('building'); print('attention fused: yes'); print('a warning', file=sys.stderr)"
    found = run_step(Step("layers", [sys.executable, "-c", script], 30, shows_finding=True), far)
    plain = run_step(Step("ok", [sys.executable, "-c", "print('fine')"], 30), far)
    assert summary_line(found).startswith("PASS layers (") and summary_line(found).endswith(": attention fused: yes")
    assert summary_line(plain).endswith(")")  # no finding shown


def test_the_engine_layers_step_skips_with_the_reason_where_no_tensorrt_flavour_can_run(monkeypatch, tmp_path):
    from t2l_fast.perf import gpu_check

    monkeypatch.setattr(gpu_check, "_cuda_missing", lambda: None)
    monkeypatch.setattr(gpu_check, "_tensorrt_missing", lambda: "no TensorRT flavour runs on compute capability 9.0")
    step = next(s for s in gpu_check.plan_steps(tmp_path) if s.name.startswith("engine layers"))
    assert step.skip_reason == "no TensorRT flavour runs on compute capability 9.0" and step.shows_finding
    assert "--engine-layers-only" in step.command


def test_a_gpu_test_run_where_every_test_skipped_is_not_a_pass():
    from t2l_fast.perf.gpu_check import _verdict

    step = Step("pytest -m gpu", ["pytest"], 30, pytest=True)
    skipped = ["SKIPPED [3] tests/conftest.py:44: needs a CUDA GPU", "3 skipped in 0.5s"]
    assert _verdict(step, 0, skipped) == ("SKIP", "every test skipped (needs a CUDA GPU)")
    assert _verdict(step, 0, ["2 passed, 1 skipped in 9.1s"]) == ("PASS", None)
    assert _verdict(step, 1, ["1 failed, 2 passed in 9.1s"])[0] == "FAIL"
    assert _verdict(step, 5, ["no tests ran"]) == ("SKIP", "no test selected")
