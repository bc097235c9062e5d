import pytest

import t2l_fast

FULL_SIZE = {
    # name: (learnable, total)
    "t2l_vit_b16": (5_204_736, 154_825_473),
    "vificlip_vit_b16": (124_323_841, 149_620_737),
    "clip_vit_b16": (0, 149_620_737),
    "t2l_vit_b32": (5_204_736, None),
    "t2l_vit_l14": (16_360_704, None),
}


def test_list_models_has_every_name():
    assert set(t2l_fast.list_models()) == {"t2l_vit_b16", "t2l_vit_b32", "t2l_vit_l14", "vificlip_vit_b16",
                                           "clip_vit_b16", "t2l_tiny", "vificlip_tiny", "clip_tiny"}


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="did you mean t2l_vit_b16"):
        t2l_fast.create_model("t2l_vit_b61")


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="framez"):
        t2l_fast.create_model("t2l_tiny", framez=4)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        t2l_fast.create_model("t2l_tiny", frames=0)


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_parameter_counts(name):
    learnable, total = t2l_fast.create_model(name, device="meta").count_parameters()
    want_learnable, want_total = FULL_SIZE[name]
    assert learnable == want_learnable
    if want_total is not None:
        assert total == want_total


def test_t2l_b16_parameter_breakdown():
    model = t2l_fast.create_model("t2l_vit_b16", device="meta")
    groups = {}
    for name, p in model.named_learnable_parameters():
        groups[name.split(".")[0]] = groups.get(name.split(".")[0], 0) + p.numel()
    assert groups == {"temporal_tokens": 73_728, "vision_adapters": 3_550_464, "text_adapters": 1_580_544}
    assert sum(p.numel() for p in model.backbone.parameters()) == 149_620_737


def test_frames_override_changes_token_count():
    model = t2l_fast.create_model("t2l_vit_b16", device="meta", frames=16)
    assert model.temporal_tokens.shape == (12, 16, 768)
    assert model.config.frames == 16
