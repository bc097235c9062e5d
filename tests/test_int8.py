"""INT8 for CPU serving: the gate measures agreement with fp32 and refuses to write graphs that fail it."""
import json

import numpy as np
import pytest

from t2l_fast.cli import main
from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset
from t2l_fast.deploy.int8 import agreement, quantize_graph
from t2l_fast.runtime.bundle import ExportedModel


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    write_synthetic_dataset(root, SynthConfig(clips_per_class=1, eval_clips_per_class=2), jobs=2)
    return root


def export_int8(data, out, *extra):
    return main(["export", "onnx", "--model", "t2l_tiny", "--out", str(out), "--classes", str(data / "classes.txt"),
                 "--descriptions", str(data / "descriptions.csv"), "--precision", "int8", "--root", str(data),
                 "--gate-list", str(data / "test.txt"), *extra])


def test_a_refused_gate_writes_nothing_int8(data, tmp_path, capsys, monkeypatch):
    """A bad calibration set (black frames) failed the gate until the patch embedding stayed fp32; now nothing
    calibrates badly enough for every random tiny model, so the gate is made unreachable here."""
    monkeypatch.setattr("t2l_fast.deploy.int8.MIN_TOP1_AGREEMENT", 1.01)
    code = export_int8(data, tmp_path, "--calibration", str(data / "val.txt"), "--min-gate-clips", "24")
    out, err = capsys.readouterr()
    assert code == 2 and "refused to write the INT8 graphs" in err and "top-1 agreement" in out
    assert not list(tmp_path.glob("*int8*")) and not list(tmp_path.glob("augmented*"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "int8" not in manifest and set(manifest["graphs"]) == {"video_encoder", "text_encoder", "classifier"}


def test_the_gate_needs_enough_held_out_clips(data, tmp_path, capsys):
    assert export_int8(data, tmp_path, "--calibration", str(data / "val.txt")) == 2
    assert "at least 200 held-out clips" in capsys.readouterr().err
    assert export_int8(data, tmp_path / "b") == 2  # static without --calibration
    assert "--calibration LIST" in capsys.readouterr().err


def test_quantized_graphs_are_qdq_and_agreement_is_measured(data, tmp_path):
    """The figures the gate reads, on the real quantizer output (accepting or refusing is the test above's job)."""
    import onnx

    from t2l_fast.deploy.int8 import load_clips
    from t2l_fast.io import file_sha256

    assert main(["export", "onnx", "--model", "t2l_tiny", "--out", str(tmp_path), "--classes",
                 str(data / "classes.txt"), "--descriptions", str(data / "descriptions.csv")]) == 0
    bundle = ExportedModel(tmp_path)
    clips = load_clips(str(data / "val.txt"), str(data), bundle.input_spec)
    assert clips.shape == (24, 8, 3, 32, 32) and clips.dtype == np.uint8
    for kind in ("video_encoder", "classifier"):
        target = tmp_path / f"{kind}_int8.onnx"
        kept = quantize_graph(bundle.graph_path(kind), target, "static", clips)
        expected = {"frame-pooled projection", "bottlenecks (T2L's adapters)", "patch embedding",
                    "activation x activation products"} | ({"class head"} if kind == "classifier" else set())
        assert set(kept) == expected
        ops = {n.op_type for n in onnx.load(str(target)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        bundle.graphs[f"{kind}_int8"] = dict(bundle.graphs[kind], file=target.name, sha256=file_sha256(target),
                                             graph=kind)
    figures = agreement(bundle, clips)
    assert figures["clips"] == 24 and 0 <= figures["top1_agreement"] <= 1
    assert 0.99 < figures["mean_cosine"] <= 1.0 + 1e-6  # int8 embeddings stay close on calibration-like clips
    flipped = sum(figures["flips_per_class"].values())  # where the top-1 changed, by the fp32 top-1 class
    assert flipped == round(24 * (1 - figures["top1_agreement"]))
    assert set(figures["flips_per_class"]) <= set(bundle.class_names) and figures["median_margin"] >= 0
    assert (figures["median_margin_flipped"] is None) == (flipped == 0)



def test_the_manifest_lists_the_pooled_projection_only_when_every_graph_kept_it():
    """OpenVINO runs an export's INT8 graphs only when its manifest lists the frame-pooled projection as fp32."""
    from t2l_fast.deploy.int8 import _kept_by_all

    video, classifier = ["frame-pooled projection", "patch embedding"], ["patch embedding", "class head"]
    assert _kept_by_all([video, classifier]) == ["class head", "patch embedding"]
    assert "frame-pooled projection" in _kept_by_all([video, video + ["class head"]])


def test_what_stays_fp32_by_kind(tmp_path):
    """fp32_products: activation x activation products; a weight product whose output reaches the frame average
    through a bias and reshapes (not through a residual connection); bottlenecks (a narrowing product, an activation,
    the product widening back: MatMul, and Gemm with transB); the class head (a product scaled into a graph output);
    every Conv. Every other weight product is quantized, a narrowing one followed by a product of another shape too."""
    from onnx import TensorProto, helper, numpy_helper, save

    from t2l_fast.deploy.int8_fp32 import fp32_products

    arrays = {"w": np.ones((4, 4)), "down": np.ones((4, 2)), "up": np.ones((2, 4)), "up_t": np.ones((4, 2)),
              "other": np.ones((2, 3)), "b": np.zeros(4), "scale": np.ones(()), "conv_w": np.ones((4, 1, 1, 1)),
              "shape": np.array([-1, 2, 4]), "axes": np.array([1])}
    initializers = [numpy_helper.from_array(a.astype(np.int64 if k in ("shape", "axes") else np.float32), k)
                    for k, a in arrays.items()]
    node = helper.make_node
    nodes = [node("Conv", ["image", "conv_w"], ["patches"], name="patch_embedding"),
             node("MatMul", ["x", "w"], ["h"], name="mlp"),  # feeds a Relu: quantized
             node("Relu", ["h"], ["r"]),
             node("MatMul", ["r", "r_t"], ["scores"], name="attention"),  # two activations
             node("Transpose", ["r"], ["r_t"], perm=[1, 0]),
             node("MatMul", ["r", "down"], ["d"], name="adapter_down"),  # 4 -> 2 -> 4: a bottleneck
             node("Relu", ["d"], ["d_act"]),
             node("MatMul", ["d_act", "up"], ["u"], name="adapter_up"),
             node("Add", ["u", "r"], ["after_adapter"]),  # a residual connection, to a graph output
             node("Gemm", ["r", "down"], ["g"], name="gemm_down"),  # the same with Gemm, the widening one transposed
             node("Sigmoid", ["g"], ["g_act"]),
             node("Gemm", ["g_act", "up_t"], ["gu"], name="gemm_up", transB=1),
             node("Relu", ["gu"], ["gu_act"]),  # (an output reached through a scale only is a class head)
             node("MatMul", ["r", "down"], ["n"], name="narrowing_only"),  # 4 -> 2 -> 3: no bottleneck
             node("Relu", ["n"], ["n_act"]),
             node("MatMul", ["n_act", "other"], ["o"], name="other_shape"),
             node("Relu", ["o"], ["o_act"]),
             node("MatMul", ["r", "w"], ["branch"], name="residual_branch"),  # a residual, then averaged
             node("Add", ["branch", "r"], ["stream"]),
             node("ReduceMean", ["stream", "axes"], ["stream_mean"], keepdims=0),
             node("MatMul", ["stream", "w"], ["p"], name="projection"),
             node("Add", ["p", "b"], ["pb"]),  # a bias
             node("Reshape", ["pb", "shape"], ["per_clip"]),
             node("ReduceMean", ["per_clip", "axes"], ["pooled"], keepdims=0),
             node("MatMul", ["pooled", "w"], ["head"], name="class_head"),
             node("Mul", ["head", "scale"], ["logits"])]
    outputs = ("logits", "scores", "after_adapter", "gu_act", "o_act", "stream_mean", "patches")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4]),
              helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 2, 2])]
    graph = helper.make_graph(nodes, "kinds", inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              initializers)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "g.onnx")
    assert fp32_products(tmp_path / "g.onnx") == {
        "activation x activation products": ["attention"], "frame-pooled projection": ["projection"],
        "bottlenecks (T2L's adapters)": ["adapter_down", "adapter_up", "gemm_down", "gemm_up"],
        "class head": ["class_head"], "patch embedding": ["patch_embedding"]}
