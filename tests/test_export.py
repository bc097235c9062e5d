"""ONNX export of every tiny model: checker, symbolic dims, parity with PyTorch, fp16 lint, predict --backend onnx."""
import json

import numpy as np
import onnx
import pytest
from conftest import TINY_MODELS
from export_cache import CLASSES, class_embeddings, export_tiny

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.deploy import onnx_graph
from t2l_fast.errors import T2LError
from t2l_fast.runtime.bundle import ExportedModel
from t2l_fast.runtime.graph_header import read_metadata
from t2l_fast.runtime.ort_runner import OrtRunner
from t2l_fast.runtime.torch_runner import TorchRunner


@pytest.fixture(scope="module", params=TINY_MODELS)
def exported(request, tiny_exports):
    model, out = tiny_exports.shared(request.param)
    return model, json.loads((out / "manifest.json").read_text()), out


def test_every_graph_is_checked_symbolic_and_matches_torch(exported):
    model, manifest, out = exported
    assert set(manifest["graphs"]) == {"video_encoder", "text_encoder", "classifier"}
    for kind, entry in manifest["graphs"].items():
        graph = onnx.load(str(out / entry["file"]))
        onnx.checker.check_model(graph, full_check=True)
        dims = onnx_graph.input_dims(graph, "token_ids" if kind == "text_encoder" else "frames")
        assert isinstance(dims[0], str), f"{kind}: batch axis was specialised: {dims}"
        if kind != "text_encoder":
            assert dims[2:] == [3, 32, 32]
            assert isinstance(dims[1], str) if model.config.kind != "t2l" else dims[1] == 8
        metadata = read_metadata(graph)
        assert metadata["t2l_fast.model"] == model.config.name and metadata["t2l_fast.frames"] == "8"
        assert metadata["t2l_fast.weights_sha256"] == manifest["weights_sha256"]
        assert json.loads(metadata["t2l_fast.mean"]) == list(model.config.input_mean)
        parity = manifest["parity"][kind]
        assert parity["passed"] and {"batch_1", "batch_3"} <= set(parity)
        assert all(f["max_abs"] <= 1e-4 for name, f in parity["batch_3"].items() if name != "logits")
    assert json.loads(read_metadata(onnx.load(str(out / "classifier.onnx")))["t2l_fast.class_names"]) \
        == CLASSES
    assert manifest["parity"]["classifier"]["top1_agreement"] == 1.0


def test_onnx_runtime_matches_torch_on_new_inputs(exported):
    """Independent of the exporter's own check: other batch sizes, ids across the whole vocabulary."""
    model, manifest, out = exported
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 8, 3, 32, 32), dtype=np.uint8)
    ids = rng.integers(1, 49405, (4, 77))  # every tokenizer id range, EOT (the largest id) anywhere
    ids[np.arange(4), [1, 30, 76, 5]] = 49407
    ids[0, 0] = 49406
    for kind, feed in (("video_encoder", {"frames": frames}), ("classifier", {"frames": frames}),
                       ("text_encoder", {"token_ids": ids})):
        embeddings = class_embeddings(model)[0] if kind == "classifier" else None
        with TorchRunner(model, kind, embeddings) as reference, OrtRunner(out / f"{kind}.onnx") as runner:
            expected, actual = reference.infer(feed), runner.infer(feed)
        for name in expected:
            np.testing.assert_allclose(actual[name], expected[name], atol=1e-2 if name == "logits" else 1e-4)


