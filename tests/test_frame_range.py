"""A free frame axis (ViFi-CLIP, CLIP) builds over a MIN:OPT:MAX range: the profile, the sidecar, the runner's
refusal outside it, the refusal of --frames for T2L (fixed frames), and the throughput backend's engines per frame
count of its plan."""
from contextlib import nullcontext

import pytest
from test_tensorrt import needs_rtx

from t2l_fast.cli import main
from t2l_fast.deploy.engine_build import BuildOptions, build_engine, parse_frames, profile_shapes
from t2l_fast.errors import T2LError, UnsupportedOptionError
from t2l_fast.runtime.base import ArtifactError
from t2l_fast.runtime.engine_sidecar import check_frame_count, read_sidecar
from t2l_fast.runtime.graph_header import read_graph_facts


def test_frames_parse_as_one_count_or_min_opt_max():
    assert parse_frames("16") == (16, 16, 16) and parse_frames("8:16:32") == (8, 16, 32)
    for wrong in ("8:32", "a", "8:16:32:64", ""):
        with pytest.raises(T2LError, match="MIN:OPT:MAX"):
            parse_frames(wrong)
    with pytest.raises(T2LError, match="1 <= MIN <= OPT <= MAX"):
        BuildOptions(frames=(16, 8, 32)).validate()


@needs_rtx
def test_a_free_frame_axis_builds_over_the_range_and_the_sidecar_records_it(tiny_exports, tmp_path):
    onnx = tiny_exports.copy(tmp_path / "export", "vificlip_tiny") / "video_encoder.onnx"
    engine = tmp_path / "video_encoder.engine"
    options = BuildOptions(max_batch=4, runtime="tensorrt-rtx", frames=(8, 16, 32))
    sidecar = build_engine(onnx, options, engine, log=lambda line: None)
    assert read_sidecar(engine)["frames"] == {"min": 8, "opt": 16, "max": 32}
    assert sidecar["profile"]["frames"] == {"min": [1, 8, 3, 32, 32], "opt": [4, 16, 3, 32, 32],
                                            "max": [4, 32, 3, 32, 32]}
    assert sidecar["rebuild"].endswith("--frames 8:16:32")
    for frames in (8, 16, 32):
        check_frame_count(sidecar, frames)
    with pytest.raises(ArtifactError, match=r"built for 8\.\.32 frames .*not 64; rebuild: t2l export trt .*"
                                            r"--frames 8:16:64$"):
        check_frame_count(sidecar, 64)


@needs_rtx
def test_by_default_a_free_frame_axis_is_fixed_at_the_exports_T_and_other_counts_are_refused(tiny_exports,
                                                                                                tmp_path):
    onnx = tiny_exports.copy(tmp_path / "export", "vificlip_tiny") / "video_encoder.onnx"
    sidecar = build_engine(onnx, BuildOptions(max_batch=2, runtime="tensorrt-rtx"), tmp_path / "e.engine",
                           log=lambda line: None)
    assert sidecar["frames"] == {"min": 8, "opt": 8, "max": 8} and "--frames" not in sidecar["rebuild"]
    with pytest.raises(ArtifactError, match=r"built for 8\.\.8 frames .*not 16; rebuild: .* --frames 8:8:16$"):
        check_frame_count(sidecar, 16)


def test_frames_are_refused_for_a_graph_whose_frame_axis_is_fixed(tiny_exports, tmp_path, capsys):
    folder = tiny_exports.copy(tmp_path / "export", "t2l_tiny")
    facts = read_graph_facts(folder / "video_encoder.onnx")
    with pytest.raises(UnsupportedOptionError, match="frame axis fixed at 8 .*drop --frames"):
        profile_shapes(facts, BuildOptions(frames=(8, 16, 32)))
    assert profile_shapes(read_graph_facts(folder / "text_encoder.onnx"), BuildOptions(frames=(8, 16, 32)))
    assert main(["export", "trt", "--onnx", str(folder / "classifier.onnx"), "--frames", "8:16:32"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--frames 8:16:32" in error and "fixed at 8" in error and len(error.splitlines()) == 1


def test_the_throughput_backend_asks_for_the_frame_counts_its_plan_needs(monkeypatch, tmp_path):
    from t2l_fast.perf import backends
    from t2l_fast.perf.throughput import measure_backend, quick_plan

    asked = {}

    def record(name, model, work_dir, calibration, max_batch=8, frame_counts=()):
        asked[model.config.name] = frame_counts
        raise RuntimeError("recorded")

    monkeypatch.setattr(backends, "build_backend", record)
    plan = quick_plan()
    for model in ("vificlip_tiny", "t2l_tiny"):
        rows = measure_backend(model, "tensorrt-fp16", plan, tmp_path, tmp_path, {})
        assert "recorded" in rows[0]["error"]
    assert asked == {"vificlip_tiny": (8, 16, 32), "t2l_tiny": (8,)}


@pytest.mark.parametrize("model, engines", [("vificlip_tiny", {(8, 8, 8), (16, 16, 16), (32, 32, 32)}),
                                            ("t2l_tiny", {None})])
def test_the_tensorrt_backend_builds_one_engine_per_frame_count_of_a_free_axis(monkeypatch, tiny_exports,
                                                                               tmp_path, model, engines):
    import t2l_fast.deploy.engine_build as engine_build
    import t2l_fast.runtime.trt_runner as trt_runner
    from t2l_fast.models.registry import create_model
    from t2l_fast.perf import backends

    graph = tiny_exports.copy(tmp_path / "export", model) / "video_encoder.onnx"
    built = []
    monkeypatch.setattr(backends, "onnx_graph", lambda *args: graph)
    monkeypatch.setattr(engine_build, "build_engine", lambda onnx, options, out, log: built.append(options.frames))
    monkeypatch.setattr(trt_runner, "TrtRunner", lambda engine: nullcontext())
    backends.build_backend("tensorrt-fp16", create_model(model), tmp_path, None, max_batch=4,
                           frame_counts=(8, 16, 32, 16))
    assert set(built) == engines and len(built) == len(engines)


def test_the_runner_refuses_a_frame_count_outside_the_engines_range_before_touching_the_gpu():
    from t2l_fast.runtime.trt_runner import TrtRunner

    runner = TrtRunner("video_encoder.engine")
    runner.sidecar = {"engine": {"file": "video_encoder.engine"}, "frames": {"min": 8, "opt": 16, "max": 32},
                      "profile": {"frames": {"min": [1, 8, 3, 32, 32], "opt": [4, 16, 3, 32, 32],
                                             "max": [4, 32, 3, 32, 32]}},
                      "rebuild": "t2l export trt --onnx v.onnx --frames 8:16:32"}
    runner._check_profile("frames", (2, 32, 3, 32, 32))
    with pytest.raises(ArtifactError, match=r"8\.\.32 frames \(tuned for 16\), not 4; rebuild: t2l export trt "
                                            r"--onnx v.onnx --frames 4:16:32$"):
        runner._check_profile("frames", (2, 4, 3, 32, 32))
