import json

import pytest
import torch

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.data.synthetic import SynthConfig, frame_stamped_clip, write_synthetic_dataset, write_video
from t2l_fast.text.class_files import read_class_descriptions
from t2l_fast.training.evaluate import EvalConfig, evaluate, evaluate_protocol


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
    from t2l_fast.data import LoaderConfig, build_video_loader
    from t2l_fast.data.splits import ucf101_split
    from t2l_fast.text.classifier import build_classifier

    model = t2l_fast.create_model("vificlip_tiny").eval()
    names, entries = ucf101_split(ucf_like / "ucfTrainTestlist", ucf_like / "videos", 2)
    result = evaluate(model, entries, ucf_like / "videos", names, config=EvalConfig(backend="pyav", num_workers=0))
    classifier = build_classifier(model, names)
    (batch,) = build_video_loader(entries, ucf_like / "videos", LoaderConfig(frames=8, size=32, backend="pyav",
                                                                             num_workers=0),
                                  split="val", batch_size=4)
    with torch.no_grad():
        scores = classifier.probabilities(model.encode_video(t2l_fast.normalize_video(batch["video"],
                                                                                      model.input_spec)), 100.0)
    assert result["videos"] == 4
    assert result["top1"] == pytest.approx((scores.argmax(1) == batch["label"]).float().mean().item())
    assert sum(map(sum, result["confusion"])) == 4


def test_protocol_mean_and_std_over_three_splits(ucf_like):
    model = t2l_fast.create_model("clip_tiny")
    summary = evaluate_protocol(model, "ucf101", ucf_like / "ucfTrainTestlist", ucf_like / "videos",
                                config=EvalConfig(backend="pyav", num_workers=0))
    top1 = [s["top1"] for s in summary["splits"]]
    assert [s["videos"] for s in summary["splits"]] == [4, 4, 4]
    assert summary["top1_mean"] == pytest.approx(sum(top1) / 3)
    assert summary["top1_std"] == pytest.approx(float(torch.tensor(top1).std(unbiased=False)))


def test_protocol_checks_every_split_before_scoring_the_first(ucf_like, tmp_path, monkeypatch):
    import shutil

    from t2l_fast.data.lists import VideoListError
    from t2l_fast.training import evaluate as evaluate_module

    splits = tmp_path / "splits"
    shutil.copytree(ucf_like / "ucfTrainTestlist", splits)
    with open(splits / "testlist02.txt", "a") as listing:
        listing.write("Bowling/v_missing.avi\n")
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("a split was scored"))
    with pytest.raises(VideoListError, match="testlist02.txt.*v_missing.avi"):
        evaluate_protocol(t2l_fast.create_model("clip_tiny"), "ucf101", splits, ucf_like / "videos")


def test_eval_protocol_writes_each_finished_split(ucf_like, tmp_path, monkeypatch):
    from t2l_fast.training import evaluate as evaluate_module

    real, seen = evaluate_module.evaluate, []

    def evaluate_then_look(*args, **kwargs):
        if seen:  # from the second split on, the first one is already on disk
            assert len(json.loads((tmp_path / "r.json").read_text())["splits"]) == len(seen)
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", evaluate_then_look)
    assert main(["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--protocol", "ucf101",
                 "--split-dir", str(ucf_like / "ucfTrainTestlist"), "--backend", "pyav",
                 "--out", str(tmp_path / "r.json")]) == 0
    final = json.loads((tmp_path / "r.json").read_text())
    assert len(seen) == 3 and len(final["splits"]) == 3 and "top1_mean" in final and "complete" not in final


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
    for name in ("Archery", "Bowling"):
        (tmp_path / f"{name}_list.txt").write_text("".join(f"{p} 0\n" for p in lines if p.startswith(name)))
    return tmp_path


def test_class_subsets_relabel_and_average(ucf_like, lists):
    from t2l_fast.training.evaluate import evaluate_subsets

    model = t2l_fast.create_model("clip_tiny")
    names = ["Archery", "Bowling"]
    summary = evaluate_subsets(model, lists / "all.txt", ucf_like / "videos", names,
                               [lists / "archery.txt", lists / "reversed.txt"],
                               config=EvalConfig(backend="pyav", num_workers=0))
    plain = evaluate(model, lists / "all.txt", ucf_like / "videos", names,
                     config=EvalConfig(backend="pyav", num_workers=0))
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


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """4 test videos of 2 synthetic classes, 24 frames of 48x32 (landscape, so 3 crops spread horizontally)."""
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, SynthConfig(classes=("growing", "shrinking"), clips_per_class=1,
                                              eval_clips_per_class=2, width=48, height=32))
    return root


