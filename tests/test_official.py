import json
from pathlib import Path

import pytest
import torch

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.errors import CheckpointError
from t2l_fast.models.official import official_layout, to_official_state_dict

from conftest import random_video
from test_checkpoints import assert_same_outputs
from test_models import perturb_adapters

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
