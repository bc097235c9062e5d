"""INT8 for CPU serving: the gate measures agreement with fp32 and refuses to write graphs that fail it."""
import json

import numpy as np
import pytest

from t2l_fast.cli import main
from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset, write_video
from t2l_fast.deploy.int8 import agreement, quantize_graph
from t2l_fast.runtime.bundle import ExportedModel


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    write_synthetic_dataset(root, SynthConfig(clips_per_class=1, eval_clips_per_class=2), jobs=2)
    for i in range(4):  # a calibration set unlike anything served: black frames
        write_video(root / "black" / f"{i}.mp4", np.zeros((24, 64, 64, 3), np.uint8))
    (root / "black.txt").write_text("".join(f"black/{i}.mp4 0\n" for i in range(4)))
    return root


def export_int8(data, out, *extra):
    return main(["export", "onnx", "--model", "t2l_tiny", "--out", str(out), "--classes", str(data / "classes.txt"),
                 "--descriptions", str(data / "descriptions.csv"), "--precision", "int8", "--root", str(data),
                 "--gate-list", str(data / "test.txt"), *extra])


def test_a_bad_calibration_is_refused_and_nothing_int8_is_written(data, tmp_path, capsys):
    code = export_int8(data, tmp_path, "--calibration", str(data / "black.txt"), "--min-gate-clips", "24")
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
        quantize_graph(bundle.graph_path(kind), target, "static", clips)
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



def test_attention_products_and_the_frame_pooled_projection_stay_fp32(tmp_path):
    """kept_in_fp32: activation x activation MatMuls, and a weight MatMul/Gemm whose output reaches the frame
    average (through a bias, reshapes, casts); a weight MatMul feeding anything else is quantized."""
    from onnx import TensorProto, helper, numpy_helper, save

    from t2l_fast.deploy.int8 import kept_in_fp32

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    shape = numpy_helper.from_array(np.array([-1, 2, 4], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mlp"),  # feeds a Relu: quantized
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "r_t"], ["scores"], name="attention"),  # two activations
             helper.make_node("Transpose", ["r"], ["r_t"], perm=[1, 0]),
             helper.make_node("MatMul", ["r", "w"], ["p"], name="projection"),
             helper.make_node("Add", ["p", "b"], ["pb"]),
             helper.make_node("Reshape", ["pb", "shape"], ["per_clip"]),
             helper.make_node("ReduceMean", ["per_clip", "axes"], ["pooled"], keepdims=0)]
    graph = helper.make_graph(nodes, "pooling", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("pooled", "scores")],
                              [weight, bias, shape, axes])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "g.onnx")
    assert sorted(kept_in_fp32(tmp_path / "g.onnx")) == ["attention", "projection"]
