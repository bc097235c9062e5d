import json
from pathlib import Path

import pytest
import torch
from conftest import random_video
from test_checkpoints import assert_same_outputs
from test_models import perturb_adapters

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.errors import CheckpointError
from t2l_fast.models.official import official_layout, to_official_state_dict

GOLDEN = Path(__file__).parent / "data" / "official_t2l_vit_b16_keys.json"


def trained_tiny(**kwargs):
    model = t2l_fast.create_model("t2l_tiny", **kwargs)
    perturb_adapters(model)
    with torch.no_grad():
        model.temporal_tokens.mul_(5)
    return model


def save_official(model, path, *, half=True, prefix="module.", temporal_embedding=None):
    """Write `model` the way the official train.py does: the whole CLIP state dict, fp16, DataParallel prefix."""
    state = to_official_state_dict(model)
    if temporal_embedding is not None:
        state["visual.temporal_embedding"] = temporal_embedding
    state = {prefix + k: (v.half() if half and v.is_floating_point() else v) for k, v in state.items()}
    torch.save({"epoch": 7, "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []}},
               path)


def test_official_layout_matches_golden_key_list():
    golden = {k: tuple(v) for k, v in json.loads(GOLDEN.read_text())["keys"].items()}
    ours = official_layout(t2l_fast.get_model_config("t2l_vit_b16"))
    assert sorted(set(golden) - set(ours)) == [] and sorted(set(ours) - set(golden)) == []
    assert ours == golden


def test_round_trip_fp32_is_exact(tmp_path):
    model = trained_tiny()
    save_official(model, tmp_path / "ck.pt", half=False, prefix="")
    loaded = t2l_fast.load_official_t2l(tmp_path / "ck.pt")
    assert loaded.config.name == "t2l_tiny" and loaded.config.frames == 8
    assert_same_outputs(model, loaded, random_video(model), atol=0, rtol=0)


def test_round_trip_fp16_with_module_prefix(tmp_path):
    model = trained_tiny()
    save_official(model, tmp_path / "ck.pt")
    loaded = t2l_fast.load_official_t2l(tmp_path / "ck.pt")
    with torch.no_grad():  # the reference, rounded to fp16 the way the file was
        for p in model.parameters():
            p.copy_(p.half().float())
    assert_same_outputs(model, loaded, random_video(model), atol=0, rtol=0)


def test_frames_come_from_the_weights(tmp_path):
    model = trained_tiny(frames=4)
    save_official(model, tmp_path / "ck.pt")
    assert t2l_fast.load_official_t2l(tmp_path / "ck.pt").config.frames == 4


def test_nonzero_temporal_embedding_warns(tmp_path):
    model = trained_tiny()
    save_official(model, tmp_path / "ck.pt", temporal_embedding=torch.full((1, 8, 64), 0.5))
    with pytest.warns(UserWarning, match="temporal_embedding is not all zeros"):
        t2l_fast.load_official_t2l(tmp_path / "ck.pt")


def test_wrong_model_and_wrong_file_are_refused(tmp_path):
    save_official(trained_tiny(), tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match="fit none of \\['t2l_vit_b16'\\]"):
        t2l_fast.load_official_t2l(tmp_path / "ck.pt", model_name="t2l_vit_b16")
    with pytest.raises(CheckpointError, match="need a T2L model"):
        t2l_fast.load_official_t2l(tmp_path / "ck.pt", model_name="vificlip_tiny")
    torch.save({"model_state_dict": {"visual.proj": torch.zeros(2, 2)}}, tmp_path / "clip.pt")
    with pytest.raises(CheckpointError, match="clip.pt: not an official T2L checkpoint"):
        t2l_fast.load_official_t2l(tmp_path / "clip.pt")


def test_convert_official_cli(tmp_path, capsys):
    model = trained_tiny()
    save_official(model, tmp_path / "ck.pt", half=False)
    assert main(["convert-official", str(tmp_path / "ck.pt"), str(tmp_path / "out")]) == 0
    assert "t2l_tiny, T=8, full model" in capsys.readouterr().out
    assert_same_outputs(model, t2l_fast.load_checkpoint(tmp_path / "out"), random_video(model), atol=0, rtol=0)


# ---------------------------------------------------------------- ViFi-CLIP (muzairkhattak/ViFi-CLIP)
@pytest.fixture
def vificlip_run(tmp_path, monkeypatch):
    """(CLIP weights file it started from, the fine-tuned model, its official .pth): written the way ViFi-CLIP's
    epoch_saving does, the DDP state dict of its ViFiCLIP wrapper plus a yacs CfgNode config."""
    import sys
    import types

    from safetensors.torch import save_file

    from t2l_fast.text.tokenize import tokenize

    start = t2l_fast.create_model("vificlip_tiny")
    clip_file = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in start.backbone.state_dict().items()}, str(clip_file))
    model = t2l_fast.create_model("vificlip_tiny", pretrained=str(clip_file), frames=4)
    with torch.no_grad():  # fine-tuned: every weight but the token embedding moved
        for name, p in model.backbone.named_parameters():
            if not name.startswith("token_embedding"):
                p.add_(torch.randn_like(p) * 0.02)
    backbone = model.backbone
    state = {f"module.image_encoder.{k}": v for k, v in backbone.visual.state_dict().items()}
    for name in ("transformer", "ln_final"):
        state.update({f"module.text_encoder.{name}.{k}": v for k, v in getattr(backbone, name).state_dict().items()})
    state.update({"module.text_encoder.positional_embedding": backbone.positional_embedding,
                  "module.text_encoder.text_projection": backbone.text_projection,
                  "module.logit_scale": backbone.logit_scale})
    tokens = tokenize(["a photo of a clapping.", "a photo of a waving."], 77)
    state["module.prompt_learner.complete_text_embeddings"] = backbone.token_embedding(tokens).detach().half()

    yacs = types.ModuleType("yacs")
    yacs.config = types.ModuleType("yacs.config")

    class CfgNode(dict):  # as yacs.config.CfgNode pickles: a dict with attributes in __dict__
        __module__, __qualname__ = "yacs.config", "CfgNode"

        def __init__(self, *args):
            super().__init__(*args)
            self.__dict__["__immutable__"] = False

    yacs.config.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, "yacs", yacs)
    monkeypatch.setitem(sys.modules, "yacs.config", yacs.config)
    config = CfgNode({"DATA": CfgNode({"NUM_FRAMES": 4}), "MODEL": CfgNode({"ARCH": "ViT-B/16"})})
    path = tmp_path / "best.pth"
    torch.save({"model": {k: v.detach().clone() for k, v in state.items()}, "optimizer": {}, "lr_scheduler": {},
                "max_accuracy": 0.5, "epoch": 9, "config": config}, path)
    monkeypatch.delitem(sys.modules, "yacs.config")  # loading must not need yacs
    monkeypatch.delitem(sys.modules, "yacs")
    return clip_file, model, path


