import math

import pytest
import torch

from t2l_fast.training.losses import alignment_loss, tfd_loss


def test_tfd_hand_computed():
    # One clip, three frames, one dimension: e = 0, 1, 3.
    frames = torch.tensor([[[0.0], [1.0], [3.0]]])
    result = tfd_loss(frames)
    # central differences with replicated edges: |1-0|/2, |3-0|/2, |3-1|/2 -> mean 1.0
    assert result.central_difference.item() == pytest.approx(1.0)
    # unbiased variance of (0, 1, 3): ((16 + 1 + 25) / 9) / 2 = 7/3
    assert result.variance.item() == pytest.approx(7 / 3)
    assert result.loss.item() == pytest.approx(3 / 13)


def test_tfd_two_clips_two_dims_mean_over_everything():
    frames = torch.tensor([[[0.0, 2.0], [2.0, 2.0]],
                           [[1.0, 1.0], [1.0, -1.0]]])  # [B=2, T=2, D=2]
    result = tfd_loss(frames)
    # T=2: both central differences of a (b, d) pair equal |e1 - e0| / 2 -> values 1, 0, 0, 1 -> mean 0.5
    assert result.central_difference.item() == pytest.approx(0.5)
    # unbiased variance of two values a, b is (a - b)^2 / 2 -> 2, 0, 0, 2 -> mean 1
    assert result.variance.item() == pytest.approx(1.0)
    assert result.loss.item() == pytest.approx(1 / 2.5)


def test_tfd_of_static_clip_is_one_and_needs_two_frames():
    assert tfd_loss(torch.ones(2, 4, 3)).loss.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        tfd_loss(torch.ones(2, 1, 3))


def test_alignment_hand_computed_distinct_labels():
    v = torch.eye(2)
    loss = alignment_loss(v, v, torch.tensor([0, 1]), logit_scale=100.0)
    q = math.exp(10) / (math.exp(10) + 1)  # soft target of the positive
    log_p_pos = -math.log1p(math.exp(-100))  # log-softmax of (100, 0) at the positive
    log_p_neg = -100 + log_p_pos
    kl = q * (math.log(q) - log_p_pos) + (1 - q) * (math.log(1 - q) - log_p_neg)
    assert loss.item() == pytest.approx(kl, rel=1e-5)


def test_alignment_duplicate_labels_share_the_target():
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # Same class twice: targets are uniform over both texts, and so are the (equal) similarities -> zero loss.
    assert alignment_loss(v, v, torch.tensor([3, 3])).item() == pytest.approx(0.0, abs=1e-6)


def test_alignment_is_symmetric_average():
    torch.manual_seed(1)
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    labels = torch.tensor([0, 1, 1, 2])
    s = 100 * v @ t.t()
    g = (labels[:, None] == labels[None]).float()
    q = (10 * g).softmax(-1)

    def kl(logits):
        return (q * (q.log() - logits.log_softmax(-1))).sum(-1).mean()

    expected = 0.5 * (kl(s) + kl(s.t()))
    torch.testing.assert_close(alignment_loss(v, t, labels), expected)


def test_soft_cross_entropy_and_smoothing_hand_computed():
    from t2l_fast.training.losses import smoothed_targets, soft_cross_entropy

    targets = smoothed_targets(torch.tensor([0, 2]), 3, 0.1)
    assert targets[0].tolist() == pytest.approx([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    log_p0 = [2 - math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2)]
    expected = -(sum(t * lp for t, lp in zip(targets[0].tolist(), log_p0)) + math.log(1 / 3)) / 2
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_mixup_and_cutmix_mix_targets_by_the_real_share():
    import numpy as np

    from t2l_fast.training.losses import mix_clips

    video = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 2, 3, 8, 8)  # [B=4, T, C, H, W], clip i all i
    targets = torch.eye(4)
    mixed, mixed_targets, lam, order = mix_clips(video, targets, np.random.default_rng(0), mixup_alpha=0.8,
                                                 cutmix_alpha=0.0, switch_prob=0.5)
    assert sorted(order.tolist()) == [0, 1, 2, 3]  # a permutation of the batch, as ViFi-CLIP draws it
    for i in range(4):
        assert torch.allclose(mixed[i], torch.full_like(mixed[i], lam * i + (1 - lam) * order[i].item()))
        assert torch.allclose(mixed_targets[i], lam * targets[i] + (1 - lam) * targets[order[i]])
    for seed in range(5):
        mixed, mixed_targets, lam, order = mix_clips(video, targets, np.random.default_rng(seed), mixup_alpha=0.0,
                                                     cutmix_alpha=1.0, switch_prob=0.5)
        i = int(torch.nonzero(order != torch.arange(4))[0]) if (order != torch.arange(4)).any() else None
        if i is None:
            continue
        pasted = (mixed[i] == order[i].item()).float().mean().item()  # share of clip i's pixels from its partner
        assert pasted == pytest.approx(1 - lam) and mixed_targets[i, order[i]].item() == pytest.approx(1 - lam)
        assert torch.equal(mixed[i, 0], mixed[i, 1])  # the same box in every frame
