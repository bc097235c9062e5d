from collections import Counter

import pytest

from t2l_fast.cli import main
from t2l_fast.data.fewshot import draw_few_shot, write_few_shot_list
from t2l_fast.data.lists import VideoListError, read_video_list

COUNTS = {"run": 6, "jump": 5, "swim": 3}  # videos per class (label order)


@pytest.fixture
def data(tmp_path):
    """Empty files stand in for videos (lists are read, never decoded); the list is shuffled on purpose."""
    lines = []
    for label, (name, count) in enumerate(COUNTS.items()):
        for k in range(count):
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / f"{k}.mp4").write_bytes(b"")
            lines.append(f"{name}/{k}.mp4 {label}")
    (tmp_path / "train.txt").write_text("\n".join(lines[::-1]) + "\n")
    (tmp_path / "classes.txt").write_text("\n".join(COUNTS) + "\n")
    (tmp_path / "base.txt").write_text("swim\nrun\n")
    return tmp_path


def paths(entries):
    return [f"{entry.path.parent.name}/{entry.path.name}" for entry in entries]


def test_k_per_class_deterministic_per_seed_and_nested(data):
    entries = read_video_list(data / "train.txt", data)
    draw = draw_few_shot(entries, 3, seed=1)
    assert Counter(e.label for e in draw) == {0: 3, 1: 3, 2: 3}
    assert paths(draw) == paths(draw_few_shot(entries, 3, seed=1))
    assert paths(draw_few_shot(entries[::-1], 3, seed=1)) == paths(draw)  # the list's order does not matter
    assert any(paths(draw_few_shot(entries, 3, seed=s)) != paths(draw) for s in (2, 3, 4))
    assert set(paths(draw_few_shot(entries, 2, seed=1))) <= set(paths(draw))  # K=2 is part of K=3


def test_too_few_videos_names_the_class_and_the_fix(data):
    with pytest.raises(VideoListError, match=r"train.txt: 1 class\(es\) have fewer than 4 videos: 'swim' "
                                             r"\(label 2\) has 3\. Lower --shots \(to at most 3\)"):
        write_few_shot_list(data / "train.txt", data, data / "out.txt", shots=4, seed=1,
                            classes_file=data / "classes.txt")


def test_subset_is_restricted_and_relabelled_in_its_order(data):
    out = data / "base_3shot_s1.txt"
    write_few_shot_list(data / "train.txt", data, out, shots=3, seed=1, classes_file=data / "classes.txt",
                        subset_file=data / "base.txt")
    entries = read_video_list(out, data, class_names=["swim", "run"])
    assert Counter((e.path.parent.name, e.label) for e in entries) == {("swim", 0): 3, ("run", 1): 3}


def test_csv_keeps_clip_times_and_a_text_list_refuses_them(data):
    (data / "clips.csv").write_text("path,label,start,end\nrun/0.mp4,0,1.5,3\nrun/1.mp4,0,,\n")
    write_few_shot_list(data / "clips.csv", data, data / "out.csv", shots=2, seed=0)
    assert [(e.start, e.end) for e in read_video_list(data / "out.csv", data)] == [(1.5, 3.0), (None, None)]
    with pytest.raises(VideoListError, match="only a CSV list holds; give an output name ending in .csv"):
        write_few_shot_list(data / "clips.csv", data, data / "out.txt", shots=2, seed=0)


def test_fewshot_command(data, capsys):
    out = data / "lists" / "2shot_s3.txt"
    assert main(["data", "fewshot", str(data / "train.txt"), "--root", str(data), "--shots", "2", "--seed", "3",
                 "--classes", str(data / "classes.txt"), "--out", str(out)]) == 0
    assert "6 videos, 2 per class for 3 classes (seed 3)" in capsys.readouterr().out
    assert len(read_video_list(out, data)) == 6
    assert main(["data", "fewshot", str(data / "train.txt"), "--root", str(data), "--shots", "2",
                 "--subset-classes", str(data / "base.txt"), "--out", str(out)]) == 2
    assert "needs --classes" in capsys.readouterr().err
    assert main(["data", "fewshot", str(data / "train.txt"), "--root", str(data), "--shots", "0",
                 "--out", str(out)]) == 2
    assert "--shots: value = 0: must be >= 1" in capsys.readouterr().err  # the CLI's one rule for numbers
