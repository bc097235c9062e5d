import numpy as np
import pytest
import torch

from t2l_fast.data.augment import (
    NO_COLOUR,
    OFFSETS_IN_QUARTERS,
    AugmentConfig,
    apply_eval,
    apply_eval_crops,
    apply_train,
    colour_twist,
    crop_offsets,
    draw_train_params,
)


def identical_frames_clip(frames=8, height=48, width=64):
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    return frame.expand(frames, -1, -1, -1).contiguous()


def test_spatial_parameters_are_shared_by_all_frames():
    clip = identical_frames_clip()
    for seed in range(30):
        config = AugmentConfig(jitter_per_frame=False)  # colour too, so identical frames stay identical
        out = apply_train(clip, draw_train_params(np.random.default_rng(seed), 48, 64, 8, 32, config), 32)
        assert out.shape == (8, 3, 32, 32) and out.dtype == torch.uint8
        assert all(torch.equal(out[0], f) for f in out[1:])


def test_per_frame_jitter_changes_colour_not_geometry():
    clip = identical_frames_clip()
    config = AugmentConfig(jitter_p=1.0, grayscale_p=0.0, flip=False)
    params = draw_train_params(np.random.default_rng(1), 48, 64, 8, 32, config)
    assert params.jitter.shape == (8, 4) and len({tuple(r) for r in params.jitter}) == 8
    out = apply_train(clip, params, 32)
    assert not torch.equal(out[0], out[1])
    factors, params.jitter = params.jitter, None
    cropped = apply_train(clip, params, 32)  # the same crop, no colour change
    for frame, jittered, frame_factors in zip(cropped, out, factors):
        assert torch.equal(colour_twist(frame[None], frame_factors[None])[0], jittered)


def test_crop_sizes_and_offsets_follow_the_recipe():
    height, width, size = 256, 340, 224
    allowed = {224 if abs(int(256 * s) - 224) < 3 else int(256 * s) for s in (1, .875, .75, .66)}
    for seed in range(200):
        x, y, w, h = draw_train_params(np.random.default_rng(seed), height, width, 8, size).crop
        assert w in allowed and h in allowed
        assert sorted(allowed).index(w) - sorted(allowed).index(h) in (-1, 0, 1)
        offsets = {(qx * (width - w) // 4, qy * (height - h) // 4) for qx, qy in OFFSETS_IN_QUARTERS}
        assert (x, y) in offsets


def test_probabilities_roughly_as_configured():
    draws = [draw_train_params(np.random.default_rng(s), 64, 64, 8, 32) for s in range(2000)]
    assert abs(np.mean([d.flip for d in draws]) - 0.5) < 0.05
    assert abs(np.mean([d.jitter is not None for d in draws]) - 0.8) < 0.05
    assert abs(np.mean([d.grayscale for d in draws]) - 0.2) < 0.05
    assert not any(d.flip for d in (draw_train_params(np.random.default_rng(s), 64, 64, 8, 32,
                                                      AugmentConfig(flip=False)) for s in range(100)))


def test_flip_mirrors_and_grayscale_is_gray():
    clip = identical_frames_clip(frames=2, height=32, width=32)
    params = draw_train_params(np.random.default_rng(0), 32, 32, 2, 32, NO_COLOUR)
    params.crop, params.flip, params.grayscale = (0, 0, 32, 32), True, True
    out = apply_train(clip, params, 32).int()
    # gray: equal channels, up to the rounding of the 3-decimal YIQ constants DALI uses too
    assert (out[:, 0] - out[:, 1]).abs().max() <= 1 and (out[:, 1] - out[:, 2]).abs().max() <= 1
    params.grayscale = False
    assert torch.equal(apply_train(clip, params, 32), clip.flip(-1))


def test_eval_resizes_short_side_and_centre_crops():
    clip = identical_frames_clip(frames=3, height=48, width=64)
    out = apply_eval(clip, 32)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.uint8


def test_colour_twist_identity_gray_and_brightness():
    clip = identical_frames_clip(frames=2, height=8, width=8)
    assert torch.equal(colour_twist(clip, np.array([[1.0, 1.0, 1.0, 0.0]])), clip)
    gray = colour_twist(clip, np.array([[1.0, 1.0, 0.0, 0.0]])).float()
    luma = (clip.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(1)
    assert (gray - luma[:, None]).abs().max() <= 1.0
    doubled = colour_twist(clip // 4, np.array([[2.0, 1.0, 1.0, 0.0]]))
    assert (doubled.int() - 2 * (clip // 4).int()).abs().max() <= 1
    contrast = colour_twist(torch.full((1, 3, 2, 2), 100, dtype=torch.uint8), np.array([[1.0, 1.5, 1.0, 0.0]]))
    assert contrast.unique().item() == 86  # (100 - 128) * 1.5 + 128: the pivot is mid-grey


def test_three_crops_span_the_long_side():
    assert crop_offsets(32, 64, 32, 3) == [(0, 0), (16, 0), (32, 0)]  # landscape: left, centre, right
    assert crop_offsets(70, 40, 32, 3) == [(4, 0), (4, 19), (4, 38)]  # portrait: top, centre, bottom
    assert crop_offsets(32, 32, 32, 3) == [(0, 0)] * 3
    with pytest.raises(ValueError, match="2 or more"):
        crop_offsets(32, 64, 32, 1)


def test_eval_crops_are_slices_of_the_short_side_resize():
    clip = identical_frames_clip(frames=2, height=32, width=64)  # short side already the output size
    crops = apply_eval_crops(clip, 32, 3)
    assert crops.shape == (3, 2, 3, 32, 32) and crops.dtype == torch.uint8
    for crop, x in zip(crops, (0, 16, 32)):
        assert (crop.int() - clip[..., x:x + 32].int()).abs().max() <= 1  # the resize to the same size: identity
    assert torch.equal(apply_eval_crops(clip, 32, 1)[0], apply_eval(clip, 32))  # one crop: the single view
