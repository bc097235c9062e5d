"""Exported ONNX folders read back: damaged, tampered, misfitting or misfed artifacts give a clear ArtifactError or
T2LError that names the file (never a crash, never a wrong result); plus the comparator, deterministic export,
symbolic dims, the optimised-graph cache and provider fallback."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import t2l_fast  # noqa: E402
import t2l_fast.optional  # noqa: E402
from t2l_fast.deploy.onnx_export import MANIFEST, export_with_classes  # noqa: E402
from t2l_fast.deploy.onnx_graph import input_dims  # noqa: E402
from t2l_fast.errors import T2LError  # noqa: E402
from t2l_fast.runtime.base import ArtifactError  # noqa: E402
from t2l_fast.runtime.bundle import ExportedModel  # noqa: E402
from t2l_fast.runtime.compare import Tolerance, compare_outputs  # noqa: E402
from t2l_fast.runtime.ort_runner import CACHE_DIR, OrtRunner  # noqa: E402

CLASSES = ["jump", "run", "wave"]
GRAPHS = ("video_encoder", "text_encoder", "classifier")


def _export(model_name: str, out: Path) -> Path:
    torch.manual_seed(0)
    model = t2l_fast.create_model(model_name)
    export_with_classes(model, out, CLASSES, descriptions=CLASSES, log=lambda line: None)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """t2l_tiny (T=8 fixed, 32x32) with 3 classes; never modified by a test (damage goes to `damaged` copies)."""
    return _export("t2l_tiny", tmp_path_factory.mktemp("t2l_export") / "export")


@pytest.fixture(scope="module")
def exported_clip(tmp_path_factory) -> Path:
    """clip_tiny (frames symbolic) with 3 classes."""
    return _export("clip_tiny", tmp_path_factory.mktemp("clip_export") / "export")


@pytest.fixture
def damaged(exported, tmp_path) -> Path:
    """A private copy of the t2l_tiny export, free to damage."""
    return Path(shutil.copytree(exported, tmp_path / "export"))


def clips(batch=2, frames=8, size=32, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, frames, 3, size, size)).astype(dtype)


def enter(runner):
    """Enter and leave a runner (or a bundle's checked runner)."""
    with runner:
        pass


# ------------------------------------------------------------------ 1, 2: truncated and garbage graph files
def test_truncated_graph_through_bundle_is_refused(damaged):
    path = damaged / "video_encoder.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    bundle = ExportedModel(damaged)
    with pytest.raises(ArtifactError, match="sha256|corrupt or truncated") as info:
        enter(bundle.runner("video_encoder"))
    assert "video_encoder.onnx" in str(info.value)
    assert "re-export" in str(info.value)


def test_truncated_graph_through_bundle_reports_sha_mismatch(damaged):
    path = damaged / "video_encoder.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="sha256"):
        enter(ExportedModel(damaged).runner("video_encoder"))


def test_truncated_graph_without_expected_sha_is_refused(damaged):
    path = damaged / "video_encoder.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="corrupt or truncated") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                                     b"not an onnx graph at all\n" * 40, b""],
                         ids=["random-bytes", "text", "empty"])
def test_garbage_graph_file_is_refused(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="not a readable ONNX graph|holds no graph") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


def test_missing_graph_file_is_refused(tmp_path):
    path = tmp_path / "nothing.onnx"
    with pytest.raises(ArtifactError, match="no such ONNX file") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


