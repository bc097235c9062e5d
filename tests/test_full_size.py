"""Full-size ViT-B/16 checks (random weights, ~30 s on 2 cores): run with `pytest -m slow`."""
import json

import pytest
import torch

import t2l_fast
from t2l_fast.models.official import to_official_state_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def openai_layout_file(tmp_path_factory):
    import open_clip

    reference = open_clip.create_model("ViT-B-16-quickgelu")
    path = tmp_path_factory.mktemp("weights") / "ViT-B-16.pt"
    torch.save({k: v.half() for k, v in reference.state_dict().items()}, path)  # OpenAI files are fp16
    return path


def test_clip_b16_equals_open_clip_frame_average(openai_layout_file):
    import open_clip

    reference = open_clip.create_model("ViT-B-16-quickgelu", pretrained=str(openai_layout_file)).eval()
    model = t2l_fast.create_model("clip_vit_b16", pretrained=str(openai_layout_file)).eval()
    video = torch.randn(1, 8, 3, 224, 224)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(reference.encode_image(video[0]).mean(0, keepdim=True), dim=-1)
        torch.testing.assert_close(model.encode_video(video), expected, atol=1e-5, rtol=1e-4)


def test_t2l_b16_official_round_trip(openai_layout_file, tmp_path):
    model = t2l_fast.create_model("t2l_vit_b16", pretrained=str(openai_layout_file)).eval()
    with torch.no_grad():
        for p in model.learnable_parameters():
            p.normal_(0, 0.02)
    state = {f"module.{k}": v.half() for k, v in to_official_state_dict(model).items()}
    torch.save({"epoch": 49, "model_state_dict": state, "optimizer_state_dict": {}}, tmp_path / "t2l.pt")
    loaded = t2l_fast.load_official_t2l(tmp_path / "t2l.pt").eval()
    assert loaded.config.name == "t2l_vit_b16" and loaded.count_parameters() == (5_204_736, 154_825_473)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        video = torch.randn(1, 8, 3, 224, 224)
        torch.testing.assert_close(loaded.encode_video(video), model.encode_video(video), atol=0, rtol=0)


def test_t2l_b16_exports_to_onnx_and_matches_torch(tmp_path):
    """`t2l export onnx --model t2l_vit_b16` (random weights): checker, symbolic batch, parity at B=1 and B=3."""
    from t2l_fast.cli import main

    assert main(["export", "onnx", "--model", "t2l_vit_b16", "--out", str(tmp_path), "--classes", "run,jump,swim",
                 "--descriptions", str(_descriptions(tmp_path.parent))]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["graphs"]) == {"video_encoder", "text_encoder", "classifier"}
    assert all(parity["passed"] for parity in manifest["parity"].values())
    assert manifest["graphs"]["video_encoder"]["inputs"][0]["shape"] == ["batch", 8, 3, 224, 224]
    assert manifest["parity"]["classifier"]["top1_agreement"] == 1.0


def _descriptions(folder):
    path = folder / "descriptions.csv"
    path.write_text("run,a person runs\njump,a person jumps\nswim,a person swims\n")
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", ["t2l_vit_b16", "vificlip_vit_b16"])
def test_b16_graphs_build_into_tensorrt_engines(name, precision, tmp_path):
    """Full-size classifier and video-encoder graphs parse and build with TensorRT for RTX (ahead of time, no GPU);
    prints build time and engine size (run with -s)."""
    from t2l_fast.cli import main
    from t2l_fast.deploy.engine_build import BuildOptions, build_engine
    from t2l_fast.errors import MissingDependencyError
    from t2l_fast.runtime.trt_support import load_tensorrt

    try:
        load_tensorrt("tensorrt-rtx")
    except MissingDependencyError as e:
        pytest.skip(str(e))
    assert main(["export", "onnx", "--model", name, "--out", str(tmp_path), "--classes", "run,jump,swim",
                 "--precision", precision]) == 0
    for kind in ("video_encoder", "classifier"):
        sidecar = build_engine(tmp_path / f"{kind}.onnx", BuildOptions(max_batch=8, runtime="tensorrt-rtx"))
        onnx_bytes = sum(f.stat().st_size for f in tmp_path.glob(f"{kind}.onnx*"))
        print(f"ENGINE {name} {precision} {kind}: built in {sidecar['build']['seconds']} s, engine "
              f"{sidecar['engine']['bytes'] / 1e6:.1f} MB (ONNX {onnx_bytes / 1e6:.1f} MB), batch 1-8, "
              f"tensorrt-rtx {sidecar['runtime']['version']}")
        assert sidecar["precision"] == precision and sidecar["engine"]["bytes"] > 0.3 * onnx_bytes


def test_b16_traced_counts_agree_with_the_closed_form():
    """fvcore (full and attention-blind) against the closed form on the full-size configs (raises beyond 1%)."""
    from t2l_fast.perf.flops import count_model

    pytest.importorskip("fvcore", reason="pip install 't2l-fast[bench]'")
    t2l = count_model("t2l_vit_b16")[0]
    vifi = count_model("vificlip_vit_b16", (8, 32))
    assert 146 < t2l["gflops_full"] < 147 and 95 < t2l["gflops_attention_blind"] < 96.5
    assert [round(r["gflops_full"], 1) for r in vifi] == [140.5, 562.0]