def test_one_view_is_the_default(synthetic):
    model = t2l_fast.create_model("t2l_tiny")
    names = ["growing", "shrinking"]
    descriptions = read_class_descriptions(synthetic / "descriptions.csv", names)
    default = evaluate(model, synthetic / "test.txt", synthetic, names, descriptions=descriptions,
                       config=EvalConfig(backend="pyav", num_workers=0))
    one = evaluate(model, synthetic / "test.txt", synthetic, names, descriptions=descriptions,
                   config=EvalConfig(backend="pyav", num_workers=0, views=(1, 1)))
    assert default == one and one["views"] == {"clips": 1, "crops": 1} and one["videos"] == 4


def test_multi_view_averages_the_views_and_counts_each_video_once(synthetic):
    from t2l_fast.data import LoaderConfig, build_video_loader
    from t2l_fast.text.classifier import build_classifier

    model = t2l_fast.create_model("t2l_tiny").eval()
    names = ["growing", "shrinking"]
    descriptions = read_class_descriptions(synthetic / "descriptions.csv", names)
    result = evaluate(model, synthetic / "test.txt", synthetic, names, descriptions=descriptions,
                      config=EvalConfig(backend="pyav", num_workers=0, batch_size=3, views=(2, 3)))
    assert result["videos"] == 4 and sum(map(sum, result["confusion"])) == 4  # a partial batch, no repeats
    assert result["views"] == {"clips": 2, "crops": 3}
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, views=(2, 3))
    (batch,) = build_video_loader(synthetic / "test.txt", synthetic, config, split="val", batch_size=4)
    assert batch["video"].shape == (4, 6, 8, 3, 32, 32)
    classifier = build_classifier(model, names, descriptions=descriptions)
    with torch.no_grad():
        per_view = torch.stack([classifier.probabilities(model.encode_video(
            t2l_fast.normalize_video(batch["video"][:, v], model.input_spec)), 100.0) for v in range(6)], 1)
    assert not torch.allclose(per_view[:, 0], per_view[:, 5])  # the views see different inputs
    expected = per_view.mean(1).argmax(1)
    assert result["top1"] == pytest.approx((expected == batch["label"]).float().mean().item())


def test_multi_view_clips_and_crops_by_hand(tmp_path):
    """40 frame-stamped frames of 96x48 whose right half has blue 0 (left: 128): 2 clips x 3 crops."""
    from t2l_fast.data import LoaderConfig, build_video_loader
    from t2l_fast.data.synthetic import read_stamp

    clip = frame_stamped_clip(40, 48, 96)
    clip[:, :, 48:, 2] = 0
    write_video(tmp_path / "v.mp4", clip)
    (tmp_path / "list.txt").write_text("v.mp4 0\n")
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, views=(2, 3))
    (batch,) = build_video_loader(tmp_path / "list.txt", tmp_path, config, split="val", batch_size=1)
    views = batch["video"][0]  # [6, 8, 3, 32, 32]: clip 0 (left, centre, right), clip 1 (...)
    stamps = [[read_stamp(frame.numpy()) for frame in view] for view in views]  # from red and green
    first = [0, 3, 5, 8, 10, 13, 15, 18]  # centres of 8 segments of the window [0, 20)
    assert stamps[:3] == [first] * 3 and stamps[3:] == [[20 + i for i in first]] * 3  # window [20, 40)
    # the resized frame is 64x32 with the colour edge at column 32; crops start at x = 0, 16, 32
    blue = views[:, :, 2].float().mean(dim=(1, 2))  # [6, 32] mean blue per crop column
    for left, centre, right in (blue[:3], blue[3:]):
        assert left[:28].min() > 110 and right[4:].max() < 20
        assert centre[:12].min() > 110 and centre[20:].max() < 20