# ------------------------------------------------------------------ 3: external data outside the folder
def _external_data_graph(folder: Path) -> Path:
    """Y = X + W with W [4] in `w.data` beside `model.onnx`."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "add",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="w.data", size_threshold=0)
    assert (folder / "w.data").is_file()
    return path


def _relocate_weights(path: Path, location: str) -> None:
    model = onnx.load(str(path), load_external_data=False)
    entries = [e for t in model.graph.initializer for e in t.external_data if e.key == "location"]
    assert entries
    for entry in entries:
        entry.value = location
    onnx.save_model(model, str(path))


def test_external_data_inside_the_folder_runs(tmp_path):
    path = _external_data_graph(tmp_path / "graph")
    with OrtRunner(path) as runner:
        out = runner.infer({"X": np.ones((2, 4), np.float32)})
    np.testing.assert_array_equal(out["Y"], np.ones((2, 4), np.float32) + np.arange(4, dtype=np.float32))


def test_external_data_relative_path_outside_is_refused(tmp_path):
    path = _external_data_graph(tmp_path / "graph")
    shutil.copy(tmp_path / "graph" / "w.data", tmp_path / "outside.data")  # a real file there: still refused
    _relocate_weights(path, "../outside.data")
    with pytest.raises(ArtifactError, match="outside") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value) and "../outside.data" in str(info.value)


def test_external_data_absolute_path_is_refused(tmp_path):
    path = _external_data_graph(tmp_path / "graph")
    target = tmp_path / "elsewhere" / "w.data"
    target.parent.mkdir()
    shutil.copy(tmp_path / "graph" / "w.data", target)
    _relocate_weights(path, str(target))
    with pytest.raises(ArtifactError, match="outside") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


def test_external_data_symlink_out_of_the_folder_is_refused(tmp_path):
    path = _external_data_graph(tmp_path / "graph")
    shutil.copy(tmp_path / "graph" / "w.data", tmp_path / "outside.data")
    (tmp_path / "graph" / "link.data").symlink_to(tmp_path / "outside.data")
    _relocate_weights(path, "link.data")
    with pytest.raises(ArtifactError, match="outside") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


def test_external_data_file_missing_is_refused(tmp_path):
    path = _external_data_graph(tmp_path / "graph")
    (tmp_path / "graph" / "w.data").unlink()
    with pytest.raises(ArtifactError, match="missing") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value) and "w.data" in str(info.value)


def test_external_data_in_a_constant_node_outside_is_refused(tmp_path):
    """Not only initializers carry external data: a Constant node's tensor can too (ONNX Runtime refuses it)."""
    from onnx import TensorProto, helper, numpy_helper

    (tmp_path / "outside.data").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    tensor = numpy_helper.from_array(np.arange(4, dtype=np.float32), "C")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../outside.data"), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Constant", [], ["C"], value=tensor),
                               helper.make_node("Add", ["X", "C"], ["Y"])], "const",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    (tmp_path / "graph").mkdir()
    path = tmp_path / "graph" / "const.onnx"
    onnx.save_model(model, str(path))
    with pytest.raises(ArtifactError, match="outside|escapes") as info:
        enter(OrtRunner(path))
    assert str(path) in str(info.value)


# ------------------------------------------------------------------ 4, 6: tampering
def test_flipped_byte_fails_the_sha256_check(damaged):
    path = damaged / "classifier.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    bundle = ExportedModel(damaged)
    runner = bundle.runner("classifier")
    with pytest.raises(ArtifactError, match="sha256") as info:
        enter(runner)
    assert "classifier.onnx" in str(info.value) and "re-export" in str(info.value)
    assert runner.runner.session is None


def test_graph_metadata_disagreeing_with_the_manifest_is_refused(damaged):
    manifest = json.loads((damaged / MANIFEST).read_text())
    manifest["weights_sha256"] = "0" * 64
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    checked = ExportedModel(damaged).runner("video_encoder")
    with pytest.raises(ArtifactError, match="metadata") as info:
        enter(checked)
    message = str(info.value)
    assert "video_encoder.onnx" in message and "t2l_fast.weights_sha256" in message and MANIFEST in message
    assert checked.runner.session is None  # left closed, not half-open


def test_graph_swapped_in_from_another_kind_is_refused(damaged):
    """classifier.onnx copied over video_encoder.onnx, with the manifest's sha256 updated to match."""
    shutil.copy(damaged / "classifier.onnx", damaged / "video_encoder.onnx")
    manifest = json.loads((damaged / MANIFEST).read_text())
    manifest["graphs"]["video_encoder"]["sha256"] = manifest["graphs"]["classifier"]["sha256"]
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="metadata t2l_fast.graph") as info:
        enter(ExportedModel(damaged).runner("video_encoder"))
    assert "video_encoder.onnx" in str(info.value)


def test_missing_graph_kind_is_refused(damaged):
    manifest = json.loads((damaged / MANIFEST).read_text())
    del manifest["graphs"]["classifier"]
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="holds no classifier graph"):
        ExportedModel(damaged).runner("classifier")


# ------------------------------------------------------------------ 5: does the export fit?
def test_check_fits_t2l(exported):
    bundle = ExportedModel(exported)
    bundle.check_fits(model_name="t2l_tiny", frames=8, image_size=32)  # fits
    with pytest.raises(ArtifactError, match="T=8 frames") as info:
        bundle.check_fits(frames=16)
    assert str(exported) in str(info.value)
    with pytest.raises(ArtifactError, match="32x32") as info:
        bundle.check_fits(image_size=64)
    assert str(exported) in str(info.value)
    with pytest.raises(ArtifactError, match="exported from t2l_tiny, not clip_tiny") as info:
        bundle.check_fits(model_name="clip_tiny")
    assert str(exported) in str(info.value)


