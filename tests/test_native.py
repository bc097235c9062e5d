"""CMakeLists.txt: configures here, says what is enabled and disabled, and its `engines` target builds engines from
an export (through the Python builder and TensorRT for RTX; or through trtexec alone, here a stand-in)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from export_cache import stand_in_cli
from test_tensorrt import needs_rtx

ROOT = Path(__file__).resolve().parents[1]


def cmake() -> str:
    found = shutil.which("cmake", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if not found:
        pytest.skip("cmake not installed (pip install 't2l-fast[dev]' brings it)")
    return found


def configure(build: Path, *options: str, env=None) -> str:
    result = subprocess.run([cmake(), "-S", str(ROOT), "-B", str(build), *options], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_rtx
def test_engines_target_builds_engines_and_sidecars(tiny_exports, tmp_path):
    onnx = tiny_exports.copy(tmp_path / "export")
    build = tmp_path / "build"
    printed = configure(build, f"-DT2L_ONNX_DIR={onnx}", f"-DPython3_EXECUTABLE={sys.executable}",
                        "-DT2L_MAX_BATCH=2", "-DT2L_ENGINE_BUILDER=python", "-DT2L_TRT_RUNTIME=tensorrt-rtx")
    assert "enabled:  engines" in printed and "t2l_trt_runner" in printed  # enabled or disabled, with the reason
    result = subprocess.run([cmake(), "--build", str(build), "--target", "engines"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for graph in ("video_encoder", "text_encoder", "classifier"):
        assert (build / "engines" / f"{graph}.engine").stat().st_size > 100_000
        assert (build / "engines" / f"{graph}.engine.json").is_file()


@pytest.mark.parametrize("frames, counts", [(None, (8, 8, 8)), ("8:16:32", (8, 16, 32)), ("16", (16, 16, 16))])
def test_trtexec_alone_gets_the_shapes_from_the_manifest(tiny_exports, tmp_path, frames, counts):
    onnx = tiny_exports.copy(tmp_path / "export", "vificlip_tiny")  # a free frame axis
    fake = stand_in_cli(tmp_path / "bin", "trtexec")
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    build = tmp_path / "build"
    range_option = [f"-DT2L_FRAMES={frames}"] if frames else []
    printed = configure(build, f"-DT2L_ONNX_DIR={onnx}", "-DT2L_ENGINE_BUILDER=trtexec",
                        "-DT2L_ENGINE_GRAPHS=classifier", *range_option, env=env)
    assert f"{fake} alone (no sidecars" in printed
    subprocess.run([cmake(), "--build", str(build), "--target", "engines"], check=True, capture_output=True, env=env)
    arguments = (build / "engines" / "classifier.engine").read_text().split()
    assert f"--onnx={onnx / 'classifier.onnx'}" in arguments and "--stronglyTyped" in arguments
    low, opt, high = counts
    assert {f"--minShapes=frames:1x{low}x3x32x32", f"--optShapes=frames:8x{opt}x3x32x32",
            f"--maxShapes=frames:32x{high}x3x32x32"} <= set(arguments)


def test_a_frame_range_that_is_not_t_or_min_opt_max_stops_the_configure(tmp_path):
    result = subprocess.run([cmake(), "-S", str(ROOT), "-B", str(tmp_path / "build"), "-DT2L_FRAMES=8:32"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "T2L_FRAMES=8:32: give T or MIN:OPT:MAX" in result.stderr


def test_without_an_export_the_target_says_why(tmp_path):
    build = tmp_path / "build"
    printed = configure(build, f"-DT2L_ONNX_DIR={tmp_path / 'nothing'}")
    assert "disabled: engines (no " in printed and "t2l export onnx" in printed
    result = subprocess.run([cmake(), "--build", str(build), "--target", "engines"], capture_output=True, text=True)
    assert result.returncode != 0 and "engines target disabled" in result.stdout


def test_cpp_runner_allows_engine_host_code_before_deserialising():
    """Version-compatible engines (our default) carry host code: without the permission they fail to load in C++.
    Compiling the runner needs TensorRT's headers, so the order of the two calls is checked in the source."""
    source = (ROOT / "export" / "cpp" / "t2l_trt_runner.cpp").read_text()
    allowed, deserialised = source.find("->setEngineHostCodeAllowed(true)"), source.find("->deserializeCudaEngine(")
    assert 0 < allowed < deserialised