def test_vificlip_checkpoint_imports_with_the_token_embedding_from_its_clip(vificlip_run, tmp_path):
    from t2l_fast.models.official_vificlip import load_official_vificlip

    clip_file, model, path = vificlip_run
    loaded = load_official_vificlip(path, pretrained=str(clip_file))
    assert loaded.config.name == "vificlip_tiny" and loaded.config.frames == 4
    assert_same_outputs(model.eval(), loaded.eval(), random_video(model), atol=0, rtol=0)
    assert main(["convert-official", str(path), str(tmp_path / "out"), "--kind", "vificlip",
                 "--pretrained", str(clip_file)]) == 0
    assert_same_outputs(model, t2l_fast.load_checkpoint(tmp_path / "out").eval(), random_video(model), atol=0, rtol=0)
    assert main(["convert-official", str(path), str(tmp_path / "o2"), "--kind", "vificlip"]) == 2  # no --pretrained


def test_vificlip_import_refuses_other_clip_weights_and_prompting_checkpoints(vificlip_run, tmp_path):
    from safetensors.torch import save_file

    from t2l_fast.models.official_vificlip import load_official_vificlip

    clip_file, model, path = vificlip_run
    other = tmp_path / "other.safetensors"
    torch.manual_seed(123)
    save_file({k: v.contiguous() for k, v in t2l_fast.create_model("vificlip_tiny").backbone.state_dict().items()},
              str(other))
    with pytest.raises(CheckpointError, match="not the ones this ViFi-CLIP model was fine-tuned from"):
        load_official_vificlip(path, pretrained=str(other))
    with pytest.raises(CheckpointError, match="not an official ViFi-CLIP checkpoint"):
        save_official(trained_tiny(), tmp_path / "t2l.pt")
        load_official_vificlip(tmp_path / "t2l.pt", pretrained=str(clip_file))
    prompting = torch.load(path, weights_only=False)
    prompting["model"]["module.image_encoder.VPT"] = torch.zeros(4, 64)
    torch.save({"model": prompting["model"]}, tmp_path / "prompting.pth")
    with pytest.raises(CheckpointError, match="prompting checkpoint"):
        load_official_vificlip(tmp_path / "prompting.pth", pretrained=str(clip_file))


def test_vificlip_config_as_real_yacs_writes_it_loads_without_code(vificlip_run, tmp_path):
    """The real yacs CfgNode (fvcore depends on it) pickles extra state (sets, flags): still read as plain data."""
    yacs_config = pytest.importorskip("yacs.config", reason="yacs is not installed (comes with fvcore)")
    from t2l_fast.models.official_vificlip import read_vificlip_checkpoint

    _, _, path = vificlip_run
    checkpoint = torch.load(path, weights_only=False)
    config = yacs_config.CfgNode({"DATA": {"NUM_FRAMES": 4}, "TRAIN": {"LR": 2e-6}})
    config.freeze()
    torch.save({**checkpoint, "config": config}, tmp_path / "real.pth")
    state, _, run_config = read_vificlip_checkpoint(tmp_path / "real.pth")
    assert run_config["DATA"]["NUM_FRAMES"] == 4 and run_config["TRAIN"]["LR"] == 2e-6
    assert "backbone.visual.conv1.weight" in state
