"""`t2l demo --fast`: every stage of the product runs, the report is complete and self-contained, finished stages
are reused, and a folder the demo did not write is refused."""
import json
import math
import os
import re

import pytest

from t2l_fast.cli import main
from t2l_fast.demo.stages import STAGES
from t2l_fast.optional import dali_version, installed

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--fast", "--out", str(out)]) == 0
    return out


def test_every_stage_ran_and_the_summary_has_the_headline_figures(demo):
    for stage in STAGES:
        assert (demo / "stages" / f"{stage.name}.json").is_file(), stage.name
    side_by_side = sorted(f"{stage.name}.log" for stage in STAGES if stage.side_by_side)  # each in its own process
    assert len(side_by_side) == 5 and sorted(p.name for p in (demo / "logs").iterdir()) == side_by_side
    summary = json.loads((demo / "summary.json").read_text())
    assert summary["fast"] is True
    assert summary["loader"]["backend"] == ("dali" if dali_version() else "pyav")
    assert summary["loader"]["bad_videos"] == 0 and summary["preflight"]["bad"] == 0
    assert summary["preflight"]["h264_flagged_before"] > 0 == summary["preflight"]["h264_flagged_after"]
    unseen = summary["unseen_classes"]
    assert unseen["split"] == "compositional" and unseen["chance"] == 1 / 8
    for model in ("t2l_tiny", "vificlip_tiny", "clip_tiny (names)", "clip_tiny (descriptions)"):
        assert 0 <= unseen[model]["top1"] <= unseen[model]["top5"] <= 1 and unseen[model]["videos"] == 16
        assert 0 <= unseen[model]["within_pair_accuracy"] <= 1
    assert set(summary["unseen_motion"]) == {"t2l_tiny", "clip_tiny (names)", "clip_tiny (descriptions)"}
    for figure in ("caption_to_image_r1", "image_to_caption_r1", "zero_shot_shape_accuracy"):
        assert 0 <= summary["pretrain"][figure] <= 1
    assert summary["order_test"]["vificlip_tiny"] <= 0.6  # a frame mean cannot see order
    for model in ("t2l_tiny", "vificlip_tiny"):  # 9 steps of 24 classes: the loss is noise, the mechanics are not
        training = summary["training"][model]
        assert training["steps"] == 9 and len(training["val_top1"]) == 1
        assert math.isfinite(training["first_loss"]) and math.isfinite(training["last_loss"])
    assert summary["export"]["exported"] and all(p["passed"] for p in summary["export"]["parity"].values())
    _check_int8_gate(summary["int8"], demo)
    if installed("tensorrt-rtx-cu13") or installed("tensorrt"):
        assert summary["engine"]["built"] and (demo / summary["engine"]["engine"]).stat().st_size > 0
    claims = {row["claim"] for row in summary["claims"]}
    assert any("GFLOPs" in claim for claim in claims) and any("throughput" in claim for claim in claims)


def _check_int8_gate(headline: dict, demo) -> None:
    """Kept or refused, the INT8 stage reports its gate's figures, its verdict follows from them, and the summary
    carries them."""
    stage = json.loads((demo / "stages" / "int8.json").read_text())
    gate = stage["gate"]
    assert gate["clips"] > 0 and 0 <= gate["top1_agreement"] <= 1
    assert -1 <= gate["min_cosine"] <= gate["mean_cosine"] <= 1
    follows = gate["top1_agreement"] >= gate["min_top1_agreement"] and gate["mean_cosine"] >= gate["min_mean_cosine"]
    assert stage["passed"] == gate["passed"] == follows == headline["passed"]
    assert headline["top1_agreement"] == gate["top1_agreement"] and headline["mean_cosine"] == gate["mean_cosine"]
    assert headline["flips_per_class"] == gate["flips_per_class"]  # where the top-1 flips, by fp32 class
    assert sum(gate["flips_per_class"].values()) == round(gate["clips"] * (1 - gate["top1_agreement"]))
    attempts = stage["attempts"]  # static first, dynamic only if static was refused; the last one decides
    assert [a["mode"] for a in attempts] == ["static", "dynamic"][:len(attempts)] and attempts[-1]["gate"] == gate
    assert all(not a["passed"] for a in attempts[:-1]) and headline["mode"] == attempts[-1]["mode"]
    assert [a["top1_agreement"] for a in headline["attempts"]] == [a["gate"]["top1_agreement"] for a in attempts]
    written = sorted(p.name for p in (demo / "onnx").glob("*_int8.onnx"))
    assert written == (["classifier_int8.onnx", "video_encoder_int8.onnx"] if stage["passed"] else [])


