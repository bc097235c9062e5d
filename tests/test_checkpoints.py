import json
import os
import pickle

import pytest
import torch
from conftest import TINY_MODELS, random_video
from safetensors.torch import load_file, save_file
from test_models import perturb_adapters

import t2l_fast
from t2l_fast.errors import CheckpointError
from t2l_fast.models.checkpoint import WEIGHTS_FILE


def outputs(model, video):
    model.eval()
    with torch.no_grad():
        return model.encode_frames(video), model.encode_text(t2l_fast.tokenize(["walk", "sit down"]))


def assert_same_outputs(a, b, video, **tol):
    for x, y in zip(outputs(a, video), outputs(b, video)):
        torch.testing.assert_close(x, y, **tol)


def perturbed(name, **kwargs):
    model = t2l_fast.create_model(name, **kwargs)
    perturb_adapters(model)
    return model


@pytest.fixture
def backbone_file(tmp_path):
    """A CLIP backbone saved as a plain OpenAI-layout state dict, the way users hold weights offline."""
    source = t2l_fast.create_model("clip_tiny")
    path = tmp_path / "tiny_clip.pt"
    torch.save(source.backbone.state_dict(), path)
    return path


@pytest.mark.parametrize("name", TINY_MODELS)
def test_full_checkpoint_round_trip(tmp_path, name):
    model = perturbed(name)
    t2l_fast.save_checkpoint(model, tmp_path / "ck", full=True)
    loaded = t2l_fast.load_checkpoint(tmp_path / "ck")
    assert loaded.config == model.config
    assert_same_outputs(model, loaded, random_video(model), atol=0, rtol=0)


def test_learnable_checkpoint_holds_only_learnable_weights(tmp_path, backbone_file):
    model = perturbed("t2l_tiny")
    model = t2l_fast.create_model("t2l_tiny", pretrained=str(backbone_file))
    perturb_adapters(model)
    with torch.no_grad():
        model.temporal_tokens.mul_(3)
    t2l_fast.save_checkpoint(model, tmp_path / "ck")
    stored = load_file(str(tmp_path / "ck" / WEIGHTS_FILE))
    assert set(stored) == {n for n, _ in model.named_learnable_parameters()}
    loaded = t2l_fast.load_checkpoint(tmp_path / "ck", pretrained=str(backbone_file))
    assert_same_outputs(model, loaded, random_video(model), atol=0, rtol=0)
    also = t2l_fast.create_model("t2l_tiny", pretrained=str(backbone_file), checkpoint=str(tmp_path / "ck"))
    assert_same_outputs(model, also, random_video(model), atol=0, rtol=0)


def test_a_recorded_backbone_file_is_read_only_inside_the_checkpoint_folder(tmp_path, backbone_file):
    """A checkpoint's config names its backbone; a file outside the checkpoint's folder is read only when the caller
    passes it (the config is no consent to read elsewhere); one inside the folder is read as recorded."""
    model = t2l_fast.create_model("t2l_tiny", pretrained=str(backbone_file))
    t2l_fast.save_checkpoint(model, tmp_path / "ck")
    with pytest.raises(CheckpointError, match=f"records its backbone as '{backbone_file}', outside the checkpoint "
                                              f"folder.*--pretrained {backbone_file}"):
        t2l_fast.load_checkpoint(tmp_path / "ck")
    inside = tmp_path / "ck2" / "backbone.pt"
    inside.parent.mkdir()
    inside.write_bytes(backbone_file.read_bytes())
    model = t2l_fast.create_model("t2l_tiny", pretrained=str(inside))
    t2l_fast.save_checkpoint(model, tmp_path / "ck2")
    assert_same_outputs(model, t2l_fast.load_checkpoint(tmp_path / "ck2"), random_video(model), atol=0, rtol=0)
    config = json.loads((tmp_path / "ck2" / "config.json").read_text())
    for recorded, loads in (("backbone.pt", True), ("../tiny_clip.pt", False), (f"local-dir:{tmp_path / 'ck2'}",
                                                                                  False)):
        (tmp_path / "ck2" / "config.json").write_text(json.dumps({**config, "backbone": recorded}))
        if loads:  # a relative record is relative to the checkpoint folder
            assert_same_outputs(model, t2l_fast.load_checkpoint(tmp_path / "ck2"), random_video(model), atol=0, rtol=0)
        else:
            with pytest.raises(CheckpointError, match=f"--pretrained {recorded}"):
                t2l_fast.load_checkpoint(tmp_path / "ck2")


def test_learnable_checkpoint_of_random_backbone_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="randomly initialised.*full=True"):
        t2l_fast.save_checkpoint(t2l_fast.create_model("t2l_tiny"), tmp_path / "ck")


def test_other_frame_count_is_refused(tmp_path):
    t2l_fast.save_checkpoint(t2l_fast.create_model("t2l_tiny"), tmp_path / "ck", full=True)
    with pytest.raises(CheckpointError, match="trained with T=8 frames.*built for T=4"):
        t2l_fast.create_model("t2l_tiny", frames=4, checkpoint=str(tmp_path / "ck"))


