import pytest
import torch
from conftest import TINY_MODELS, random_video

import t2l_fast
from t2l_fast.models.t2l import T2L
from t2l_fast.text.tokenize import tokenize


def perturb_adapters(model):
    """Give the zero-initialised adapter outputs non-zero weights, so gradients reach every adapter tensor."""
    with torch.no_grad():
        for name, p in model.named_learnable_parameters():
            if ".fc2." in name:
                p.normal_(0, 0.02)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_shapes_and_no_nan(name):
    model = t2l_fast.create_model(name).eval()
    video = random_video(model, batch=3)
    tokens = tokenize(["a", "b c", "d e f", "g"])
    frames = model.encode_frames(video)
    assert frames.shape == (3, model.config.frames, model.config.embed_dim)
    emb_v, emb_t = model.encode_video(video), model.encode_text(tokens)
    assert emb_v.shape == (3, model.config.embed_dim) and emb_t.shape == (4, model.config.embed_dim)
    torch.testing.assert_close(emb_v.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(emb_t.norm(dim=-1), torch.ones(4))
    logits = model(video, emb_t)
    assert logits.shape == (3, 4)
    for t in (frames, emb_v, emb_t, logits):
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("name", TINY_MODELS)
def test_gradients_reach_learnable_and_only_learnable(name):
    model = t2l_fast.create_model(name).train()
    perturb_adapters(model)
    video = random_video(model)
    logits = model(video, model.encode_text(tokenize(["x", "y"])))
    learnable = dict(model.named_learnable_parameters())
    if not learnable:  # vanilla CLIP: nothing trains, so nothing can build a graph
        assert name == "clip_tiny" and not logits.requires_grad
        return
    logits.square().mean().backward()
    for pname, p in model.named_parameters():
        if pname in learnable:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} got no gradient"
        else:
            assert p.grad is None, f"frozen {pname} got a gradient"


def test_t2l_learnable_set_is_tokens_and_adapters():
    model = t2l_fast.create_model("t2l_tiny")
    names = {n.split(".")[0] for n, _ in model.named_learnable_parameters()}
    assert names == {"temporal_tokens", "vision_adapters", "text_adapters"}
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_t2l_adapters_start_as_identity():
    model = t2l_fast.create_model("t2l_tiny")
    x = torch.randn(2, 5, model.config.vision.width)
    torch.testing.assert_close(model.vision_adapters[0](x), x)


def test_reversing_frames_changes_t2l_but_not_frame_average():
    video = None
    for name in TINY_MODELS:
        model = t2l_fast.create_model(name).eval()
        if name == "t2l_tiny":
            with torch.no_grad():
                model.temporal_tokens.mul_(20)  # a trained model's tokens are far from their small init
        video = random_video(model) if video is None else video
        forward, backward = model.encode_video(video), model.encode_video(video.flip(1))
        if name == "t2l_tiny":
            assert (forward - backward).abs().max() > 1e-3
        else:
            torch.testing.assert_close(forward, backward, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["vificlip_tiny", "clip_tiny"])
def test_frame_average_equals_open_clip_encode_image(name):
    model = t2l_fast.create_model(name).eval()
    video = random_video(model)
    b, t = video.shape[:2]
    expected = model.backbone.encode_image(video.flatten(0, 1)).view(b, t, -1).mean(1)
    expected = torch.nn.functional.normalize(expected, dim=-1)
    torch.testing.assert_close(model.encode_video(video), expected)
    tokens = tokenize(["jump", "run"])
    torch.testing.assert_close(model.encode_text(tokens), model.backbone.encode_text(tokens, normalize=True))


def test_t2l_with_zero_tokens_and_identity_adapters_is_frame_averaged_clip_up_to_the_extra_key():
    """With P = 0 and the token path removed, T2L's vision tower reduces to CLIP's image tower."""
    model = t2l_fast.create_model("t2l_tiny").eval()
    video = random_video(model)
    b, t = video.shape[:2]
    clip_frames = model.backbone.encode_image(video.flatten(0, 1)).view(b, t, -1)
    t2l_frames = model.encode_frames(video)
    # The temporal token is an extra key, so outputs differ, but only slightly at initialisation.
    assert not torch.allclose(t2l_frames, clip_frames)
    assert torch.nn.functional.cosine_similarity(t2l_frames, clip_frames, dim=-1).min() > 0.9
    # Text side: identity adapters make T2L's text tower exactly CLIP's.
    tokens = tokenize(["open a door", "close a door"])
    torch.testing.assert_close(model.encode_text(tokens), model.backbone.encode_text(tokens, normalize=True))