def test_multi_view_needs_evaluation_and_pyav(synthetic):
    from t2l_fast.data import LoaderConfig, build_video_loader
    from t2l_fast.errors import UnsupportedOptionError

    kwargs = dict(frames=8, size=32, num_workers=0, views=(2, 3))
    with pytest.raises(UnsupportedOptionError, match="PyAV backend only; use backend='pyav'"):
        build_video_loader(synthetic / "test.txt", synthetic, LoaderConfig(backend="dali", **kwargs), split="val",
                           batch_size=2)
    with pytest.raises(ValueError, match="for evaluation"):
        build_video_loader(synthetic / "test.txt", synthetic, LoaderConfig(backend="pyav", **kwargs), split="train",
                           batch_size=2)
    with pytest.raises(ValueError, match="two integers >= 1"):
        build_video_loader(synthetic / "test.txt", synthetic, LoaderConfig(backend="pyav", **{**kwargs, "views": (0,
                           1)}), split="val", batch_size=2)


def test_eval_command_multi_view(ucf_like, lists, capsys):
    command = ["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--list", str(lists / "all.txt"),
               "--classes", str(lists / "classes.txt"), "--clips", "2", "--crops", "3", "--out", str(lists / "r.json")]
    assert main(command + ["--backend", "pyav"]) == 0
    results = json.loads((lists / "r.json").read_text())
    assert results["views"] == {"clips": 2, "crops": 3} and results["videos"] == 4
    assert "2 clip(s) x 3 crop(s)" in capsys.readouterr().out
    assert main(command + ["--backend", "dali"]) == 2
    assert "PyAV backend only" in capsys.readouterr().err


def test_mean_over_seeds_reports_the_hm_of_the_means():
    from t2l_fast.training.evaluate import base_to_novel_over_seeds

    runs = [{"base": 0.8, "novel": 0.2, "hm": 0.32}, {"base": 0.6, "novel": 0.6, "hm": 0.6}]
    summary = base_to_novel_over_seeds(runs)
    assert summary["base"] == pytest.approx(0.7) and summary["base_std"] == pytest.approx(0.1)
    assert summary["novel"] == pytest.approx(0.4) and summary["novel_std"] == pytest.approx(0.2)
    assert summary["hm"] == pytest.approx(2 * 0.7 * 0.4 / 1.1)  # not the mean of the seeds' HMs (0.46)
    assert summary["hm_seeds_mean"] == pytest.approx(0.46) and summary["seeds"] == runs


def test_base_to_novel_command_over_seeds(ucf_like, lists, capsys):
    checkpoints = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        checkpoints.append(str(t2l_fast.save_checkpoint(t2l_fast.create_model("clip_tiny"), lists / f"s{seed}",
                                                        full=True)))
    out = lists / "b2n_seeds.json"
    (lists / "descriptions.csv").write_text("Archery,shooting arrows with a bow\nBowling,rolling a ball at pins\n")
    assert main(["eval", "--checkpoint", *checkpoints, "--root", str(ucf_like / "videos"), "--backend", "pyav",
                 "--base-to-novel", str(lists / "all.txt"), str(lists / "classes.txt"),
                 str(lists / "Bowling_list.txt"), str(lists / "bowling.txt"), "--out", str(out),
                 "--descriptions", str(lists / "descriptions.csv")]) == 0  # one CSV for base and novel classes
    results = json.loads(out.read_text())
    seeds = results["seeds"]
    assert [s["checkpoint"] for s in seeds] == checkpoints and all(s["novel"] == 1.0 for s in seeds)
    assert results["base"] == pytest.approx(sum(s["base"] for s in seeds) / 2)
    assert results["hm"] == pytest.approx(2 * results["base"] / (results["base"] + 1))
    printed = capsys.readouterr().out
    assert f"{checkpoints[1]}: base" in printed and "mean over 2 seeds" in printed
    assert main(["eval", "--checkpoint", *checkpoints, "--root", str(ucf_like / "videos"), "--list",
                 str(lists / "all.txt"), "--classes", str(lists / "classes.txt")]) == 2
    assert "are for --base-to-novel only" in capsys.readouterr().err