def test_fp16_graphs_keep_fp32_islands_and_match(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny", "fp16")  # the session's fp16 export (the engine tests build on it)
    manifest = json.loads((folder / "manifest.json").read_text())
    for kind, entry in manifest["graphs"].items():
        graph = onnx.load(str(folder / entry["file"]))
        types = {t.data_type for t in graph.graph.initializer}
        assert onnx.TensorProto.FLOAT16 in types, f"{kind} has no fp16 weights"
        assert graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert onnx_graph.lint_fp16(graph, set()) == []
        assert manifest["parity"][kind]["passed"]
    assert manifest["parity"]["text_encoder"]["batch_3"]["embedding"]["min_cosine"] >= 0.999


def test_fp16_lint_catches_fp16_softmax_and_infinite_constants(tiny_exports):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    _, folder = tiny_exports.shared("clip_tiny")
    graph = onnx.load(str(folder / "text_encoder.onnx"))
    naive = convert_float_to_float16(graph, keep_io_types=True, op_block_list=[])  # everything fp16
    problems = onnx_graph.lint_fp16(naive, set())
    assert any("Softmax" in p for p in problems) and any("LayerNormalization" in p for p in problems)
    assert any("inf" in p for p in problems)  # the causal mask's -inf, left as it is by a plain conversion


def test_same_inputs_give_byte_identical_files(tmp_path, tiny_exports):
    _, first = tiny_exports.shared("clip_tiny")  # exported earlier in this process, the same way
    export_tiny("clip_tiny", tmp_path)
    for name in ("video_encoder.onnx", "text_encoder.onnx", "classifier.onnx", "manifest.json"):
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_large_graphs_keep_their_weights_beside_them(tmp_path):
    _, manifest = export_tiny("clip_tiny", tmp_path, external_data_threshold=100_000)
    entry = manifest["graphs"]["text_encoder"]
    assert entry["external_data"] == [{"file": "text_encoder.onnx.data", "sha256": entry["external_data"][0]["sha256"]}]
    with ExportedModel(tmp_path).runner("text_encoder") as runner:
        assert runner.infer({"token_ids": t2l_fast.tokenize(["a b"]).numpy()})["embedding"].shape == (1, 64)


def test_export_refuses_a_foreign_folder_and_bad_options(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(T2LError, match="not empty"):
        export_tiny("clip_tiny", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(T2LError, match="--opset 12"):
        export_tiny("clip_tiny", tmp_path / "new", opset=12)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset

    root = tmp_path_factory.mktemp("clips")
    write_synthetic_dataset(root, SynthConfig(classes=("growing", "shrinking", "moving right"), clips_per_class=1,
                                              eval_clips_per_class=1))
    return root


def _predict(args, capsys):
    assert main(["predict", *args, "--json", "--no-cache"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("classes", [CLASSES, CLASSES[::-1]], ids=["classifier-graph", "text-graph"])
def test_predict_onnx_backend_matches_torch(videos, tmp_path, capsys, classes, tiny_exports):
    from t2l_fast.models.checkpoint import save_checkpoint

    model, _ = tiny_exports.shared("t2l_tiny")
    tiny_exports.copy(tmp_path / "onnx")
    save_checkpoint(model, tmp_path / "ckpt", full=True)
    common = [str(videos / "videos" / "test"), "--classes", ",".join(classes), "--descriptions",
              str(videos / "descriptions.csv")]
    torch_result = _predict(common + ["--checkpoint", str(tmp_path / "ckpt")], capsys)
    onnx_result = _predict(common + ["--backend", "onnx", "--onnx", str(tmp_path / "onnx")], capsys)
    assert len(torch_result) == len(onnx_result) == 3
    for expected, actual in zip(torch_result, onnx_result):
        assert actual["top"][0][0] == expected["top"][0][0]
        for (name_a, p_a), (name_e, p_e) in zip(actual["top"], expected["top"]):
            assert name_a == name_e and abs(p_a - p_e) <= 1e-4


def test_predict_onnx_backend_refuses_another_model(videos, tmp_path, capsys, tiny_exports):
    tiny_exports.copy(tmp_path)
    code = main(["predict", str(videos / "videos" / "test"), "--classes", "a,b", "--backend", "onnx", "--onnx",
                 str(tmp_path), "--model", "clip_tiny"])
    assert code == 2 and "exported from t2l_tiny, not clip_tiny" in capsys.readouterr().err
    assert main(["predict", str(videos), "--classes", "a,b", "--backend", "onnx"]) == 2
    assert "--onnx DIR" in capsys.readouterr().err
