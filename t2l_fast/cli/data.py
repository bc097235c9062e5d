"""`t2l data ...`: synthetic data, validity probes, preflight, transcoding, fixtures, few-shot lists."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import T2LError
from ..io import check_not_input
from .common import non_negative_int, positive_float, positive_int


def _data_synth(args: argparse.Namespace) -> int:
    import time

    from ..data.synthetic import CLASS_NAMES, SynthConfig, write_synthetic_dataset
    from ..data.zero_shot_split import write_zero_shot_dataset

    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else CLASS_NAMES
    width, height = _parse_size(args.size)
    config = SynthConfig(classes=classes, clips_per_class=args.clips_per_class,
                         eval_clips_per_class=args.eval_clips_per_class, frames=args.frames, width=width,
                         height=height, codec=args.codec, seed=args.seed)
    started = time.time()
    try:
        if args.zero_shot_split:
            if args.classes:
                raise T2LError("--classes and --zero-shot-split: the split decides the classes; give one of them")
            counts = write_zero_shot_dataset(Path(args.out_dir), args.zero_shot_split, config, jobs=args.jobs,
                                             force=args.force)
        else:
            counts = write_synthetic_dataset(Path(args.out_dir), config, jobs=args.jobs, force=args.force)
    except ValueError as e:
        raise T2LError(str(e)) from None
    what = f"the {args.zero_shot_split} zero-shot split" if args.zero_shot_split else f"{len(classes)} classes"
    print(f"wrote {sum(counts.values())} {args.codec} clips ({', '.join(f'{k} {v}' for k, v in counts.items())}) "
          f"of {what}, {args.frames} frames of {width}x{height}, to {args.out_dir} in {time.time() - started:.1f} s")
    return 0


def _parse_size(text: str):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise T2LError(f"--size must look like 64x64 (width x height), got {text!r}") from None
    return width, height


def _data_probe(args: argparse.Namespace) -> int:

    from ..data.probes import order_probes

    results = order_probes(Path(args.dataset), frames=args.frames, size=args.size)
    blind_ok = all(v <= 0.55 for k, v in results.items() if k.startswith("order_blind"))
    aware_ok = results["order_aware_features"] >= 0.95
    for name, accuracy in results.items():
        print(f"{name:<22} within-pair accuracy {accuracy:.3f}")
    print("valid: only the order tells the classes apart" if blind_ok and aware_ok else
          "NOT valid: " + ("order-blind probes beat chance (order leaks into single frames) " if not blind_ok else "")
          + ("order-aware probe below 0.95" if not aware_ok else ""))
    return 0 if blind_ok and aware_ok else 1


def _data_check(args: argparse.Namespace) -> int:

    from ..data.lists import read_video_list
    from ..data.preflight import check_list, read_list_lines, report_paths

    list_file = Path(args.list)
    out = Path(args.out) if args.out else list_file.with_name(f"{list_file.stem}.check.json")
    for written in report_paths(out).values():
        check_not_input(written, [list_file])
    entries = read_video_list(list_file, args.root, missing="keep")
    result = check_list(entries, Path(args.root), read_list_lines(list_file), out, jobs=args.jobs,
                        timeout=args.timeout)
    for video in result["videos"]:
        detail = video["reason"] if video["verdict"] == "bad" else "; ".join(video["notes"])
        print(f"{video['verdict']:<4} {video['where']:<28} {video['path']}" + (f"  ({detail})" if detail else ""))
    s = result["summary"]
    print(f"\n{s['videos']} videos: {s['ok']} ok ({s['with_gpu_notes']} with notes for GPU decoding), {s['bad']} bad, "
          f"{s['seconds']} s")
    for name, path in result["paths"].items():
        print(f"{name:<10} {path}")
    return 1 if s["bad"] else 0  # a finding: the clean list leaves the bad videos out


def _data_transcode(args: argparse.Namespace) -> int:

    from ..data.transcode import transcode_list

    report = json.loads(Path(args.report).read_text())
    check_not_input(Path(args.out_root) / "list.txt", [args.report], "--out-root")
    list_file = transcode_list(report, Path(args.out_root), only_flagged=not args.all, gop=args.gop, fps=args.fps,
                               short_side=args.short_side or None, force=args.force)
    print(f"wrote {list_file} ({sum(1 for _ in open(list_file))} videos); check it with: "
          f"t2l data check {list_file} --root {args.out_root}")
    return 0


def _data_fixtures(args: argparse.Namespace) -> int:

    from ..data.fixtures import write_fixture_zoo

    for name, purpose in write_fixture_zoo(Path(args.out_dir), force=args.force).items():
        print(f"{name:<24} {purpose}")
    print(f"\nlist: {Path(args.out_dir) / 'list.txt'}")
    return 0


def _data_fewshot(args: argparse.Namespace) -> int:
    from ..data.fewshot import write_few_shot_list

    try:
        chosen = write_few_shot_list(args.list, args.root, args.out, shots=args.shots, seed=args.seed,
                                     classes_file=args.classes, subset_file=args.subset_classes)
    except ValueError as e:  # --shots or --seed out of range (list and class-file errors are T2LErrors already)
        raise T2LError(str(e)) from None
    classes = len(chosen) // args.shots
    subset = f" of {args.subset_classes}, relabelled in its order" if args.subset_classes else ""
    print(f"wrote {args.out}: {len(chosen)} videos, {args.shots} per class for {classes} classes{subset} "
          f"(seed {args.seed})")
    return 0


def _data_convert_list(args: argparse.Namespace) -> int:
    from ..data.official_lists import convert_official_list

    written, absent = convert_official_list(Path(args.official_list), Path(args.root), Path(args.out), args.missing)
    for line in absent[:20]:
        print(f"skipped (not under --root): {line}")
    print(f"wrote {args.out}: {written} videos" + (f", {len(absent)} skipped" if absent else ""))
    return 0


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    data = sub.add_parser("data", help="video datasets: synthetic data, validity probes").add_subparsers(
        dest="data_command", metavar="DATA_COMMAND", required=True)
    p = data.add_parser("synth", help="write a synthetic action dataset (videos, lists, classes): order-only, or "
                                      "a zero-shot split")
    p.add_argument("out_dir")
    p.add_argument("--classes", help="comma-separated subset of the synthetic classes (default: all 12)")
    p.add_argument("--zero-shot-split", choices=["compositional", "unseen-motion"],
                   help="instead: shape x motion classes ('a circle moving left') split into seen ones (train.txt, "
                        "val.txt, classes.txt) and unseen ones (unseen_test.txt, unseen_classes.txt)")
    p.add_argument("--clips-per-class", type=positive_int, default=20, help="training clips per class (default 20)")
    p.add_argument("--eval-clips-per-class", type=positive_int, default=8,
                   help="val and test clips per class (default 8)")
    p.add_argument("--frames", type=positive_int, default=24, help="frames per clip (default 24)")
    p.add_argument("--size", default="64x64", help="WIDTHxHEIGHT, even numbers (default 64x64)")
    p.add_argument("--codec", choices=["h264", "vp9", "mjpeg"], default="h264")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--jobs", type=positive_int, default=1, help="encoding processes (default 1)")
    _add_force(p)
    p.set_defaults(run=_data_synth)
    p = data.add_parser("probe", help="check that only frame order separates a synthetic dataset's classes")
    p.add_argument("dataset", help="a folder written by `t2l data synth`")
    p.add_argument("--frames", type=positive_int, default=8)
    p.add_argument("--size", type=positive_int, default=64)
    p.set_defaults(run=_data_probe)
    _register_preflight(data)
    p = data.add_parser("fixtures", help="write a folder of good, odd and broken videos (for testing decoders)")
    p.add_argument("out_dir")
    _add_force(p)
    p.set_defaults(run=_data_fixtures)
    _register_lists(data)


def _add_force(p) -> None:
    p.add_argument("--force", action="store_true", help="write into a non-empty folder this command did not write "
                   "(files of the same names are replaced)")


def _register_preflight(data) -> None:
    """`t2l data check` and `t2l data transcode`."""
    p = data.add_parser("check", help="preflight: probe every listed video; write a report, manifest, clean list")
    p.add_argument("list", help="list file (relative/path label per line, or CSV)")
    p.add_argument("--root", required=True, help="data root the list's paths are relative to")
    p.add_argument("--jobs", type=positive_int, default=2, help="probe processes (default 2)")
    p.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per video before it is called hung")
    p.add_argument("--out", help="report path (default: LIST.check.json beside the list)")
    p.set_defaults(run=_data_check)
    p = data.add_parser("transcode", help="re-encode what GPU decoding dislikes to H.264 yuv420p, CFR, short GOP")
    p.add_argument("report", help="a report written by `t2l data check`")
    p.add_argument("--out-root", required=True, help="folder for the new videos and their list.txt")
    p.add_argument("--all", action="store_true", help="transcode every usable video, not only the flagged ones")
    p.add_argument("--gop", type=positive_int, default=8, help="frames between keyframes (default 8)")
    p.add_argument("--fps", type=positive_float, help="output frame rate (default: the source's average)")
    p.add_argument("--short-side", type=non_negative_int, default=320,
                   help="downscale frames whose short side is larger to this many pixels (default 320: what the "
                   "224 training crop needs; 0 keeps the size). Decoding 320p with a short GOP instead of "
                   "720p/1080p originals is what makes NVDEC fast on Kinetics")
    _add_force(p)
    p.set_defaults(run=_data_transcode)


def _register_lists(data) -> None:
    """`t2l data fewshot` and `t2l data convert-list`."""
    p = data.add_parser("fewshot", help="draw K videos per class from a list (few-shot and base-to-novel training)",
                        description="Draws K videos per class, deterministically per seed, optionally from a class "
                        "subset (base-to-novel: the base classes, relabelled in the subset's order). These are our "
                        "draws: to compare with published numbers use ViFi-CLIP's published lists and base/novel "
                        "class splits (see train/configs/README.md); this command never invents a class split.")
    p.add_argument("list", help="list file to draw from (relative/path label per line, or CSV)")
    p.add_argument("--root", required=True, help="data root the list's paths are relative to")
    p.add_argument("--shots", type=positive_int, required=True, help="videos per class (K)")
    p.add_argument("--seed", type=non_negative_int, default=1, help="draw seed, >= 0 (default 1)")
    p.add_argument("--classes", help="class-name file of LIST (needed for --subset-classes and class names in "
                   "labels or messages)")
    p.add_argument("--subset-classes", help="class-name file of the classes to keep (e.g. the base classes)")
    p.add_argument("--out", required=True, help="list to write (.txt: relative/path label; .csv: with start/end)")
    p.set_defaults(run=_data_fewshot)
    p = data.add_parser("convert-list", help="turn an official T2L list (/abs/path num_frames label) into ours",
                        description="The official T2L lists name videos (or frame folders) by absolute paths on the "
                        "authors' machines. The folder all of them share is replaced by --root; a frame folder's name "
                        "matches the video of that stem (.mp4, .avi, .mkv, .webm, .mov).")
    p.add_argument("official_list", help="an official list, e.g. dataset_splits/HMDB/Zero_shot/test.txt")
    p.add_argument("--root", required=True, help="data root holding the videos")
    p.add_argument("--out", required=True, help="list to write (relative/path label per line)")
    p.add_argument("--missing", choices=("error", "skip"), default="error",
                   help="what a listed video not found under --root does (default: error, all reported)")
    p.set_defaults(run=_data_convert_list)