@pytest.mark.integration
def test_eval_under_torchrun_counts_every_video_once(ucf_like, tmp_path):
    """2 gloo processes over 3 videos (one shard wraps around): the same results as one process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "classes.txt").write_text("Archery\nBowling\n")
    lines = (ucf_like / "ucfTrainTestlist" / "testlist01.txt").read_text().split()[:3]
    (tmp_path / "test.txt").write_text("".join(f"{p} {int(p.startswith('Bowling'))}\n" for p in lines))
    script = Path(__file__).parents[1] / "train" / "evaluate.py"
    arguments = ["--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--list", str(tmp_path / "test.txt"),
                 "--classes", str(tmp_path / "classes.txt"), "--backend", "pyav", "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    subprocess.run([sys.executable, str(script), *arguments, "--out", str(tmp_path / "one.json")], env=env,
                   check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                    *arguments, "--out", str(tmp_path / "two.json")], env=env, check=True, timeout=300)
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert one["videos"] == two["videos"] == 3
    assert two["confusion"] == one["confusion"] and two["top1"] == pytest.approx(one["top1"])


def test_eval_split_lists_mean_over_published_per_split_lists(ucf_like, tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("id,name\n0,Archery\n1,Bowling\n")  # ViFi-CLIP's label file layout
    pairs = []
    for split in (1, 2):
        lines = (ucf_like / "ucfTrainTestlist" / f"testlist0{split}.txt").read_text().split()
        (tmp_path / f"val{split}.txt").write_text("".join(f"{p} {int(p.startswith('Bowling'))}\n" for p in lines))
        pairs += [str(tmp_path / f"val{split}.txt"), str(tmp_path / "labels.csv")]
    assert main(["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--split-lists", *pairs,
                 "--backend", "pyav", "--out", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert [s["videos"] for s in results["splits"]] == [4, 4]
    assert results["top1_mean"] == pytest.approx(sum(s["top1"] for s in results["splits"]) / 2)
    assert "split lists, 2 splits" in capsys.readouterr().out
    assert main(["eval", "--model", "clip_tiny", "--root", str(ucf_like / "videos"), "--protocol", "ucf101"]) == 2
    assert "needs --split-dir" in capsys.readouterr().err


def test_eval_on_an_export_folder_matches_the_model(ucf_like, lists, tiny_exports, tmp_path, capsys):
    """`t2l eval --onnx DIR` scores with the export's graphs (auto: the backend it picks, said in one line; onnx:
    ONNX Runtime) and gives what the PyTorch model it came from gives on the same list."""
    model, _ = tiny_exports.shared("t2l_tiny")
    folder = tiny_exports.copy(tmp_path / "export")  # auto caches its measurement in the folder
    common = ["--root", str(ucf_like / "videos"), "--list", str(lists / "all.txt"), "--classes",
              str(lists / "classes.txt"), "--backend", "pyav"]
    expected = evaluate(model, lists / "all.txt", ucf_like / "videos", ["Archery", "Bowling"],
                        config=EvalConfig(backend="pyav"))
    for backend in ("onnx", "auto"):
        out = tmp_path / f"{backend}.json"
        assert main(["eval", "--onnx", str(folder), "--export-backend", backend, *common, "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        results = json.loads(out.read_text())
        assert results["model"] == "t2l_tiny" and results["videos"] == expected["videos"] == 4
        assert results["confusion"] == expected["confusion"], backend
        assert results["top1"] == pytest.approx(expected["top1"])
        if backend == "auto":
            assert printed.startswith("backend auto: "), printed  # the one line saying what it chose and why
    assert main(["eval", "--onnx", str(folder), "--checkpoint", str(tmp_path), *common]) == 2
    assert "the weights are in the graphs" in capsys.readouterr().err
    assert main(["eval", "--model", "t2l_tiny", "--export-backend", "onnx", *common]) == 2
    assert "give --onnx DIR too" in capsys.readouterr().err


def test_export_and_torch_scorers_give_the_same_probabilities(tiny_exports):
    """What eval averages per view: the export's scorer (video and text encoder graphs on ONNX Runtime, as for
    classes the export did not bake) against the PyTorch model's, clip by clip."""
    from t2l_fast.runtime.bundle import ExportedModel
    from t2l_fast.runtime.export_runners import export_runner
    from t2l_fast.scoring import ExportScorers, TorchScorers
    from t2l_fast.training.evaluate import view_scores

    model, folder = tiny_exports.shared("t2l_tiny")
    bundle = ExportedModel(folder)
    spec = bundle.input_spec
    video = torch.randint(0, 256, (3, 2, spec.frames, 3, spec.image_size, spec.image_size), dtype=torch.uint8)
    names = ["archery", "bowling", "surfing"]
    with TorchScorers(model)(names) as torch_scorer, ExportScorers(
            bundle, lambda kind: export_runner(bundle, "onnx", kind), "onnx")(names) as export_scorer:
        assert export_scorer.via == "video and text encoder graphs"
        expected, got = view_scores(torch_scorer, video), view_scores(export_scorer, video)  # [3, 3] each
    assert got.shape == (3, 3) and torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
