"""The demo's stages, in order. Each takes the Run and returns a JSON-able result: what it showed (`lines`), the
commands that reproduce it (`commands`), its figures, and the images it drew (paths relative to the run folder).
Stages read earlier stages' results from `run.results` and call the same library code as the `t2l` commands."""
from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..io import inside, under
from ..optional import dali_version

CLASSES_FILE, DESCRIPTIONS_FILE = "classes.txt", "descriptions.csv"  # the seen (training) classes
# The full budget (--fast: 6 / 2 clips, 1 epoch).
# The recipe of train/configs/tiny_zero_shot.yaml (a test keeps the two equal).
DEMO_CLIPS = (100, 20)  # training clips per seen class; validation and test clips per class
TRAIN_EPOCHS, TRAIN_LR, WARMUP_EPOCHS = 10, 1e-2, 1.0  # 1,500 steps of 16 clips
VAL_EVERY_EPOCHS = 5  # seen-class validation after epochs 5 and 10 (each costs a pass over 480 clips)
# ViFi-CLIP fine-tunes every image weight: at T2L's 1e-2 it collapsed (validation top-1 0.04 of 24 seen classes, chance
# 0.042). T2L's lr / 10, near the published recipes' ratio (ViFi-CLIP 8e-6 against T2L 5e-5).
VIFICLIP_LR = 1e-3
TOKEN_LR_SCALE = 5.0  # T2L's temporal tokens at 5x lr (at 1x its unseen classes stayed at chance within pairs)
# The unseen-motion run trains on a quarter of the clips (a quarter of the steps; its result is reported, whatever it
# gives: at the full budget T2L did not transfer, 0.275 top-1 against CLIP's 0.287).
MOTION_CLIPS_DIVISOR = 4
TFD_WEIGHT = 0.0  # T2L's TFD loss off at this scale (the order test measured: order never learned at weight 1)
UNSEEN = "unseen_"  # prefix of the unseen classes' files: unseen_classes.txt, unseen_descriptions.csv, unseen_test.txt


@dataclass
class Run:
    out: Path
    fast: bool
    results: dict[str, dict]
    log: Callable[[str], None]

    @property
    def data(self) -> Path:
        """The compositional zero-shot split: seen classes to train on, unseen ones to evaluate on."""
        return self.out / "data"

    @property
    def motion_data(self) -> Path:
        """The unseen-motion split: vertical motion never trained on."""
        return self.out / "data_unseen_motion"

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))

    def artifact(self, stage: str, key: str) -> Path:
        """The file stage `stage` recorded at `key` (relative to the demo folder), which must lie inside it."""
        return under(self.out, self.results[stage][key], f"{self.out}: the {stage} stage's {key}")

    def trained_model(self, stage: str):
        """The model training stage `stage` saved (learnable weights), on the backbone this demo pre-trained (passed
        here: a checkpoint's config is no consent to read a file outside its folder)."""
        from ..models.build import load_checkpoint

        backbone = str(self.artifact("pretrain", "backbone"))
        return load_checkpoint(self.artifact(stage, "checkpoint"), pretrained=backbone)


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    run: Callable[[Run], dict]
    side_by_side: bool = False  # may run in a process of its own beside the neighbouring stages marked so
    all_threads: bool = False  # side by side: torch threads on every core (its partners use little torch), not a share