def test_check_fits_clip_frames_are_free(exported_clip):
    bundle = ExportedModel(exported_clip)
    bundle.check_fits(model_name="clip_tiny", frames=16)  # symbolic frames: any T
    with pytest.raises(ArtifactError, match="32x32"):
        bundle.check_fits(image_size=64)
    with pytest.raises(ArtifactError, match="not t2l_tiny"):
        bundle.check_fits(model_name="t2l_tiny")
    with bundle.runner("video_encoder") as runner:  # and the graph really takes another T
        for frames in (4, 16):
            embedding = runner.infer({"frames": clips(2, frames)})["embedding"]
            assert embedding.shape[0] == 2 and np.isfinite(embedding).all()
            np.testing.assert_allclose(np.linalg.norm(embedding, axis=-1), 1.0, atol=1e-5)


# ------------------------------------------------------------------ 7: misfed inputs
def test_good_feed_runs(exported):
    with ExportedModel(exported).runner("classifier") as runner:
        out = runner.infer({"frames": clips(3)})
    assert out["logits"].shape == out["probabilities"].shape == (3, len(CLASSES))
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["logits"].argmax(-1), out["probabilities"].argmax(-1))


BAD_FRAME_FEEDS = {
    "T=4": ({"frames": clips(1, frames=4)}, r"'frames' has shape \[1, 4, 3, 32, 32\]"),
    "64x64": ({"frames": clips(1, size=64)}, r"'frames' has shape \[1, 8, 3, 64, 64\]"),
    "channels-last": ({"frames": clips(1).transpose(0, 1, 3, 4, 2)}, r"'frames' has shape \[1, 8, 32, 32, 3\]"),
    "no-batch-axis": ({"frames": clips(1)[0]}, r"'frames' has shape \[8, 3, 32, 32\]"),
    "float32": ({"frames": clips(1, dtype=np.float32)}, r"'frames' is float32"),
    "int64": ({"frames": clips(1, dtype=np.int64)}, r"'frames' is int64"),
    "missing": ({}, r"missing \['frames'\]"),
    "renamed": ({"video": clips(1)}, r"missing \['frames'\], unknown \['video'\]"),
    "extra": ({"frames": clips(1), "labels": np.zeros(1, np.int64)}, r"unknown \['labels'\]"),
    "empty-batch": ({"frames": clips(0)}, r"'frames' is empty"),
}


@pytest.mark.parametrize("kind", ["classifier", "video_encoder"])
def test_bad_frame_feeds_are_refused(exported, kind):
    with ExportedModel(exported).runner(kind) as runner:
        for label, (feed, pattern) in BAD_FRAME_FEEDS.items():
            with pytest.raises(ArtifactError, match=pattern) as info:
                runner.infer(feed)
            assert f"{kind}.onnx" in str(info.value), label
        assert runner.infer({"frames": clips(1)})  # the session is still fine afterwards


def test_bad_token_feeds_are_refused(exported):
    with ExportedModel(exported).runner("text_encoder") as runner:
        good = np.zeros((2, 77), np.int64)
        assert runner.infer({"token_ids": good})["embedding"].shape[0] == 2
        for feed, pattern in [({"token_ids": good.astype(np.int32)}, r"'token_ids' is int32"),
                              ({"token_ids": good[:, :16]}, r"'token_ids' has shape \[2, 16\]"),
                              ({"token_ids": good[:0]}, r"'token_ids' is empty"),
                              ({"frames": clips(1)}, r"missing \['token_ids'\], unknown \['frames'\]")]:
            with pytest.raises(ArtifactError, match=pattern) as info:
                runner.infer(feed)
            assert "text_encoder.onnx" in str(info.value)


def test_infer_outside_with_is_refused(exported):
    runner = OrtRunner(exported / "classifier.onnx")
    with pytest.raises(T2LError, match="inside `with`"):
        runner._infer({"frames": clips(1)})


# ------------------------------------------------------------------ 8: both onnxruntime flavours
def test_both_onnxruntime_flavours_installed_is_refused(exported, monkeypatch):
    versions = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.32.0"}
    monkeypatch.setattr(t2l_fast.optional, "installed", lambda distribution: versions.get(distribution))
    with pytest.raises(T2LError, match="uninstall") as info:
        enter(OrtRunner(exported / "video_encoder.onnx"))
    assert "onnxruntime-gpu" in str(info.value)
    with pytest.raises(T2LError, match="uninstall"):
        enter(ExportedModel(exported).runner("video_encoder"))