def test_other_architecture_is_refused(tmp_path):
    t2l_fast.save_checkpoint(t2l_fast.create_model("vificlip_tiny"), tmp_path / "ck", full=True)
    with pytest.raises(CheckpointError, match="saved from vificlip_tiny"):
        t2l_fast.create_model("t2l_tiny", checkpoint=str(tmp_path / "ck"))


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    t2l_fast.save_checkpoint(t2l_fast.create_model("t2l_tiny"), tmp_path / "ck", full=True)
    weights = tmp_path / "ck" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"{weights}: cannot read safetensors"):
        t2l_fast.load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: corrupt JSON"):
        t2l_fast.load_checkpoint(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not a t2l-fast checkpoint directory"):
        t2l_fast.load_checkpoint(tmp_path)


def test_save_failure_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = t2l_fast.create_model("t2l_tiny")
    t2l_fast.save_checkpoint(model, tmp_path / "ck", full=True)
    before = (tmp_path / "ck" / WEIGHTS_FILE).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        t2l_fast.save_checkpoint(model, tmp_path / "ck", full=True)
    assert (tmp_path / "ck" / WEIGHTS_FILE).read_bytes() == before
    assert sorted(os.listdir(tmp_path / "ck")) == ["config.json", WEIGHTS_FILE]  # no temp files left


# ---------------------------------------------------------------------------- CLIP backbone files

def test_openai_state_dict_fp16_module_prefix_round_trip(tmp_path):
    reference = t2l_fast.create_model("clip_tiny")
    state = {f"module.{k}": v.half() for k, v in reference.backbone.state_dict().items()}
    state.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    torch.save(state, tmp_path / "openai_fp16.pt")
    loaded = t2l_fast.create_model("clip_tiny", pretrained=str(tmp_path / "openai_fp16.pt"))
    with torch.no_grad():  # the same fp16 rounding applied to the reference
        for p in reference.backbone.parameters():
            p.copy_(p.half().float())
    assert_same_outputs(reference, loaded, random_video(reference), atol=0, rtol=0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_openai_torchscript_archive_round_trip(tmp_path):
    reference = t2l_fast.create_model("clip_tiny").eval()
    video = random_video(reference)
    traced = torch.jit.trace(reference.backbone, (video[0], t2l_fast.tokenize(["a", "b"])))
    traced.save(str(tmp_path / "ViT-tiny.pt"))
    with pytest.raises(CheckpointError, match=r"not one of OpenAI's released CLIP files.*pass torchscript:"):
        t2l_fast.create_model("clip_tiny", pretrained=str(tmp_path / "ViT-tiny.pt"))  # code could run: not unasked
    for name in ("t2l_tiny", "vificlip_tiny"):
        loaded = t2l_fast.create_model(name, pretrained=f"torchscript:{tmp_path / 'ViT-tiny.pt'}")
        for key, value in reference.backbone.state_dict().items():
            torch.testing.assert_close(loaded.backbone.state_dict()[key], value, atol=0, rtol=0)
    loaded = t2l_fast.create_model("clip_tiny", pretrained=f"torchscript:{tmp_path / 'ViT-tiny.pt'}")
    assert_same_outputs(reference, loaded, video, atol=0, rtol=0)


def test_safetensors_and_local_dir_backbones(tmp_path):
    reference = t2l_fast.create_model("clip_tiny")
    (tmp_path / "d").mkdir()
    save_file({k: v.contiguous() for k, v in reference.backbone.state_dict().items()},
              str(tmp_path / "d" / "open_clip_model.safetensors"))
    for source in (str(tmp_path / "d" / "open_clip_model.safetensors"), f"local-dir:{tmp_path / 'd'}"):
        loaded = t2l_fast.create_model("clip_tiny", pretrained=source)
        assert_same_outputs(reference, loaded, random_video(reference), atol=0, rtol=0)
    with pytest.raises(CheckpointError, match="no CLIP weights found"):
        t2l_fast.create_model("clip_tiny", pretrained=f"local-dir:{tmp_path}")


def test_backbone_errors_name_the_source(tmp_path, backbone_file):
    with pytest.raises(CheckpointError, match="missing.pt: no such file"):
        t2l_fast.create_model("clip_tiny", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(CheckpointError, match=f"{backbone_file}: weights do not fit.*other shapes"):
        t2l_fast.create_model("clip_tiny", pretrained=str(backbone_file), embed_dim=32)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(backbone_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt: cannot read this checkpoint"):
        t2l_fast.create_model("clip_tiny", pretrained=str(truncated))
    with pytest.raises(CheckpointError, match="'no-such-tag' is neither a file nor an open_clip pretrained tag"):
        t2l_fast.create_model("clip_vit_b16", pretrained="no-such-tag")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    _Payload.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"visual.proj": _Payload()}, f)
    with pytest.raises(CheckpointError, match="evil.pt: refused to load"):
        t2l_fast.create_model("clip_tiny", pretrained=str(path))
    assert not _Payload.marker.exists()


def test_open_clip_tag_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="could not fetch open_clip ViT-B-16-quickgelu/openai.*local file"):
        t2l_fast.create_model("clip_vit_b16", pretrained="openai")
