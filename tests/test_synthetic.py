import numpy as np
import pytest

from t2l_fast.cli import main
from t2l_fast.data.decode import count_frames, decode_frames
from t2l_fast.data.probes import order_probes
from t2l_fast.data.synthetic import (
    CLASS_NAMES,
    SynthConfig,
    frame_stamped_clip,
    pair_of,
    read_stamp,
    synthetic_clip,
    write_synthetic_dataset,
    write_video,
)


def test_same_seed_same_bytes_other_seed_other_clips(tmp_path):
    config = SynthConfig(clips_per_class=2, eval_clips_per_class=1, seed=4)
    write_synthetic_dataset(tmp_path / "a", config)
    write_synthetic_dataset(tmp_path / "b", config, jobs=2)
    write_synthetic_dataset(tmp_path / "c", SynthConfig(clips_per_class=2, eval_clips_per_class=1, seed=5))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 12 * (2 + 1 + 1) + 7  # videos, then 3 lists, classes, descriptions, synth.json, marker
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    video = "videos/train/growing/00000.mp4"
    a, c = decode_frames(tmp_path / "a" / video, range(24)), decode_frames(tmp_path / "c" / video, range(24))
    assert a.shape == (24, 64, 64, 3) and not np.array_equal(a, c)


def test_held_out_splits_draw_new_clips(tmp_path):
    write_synthetic_dataset(tmp_path, SynthConfig(classes=("growing", "shrinking"), clips_per_class=1,
                                                  eval_clips_per_class=1))
    train = decode_frames(tmp_path / "videos/train/growing/00000.mp4", [0])
    test = decode_frames(tmp_path / "videos/test/growing/00000.mp4", [0])
    assert not np.array_equal(train, test)
    assert (tmp_path / "train.txt").read_text() == ("videos/train/growing/00000.mp4 0\n"
                                                    "videos/train/shrinking/00000.mp4 1\n")
    assert (tmp_path / "classes.txt").read_text() == "growing\nshrinking\n"


def test_twin_classes_are_time_reversals():
    for label in range(0, len(CLASS_NAMES), 2):
        forward = synthetic_clip(np.random.default_rng(9), label, 12, 32, 32)
        backward = synthetic_clip(np.random.default_rng(9), label + 1, 12, 32, 32)
        assert np.array_equal(forward[::-1], backward)
        assert pair_of(list(CLASS_NAMES), label) == label + 1
    assert pair_of(["growing", "moving up"], 0) is None


@pytest.mark.parametrize("codec", ["h264", "vp9", "mjpeg"])
def test_frame_stamps_survive_each_codec(tmp_path, codec):
    extension = {"h264": "mp4", "vp9": "webm", "mjpeg": "avi"}[codec]
    write_video(tmp_path / f"s.{extension}", frame_stamped_clip(70, 32, 48), codec)
    assert count_frames(tmp_path / f"s.{extension}") == 70
    frames = decode_frames(tmp_path / f"s.{extension}", [69, 0, 33, 33])
    assert [read_stamp(f) for f in frames] == [69, 0, 33, 33]


def test_validity_probes(tmp_path):
    """Only order separates twin classes: order-blind probes at chance, the order-aware probe near perfect."""
    write_synthetic_dataset(tmp_path, SynthConfig(clips_per_class=60, eval_clips_per_class=60, seed=1), jobs=2)
    results = order_probes(tmp_path, frames=8, size=64)
    assert results["order_blind_features"] <= 0.55, results
    assert results["order_blind_pixels"] <= 0.55, results
    assert results["order_aware_features"] >= 0.95, results


def test_cli_synth(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path), "--classes", "fading in,fading out", "--clips-per-class", "2",
                 "--eval-clips-per-class", "1", "--frames", "16", "--size", "32x48", "--codec", "vp9"]) == 0
    assert "wrote 8 vp9 clips" in capsys.readouterr().out
    frames = decode_frames(tmp_path / "videos/val/fading_in/00000.webm", range(16))
    assert frames.shape == (16, 48, 32, 3)
    assert main(["data", "synth", str(tmp_path), "--classes", "flying"]) == 2
    assert "unknown synthetic classes ['flying']" in capsys.readouterr().err
