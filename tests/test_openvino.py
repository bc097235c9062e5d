"""The OpenVINO runner: parity with ONNX Runtime on a tiny export, its compiled-model cache beside the graph, the
INT8 gate it obeys, and `t2l predict --backend openvino`."""
import json

import numpy as np
import pytest
from export_cache import CLASSES, add_int8_graphs

from t2l_fast.cli import main
from t2l_fast.deploy.onnx_export import write_manifest
from t2l_fast.io import file_sha256
from t2l_fast.runtime import Tolerance, compare_outputs
from t2l_fast.runtime.base import ArtifactError
from t2l_fast.runtime.bundle import ExportedModel
from t2l_fast.runtime.compare import FP32_GATE, REDUCED_GATE
from t2l_fast.runtime.export_runners import export_runner, unavailable_reason
from t2l_fast.runtime.openvino_runner import CACHE_DIR, CACHE_RECORD

pytest.importorskip("openvino", reason="the OpenVINO runner needs openvino (pip install 't2l-fast[onnx]')")


def clips(bundle, count=3, seed=0):
    """uint8 [N, T, 3, S, S] synthetic clips (moving shapes) of the export's shape."""
    from t2l_fast.data.synthetic import synthetic_clip

    spec, rng = bundle.input_spec, np.random.default_rng(seed)
    return np.stack([synthetic_clip(rng, i % 6, spec.frames, spec.image_size, spec.image_size).transpose(0, 3, 1, 2)
                     for i in range(count)])


@pytest.fixture(scope="module")
def export(tiny_exports, tmp_path_factory):
    """A copy of the tiny export (the runners write their caches into it)."""
    return ExportedModel(tiny_exports.copy(tmp_path_factory.mktemp("openvino")))


def test_openvino_fp32_matches_onnx_runtime(export):
    frames = clips(export)
    for kind, tolerances in (("classifier", {"logits": Tolerance(max_abs=1e-3), "probabilities": FP32_GATE}),
                             ("video_encoder", {"embedding": FP32_GATE})):
        with export_runner(export, "onnx", kind) as onnx, export_runner(export, "openvino", kind) as openvino:
            reference, outputs = onnx.infer({"frames": frames}), openvino.infer({"frames": frames})
            assert openvino.precision_in_use == "fp32" and openvino.output_names == list(reference)
        report = compare_outputs(outputs, reference, tolerances)
        assert report.passed, report.summary()
    assert (outputs["embedding"].shape, outputs["embedding"].dtype) == ((3, 64), np.float32)
    with export_runner(export, "onnx", "classifier") as onnx, export_runner(export, "openvino", "classifier") as ov:
        assert (onnx.infer({"frames": frames})["logits"].argmax(-1)
                == ov.infer({"frames": frames})["logits"].argmax(-1)).all()


