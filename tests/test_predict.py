import json

import numpy as np
import pytest

from t2l_fast.cli import main
from t2l_fast.data.synthetic import SynthConfig, synthetic_clip, write_synthetic_dataset, write_video
from t2l_fast.errors import T2LError
from t2l_fast.predict import parse_classes, windows


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    write_synthetic_dataset(root, SynthConfig(classes=("growing", "shrinking"), clips_per_class=1,
                                              eval_clips_per_class=1))
    write_video(root / "long clip.mp4", synthetic_clip(np.random.default_rng(0), 6, 600, 64, 64))  # 24 s
    (root / "videos" / "test" / "broken.mp4").write_text("not a video")
    return root


def test_windows_cover_the_video():
    assert windows(24, 25.0, 8, 10.0) == [(0, 24)]
    assert windows(600, 25.0, 8, 10.0) == [(0, 250), (175, 250), (350, 250)]
    assert windows(600, 25.0, 8, None) == [(0, 600)]
    assert windows(5, 25.0, 8, 0.1) == [(0, 5)]  # a window is never shorter than T frames


def test_parse_classes(tmp_path):
    assert parse_classes("run, jump ,swim") == ["run", "jump", "swim"]
    (tmp_path / "c.txt").write_text("a\nb\n")
    assert parse_classes(str(tmp_path / "c.txt")) == ["a", "b"]
    for bad in ("run", "run,run"):
        with pytest.raises(T2LError):
            parse_classes(bad)
    with pytest.raises(T2LError, match="classes.txt: no such file"):  # a mistyped path is not one class name
        parse_classes(str(tmp_path / "classes.txt"))


def test_predict_one_video_json(videos, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    video = videos / "long clip.mp4"
    assert main(["predict", str(video), "--model", "clip_tiny", "--classes", "growing,shrinking,sliding",
                 "--topk", "3", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["error"] is None and result["num_frames"] == 600 and result["seconds"] == 24.0
    assert len(result["windows"]) == 3 and result["windows"][-1]["end_s"] == 24.0
    overall = dict(result["top"])
    for name in ("growing", "shrinking", "sliding"):  # the video's score is the mean of its windows'
        assert overall[name] == pytest.approx(np.mean([dict(w["top"])[name] for w in result["windows"]]), abs=1e-6)
    assert [p for _, p in result["top"]] == sorted(overall.values(), reverse=True)
    assert list((tmp_path / "t2l-fast" / "class-embeddings").glob("*.safetensors"))  # cached for the next run


def test_predict_folder_reports_bad_files_and_goes_on(videos, capsys):
    code = main(["predict", str(videos / "videos" / "test"), "--model", "t2l_tiny",
                 "--classes", str(videos / "classes.txt"), "--descriptions", str(videos / "descriptions.csv"),
                 "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 1 and "1 of 3 video(s) could not be read" in err
    assert "broken.mp4\n   error:" in out and out.count("1 clip)") == 2 and "random" in out


def test_predict_needs_a_model(videos, capsys):
    assert main(["predict", str(videos), "--classes", "a,b"]) == 2
    assert "--model" in capsys.readouterr().err