def test_t2l_refuses_other_frame_counts():
    model = t2l_fast.create_model("t2l_tiny")
    video = torch.randn(1, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="T=8"):
        model.encode_frames(video)
    with pytest.raises(ValueError, match=r"expected video \[B, T, 3, 32, 32\]"):
        model.encode_frames(torch.randn(1, 8, 3, 64, 64))


@pytest.mark.parametrize("name", ["t2l_tiny", "vificlip_tiny"])
def test_gradient_checkpointing_gives_same_gradients(name):
    model = t2l_fast.create_model(name, drop_path=0.0, token_dropout=0.0).train()
    perturb_adapters(model)
    video = random_video(model)
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        model.encode_frames(video).square().sum().backward()
        grads.append([p.grad.clone() for p in model.learnable_parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for plain, checkpointed in zip(*grads):
        torch.testing.assert_close(plain, checkpointed)


def test_dropout_and_drop_path_only_in_training():
    model = t2l_fast.create_model("t2l_tiny", drop_path=0.5, token_dropout=0.5)
    video = random_video(model)
    model.eval()
    torch.testing.assert_close(model.encode_frames(video), model.encode_frames(video))
    model.train()
    assert not torch.allclose(model.encode_frames(video), model.encode_frames(video))
    assert isinstance(model, T2L)
    rates = [dp.rate for dp in model.vision_drop_paths]
    assert rates == pytest.approx([0.0, 0.5 / 3, 1.0 / 3, 0.5])  # linspace(0, 0.5) over the 4 tiny image blocks
    assert model.backbone.visual.transformer.resblocks[-1].attn.dropout == 0.5


def test_logit_scale_is_frozen_100():
    for name in TINY_MODELS:
        model = t2l_fast.create_model(name)
        assert model.logit_scale().item() == pytest.approx(100.0)
        assert model.backbone.logit_scale.requires_grad == (name == "vificlip_tiny")


def test_input_spec_statistics():
    assert t2l_fast.create_model("clip_tiny").input_spec.mean[0] == pytest.approx(0.4815, abs=1e-4)
    vifi = t2l_fast.create_model("vificlip_tiny").input_spec
    assert vifi.mean == pytest.approx((123.675 / 255, 116.28 / 255, 103.53 / 255), abs=1e-4)
    assert vifi.std == pytest.approx((58.395 / 255, 57.12 / 255, 57.375 / 255), abs=1e-4)


def test_normalize_video_uint8_and_float_agree():
    spec = t2l_fast.create_model("t2l_tiny", device="meta").input_spec
    clip = torch.randint(0, 256, (2, 8, 3, 32, 32), dtype=torch.uint8)
    a = t2l_fast.normalize_video(clip, spec)
    b = t2l_fast.normalize_video(clip.float() / 255, spec)
    torch.testing.assert_close(a, b)
    assert a.dtype == torch.float32


def _reference_vision_block(model, layer, block, x, batch, mutant=None):
    """docs/design/T2L_SPEC.md §1.2 the plain way (the official code's formulation): full self-attention of the frozen
    MHA over [x; u] for every frame, the temporal token's own output row dropped afterwards. `mutant`: a plausible
    mistake ("token order": tokens of reversed frames; "ln": the token appended without LN1)."""
    bt, n, w = x.shape
    t = bt // batch
    tokens = model.temporal_tokens[layer].flip(0) if mutant == "token order" else model.temporal_tokens[layer]
    token = tokens + x.view(batch, t, n, w).mean(dim=2)  # [B, T, W]
    token = block.attention(block.ln_1(token)).reshape(bt, 1, w)  # attention across the T frames of a video
    if mutant == "ln":
        extended = torch.cat([block.ln_1(x), token], dim=1)  # [B*T, N+1, W]
    else:
        extended = block.ln_1(torch.cat([x, token], dim=1))
    x = x + block.ls_1(block.attention(extended)[:, :n])  # the token's output row is thrown away
    x = model.vision_adapters[layer](x)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


@pytest.mark.parametrize("mutant", [None, "token order", "ln"])
def test_t2l_vision_block_matches_the_plain_formulation_with_large_learned_weights(monkeypatch, mutant):
    """Tokens and adapters far from their init, so that the plausible mistakes fail the comparison."""
    model = t2l_fast.create_model("t2l_tiny").eval()
    with torch.no_grad():
        for p in model.learnable_parameters():
            p.normal_(0, 0.5)
    video = random_video(model, batch=2)
    with torch.no_grad():
        ours = model.encode_frames(video)
        monkeypatch.setattr(model, "_vision_block",
                            lambda *args: _reference_vision_block(model, *args, mutant=mutant))
        reference = model.encode_frames(video)
    error = (ours - reference).abs().max() / reference.abs().max()
    assert error <= 1e-5 if mutant is None else error > 1e-2, error
