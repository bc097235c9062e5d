import pytest

from t2l_fast.data.sampling import sample_rng, segment_indices, view_indices


def test_eval_centre_frames_many_frames():
    # N=32, T=8: segments of 4, centres floor(4i + 1.5) = 4i + 1
    assert segment_indices(32, 8, train=False) == [1, 5, 9, 13, 17, 21, 25, 29]
    # N=24, T=8: segments of 3, centre floor(3i + 1)
    assert segment_indices(24, 8, train=False) == [1, 4, 7, 10, 13, 16, 19, 22]
    # N=10, T=4: length 2.5, floor(2.5i + 0.75)
    assert segment_indices(10, 4, train=False) == [0, 3, 5, 8]


def test_train_one_random_frame_per_segment():
    for index in range(50):
        picks = segment_indices(30, 8, train=True, rng=sample_rng(0, 0, index))
        bounds = [i * 30 // 8 for i in range(9)]
        assert all(bounds[i] <= p < bounds[i + 1] for i, p in enumerate(picks))
    seen = {tuple(segment_indices(30, 8, train=True, rng=sample_rng(0, 0, i))) for i in range(50)}
    assert len(seen) > 40  # really random


@pytest.mark.parametrize("train", [True, False])
def test_few_frames_repeat_evenly(train):
    rng = sample_rng(0, 0, 0)
    assert segment_indices(3, 8, train=train, rng=rng) == [0, 0, 0, 1, 1, 1, 2, 2]  # floor(3i/8)
    assert segment_indices(8, 8, train=train, rng=rng) == list(range(8))
    assert segment_indices(1, 8, train=train, rng=rng) == [0] * 8


def test_randomness_derives_from_seed_epoch_index():
    a = segment_indices(100, 8, train=True, rng=sample_rng(5, 2, 7))
    assert a == segment_indices(100, 8, train=True, rng=sample_rng(5, 2, 7))
    others = [segment_indices(100, 8, train=True, rng=sample_rng(*key)) for key in ((5, 3, 7), (5, 2, 8), (6, 2, 7))]
    assert all(o != a for o in others)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one frame"):
        segment_indices(0, 8, train=False)
    with pytest.raises(ValueError, match="needs an rng"):
        segment_indices(100, 8, train=True)


def test_one_clip_is_the_single_view_rule():
    for num_frames in (1, 3, 8, 10, 23, 40, 301):
        for frames in (1, 4, 8):
            assert view_indices(num_frames, frames, 1) == segment_indices(num_frames, frames, train=False)


def test_clips_sample_equal_windows_of_the_video():
    # N=40, 2 clips: windows [0, 20) and [20, 40), each sampled as a 20-frame video: floor(2.5i + 0.75)
    first = [0, 3, 5, 8, 10, 13, 15, 18]
    assert view_indices(40, 8, 2) == first + [20 + i for i in first]
    # N=30, 4 clips: windows start at 0, 7, 15, 22 and hold 7, 8, 7, 8 frames
    picks = view_indices(30, 2, 4)
    assert picks == [1, 4, 8, 12, 16, 19, 23, 27]
    assert all(0 <= i < 30 for i in picks)
    # fewer frames than clips: one-frame windows, still inside the video
    assert view_indices(3, 2, 4) == [0, 0, 0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="clips must be >= 1"):
        view_indices(30, 8, 0)
