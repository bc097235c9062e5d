"""`t2l export triton`: every config.pbtxt parses into Triton's ModelConfig message and matches its graph's input
and output names, dtypes and shapes; the classifier has its labels; engines become TensorRT models."""
import json

import onnx
import pytest
from test_tensorrt import needs_rtx

from t2l_fast.cli import main
from t2l_fast.deploy.engine_build import BuildOptions, build_engine, write_sidecar
from t2l_fast.runtime.engine_sidecar import read_sidecar

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="pip install 't2l-fast[triton]' (Triton's ModelConfig protobuf)")
ONNX_TYPES = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.INT64: "TYPE_INT64",
              onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}


def parse(folder):
    from google.protobuf import text_format

    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def tensors(config, field):
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in getattr(config, field)]


def graph_tensors(values):
    return [(v.name, ONNX_TYPES[v.type.tensor_type.elem_type],
             [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim][1:])
            for v in values]


@pytest.mark.parametrize("name", ["t2l_tiny", "vificlip_tiny"])
def test_configs_parse_and_match_the_graphs(name, tiny_exports, tmp_path):
    onnx_dir = tiny_exports.copy(tmp_path / "export", name)
    repo = tmp_path / "repo"
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--out", str(repo), "--max-batch", "16"]) == 0
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    for kind in ("video_encoder", "text_encoder", "classifier"):
        folder = repo / f"{name}_{kind}"
        config = parse(folder)
        graph = onnx.load(str(folder / "1" / "model.onnx"))
        assert config.name == folder.name and config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
        assert tensors(config, "input") == graph_tensors(graph.graph.input)
        assert tensors(config, "output") == graph_tensors(graph.graph.output)
        assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    frames_dims = list(parse(repo / f"{name}_video_encoder").input[0].dims)
    assert frames_dims == ([8, 3, 32, 32] if name == "t2l_tiny" else [-1, 3, 32, 32])  # ViFi-CLIP: any T
    classifier = parse(repo / f"{name}_classifier")
    labels = classifier.output[1]
    assert labels.name == "probabilities" and labels.label_filename == "labels.txt"
    assert (repo / f"{name}_classifier" / "labels.txt").read_text().splitlines() == manifest["classes"]


@needs_rtx
def test_engines_become_tensorrt_models(tiny_exports, tmp_path, capsys):
    """Triton's TensorRT backend runs full TensorRT engines, which cannot be built here: the engine below is built
    by TensorRT for RTX and its sidecar relabelled, to check what the repository writer does with an engine."""
    onnx_dir = tiny_exports.copy(tmp_path / "export", "vificlip_tiny")
    engine = tmp_path / "classifier.engine"
    build_engine(onnx_dir / "classifier.onnx", BuildOptions(max_batch=4, opt_batch=2, runtime="tensorrt-rtx"), engine,
                 log=lambda line: None)
    repo = tmp_path / "repo"
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--out", str(repo)]) == 2
    assert "Triton's TensorRT backend runs TensorRT engines" in capsys.readouterr().err
    assert not repo.exists()  # nothing written
    sidecar = read_sidecar(engine)
    write_sidecar(engine, dict(sidecar, runtime=dict(sidecar["runtime"], name="tensorrt", version="10.8.0.43")))
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--out", str(repo)]) == 0
    folder = repo / "vificlip_tiny_classifier_trt"
    config = parse(folder)
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
    assert (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert tensors(config, "input") == [("frames", "TYPE_UINT8", [8, 3, 32, 32])]  # the profile's T
    assert tensors(config, "output") == [("logits", "TYPE_FP32", [3]), ("probabilities", "TYPE_FP32", [3])]
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--engine", str(engine),
                 "--out", str(repo)]) == 2 and "two engines of the same graph" in capsys.readouterr().err
    assert "version-compatible=true" not in (folder / "config.pbtxt").read_text()
    sidecar = read_sidecar(engine)
    write_sidecar(engine, dict(sidecar, target=dict(sidecar["target"], version_compatible=True)))
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--out", str(repo)]) == 0
    assert "--backend-config=tensorrt,version-compatible=true" in (folder / "config.pbtxt").read_text()
    assert parse(folder).platform == "tensorrt_plan"  # the note is a comment: the config still parses
    ranged = {key: [batch, frames, 3, 32, 32] for key, batch, frames in (("min", 1, 8), ("opt", 2, 16), ("max", 4, 32))}
    write_sidecar(engine, dict(read_sidecar(engine), profile={"frames": ranged}))
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--out", str(repo)]) == 0
    assert tensors(parse(folder), "input") == [("frames", "TYPE_UINT8", [-1, 3, 32, 32])]  # a frame range stays free
    write_sidecar(engine, dict(read_sidecar(engine), profile={"frames": dict(ranged, min=[2, 8, 3, 32, 32])}))
    assert main(["export", "triton", "--onnx", str(onnx_dir), "--engine", str(engine), "--out", str(repo)]) == 2
    assert "rebuild it with --min-batch 1" in capsys.readouterr().err


def test_a_refresh_swaps_each_model_folder_in_whole_and_keeps_what_the_user_added(tiny_exports, tmp_path,
                                                                                   monkeypatch, capsys):
    """Rewriting a repository: a model folder is the old one or the new one, never a mix (here the refresh is
    interrupted while the classifier, the last model, is written); versions the user added beside ours stay; a
    folder of the same name that this command did not write is refused."""
    from t2l_fast.deploy import triton

    onnx_dir, repo = tiny_exports.copy(tmp_path / "export"), tmp_path / "repo"
    command = ["export", "triton", "--onnx", str(onnx_dir), "--out", str(repo)]
    assert main([*command, "--max-batch", "16"]) == 0
    (repo / "t2l_tiny_video_encoder" / "2").mkdir()  # a version the user added
    classifier = (repo / "t2l_tiny_classifier" / "config.pbtxt").read_text()

    def interrupted(name, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(triton, "_write_labels", interrupted)
    assert main([*command, "--max-batch", "4"]) == 130
    assert parse(repo / "t2l_tiny_video_encoder").max_batch_size == 4  # swapped in before the interrupt
    assert (repo / "t2l_tiny_video_encoder" / "2").is_dir()
    assert (repo / "t2l_tiny_classifier" / "config.pbtxt").read_text() == classifier  # the old one, whole
    assert sorted(p.name for p in repo.iterdir()) == [f"t2l_tiny_{kind}" for kind in
                                                     ("classifier", "text_encoder", "video_encoder")]
    monkeypatch.undo()
    (repo / "t2l_tiny_text_encoder" / "config.pbtxt").unlink()  # now a folder this command did not write
    assert main(command) == 2
    assert "t2l_tiny_text_encoder: not empty and not a Triton model folder (no config.pbtxt)" in capsys.readouterr().err