# ------------------------------------------------------------------ 9: manifest missing or corrupt
def test_missing_manifest_is_refused(damaged):
    (damaged / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="no manifest.json") as info:
        ExportedModel(damaged)
    assert str(damaged) in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "not-json", "not-utf8", "wrong-format"])
def test_corrupt_manifest_is_refused(damaged, damage):
    path = damaged / MANIFEST
    text = path.read_text()
    content = {"truncated": text[: len(text) // 2].encode(), "not-json": b"{graphs: nope",
               "not-utf8": b"\xff\xfe\x00garbage", "wrong-format": json.dumps({"format": "other"}).encode()}[damage]
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="corrupt JSON|format 'other'") as info:
        ExportedModel(damaged)
    assert MANIFEST in str(info.value)


@pytest.mark.parametrize("content", ["[]", json.dumps({"format": "t2l-fast-onnx"})], ids=["list", "no-model"])
def test_manifest_of_the_wrong_shape_is_refused(damaged, content):
    (damaged / MANIFEST).write_text(content)
    with pytest.raises(ArtifactError, match=MANIFEST):
        ExportedModel(damaged)


# ------------------------------------------------------------------ 10: the comparator
def _pair(seed=0, shape=(4, 16)):
    reference = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return reference + 1e-6, reference


def test_compare_passes_within_tolerance():
    actual, reference = _pair()
    result = compare_outputs({"embedding": actual}, {"embedding": reference},
                             {"embedding": Tolerance(max_abs=1e-4, max_rel=1e-1, min_cosine=0.9999)})
    assert result.passed, result.failures
    assert result.figures["embedding"]["max_abs"] < 1e-5
    assert result.figures["embedding"]["min_cosine"] > 0.9999
    assert "ok" in result.summary() and "FAIL" not in result.summary()


def test_compare_fails_max_abs():
    actual, reference = _pair()
    actual[1, 3] += 0.5
    result = compare_outputs({"logits": actual}, {"logits": reference}, {"logits": Tolerance(max_abs=1e-2)})
    assert not result.passed
    assert result.failures["logits"].startswith("max_abs 0.5 > 0.01")
    assert "FAIL (max_abs" in result.summary()


def test_compare_fails_max_rel():
    actual, reference = _pair()
    actual *= 1.1
    result = compare_outputs({"x": actual}, {"x": reference}, {"x": Tolerance(max_rel=1e-2)})
    assert not result.passed and "max_rel" in result.failures["x"]


def test_compare_fails_min_cosine():
    actual, reference = _pair()
    actual[2] = -reference[2]  # one row points the other way
    result = compare_outputs({"embedding": actual}, {"embedding": reference},
                             {"embedding": Tolerance(min_cosine=0.999)})
    assert not result.passed
    assert result.failures["embedding"].startswith("min_cosine -1.000000 < 0.999")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * inf in the cosine
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_compare_fails_non_finite_output(bad):
    actual, reference = _pair()
    actual[0, 0] = bad
    for tolerance in (Tolerance(max_abs=1e-4), Tolerance(min_cosine=0.9), Tolerance()):
        result = compare_outputs({"embedding": actual}, {"embedding": reference}, {"embedding": tolerance})
        assert not result.passed
        assert "NaN or Inf in the output" in result.failures["embedding"]


def test_compare_fails_non_finite_reference():
    actual, reference = _pair()
    reference[0, 0] = np.nan
    result = compare_outputs({"embedding": actual}, {"embedding": reference},
                             {"embedding": Tolerance(max_abs=1e-4, min_cosine=0.999)})
    assert not result.passed


def test_compare_fails_shape_mismatch():
    actual, reference = _pair()
    result = compare_outputs({"logits": actual[:3]}, {"logits": reference}, {"logits": Tolerance(max_abs=1.0)})
    assert not result.passed
    assert result.failures["logits"] == "shape [3, 16] vs reference [4, 16]"
    assert "FAIL (shape" in result.summary()