def test_openvino_checks_inputs_and_the_graph(export, tmp_path, tiny_exports):
    with export_runner(export, "openvino", "video_encoder") as runner:
        with pytest.raises(ArtifactError, match="is float32, the graph takes frames uint8"):
            runner.infer({"frames": clips(export).astype(np.float32)})
        with pytest.raises(ArtifactError, match="has shape"):
            runner.infer({"frames": clips(export)[:, :3]})
    changed = ExportedModel(tiny_exports.copy(tmp_path / "changed"))
    with open(changed.graph_path("video_encoder"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 .* does not match"):
        export_runner(changed, "openvino", "video_encoder").__enter__()
    with pytest.raises(Exception, match="runs on the CPU"):
        export_runner(export, "openvino", "video_encoder", device="cuda")


def test_the_compiled_model_cache_is_beside_the_graph_and_checked(export):
    def run():
        with export_runner(export, "openvino", "video_encoder") as runner:
            return runner.infer({"frames": clips(export, 1)})["embedding"]

    first = run()
    (folder,) = (export.directory / CACHE_DIR).glob("video_encoder.*.ov-*")
    record = json.loads((folder / CACHE_RECORD).read_text())
    blob = folder / next(iter(record))
    assert blob.is_file() and export.graphs["video_encoder"]["sha256"][:16] in folder.name
    blob.write_bytes(b"not the blob OpenVINO wrote")  # a changed blob is dropped and compiled again, never loaded
    (folder / "foreign.blob").write_bytes(b"x")
    np.testing.assert_array_equal(run(), first)
    assert not (folder / "foreign.blob").exists() and blob.read_bytes() != b"not the blob OpenVINO wrote"
    rerecorded = json.loads((folder / CACHE_RECORD).read_text())
    assert set(rerecorded) == set(record) and rerecorded[blob.name] == file_sha256(blob)


def test_int8_runs_only_the_gated_graph(export, tiny_exports, tmp_path):
    folder = tiny_exports.copy(tmp_path / "int8")
    add_int8_graphs(folder, gate_passed=True, calibration=clips(export, 8, seed=1))
    bundle, frames = ExportedModel(folder), clips(export)
    with export_runner(bundle, "openvino-int8", "video_encoder") as int8, \
            export_runner(bundle, "onnx", "video_encoder") as fp32:
        assert int8.path.name == "video_encoder_int8.onnx"
        report = compare_outputs(int8.infer({"frames": frames}), fp32.infer({"frames": frames}),
                                 {"embedding": REDUCED_GATE})
    assert report.passed, report.summary()
    with export_runner(bundle, "openvino-int8", "text_encoder") as text:  # no INT8 text graph: the fp32 one
        assert text.path.name == "text_encoder.onnx" and text.precision == "fp32"
    del bundle.manifest["int8"]["kept_fp32"]  # INT8 graphs from before the pooled projection was kept in fp32
    write_manifest(folder, bundle.manifest)
    with pytest.raises(ArtifactError, match="returns zeros for every clip of a batch after the first; re-export"):
        export_runner(ExportedModel(folder), "openvino-int8", "video_encoder")
    assert "re-export" in unavailable_reason("openvino-int8", ExportedModel(folder), "cpu")
    with export_runner(ExportedModel(folder), "onnx-int8", "video_encoder") as runner:  # ONNX Runtime runs them
        assert runner.path.name == "video_encoder_int8.onnx"
    add_int8_graphs(folder, gate_passed=False)
    for name in ("openvino-int8", "onnx-int8"):
        with pytest.raises(ArtifactError, match="did not pass the agreement gate"):
            export_runner(ExportedModel(folder), name, "classifier")


def test_predict_backend_openvino_matches_onnx(export, tmp_path, capsys):
    from t2l_fast.data.synthetic import synthetic_clip, write_video

    video, descriptions = tmp_path / "clip.mp4", tmp_path / "descriptions.csv"
    write_video(video, synthetic_clip(np.random.default_rng(0), 0, 24, 64, 64))
    descriptions.write_text("".join(f"{name},{name}\n" for name in CLASSES))  # the export's class texts
    results = {}
    for backend in ("onnx", "openvino"):
        assert main(["predict", str(video), "--classes", ",".join(CLASSES), "--descriptions", str(descriptions),
                     "--backend", backend, "--onnx", str(export.directory), "--json", "--no-cache"]) == 0, backend
        (results[backend],) = json.loads(capsys.readouterr().out)
    assert results["openvino"]["top"][0][0] == results["onnx"]["top"][0][0]
    for (name_a, p_a), (name_b, p_b) in zip(results["openvino"]["top"], results["onnx"]["top"]):
        assert name_a == name_b and abs(p_a - p_b) <= 1e-4


def test_int8_backends_compute_every_clip_of_a_batch(tmp_path):
    """Our INT8 graph and OpenVINO's own recipe (NNCF) on a random t2l_tiny, as `t2l bench throughput` builds them:
    every clip of a batch of 3 matches torch (OpenVINO 2026.4 returned zeros after the first clip when the frame-
    pooled projection was quantized), and each row says which matmul kernels ran."""
    import importlib.util

    import torch

    from t2l_fast.models.registry import create_model
    from t2l_fast.perf.backends import build_backend
    from t2l_fast.perf.throughput import clips_for

    torch.manual_seed(0)
    model = create_model("t2l_tiny").eval()
    calibration = clips_for(model.config.vision.image_size, model.config.frames, 8)
    reference = build_backend("torch-eager", model, tmp_path, calibration).run(calibration[:3])
    names = ["openvino-int8"] + (["openvino-nncf"] if importlib.util.find_spec("nncf") else [])  # nncf: [bench]
    for name in names:
        backend = build_backend(name, model, tmp_path, calibration)
        embeddings = backend.run(calibration[:3])  # [3, D]
        cosines = (embeddings * reference).sum(1) / np.linalg.norm(embeddings, axis=1) / np.linalg.norm(reference,
                                                                                                       axis=1)
        assert cosines.min() > 0.9, (name, cosines)
        facts = backend.profile(calibration[:1])
        assert "i8" in facts["matmul_kernels"].lower(), facts  # the products really ran in int8
        assert "%" in facts["time_by_op"], facts