@pytest.mark.parametrize("verdicts", [(True,), (False, True), (False, False)], ids=["static", "dynamic", "neither"])
def test_the_int8_stage_falls_back_to_dynamic_and_reports_every_attempt(tmp_path, monkeypatch, verdicts):
    from t2l_fast.demo.report import int8_summary
    from t2l_fast.demo.stages import Run, quantize
    from t2l_fast.deploy import int8

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "unseen_test.txt").write_text("a.webm 0\nb.webm 1\n")
    tried = []

    def quantize_export(folder, *, mode, **options):
        gate = {"clips": 2, "top1_agreement": 1.0 if verdicts[len(tried)] else 0.5, "mean_cosine": 0.99,
                "min_cosine": 0.9, "flips_per_class": {}, "passed": verdicts[len(tried)]}
        tried.append(mode)
        if not gate["passed"]:
            raise int8.GateRefusedError(f"{mode} refused", {"gate": gate})
        return {"gate": gate}

    monkeypatch.setattr(int8, "quantize_export", quantize_export)
    result = quantize(Run(out=tmp_path, fast=False, results={"export": {"exported": True}}, log=print))
    assert tried == ["static", "dynamic"][:len(verdicts)]
    assert [a["passed"] for a in result["attempts"]] == list(verdicts) and result["passed"] == verdicts[-1]
    assert result["mode"] == tried[-1] and result["gate"] == result["attempts"][-1]["gate"]
    assert ("--calibration" in result["commands"][0]) and all("--min-gate-clips 2" in c for c in result["commands"])
    assert len(result["commands"]) == len(verdicts) and "--calibration" not in "".join(result["commands"][1:])
    headline = int8_summary(result)
    assert [a["mode"] for a in headline["attempts"]] == tried and headline["passed"] == verdicts[-1]


def _refuse(run):
    """A stage failing with a T2LError whose constructor takes more than a message (it would not unpickle)."""
    from t2l_fast.deploy.int8 import GateRefusedError

    raise GateRefusedError("the gate says no", {"gate": {}})


def _die(run):
    os._exit(9)  # as the out-of-memory killer would: no Python error comes back


def _finish(run):
    print("native and Python output goes to the stage's log")
    return {"lines": ["finished"]}


def test_a_side_by_side_stage_that_fails_says_why_in_one_line_and_the_finished_ones_are_kept(tmp_path):
    from t2l_fast.demo.side_by_side import run_side_by_side
    from t2l_fast.demo.stages import Run, Stage
    from t2l_fast.errors import T2LError

    run, kept = Run(out=tmp_path, fast=True, results={}, log=print), []
    stages = [Stage("finish", "Finishing stage", _finish, side_by_side=True),
              Stage("refuse", "Refusing stage", _refuse, side_by_side=True)]
    with pytest.raises(T2LError, match="^Refusing stage: the gate says no$"):
        run_side_by_side(run, stages, lambda stage, result: kept.append((stage.name, result["lines"])))
    assert kept == [("finish", ["finished"])]  # kept before the later stage failed: a re-run reuses it
    assert "native and Python output" in (tmp_path / "logs" / "finish.log").read_text()
    assert "GateRefusedError" in (tmp_path / "logs" / "refuse.log").read_text()  # its traceback
    with pytest.raises(T2LError, match="running die, finish stopped without a Python error.*stages are reused"):
        run_side_by_side(run, [Stage("die", "Dying stage", _die, side_by_side=True), stages[0]], lambda *_: None)


def test_the_html_report_embeds_every_image_and_table(demo):
    markdown, page = (demo / "report.md").read_text(), (demo / "report.html").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert linked and all((demo / path).is_file() for path in linked)
    assert len(re.findall(r"<img [^>]*src='data:image/png;base64,", page)) == len(linked)
    assert "src='http" not in page and "src='/" not in page  # self-contained
    separators = [line for line in markdown.splitlines() if line.startswith("|---|")]
    assert page.count("<table>") == len(separators) >= 3  # the claims verdict, unseen classes, the order test
    for stage in STAGES:
        assert stage.title in page


def test_a_rerun_reuses_finished_stages(demo, capsys):
    assert main(["demo", "--fast", "--out", str(demo)]) == 0
    out = capsys.readouterr().out
    assert out.count(": reused (") == len(STAGES)


def test_a_folder_the_demo_did_not_write_is_refused(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("months of work")
    assert main(["demo", "--fast", "--out", str(tmp_path)]) == 2
    assert "not empty and not a demo folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_a_stage_file_torn_by_a_kill_means_the_stage_did_not_finish(demo, tmp_path):
    from t2l_fast.demo import _finished

    saved = demo / "stages" / f"{STAGES[-1].name}.json"
    assert _finished(saved, fast=True) is not None and _finished(saved, fast=False) is None  # the other budget
    torn = tmp_path / "torn.json"
    torn.write_text(saved.read_text()[:40])  # as a kill mid-write left it before stage files were atomic
    assert _finished(torn, fast=True) is None and _finished(tmp_path / "absent.json", fast=True) is None