def timed(stage: Stage, run: Run) -> dict:
    """The stage's result, with the budget it ran at and its seconds."""
    started = time.time()
    return {"fast": run.fast, **stage.run(run), "seconds": round(time.time() - started, 1)}


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------------------- data
def make_data(run: Run) -> dict:
    """Two zero-shot splits of shape x motion actions in VP9 (what DALI's CPU decoder reads): compositional (each
    unseen class's shape and motion were seen, never together) and unseen-motion (vertical motion never trained
    on); and a few long-GOP H.264 clips for the preflight and transcode stage."""
    from ..data.synthetic import SynthConfig, write_synthetic_dataset
    from ..data.zero_shot_split import write_zero_shot_dataset

    per_class, per_eval = (6, 2) if run.fast else DEMO_CLIPS
    config = SynthConfig(clips_per_class=per_class, eval_clips_per_class=per_eval, codec="vp9")
    motion_config = replace(config, clips_per_class=per_class // MOTION_CLIPS_DIVISOR)
    counts = write_zero_shot_dataset(run.data, "compositional", config, jobs=2, force=True)  # the demo owns it
    motion_counts = write_zero_shot_dataset(run.motion_data, "unseen-motion", motion_config, jobs=2, force=True)
    odd = SynthConfig(classes=("moving right", "moving left"), clips_per_class=2, eval_clips_per_class=1, frames=96,
                      codec="h264")
    odd_counts = write_synthetic_dataset(run.out / "data_h264", odd, force=True)
    seen, unseen = (len((run.data / f"{prefix}classes.txt").read_text().splitlines()) for prefix in ("", UNSEEN))
    return {"clips": counts, "unseen_motion_clips": motion_counts, "codec": "vp9", "size": "64x64", "frames": 24,
            "lines": [f"compositional split: {seen} seen classes ({counts['train']} training clips), {unseen} unseen "
                      f"classes ({counts['unseen_test']} test clips), named like 'a circle moving left'; "
                      f"time-reversed twins stay together, so only frame order tells a pair apart",
                      f"unseen-motion split: no vertical motion in training ({motion_counts['train']} training clips,"
                      f" {motion_counts['unseen_test']} test clips of 'moving up' / 'moving down')",
                      f"{sum(odd_counts.values())} H.264 clips of 96 frames with one keyframe (a long GOP)"],
            "commands": [f"t2l data synth {folder} --zero-shot-split {split} --codec vp9 --clips-per-class "
                         f"{split_config.clips_per_class} --eval-clips-per-class {per_eval}"
                         for folder, split, split_config in ((run.data, "compositional", config),
                                                             (run.motion_data, "unseen-motion", motion_config))]}


def check_data(run: Run) -> dict:
    """Preflight every list (the manifests the DALI loader reads), then the H.264 clips: flagged, transcoded,
    re-checked."""
    from ..data.lists import read_video_list
    from ..data.preflight import check_list, read_list_lines
    from ..data.transcode import transcode_list

    def check(list_file: Path, root: Path) -> dict:
        entries = read_video_list(list_file, root, missing="keep")
        return check_list(entries, root, read_list_lines(list_file), list_file.with_name(
            f"{list_file.stem}.check.json"))

    splits = {split: check(run.data / f"{split}.txt", run.data)["summary"] for split in ("train", "val",
                                                                                            f"{UNSEEN}test")}
    h264 = run.out / "data_h264"
    before = check(h264 / "train.txt", h264)
    notes = sorted({note for video in before["videos"] for note in video["notes"]})
    transcoded = run.out / "data_h264_transcoded"
    new_list = transcode_list(json.loads(before["paths"]["report"].read_text()), transcoded, gop=8, force=True)
    after = check(new_list, transcoded)["summary"]
    bad = sum(s["bad"] for s in splits.values())
    return {"splits": splits, "h264_before": before["summary"], "h264_notes": notes, "h264_after": after,
            "lines": [f"VP9 lists: {sum(s['videos'] for s in splits.values())} videos, {bad} bad; manifests written "
                      f"beside the lists (frame counts, sizes, codecs for the loaders)",
                      f"H.264: {before['summary']['with_gpu_notes']} of {before['summary']['videos']} flagged for GPU "
                      f"decoding ({'; '.join(notes)}); after `t2l data transcode`: {after['with_gpu_notes']} flagged"],
            "commands": [f"t2l data check {run.data / 'train.txt'} --root {run.data}",
                         f"t2l data check {h264 / 'train.txt'} --root {h264}",
                         f"t2l data transcode {before['paths']['report']} --out-root {transcoded}",
                         f"t2l data check {new_list} --root {transcoded}"]}


def load_data(run: Run) -> dict:
    """One pass of the test list through the DALI loader (DALI's CPU decoder here, NVDEC with CUDA), against the
    PyAV loader on the same clips."""
    from ..data import LoaderConfig, build_video_loader
    from ..text.class_files import read_class_names

    dali = dali_version()
    backend = "dali" if dali else "pyav"
    names = read_class_names(run.data / f"{UNSEEN}{CLASSES_FILE}")

    def loader(kind: str):
        config = LoaderConfig(frames=8, size=32, backend=kind, class_names=names, num_workers=2)
        return build_video_loader(run.data / f"{UNSEEN}test.txt", run.data, config, split="val", batch_size=16,
                                  device=_device())

    chosen = loader(backend)
    started, clips, first = time.time(), 0, None
    for batch in chosen:
        first = batch["video"].cpu() if first is None else first
        clips += len(batch["label"])
    seconds = time.time() - started
    result = {"backend": backend, "description": chosen.backend, "dali_version": dali, "device": _device(),
              "clips": clips, "clips_per_s": clips / seconds, "bad_videos": len(chosen.bad_videos),
              "fallback_batches": getattr(chosen, "fallback_batches", 0)}
    lines = [f"{chosen.backend} ({'DALI ' + dali if dali else 'DALI is not installed: the PyAV loader instead'}"
             f"): {clips} clips at "
             f"{result['clips_per_s']:.1f} clips/s, {result['bad_videos']} bad videos, {result['fallback_batches']} "
             f"batches fell back to PyAV"]
    if dali:
        reference = next(iter(loader("pyav")))["video"].cpu()
        difference = (first.float() - reference.float()).abs()
        result["vs_pyav"] = {"mean_abs": float(difference.mean()), "max_abs": float(difference.max())}
        lines.append(f"against the PyAV loader on the first batch: mean |difference| {difference.mean():.2f} of 255 "
                     f"(max {difference.max():.0f}; the two decoders round differently)")
    return {**result, "lines": lines, "commands": ["python bench/loader.py"]}


# ------------------------------------------------------------------------------------------------- models
def pretrain(run: Run) -> dict:
    """The tiny CLIP's two towers pre-trained together on single synthetic frames and captions of what each shows
    (what real models get from CLIP's image-text pre-training)."""
    from ..training.order_test import FAST, OrderTestConfig
    from ..training.pretrain_tiny import pretrain_tiny, retrieval_line

    # The order test's recipe (--fast: its test budget). 12,000 frames and 1,000 steps took 40% less time, but T2L's
    # unseen-class top-1 on such backbones was 0.79 and 0.53 (2 and 4 captions per frame), against 0.77-0.83 on this
    # recipe's: the zero-shot result rests on how well the text tower learned to read.
    config = FAST if run.fast else OrderTestConfig()
    frames, steps = config.pretrain_frames, config.pretrain_steps
    summary = pretrain_tiny(run.out / "tiny_backbone.safetensors", frames=frames, steps=steps, log=run.log)
    return {"backbone": run.relative(Path(summary["backbone"])), "steps": summary["steps"],
            **{k: v for k, v in summary.items() if k.endswith(("_r1", "_r5", "_accuracy")) or k == "gallery"},
            "lines": [f"{summary['steps']} steps, both towers (CLIP's objective on frames and their captions): "
                      f"{retrieval_line(summary)}"],
            "commands": [f"t2l pretrain-tiny --out {summary['backbone']} --frames {frames} --steps {steps}"]}


def _train(run: Run, model: str, objective: str, data: Path | None = None, name: str | None = None) -> dict:
    """`t2l train` of `model` with `objective` on the seen classes of `data` (default: the compositional split)."""
    from ..training.config import load_config
    from ..training.trainer import Trainer

    data = data or run.data
    folder = run.out / "train" / (name or model)
    shutil.rmtree(folder, ignore_errors=True)  # a re-run trains afresh (the trainer appends to metrics.jsonl)
    backbone = run.artifact("pretrain", "backbone")
    epochs, learning_rate = 1 if run.fast else TRAIN_EPOCHS, TRAIN_LR if objective == "t2l" else VIFICLIP_LR
    settings = [f"model={model}", f"objective={objective}", f"pretrained={backbone}", f"data.root={data}",
                f"data.train_list={data / 'train.txt'}",
                f"data.val_list={data / 'val.txt'}", f"data.classes={data / CLASSES_FILE}",
                f"data.backend={run.results['loader']['backend']}", "data.flip=false", "data.jitter_per_frame=false",
                "data.twin_batches=true",
                f"epochs={epochs}", "batch_size=16", "precision=fp32", f"optim.lr={learning_rate}",
                "optim.weight_decay=0.05", f"optim.warmup_epochs={min(WARMUP_EPOCHS, 0.2 * epochs)}",
                f"data.val_every_epochs={VAL_EVERY_EPOCHS}", f"output_dir={folder}"]
    if objective == "t2l":
        settings += [f"data.descriptions={data / DESCRIPTIONS_FILE}", f"tfd_weight={TFD_WEIGHT}",
                     f"optim.token_lr_scale={TOKEN_LR_SCALE}", "model_overrides={drop_path: 0.0, token_dropout: 0.0}"]
    summary = Trainer(load_config(None, settings)).run()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    losses = [(row["step"], row["loss"]) for row in rows if "loss" in row]
    validation = {row["epoch"] + 1: row["val_top1"] for row in rows if "val_top1" in row}  # epoch (from 1) -> top-1
    data_rows = [row for row in rows if "bad_videos" in row]
    return {"model": model, "steps": summary["steps"], "checkpoint": run.relative(Path(summary["model"])),
            "losses": losses, "val_top1": list(validation.values()), "val_epochs": list(validation),
            "bad_videos": data_rows[-1]["bad_videos"] if data_rows else 0,
            "loader_fallback_batches": data_rows[-1]["loader_fallback_batches"] if data_rows else 0,
            "lines": [f"{summary['steps']} steps on the seen classes ({run.results['loader']['backend']} loader), "
                      f"loss {losses[0][1]:.3f} -> {losses[-1][1]:.3f}, validation top-1 (seen classes) "
                      + ", ".join(f"{v:.3f} after epoch {epoch}" for epoch, v in validation.items())
                      + f"; model: {summary['model']}"],
            "commands": ["t2l train --set " + " ".join(shlex.quote(setting) for setting in settings)]}


def train_t2l(run: Run) -> dict:
    return _train(run, "t2l_tiny", "t2l")


def train_vificlip(run: Run) -> dict:
    return _train(run, "vificlip_tiny", "vificlip")


def train_t2l_unseen_motion(run: Run) -> dict:
    return _train(run, "t2l_tiny", "t2l", data=run.motion_data, name="t2l_tiny_unseen_motion")


SPLIT_FILES = {"unseen": (f"{UNSEEN}{CLASSES_FILE}", f"{UNSEEN}{DESCRIPTIONS_FILE}", f"{UNSEEN}test.txt"),
               "seen": (CLASSES_FILE, DESCRIPTIONS_FILE, "val.txt")}  # classes, descriptions, held-out clips


def _evaluate_classes(run: Run, models: dict, data: Path, split: str, stem: str) -> tuple[dict, list[str], list[str]]:
    """Top-1, top-5, within-pair accuracy and a confusion matrix of each (model, uses descriptions) on held-out
    clips of the `split` ("unseen" or "seen") classes of `data`; (scores, lines, image paths)."""
    from ..text.class_files import read_class_descriptions, read_class_names
    from ..training.evaluate import EvalConfig, evaluate, save_results

    classes, descriptions_file, clips = SPLIT_FILES[split]
    names = read_class_names(data / classes)
    descriptions = read_class_descriptions(data / descriptions_file, names)
    scores, lines, images = {}, [], []
    for label, (model, with_descriptions) in models.items():
        result = evaluate(model, data / clips, data, names,
                          descriptions=descriptions if with_descriptions else None,
                          config=EvalConfig(backend=run.results["loader"]["backend"], num_workers=2))
        file_name = label.replace(" (", "_").rstrip(")")  # "clip_tiny (names)" -> clip_tiny_names.json, .png
        written = save_results(result, run.out / "eval" / stem / f"{file_name}.json", names)
        images += [run.relative(p) for p in written if p.suffix == ".png"]
        scores[label] = {k: result[k] for k in ("top1", "top5", "within_pair_accuracy", "videos")}
        lines.append(f"{label:<26} top-1 {result['top1']:.3f}, top-5 {result['top5']:.3f}, within pairs "
                     f"{result['within_pair_accuracy']:.3f} on {result['videos']} clips of {len(names)} {split} "
                     f"classes (chance {1 / len(names):.3f}; within pairs 0.5)")
    return scores, lines, images


def _verdict(scores: dict, chance: float) -> str:
    """One sentence on T2L against CLIP frame averaging (its better text form), as the figures say."""
    t2l = scores["t2l_tiny"]
    clip_label, clip = max(((k, v) for k, v in scores.items() if k.startswith("clip_tiny")),
                           key=lambda item: item[1]["top1"])
    figures = (f"T2L {t2l['top1']:.3f} top-1 against {clip['top1']:.3f} for CLIP frame averaging ({clip_label}; "
               f"chance {chance:.3f}), within pairs {t2l['within_pair_accuracy']:.3f} against "
               f"{clip['within_pair_accuracy']:.3f} (chance 0.5)")
    if t2l["top1"] > clip["top1"]:
        return f"On actions it never trained on, T2L beats frame averaging by {t2l['top1'] - clip['top1']:.3f}: " \
               f"{figures}."
    return f"At this budget T2L does not beat frame averaging on actions it never trained on: {figures}."


def evaluate_models(run: Run) -> dict:
    """Zero-shot on classes never trained on: T2L and ViFi-CLIP trained on the seen classes, and the pre-trained
    CLIP tower averaging frames with no video training (with class names, and with the descriptions T2L reads);
    then the unseen-motion split (T2L trained without vertical motion)."""
    from ..models.registry import create_model

    backbone = str(run.artifact("pretrain", "backbone"))
    clip = create_model("clip_tiny", pretrained=backbone)
    models = {"t2l_tiny": (run.trained_model("train_t2l"), True),
              "vificlip_tiny": (run.trained_model("train_vificlip"), False),
              "clip_tiny (names)": (clip, False), "clip_tiny (descriptions)": (clip, True)}
    scores, lines, images = _evaluate_classes(run, models, run.data, "unseen", "unseen_classes")
    chance = 1 / len((run.data / f"{UNSEEN}{CLASSES_FILE}").read_text().splitlines())
    lines.append(_verdict(scores, chance))
    motion_models = {"t2l_tiny": (run.trained_model("train_t2l_unseen_motion"),
                                  True),
                     "clip_tiny (names)": (clip, False), "clip_tiny (descriptions)": (clip, True)}
    motion, motion_lines, motion_images = _evaluate_classes(run, motion_models, run.motion_data, "unseen",
                                                            "unseen_motion")
    lines += ["unseen motion (no vertical motion in training, T2L on a quarter of the training clips of the run "
              "above; 'top' and 'bottom' known only from captions of single frames):"] + motion_lines
    if run.fast:
        lines.append("(--fast: a budget far too small to learn; the full demo shows the result)")
    checkpoint = run.artifact("train_t2l", "checkpoint")
    return {"models": scores, "chance": chance, "unseen_motion": motion, "images": images + motion_images,
            "lines": lines,
            "commands": [f"t2l eval --checkpoint {checkpoint} --pretrained {run.artifact('pretrain', 'backbone')} "
                         f"--root {run.data} --list {run.data / 'unseen_test.txt'} "
                         f"--classes {run.data / 'unseen_classes.txt'} --descriptions "
                         f"{run.data / 'unseen_descriptions.csv'}"]}


def order_test(run: Run) -> dict:
    """Can each model tell an action from its time reversal? The models trained above, on held-out clips of the
    classes they trained on (each with its twin), scored against those classes' texts; within-pair accuracy is how
    often a clip's class scores above its twin's. (On the unseen classes it is in the evaluation above. `t2l
    order-test` is the standalone test of the video encoders: a prototype head and 6,000 clips, about 13 minutes;
    the slow tests run it over 3 seeds.)"""
    from ..models.registry import create_model

    backbone = run.artifact("pretrain", "backbone")
    models = {"t2l_tiny": (run.trained_model("train_t2l"), True),
              "vificlip_tiny": (run.trained_model("train_vificlip"), False),
              "clip_tiny": (create_model("clip_tiny", pretrained=str(backbone)), True)}
    scores, lines, images = _evaluate_classes(run, models, run.data, "seen", "order_test")
    within = {name: result["within_pair_accuracy"] for name, result in scores.items()}
    lines.append(f"T2L tells a seen action from its time reversal on {within['t2l_tiny']:.3f} of held-out clips, "
                 f"ViFi-CLIP on {within['vificlip_tiny']:.3f}, CLIP frame averaging on {within['clip_tiny']:.3f} "
                 f"(chance 0.5: a mean over frames cannot see their order)")
    if run.fast:
        lines.append("(--fast: a budget far too small for T2L to learn order; the full demo shows the result)")
    return {"within_pair_accuracy": within, "models": scores, "images": images, "lines": lines,
            "commands": [f"t2l eval --checkpoint {run.artifact('train_t2l', 'checkpoint')} --pretrained {backbone} "
                         f"--root {run.data} --list {run.data / 'val.txt'} --classes {run.data / CLASSES_FILE} "
                         f"--descriptions {run.data / DESCRIPTIONS_FILE}"]}


def predict_clips(run: Run) -> dict:
    """Labels for a few clips of unseen classes from the trained T2L, scored against the unseen class texts."""
    from ..predict import predict_video
    from ..scoring import TorchScorer
    from ..text.class_files import read_class_descriptions, read_class_names
    from ..text.classifier import build_classifier

    classes, descriptions = run.data / f"{UNSEEN}{CLASSES_FILE}", run.data / f"{UNSEEN}{DESCRIPTIONS_FILE}"
    names = read_class_names(classes)
    model = run.trained_model("train_t2l").eval()
    classifier = build_classifier(model, names, descriptions=read_class_descriptions(descriptions, names))
    lines = (run.data / f"{UNSEEN}test.txt").read_text().splitlines()
    picks = [line.rsplit(" ", 1) for line in lines][:: max(1, len(lines) // 3)][:3]
    predictions, shown = [], []
    with TorchScorer(model, classifier) as scorer:
        for relative, label in picks:
            prediction = predict_video(scorer, run.data / relative, topk=3)
            top = prediction.top or []
            predictions.append({"video": relative, "true": names[int(label)], "top": top, "error": prediction.error})
            shown.append(f"{relative}: true '{names[int(label)]}'; " + (f"error: {prediction.error}" if
                         prediction.error else "predicted " + ", ".join(f"{name} {p:.2f}" for name, p in top)))
    checkpoint = run.artifact("train_t2l", "checkpoint")
    return {"predictions": predictions, "lines": shown,
            "commands": [f"t2l predict {run.data / picks[0][0]} --checkpoint {checkpoint} --pretrained "
                         f"{run.artifact('pretrain', 'backbone')} --classes {classes} --descriptions {descriptions} "
                         f"--topk 3"]}


# ------------------------------------------------------------------------------------------------- deployment
def export_graphs(run: Run) -> dict:
    """The trained T2L to ONNX (video encoder, text encoder, and a classifier of the unseen classes: deployed
    zero-shot), each checked against PyTorch."""
    from ..deploy.onnx_export import export_with_classes
    from ..errors import MissingDependencyError
    from ..text.class_files import read_class_descriptions, read_class_names

    checkpoint = run.artifact("train_t2l", "checkpoint")
    model = run.trained_model("train_t2l").eval()
    classes, descriptions_file = run.data / f"{UNSEEN}{CLASSES_FILE}", run.data / f"{UNSEEN}{DESCRIPTIONS_FILE}"
    names = read_class_names(classes)
    descriptions = read_class_descriptions(descriptions_file, names)
    shown: list[str] = []
    command = (f"t2l export onnx --checkpoint {checkpoint} --pretrained {run.artifact('pretrain', 'backbone')} "
               f"--out {run.out / 'onnx'} --classes {classes} --descriptions {descriptions_file}")
    try:
        manifest = export_with_classes(model, run.out / "onnx", names, descriptions=descriptions, log=shown.append)
    except MissingDependencyError as e:  # the onnx extra is not installed: said, and the deployment stages skip
        return {"exported": False, "parity": {}, "lines": [f"not exported: {e}"], "commands": [command]}
    return {"exported": True, "graphs": {kind: entry["file"] for kind, entry in manifest["graphs"].items()},
            "parity": manifest["parity"], "versions": manifest["versions"], "lines": [s.strip() for s in shown],
            "commands": [command]}


INT8_MODES = ("static", "dynamic")  # tried in turn: static (calibrated activations) first, as it runs faster


def quantize(run: Run) -> dict:
    """INT8 graphs behind the agreement gate on clips of the unseen classes (kept only if they pass): static,
    calibrated on training clips, then dynamic if static is refused; every attempt's gate figures are reported."""
    from ..deploy.int8 import GateRefusedError, quantize_export

    if not run.results["export"]["exported"]:
        return {"passed": False, "lines": ["not run: no ONNX export"], "commands": []}
    gate_list = run.data / f"{UNSEEN}test.txt"
    test_clips = len(gate_list.read_text().splitlines())
    shown: list[str] = []
    attempts, commands = [], []
    for mode in INT8_MODES:
        calibration = (f"--calibration {run.data / 'train.txt'} --calibration-clips {16 if run.fast else 64} "
                       if mode == "static" else "")
        commands.append(f"t2l export onnx ... --precision int8 --int8-mode {mode} {calibration}--gate-list "
                        f"{gate_list} --min-gate-clips {min(200, test_clips)} --root {run.data}")
        try:
            report = quantize_export(run.out / "onnx", mode=mode, calibration_list=str(run.data / "train.txt"),
                                     gate_list=str(gate_list), root=str(run.data),
                                     calibration_clips=16 if run.fast else 64, min_gate_clips=min(200, test_clips),
                                     log=shown.append)
        except GateRefusedError as e:  # the gate refused: a finding, reported with its figures
            attempts.append({"mode": mode, "passed": False, "gate": e.report["gate"]})
            shown.append(str(e))
            continue
        attempts.append({"mode": mode, "passed": True, "gate": report["gate"]})
        break
    return {"passed": attempts[-1]["passed"], "mode": attempts[-1]["mode"], "gate": attempts[-1]["gate"],
            "attempts": attempts, "lines": [s.strip() for s in shown], "commands": commands}


def build_engine_stage(run: Run) -> dict:
    """A TensorRT engine of the video encoder (TensorRT for RTX builds it ahead of time without a GPU; it runs
    where a GPU is present)."""
    from ..deploy.engine_build import BuildOptions, build_engine
    from ..errors import T2LError
    from ..runtime.engine_sidecar import sidecar_path

    graph = run.out / "onnx" / "video_encoder.onnx"
    command = f"t2l export trt --onnx {graph} --max-batch 16"
    if not run.results["export"]["exported"]:
        return {"built": False, "reason": "no ONNX export", "lines": ["not built: no ONNX export"],
                "commands": [command]}
    shown: list[str] = []
    try:
        sidecar = build_engine(graph, BuildOptions(max_batch=16), log=shown.append)
    except T2LError as e:  # no TensorRT flavour installed, or the build failed: said, not hidden
        return {"built": False, "reason": str(e), "lines": [f"not built: {e}"], "commands": [command]}
    engine = inside(graph.parent, sidecar["engine"]["file"], "the engine")  # beside its graph, where predict looks
    result = {"built": True, "engine": run.relative(engine), "bytes": sidecar["engine"]["bytes"],
              "runtime": sidecar["runtime"], "targets": sidecar["target"]["compute_capabilities"],
              "sidecar": run.relative(sidecar_path(engine)), "rebuild": sidecar["rebuild"],
              "lines": [s.strip() for s in shown], "commands": [command]}
    if torch.cuda.is_available():
        try:
            result["run"] = _run_engine(run)
            result["lines"].append(f"ran on {torch.cuda.get_device_name(0)}: cosine to ONNX Runtime "
                                   f"{result['run']['min_cosine']:.4f} (min over {result['run']['clips']} clips)")
        except T2LError as e:  # e.g. an RTX engine on a data-centre GPU: refused by the sidecar check
            result["run"] = {"error": str(e)}
            result["lines"].append(f"not run on {torch.cuda.get_device_name(0)}: {e}")
    else:
        result["lines"].append("not run: no GPU here (the engine is for RTX GPUs; `t2l predict --backend tensorrt` "
                               "runs it where one is present)")
    return result


def _run_engine(run: Run) -> dict:
    """The engine's embeddings against ONNX Runtime's on the same clips (GPU only)."""
    import numpy as np

    from ..perf.throughput import clips_for
    from ..runtime.bundle import ExportedModel

    bundle = ExportedModel(run.out / "onnx")
    clips = clips_for(bundle.input_spec.image_size, bundle.input_spec.frames, 8)
    with bundle.engine_runner("video_encoder", "auto") as engine, bundle.runner("video_encoder") as onnx:
        a, b = engine.infer({"frames": clips})["embedding"], onnx.infer({"frames": clips})["embedding"]
    cosine = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return {"clips": len(clips), "min_cosine": float(cosine.min())}


# The demo's throughput table: PyTorch eager only (another backend costs each model an ONNX export, a gate and a
# profile: ~12 s a model); `t2l bench throughput --quick` measures every CPU backend.
BENCH_BACKENDS = ("torch-eager",)


def benchmarks(run: Run) -> dict:
    """The quick benchmarks (tiny models: GFLOPs, throughput in PyTorch) and the verdict on the
    paper's claims (ViT-B/16 GFLOPs counted now; its throughput comes from `t2l bench throughput`, not this quick
    run)."""
    from ..errors import T2LError
    from ..perf.reports import QUICK_MODELS, claims_report, flops_report, throughput_plan, throughput_report

    bench = run.out / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    plan = {"backends": BENCH_BACKENDS, **({"seconds": 0.05} if run.fast else {})}
    commands = {"bench flops": f"--quick --out {bench} --json {bench / 'flops_rows.json'}",
                "bench throughput": f"--quick --out {bench} --backends {' '.join(plan['backends'])}"
                                    + (" --seconds 0.05" if run.fast else ""),
                "bench claims": f"--throughput {bench / 'throughput.json'} --out {bench}"}
    failed = {}
    with open(bench / "bench.log", "w") as printed:  # the tables: they are in the reports
        def log(line: str) -> None:
            print(line, file=printed, flush=True)

        reports = {"bench flops": lambda: flops_report(QUICK_MODELS, (8, 16, 32), bench, bench / "flops_rows.json",
                                                       log),
                   "bench throughput": lambda: throughput_report(throughput_plan(quick=True, **plan), bench, log=log),
                   "bench claims": lambda: claims_report(bench, throughput_json=bench / "throughput.json", log=log)}
        for name, report in reports.items():
            try:
                report()
            except (T2LError, OSError) as e:  # e.g. fvcore not installed: said in the log, the other reports run
                log(f"t2l {name}: error: {e}")
                failed[name] = str(e)
    written = bench / "throughput.json"
    throughput_report_json = json.loads(written.read_text()) if written.is_file() else {}
    verdicts = json.loads((bench / "claims.json").read_text())["rows"] if (bench / "claims.json").is_file() else []
    lines = [f"{row['claim']} [{row['accounting']}]: {row['verdict']}" + (f", measured {row['measured']}" if
                                                                          row["measured"] else "")
             for row in verdicts]
    lines += [note for note in throughput_report_json.get("notes", []) if note.startswith("T2L block, interleaved")]
    return {"failed": failed, "claims": verdicts, "tables": ["bench/flops.md", "bench/throughput.md",
                                                             "bench/claims.md"],
            "images": [run.relative(p) for p in (bench / "flops.png", bench / "throughput.png") if p.is_file()],
            "lines": lines or ["no claims verdict written"],
            "commands": [f"t2l {name} {arguments}" for name, arguments in commands.items()]}


STAGES = (  # pre-training needs no video, so it runs beside the data stage (both are CPU-bound: that saves ~12 s)
    Stage("data", "Generate the synthetic zero-shot splits", make_data, side_by_side=True),
    Stage("pretrain", "Pre-train the tiny CLIP (both towers, frames and captions)", pretrain, side_by_side=True,
          all_threads=True),
    Stage("check", "Preflight, and transcode what GPU decoding dislikes", check_data),
    Stage("loader", "Load with the DALI loader", load_data),
    Stage("train_t2l", "Train tiny T2L on the seen classes", train_t2l, side_by_side=True),
    Stage("train_vificlip", "Train tiny ViFi-CLIP on the seen classes", train_vificlip, side_by_side=True),
    Stage("train_t2l_unseen_motion", "Train tiny T2L without vertical motion", train_t2l_unseen_motion,
          side_by_side=True),
    Stage("evaluate", "Evaluate on unseen classes", evaluate_models),
    Stage("order_test", "The order test on the seen classes", order_test),
    Stage("predict", "Predict a few clips of unseen classes", predict_clips),
    Stage("export", "Export T2L to ONNX and check parity", export_graphs),
    Stage("int8", "Quantize to INT8 behind its gate", quantize),
    Stage("engine", "Build a TensorRT engine", build_engine_stage),
    Stage("bench", "Quick benchmarks and the claims verdict", benchmarks),
)
