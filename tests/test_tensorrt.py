"""TensorRT engines: every tiny graph parses and builds for real (TensorRT for RTX compiles ahead of time on the
CPU), sidecars and their checks, the no-TensorRT path, NVIDIA's CLI path, and runner parity (on a GPU only)."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MODELS
from export_cache import CLASSES, stand_in_cli
from test_export import videos  # noqa: F401 (a fixture)

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.deploy.engine_build import BuildOptions, EngineBuildError, build_engine
from t2l_fast.errors import MissingDependencyError, T2LError, UnsupportedOptionError
from t2l_fast.runtime.base import ArtifactError
from t2l_fast.runtime.engine_sidecar import check_compatible, check_engine_bytes, read_sidecar, sidecar_path
from t2l_fast.runtime.trt_runner import TrtRunner
from t2l_fast.runtime.trt_support import load_tensorrt


def rtx_available() -> bool:
    try:
        return load_tensorrt("tensorrt-rtx") is not None
    except MissingDependencyError:
        return False


needs_rtx = pytest.mark.skipif(not rtx_available(), reason="TensorRT for RTX not installed: "
                               "pip install 't2l-fast[tensorrt-rtx]' (.ci/run installs it)")


@pytest.fixture(params=[(m, p) for m in TINY_MODELS for p in ("fp32", "fp16")], ids=lambda mp: f"{mp[0]}-{mp[1]}")
def export(request, tiny_exports, tmp_path):
    out = tiny_exports.copy(tmp_path / "export", *request.param)
    return out, json.loads((out / "manifest.json").read_text())


@needs_rtx
def test_every_tiny_graph_builds_into_a_serialized_engine(export):
    out, manifest = export
    for kind in ("video_encoder", "classifier"):
        sidecar = build_engine(out / f"{kind}.onnx", BuildOptions(max_batch=4, runtime="tensorrt-rtx"),
                               log=lambda line: None)
        engine = out / f"{kind}.trtrtx.engine"
        assert engine.stat().st_size > 100_000 and read_sidecar(engine) == sidecar
        check_engine_bytes(engine, sidecar)
        graph = manifest["graphs"][kind]
        assert sidecar["onnx"]["sha256"] == graph["sha256"] and sidecar["onnx"]["graph"] == kind
        assert sidecar["precision"] == manifest["precision"]
        assert sidecar["runtime"]["name"] == "tensorrt-rtx" and sidecar["target"]["compute_capabilities"] == "default"
        assert [i["name"] for i in sidecar["inputs"]] == ["frames"] and sidecar["inputs"][0]["dtype"] == "uint8"
        assert [o["name"] for o in sidecar["outputs"]] == graph["outputs"]
        assert all(o["dtype"] == "float32" for o in sidecar["outputs"])  # the fp32 head of fp16 graphs
        frames = manifest["model"]["frames"]  # a free frame axis (ViFi-CLIP, CLIP) is fixed at T
        assert sidecar["profile"]["frames"] == {"min": [1, frames, 3, 32, 32], "opt": [4, frames, 3, 32, 32],
                                                "max": [4, frames, 3, 32, 32]}
        assert sidecar["build"]["strongly_typed"] and not sidecar["build"]["tf32"]


@needs_rtx
def test_export_folder_builds_every_graph_and_predict_finds_them(tiny_exports, tmp_path, capsys):
    tiny_exports.copy(tmp_path)
    assert main(["export", "trt", "--onnx", str(tmp_path), "--max-batch", "2", "--compute-capability", "8.9",
                 "--compute-capability", "12.0", "--runtime", "tensorrt-rtx"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("equivalent trtexec command: trtexec ") == 3
    assert "--computeCapabilities=89,120" in printed
    for kind in ("video_encoder", "text_encoder", "classifier"):
        sidecar = read_sidecar(tmp_path / f"{kind}.trtrtx.engine")
        assert sidecar["target"]["compute_capabilities"] == ["8.9", "12.0"]
    from t2l_fast.runtime.bundle import ExportedModel

    assert ExportedModel(tmp_path).engine_path("classifier", "tensorrt-rtx").name == "classifier.trtrtx.engine"


@needs_rtx
def test_an_int8_qdq_graph_builds_with_its_precision(tiny_exports, tmp_path):
    from t2l_fast.deploy.int8 import quantize_graph

    tiny_exports.copy(tmp_path)
    clips = np.random.default_rng(0).integers(0, 256, (4, 8, 3, 32, 32), dtype=np.uint8)
    quantize_graph(tmp_path / "video_encoder.onnx", tmp_path / "video_encoder_int8.onnx", "static", clips)
    sidecar = build_engine(tmp_path / "video_encoder_int8.onnx", BuildOptions(max_batch=2, runtime="tensorrt-rtx"),
                           log=lambda line: None)
    assert sidecar["precision"] == "int8"


def test_without_tensorrt_it_fails_with_the_install_hint_and_a_correct_trtexec_command(tiny_exports, tmp_path,
                                                                                       capsys, monkeypatch):
    tiny_exports.copy(tmp_path, "vificlip_tiny")
    for module in ("tensorrt", "tensorrt_rtx"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    assert main(["export", "trt", "--onnx", str(tmp_path / "classifier.onnx"), "--max-batch", "16"]) == 2
    captured = capsys.readouterr()
    assert "pip install 't2l-fast[tensorrt-rtx]'" in captured.err and "nvcr.io/nvidia/tensorrt" in captured.err
    engine = tmp_path / "classifier.trt.engine"
    expected = (f"trtexec --onnx={tmp_path / 'classifier.onnx'} --saveEngine={engine} "
                f"--minShapes=frames:1x8x3x32x32 --optShapes=frames:8x8x3x32x32 --maxShapes=frames:16x8x3x32x32 "
                f"--stronglyTyped --noTF32 --memPoolSize=workspace:4096 --profilingVerbosity=detailed --skipInference")
    assert f"equivalent trtexec command: {expected}\n" in captured.out
    assert "equivalent tensorrt_rtx command: tensorrt_rtx " in captured.out
    assert not engine.exists()


def test_build_options_are_checked_per_flavour():
    with pytest.raises(T2LError, match="min-batch <= opt-batch"):
        BuildOptions(min_batch=4, max_batch=2).validate()
    with pytest.raises(UnsupportedOptionError, match="--timing-cache, --version-compatible"):
        BuildOptions(timing_cache=Path("cache"), version_compatible=True).validate("tensorrt-rtx")
    with pytest.raises(T2LError, match="targets 7.5"):
        BuildOptions(compute_capabilities=("9.0",)).validate("tensorrt-rtx")
    with pytest.raises(UnsupportedOptionError, match="for TensorRT for RTX"):
        BuildOptions(compute_capabilities=("8.9",)).validate("tensorrt")
    assert BuildOptions(max_batch=4).batches == (1, 4, 4) and BuildOptions().batches == (1, 8, 32)


@needs_rtx
def test_parser_errors_name_the_node_its_op_and_a_fix(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="determinant")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "det.onnx")
    with pytest.raises(EngineBuildError, match=r"node 0 'determinant' \(Det\): UNSUPPORTED_NODE.*fix: "):
        build_engine(tmp_path / "det.onnx", BuildOptions(max_batch=2, runtime="tensorrt-rtx"), log=lambda line: None)


def test_dynamic_int8_graphs_are_refused_before_tensorrt(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, ["batch", 4])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [])
    z = helper.make_tensor_value_info("z", TensorProto.UINT8, [])
    graph = helper.make_graph([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], "g", [x],
                              [y, s, z])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "dq.onnx")
    with pytest.raises(EngineBuildError, match="--int8-mode static"):
        build_engine(tmp_path / "dq.onnx")


@needs_rtx
def test_trtexec_flag_builds_with_nvidias_cli(tiny_exports, tmp_path, monkeypatch, capsys):
    """--trtexec runs NVIDIA's CLI (here a stand-in for tensorrt_rtx on PATH that records its arguments and writes
    the engine) and still writes the sidecar."""
    tiny_exports.copy(tmp_path)
    fake = stand_in_cli(tmp_path / "bin", "tensorrt_rtx")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert main(["export", "trt", "--onnx", str(tmp_path / "classifier.onnx"), "--trtexec", "--max-batch", "2",
                 "--runtime", "tensorrt-rtx"]) == 0
    engine = tmp_path / "classifier.trtrtx.engine"
    arguments = engine.read_text()
    assert f"--onnx={tmp_path / 'classifier.onnx'}" in arguments and "--maxShapes=frames:2x8x3x32x32" in arguments
    assert read_sidecar(engine)["build"]["builder"] == "cli"


# ------------------------------------------------------------------------------------------- sidecar checks
def crafted_sidecar(runtime="tensorrt", version="10.8.0.43", capabilities=("8.9",), hardware="none",
                    version_compatible=False):
    return {"engine": {"file": "m.engine", "sha256": "0" * 64},
            "runtime": {"name": runtime, "version": version},
            "target": {"compute_capabilities": list(capabilities) if capabilities != "default" else "default",
                       "hardware_compatibility": hardware, "version_compatible": version_compatible},
            "rebuild": "t2l export trt --onnx m.onnx"}


def test_sidecar_refuses_another_release_unless_version_compatible():
    check_compatible(crafted_sidecar(), "tensorrt", "10.8.0.43", "8.9")
    check_compatible(crafted_sidecar(), "tensorrt", "10.8.0.50", "8.9")  # same release, another build number
    with pytest.raises(ArtifactError, match="bound to the release.*rebuild: t2l export trt"):
        check_compatible(crafted_sidecar(), "tensorrt", "10.9.0.34", "8.9")
    compatible = crafted_sidecar(version_compatible=True)
    check_compatible(compatible, "tensorrt", "10.13.2.6", "8.9")  # later 10.x
    check_compatible(compatible, "tensorrt", "11.0.0.1", "8.9")  # 10 -> 11: in NVIDIA's support matrix
    for version in ("10.7.0.23", "12.0.0.1"):  # older, or a major NVIDIA does not list
        with pytest.raises(ArtifactError, match="version-compatible"):
            check_compatible(compatible, "tensorrt", version, "8.9")
    rtx = crafted_sidecar("tensorrt-rtx", "1.7.1.116", "default", version_compatible=True)
    with pytest.raises(ArtifactError, match="bound to the release"):  # TensorRT for RTX: no version compatibility
        check_compatible(rtx, "tensorrt-rtx", "1.8.0.10", "8.9")


def test_sidecar_refuses_another_gpu_unless_covered():
    with pytest.raises(ArtifactError, match="built for compute capability 8.9, not for NVIDIA H200"):
        check_compatible(crafted_sidecar(), "tensorrt", "10.8.0.43", "9.0", "NVIDIA H200")
    ampere = crafted_sidecar(capabilities=("8.0",), hardware="ampere+")
    check_compatible(ampere, "tensorrt", "10.8.0.43", "9.0")
    with pytest.raises(ArtifactError, match="8.0 and newer"):
        check_compatible(ampere, "tensorrt", "10.8.0.43", "7.5")
    default = crafted_sidecar("tensorrt-rtx", "1.7.1.116", "default")
    for capability in ("8.6", "8.9", "12.0"):
        check_compatible(default, "tensorrt-rtx", "1.7.1.116", capability)
    for capability in ("7.5", "9.0", "10.0"):  # Turing needs an explicit SM75; data-centre GPUs need TensorRT
        with pytest.raises(ArtifactError, match="8.6, 8.9, 12.0, 12.1"):
            check_compatible(default, "tensorrt-rtx", "1.7.1.116", capability)
    listed = crafted_sidecar("tensorrt-rtx", "1.7.1.116", ("7.5", "12.0"))
    check_compatible(listed, "tensorrt-rtx", "1.7.1.116", "7.5")
    with pytest.raises(ArtifactError, match="compute capability 7.5, 12.0"):
        check_compatible(listed, "tensorrt-rtx", "1.7.1.116", "8.9")


def test_sidecar_refuses_the_other_flavour():
    sidecar = dict(crafted_sidecar(), rebuild="t2l export trt --onnx m.onnx --runtime tensorrt --max-batch 8")
    with pytest.raises(ArtifactError, match="not interchangeable") as refused:
        check_compatible(sidecar, "tensorrt-rtx", "1.7.1.116", "8.9")
    assert str(refused.value).endswith("t2l export trt --onnx m.onnx --runtime tensorrt-rtx --max-batch 8")


@needs_rtx
def test_engine_files_are_checked_before_deserialising(tiny_exports, tmp_path):
    """A changed engine, a missing or corrupt sidecar, or an engine from another export are refused (here, where
    no GPU could run them: the checks come before TensorRT reads a byte)."""
    from t2l_fast.runtime.bundle import ExportedModel

    tiny_exports.copy(tmp_path)
    build_engine(tmp_path / "classifier.onnx", BuildOptions(max_batch=2, runtime="tensorrt-rtx"), log=lambda line: None)
    engine = tmp_path / "classifier.trtrtx.engine"
    sidecar = read_sidecar(engine)
    with engine.open("r+b") as f:  # flip one byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ArtifactError, match="sha256 differs from its sidecar's.*refusing"):
        TrtRunner(engine).activate()
    side = sidecar_path(engine)
    side.write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt JSON"):
        TrtRunner(engine).activate()
    side.unlink()
    with pytest.raises(ArtifactError, match="no sidecar"):
        TrtRunner(engine).activate()
    side.write_text(json.dumps(dict(sidecar, onnx=dict(sidecar["onnx"], sha256="f" * 64))))
    with pytest.raises(ArtifactError, match="re-exported since; rebuild"):
        ExportedModel(tmp_path).engine_path("classifier", "tensorrt-rtx")


@needs_rtx
@pytest.mark.without_gpu
def test_without_a_gpu_the_runner_says_so(tiny_exports, tmp_path):
    tiny_exports.copy(tmp_path)
    build_engine(tmp_path / "classifier.onnx", BuildOptions(max_batch=2, runtime="tensorrt-rtx"), log=lambda line: None)
    with pytest.raises(T2LError, match="needs an NVIDIA GPU"):
        TrtRunner(tmp_path / "classifier.trtrtx.engine").activate()


@needs_rtx
@pytest.mark.without_gpu
def test_predict_tensorrt_backend_never_falls_back(videos, tiny_exports, tmp_path, capsys):  # noqa: F811
    onnx_dir = tiny_exports.copy(tmp_path)
    command = ["predict", str(videos / "videos" / "test"), "--classes", ",".join(CLASSES), "--descriptions",
               str(videos / "descriptions.csv"), "--backend", "tensorrt", "--onnx", str(onnx_dir), "--trt-runtime",
               "tensorrt-rtx"]
    assert main(command) == 2
    assert "_encoder graph; build it with `t2l export trt --onnx" in capsys.readouterr().err
    assert main(["export", "trt", "--onnx", str(onnx_dir), "--max-batch", "2", "--runtime", "tensorrt-rtx"]) == 0
    assert main(command) == 2 and "needs an NVIDIA GPU" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- on a GPU
@pytest.mark.tensorrt_gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", TINY_MODELS)
def test_engines_match_onnx_runtime_fp32(name, precision, tiny_exports, tmp_path):
    """Gates vs ONNX Runtime fp32: fp32 engines max-abs <= 1e-3; fp16 engines cosine >= 0.999 and the same top-1,
    at B=1 and B=3 on synthetic clips."""
    from t2l_fast.deploy.onnx_export import parity_clips
    from t2l_fast.runtime.bundle import ExportedModel
    from t2l_fast.runtime.compare import Tolerance, compare_outputs

    reference_dir = tiny_exports.copy(tmp_path / "fp32", name)
    engine_dir = tiny_exports.copy(tmp_path / precision, name, precision)
    tolerance = Tolerance(max_abs=1e-3) if precision == "fp32" else Tolerance(min_cosine=0.999)
    clips = parity_clips(t2l_fast.create_model(name), 3).numpy()
    for kind in ("video_encoder", "classifier"):
        build_engine(engine_dir / f"{kind}.onnx", BuildOptions(max_batch=4), log=lambda line: None)
        with ExportedModel(reference_dir).runner(kind) as ort, ExportedModel(engine_dir).engine_runner(kind) as trt:
            for batch in (clips[:1], clips):
                expected, got = ort.infer({"frames": batch}), trt.infer({"frames": batch})
                comparison = compare_outputs(got, expected, {name: tolerance for name in expected})
                assert comparison.passed, comparison.summary()
                if kind == "classifier":
                    assert (expected["logits"].argmax(-1) == got["logits"].argmax(-1)).all()


@pytest.mark.tensorrt_gpu
def test_predict_tensorrt_matches_onnx(videos, tiny_exports, tmp_path, capsys):  # noqa: F811
    onnx_dir = tiny_exports.copy(tmp_path, precision="fp16")
    assert main(["export", "trt", "--onnx", str(onnx_dir), "--max-batch", "4"]) == 0
    common = [str(videos / "videos" / "test"), "--classes", ",".join(CLASSES), "--descriptions",
              str(videos / "descriptions.csv"), "--onnx", str(onnx_dir), "--json", "--no-cache"]
    capsys.readouterr()
    results = {}
    for backend in ("onnx", "tensorrt"):
        assert main(["predict", *common, "--backend", backend]) == 0
        results[backend] = json.loads(capsys.readouterr().out)
    assert len(results["tensorrt"]) == len(results["onnx"]) > 0
    for expected, actual in zip(results["onnx"], results["tensorrt"]):
        assert actual["top"][0][0] == expected["top"][0][0]
        # a random tiny model's probabilities are close to flat: a top-1 match alone could hide a wrong engine
        assert dict(actual["top"]) == pytest.approx(dict(expected["top"]), abs=2e-3)  # fp16 engine vs fp16 graph
