import json

import pytest
import torch

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.data.synthetic import frame_stamped_clip, write_video
from t2l_fast.training.evaluate import evaluate, evaluate_protocol


@pytest.fixture(scope="module")
def ucf_like(tmp_path_factory):
    """A UCF101-shaped tree: 2 classes, 3 published splits, two test videos per class per split."""
    root = tmp_path_factory.mktemp("ucf")
    videos, splits = root / "videos", root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 Archery\n2 Bowling\n")
    for split in (1, 2, 3):
        lines = []
        for name in ("Archery", "Bowling"):
            for k in range(2):
                relative = f"{name}/v_{name}_s{split}_{k}.avi"
                (videos / name).mkdir(parents=True, exist_ok=True)
                write_video(videos / relative, frame_stamped_clip(10, 32, 32), "mjpeg")
                lines.append(relative)
        (splits / f"testlist0{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_evaluate_matches_scoring_by_hand(ucf_like):
    from t2l_fast.data import build_video_loader
    from t2l_fast.data.splits import ucf101_split
    from t2l_fast.text.classifier import build_classifier

    model = t2l_fast.create_model("vificlip_tiny").eval()
    names, entries = ucf101_split(ucf_like / "ucfTrainTestlist", ucf_like / "videos", 2)
    result = evaluate(model, entries, ucf_like / "videos", names, backend="pyav", num_workers=0)
    classifier = build_classifier(model, names)
    (batch,) = build_video_loader(entries, ucf_like / "videos", split="val", frames=8, size=32, batch_size=4,
                                  backend="pyav", num_workers=0)
    with torch.no_grad():
        scores = classifier.probabilities(model.encode_video(t2l_fast.normalize_video(batch["video"],
                                                                                      model.input_spec)), 100.0)
    assert result["videos"] == 4
    assert result["top1"] == pytest.approx((scores.argmax(1) == batch["label"]).float().mean().item())
    assert sum(map(sum, result["confusion"])) == 4


def test_protocol_mean_and_std_over_three_splits(ucf_like):
    model = t2l_fast.create_model("clip_tiny")
    summary = evaluate_protocol(model, "ucf101", ucf_like / "ucfTrainTestlist", ucf_like / "videos",
                                backend="pyav", num_workers=0)
    top1 = [s["top1"] for s in summary["splits"]]
    assert [s["videos"] for s in summary["splits"]] == [4, 4, 4]
    assert summary["top1_mean"] == pytest.approx(sum(top1) / 3)
    assert summary["top1_std"] == pytest.approx(float(torch.tensor(top1).std(unbiased=False)))


def test_eval_command_on_a_list(ucf_like, tmp_path, capsys):
    (tmp_path / "classes.txt").write_text("Archery\nBowling\n")
    lines = (ucf_like / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    (tmp_path / "test.txt").write_text("".join(f"{p} {int(p.startswith('Bowling'))}\n" for p in lines))
    assert main(["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--list",
                 str(tmp_path / "test.txt"), "--classes", str(tmp_path / "classes.txt"), "--backend", "pyav",
                 "--out", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["videos"] == 4 and 0 <= results["top1"] <= results["top5"] == 1.0
    assert len(results["confusion"]) == 2 and "top-1" in capsys.readouterr().out


@pytest.fixture
def lists(ucf_like, tmp_path):
    """A list over 2 classes, class files for subsets and base/novel halves."""
    lines = (ucf_like / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    (tmp_path / "all.txt").write_text("".join(f"{p} {int(p.startswith('Bowling'))}\n" for p in lines))
    (tmp_path / "classes.txt").write_text("Archery\nBowling\n")
    (tmp_path / "archery.txt").write_text("Archery\n")
    (tmp_path / "bowling.txt").write_text("Bowling\n")
    (tmp_path / "reversed.txt").write_text("Bowling\nArchery\n")
    for name, label in (("Archery", 0), ("Bowling", 1)):
        (tmp_path / f"{name}_list.txt").write_text("".join(f"{p} 0\n" for p in lines if p.startswith(name)))
    return tmp_path


def test_class_subsets_relabel_and_average(ucf_like, lists):
    from t2l_fast.training.evaluate import evaluate_subsets

    model = t2l_fast.create_model("clip_tiny")
    names = ["Archery", "Bowling"]
    summary = evaluate_subsets(model, lists / "all.txt", ucf_like / "videos", names,
                               [lists / "archery.txt", lists / "reversed.txt"], backend="pyav", num_workers=0)
    plain = evaluate(model, lists / "all.txt", ucf_like / "videos", names, backend="pyav", num_workers=0)
    one_class, permuted = summary["subsets"]
    assert one_class["videos"] == 2 and one_class["top1"] == 1.0  # a single class is always right
    assert permuted["videos"] == 4 and permuted["top1"] == plain["top1"]  # relabelled, same decisions
    assert permuted["per_class"] == {"Bowling": plain["per_class"]["Bowling"], "Archery": plain["per_class"]["Archery"]}
    assert summary["top1_mean"] == pytest.approx((1.0 + plain["top1"]) / 2)


def test_base_to_novel_command(ucf_like, lists, capsys):
    out = lists / "b2n.json"
    assert main(["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--backend", "pyav",
                 "--base-to-novel", str(lists / "Archery_list.txt"), str(lists / "archery.txt"),
                 str(lists / "Bowling_list.txt"), str(lists / "bowling.txt"), "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["base"] == results["novel"] == results["hm"] == 1.0  # single-class halves
    assert "HM 100.0" in capsys.readouterr().out