def test_compare_fails_missing_output():
    actual, reference = _pair()
    result = compare_outputs({"logits": actual}, {"logits": reference, "probabilities": reference},
                             {"logits": Tolerance(max_abs=1e-4), "probabilities": Tolerance(max_abs=1e-4)})
    assert not result.passed
    assert result.failures == {"probabilities": "missing output"}
    result = compare_outputs({}, {"logits": reference}, {"logits": Tolerance()})
    assert result.failures == {"logits": "missing output"}
    assert "probabilities" not in result.summary() and "FAIL (missing output)" in result.summary()


# ------------------------------------------------------------------ 11: deterministic export
def test_export_is_deterministic(exported, tmp_path):
    again = _export("t2l_tiny", tmp_path / "again")
    graphs = sorted(p.name for p in exported.glob("*.onnx"))
    assert graphs == sorted(f"{kind}.onnx" for kind in GRAPHS)
    assert sorted(p.name for p in again.glob("*.onnx")) == graphs
    for name in graphs:
        assert (exported / name).read_bytes() == (again / name).read_bytes(), name
    assert json.loads((exported / MANIFEST).read_text()) == json.loads((again / MANIFEST).read_text())


# ------------------------------------------------------------------ 12: symbolic dims
def test_symbolic_dims_t2l(exported):
    manifest = json.loads((exported / MANIFEST).read_text())
    for kind in GRAPHS:
        name = "token_ids" if kind == "text_encoder" else "frames"
        dims = input_dims(onnx.load(str(exported / f"{kind}.onnx")), name)
        assert isinstance(dims[0], str), (kind, dims)
        assert dims == manifest["graphs"][kind]["inputs"][0]["shape"]
        assert dims[1:] == ([77] if kind == "text_encoder" else [8, 3, 32, 32]), (kind, dims)


def test_symbolic_dims_clip(exported_clip):
    for kind in GRAPHS:
        name = "token_ids" if kind == "text_encoder" else "frames"
        dims = input_dims(onnx.load(str(exported_clip / f"{kind}.onnx")), name)
        assert isinstance(dims[0], str), (kind, dims)
        if kind != "text_encoder":
            assert isinstance(dims[1], str) and dims[2:] == [3, 32, 32], (kind, dims)


# ------------------------------------------------------------------ 13: the optimised-graph cache
def test_optimised_graph_cache(damaged, monkeypatch):
    shutil.rmtree(damaged / CACHE_DIR)  # the export's own parity check filled it
    path = damaged / "classifier.onnx"
    feed = {"frames": clips(2)}
    sources = []
    session = ort.InferenceSession

    def recording_session(source, *args, **kwargs):
        sources.append(Path(source))
        return session(source, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording_session)

    with OrtRunner(path) as runner:
        first = runner.infer(feed)
    cached = sorted((damaged / CACHE_DIR).glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith("classifier."), cached  # no staging file left behind
    assert sources == [path]

    with OrtRunner(path) as runner:
        second = runner.infer(feed)
    assert sources[-1] == cached[0]  # loaded from the cache
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])

    cached[0].write_bytes(b"garbage in the cache" * 100)
    sources.clear()
    with OrtRunner(path) as runner:
        third = runner.infer(feed)
    assert sources == [cached[0], path]  # tried the cache, dropped it, rebuilt from the graph
    assert sorted((damaged / CACHE_DIR).glob("*.onnx")) == cached
    assert onnx.load(str(cached[0])).graph.node  # a real graph again
    for name in first:
        np.testing.assert_array_equal(first[name], third[name])


def test_no_cache_when_disabled(damaged):
    shutil.rmtree(damaged / CACHE_DIR)
    with OrtRunner(damaged / "video_encoder.onnx", cache=False) as runner:
        runner.infer({"frames": clips(1)})
    assert not (damaged / CACHE_DIR).exists()


# ------------------------------------------------------------------ 14: a GPU provider that is not there
@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")  # ONNX Runtime's own notice
@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA provider available")
def test_unavailable_gpu_provider_warns(exported):
    runner = OrtRunner(exported / "video_encoder.onnx", providers=("cuda", "cpu"))
    with pytest.warns(RuntimeWarning, match="not in use") as record:
        runner.__enter__()
    try:
        assert runner.providers_in_use == ["CPUExecutionProvider"]
        assert any("video_encoder.onnx" in str(w.message) and "['cuda']" in str(w.message) for w in record)
        assert runner.infer({"frames": clips(1)})["embedding"].shape[0] == 1
    finally:
        runner.__exit__(None, None, None)


def test_unknown_provider_is_refused(exported):
    with pytest.raises(T2LError, match="unknown execution provider"):
        enter(OrtRunner(exported / "video_encoder.onnx", providers=("tpu",)))
