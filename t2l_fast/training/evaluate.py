"""Zero-shot evaluation: one list; UCF101 / HMDB51 (mean +- std over the 3 published splits); class subsets (K600);
base-to-novel (base, novel, harmonic mean; over several seeds' models: mean +- std and the HM of the means).

Single view by default: T centre frames, short side resized, centre crop (the loader's "val" split). Multi-view:
views=(N clips, M crops) (e.g. (4, 3)), softmax scores averaged over the N x M views of each video (PyAV backend).
Every video counts once, whatever the shard padding or decoding replacements did.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import LoaderConfig, build_video_loader
from ..data.probes import within_pair_accuracy
from ..data.splits import hmdb51_split, ucf101_split
from ..data.synthetic import pair_of
from ..errors import UnsupportedOptionError
from ..scoring import scorers_for
from . import distributed
from .metrics import confusion_matrix, first_occurrences, harmonic_mean, mean_std, per_class_accuracy, topk_accuracy

PROTOCOLS = {"ucf101": ucf101_split, "hmdb51": hmdb51_split}


@dataclass(frozen=True)
class EvalConfig:
    """How videos are read and scored in evaluation (the model fixes frames and size; the class list its texts)."""

    batch_size: int = 16  # clips per forward pass (per process)
    backend: str = "auto"  # loader backend: "auto", "dali" or "pyav"
    num_workers: int = 2  # PyAV decoding processes
    views: tuple[int, int] = (1, 1)  # (clips, crops) per video; softmax scores averaged over them (PyAV backend)
    templates: str | None = None  # prompt set for classes without a description (None: the model's own)


def view_scores(scorer, video: torch.Tensor) -> torch.Tensor:
    """Class probabilities [B, C] of one uint8 batch: a single view [B, T, 3, S, S], or the mean over the views of
    [B, V, T, 3, S, S] (each view goes through the model as a batch of B clips)."""
    views = video if video.dim() == 6 else video[:, None]  # [B, V, T, 3, S, S]
    scores = [scorer.probabilities(views[:, v]) for v in range(views.shape[1])]  # V x [B, C]
    return torch.stack(scores, dim=1).mean(dim=1)  # [B, C]


@torch.no_grad()
def evaluate(model, videos, root: str | Path, class_names: Sequence[str], *,
             descriptions: Sequence[str] | None = None, config: EvalConfig = EvalConfig()) -> dict:
    """top-1/top-5, per-class accuracy and the confusion matrix of `model` (a PyTorch model, or an export folder's
    `scoring.ExportScorers`) on `videos` (a list file or entries), from config.views=(clips, crops) per video."""
    scorers = scorers_for(model)
    spec = scorers.spec
    loading = LoaderConfig(frames=spec.frames, size=spec.image_size, backend=config.backend,
                           num_workers=config.num_workers, views=config.views, class_names=class_names)
    loader = build_video_loader(videos, root, loading, split="val", batch_size=config.batch_size,
                                shard=distributed.rank_and_world(),  # under torchrun each rank scores its shard
                                device=scorers.device)
    scores, labels, indices = [], [], []
    with scorers(class_names, descriptions, config.templates) as scorer:
        for batch in loader:
            scores.append(view_scores(scorer, batch["video"]).cpu())
            labels.append(batch["label"].cpu())
            indices.append(batch["index"].cpu())
    shards = distributed.gather_objects((torch.cat(scores), torch.cat(labels), torch.cat(indices),
                                         loader.bad_videos))
    scores, labels, indices = (torch.cat([shard[i] for shard in shards]) for i in range(3))
    bad_videos = [bad for shard in shards for bad in shard[3]]
    keep = first_occurrences(indices)  # shards wrap around: a repeated video counts once
    scores, labels = scores[keep], labels[keep]
    confusion = confusion_matrix(scores.argmax(1), labels, len(class_names))
    per_class = per_class_accuracy(confusion)
    paired = [label for label in labels.tolist() if pair_of(list(class_names), label) is not None]
    return {"videos": len(labels), "views": {"clips": config.views[0], "crops": config.views[1]},
            **topk_accuracy(scores, labels, ks=(1, 5)),
            **({"within_pair_accuracy": within_pair_accuracy(scores, labels, list(class_names))} if paired else {}),
            "per_class": {name: (None if acc != acc else acc) for name, acc in zip(class_names, per_class.tolist())},
            "confusion": confusion.tolist(), "bad_videos": [list(b) for b in bad_videos]}


def evaluate_protocol(model, protocol: str, split_dir: str | Path, root: str | Path, *,
                      descriptions_csv: str | None = None, on_split: Callable[[dict], None] | None = None,
                      config: EvalConfig = EvalConfig()) -> dict:
    """The standard zero-shot protocol: each of the 3 published test splits, then mean +- std of top-1/top-5."""
    if protocol not in PROTOCOLS:
        raise UnsupportedOptionError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    splits = [(split, *PROTOCOLS[protocol](split_dir, root, split, "test")) for split in (1, 2, 3)]
    return evaluate_splits(model, splits, root, descriptions_csv=descriptions_csv, on_split=on_split,
                           protocol=protocol, config=config)


def evaluate_split_lists(model, pairs: Sequence[tuple[str, str]], root: str | Path, *,
                         descriptions_csv: str | None = None, on_split: Callable[[dict], None] | None = None,
                         config: EvalConfig = EvalConfig()) -> dict:
    """Mean +- std over published per-split evaluation lists, each with its own class file (ViFi-CLIP's
    `val{1,2,3}.txt` with one label file, or `ZS_split{s}_K600_eval.txt` with `ZS_split{s}_K600.csv`)."""
    from ..data.lists import read_video_list
    from ..text.class_files import read_class_names

    splits = []
    for number, (list_file, classes_file) in enumerate(pairs, start=1):
        class_names = read_class_names(classes_file)
        splits.append((number, class_names, read_video_list(list_file, root, class_names=class_names)))
    return evaluate_splits(model, splits, root, descriptions_csv=descriptions_csv, on_split=on_split,
                           protocol="split lists", lists=[list(pair) for pair in pairs], config=config)


def evaluate_splits(model, splits: Sequence[tuple[int, Sequence[str], list]], root: str | Path, *,
                    descriptions_csv: str | None, on_split: Callable[[dict], None] | None, protocol: str,
                    lists: list | None = None, config: EvalConfig = EvalConfig()) -> dict:
    """(split number, class names, entries) each scored, then mean +- std of top-1/top-5. Every split's list,
    videos and descriptions are read before the first is scored (a missing one is an error now, not hours later);
    on_split(summary so far) runs after each split but the last."""
    from ..text.class_files import read_class_descriptions

    plans = [(split, names, entries, read_class_descriptions(descriptions_csv, names) if descriptions_csv else None)
             for split, names, entries in splits]
    summary: dict = {"protocol": protocol, **({"lists": lists} if lists else {}), "splits": []}
    for number, (split, class_names, entries, descriptions) in enumerate(plans, start=1):
        result = evaluate(model, entries, root, class_names, descriptions=descriptions, config=config)
        summary["splits"].append({"split": split, **result})
        if on_split and number < len(plans):
            on_split({**summary, "complete": False})
    for metric in ("top1", "top5"):
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean_std([s[metric] for s in summary["splits"]])
    return summary


def save_results(results: dict, out: Path, class_names: Sequence[str] | None = None) -> list[Path]:
    """results JSON, and a confusion-matrix PNG beside it when matplotlib is installed."""
    from ..optional import installed

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    written = [out]
    if class_names and "confusion" in results and installed("matplotlib"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        confusion = torch.tensor(results["confusion"], dtype=torch.float)
        rates = confusion / confusion.sum(1, keepdim=True).clamp_min(1)
        figure, axis = plt.subplots(figsize=(6, 6))
        axis.imshow(rates, cmap="viridis", vmin=0, vmax=1)
        if len(class_names) <= 30:
            axis.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=6)
            axis.set_yticks(range(len(class_names)), class_names, fontsize=6)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"top-1 {results['top1']:.3f} on {results['videos']} videos")
        figure.tight_layout()
        png = out.with_suffix(".png")
        figure.savefig(png, dpi=120)
        plt.close(figure)
        written.append(png)
    return written


def evaluate_subsets(model, list_file: str | Path, root: str | Path, class_names: Sequence[str],
                     subset_files: Sequence[str | Path], *, descriptions: Sequence[str] | None = None,
                     config: EvalConfig = EvalConfig()) -> dict:
    """Class-subset protocol (K600 zero-shot: 3 subsets of 160 of its 220 new classes): the list restricted to
    each subset's classes and relabelled, then mean +- std of top-1/top-5 over the subsets."""
    from ..data.lists import read_video_list, restrict_to_classes
    from ..text.class_files import read_class_names

    entries = read_video_list(list_file, root, class_names=class_names)
    describe = dict(zip(class_names, descriptions)) if descriptions else None
    subsets = []
    for subset_file in subset_files:
        names = read_class_names(subset_file)
        subset = restrict_to_classes(entries, class_names, names, where=str(subset_file))
        result = evaluate(model, subset, root, names, descriptions=[describe[n] for n in names] if describe else None,
                          config=config)
        subsets.append({"subset": str(subset_file), **result})
    summary = {"protocol": "class subsets", "subsets": subsets}
    for metric in ("top1", "top5"):
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean_std([s[metric] for s in subsets])
    return summary


def evaluate_base_to_novel(model, root: str | Path, base: tuple[str, str], novel: tuple[str, str], *,
                           descriptions_csv: str | None = None, config: EvalConfig = EvalConfig()) -> dict:
    """Base-to-novel: top-1 on the base classes' and the novel classes' validation lists ((list, classes) each),
    and their harmonic mean, for one trained model (see base_to_novel_over_seeds for several seeds' models).
    descriptions_csv: the dataset's descriptions, of the base and the novel classes together."""
    from ..text.class_files import read_class_descriptions, read_class_names

    halves = {name: (list_file, read_class_names(classes_file))
              for name, (list_file, classes_file) in (("base", base), ("novel", novel))}
    describe = None
    if descriptions_csv:
        every_class = list(dict.fromkeys(halves["base"][1] + halves["novel"][1]))
        describe = dict(zip(every_class, read_class_descriptions(descriptions_csv, every_class)))
    scores = {}
    for name, (list_file, class_names) in halves.items():
        descriptions = [describe[c] for c in class_names] if describe else None
        scores[name] = evaluate(model, list_file, root, class_names, descriptions=descriptions, config=config)
    return {"protocol": "base-to-novel", "base": scores["base"]["top1"], "novel": scores["novel"]["top1"],
            "hm": harmonic_mean(scores["base"]["top1"], scores["novel"]["top1"]), "details": scores}


def base_to_novel_over_seeds(runs: Sequence[dict]) -> dict:
    """Base-to-novel over seeds (one trained model each, `runs` = their evaluate_base_to_novel results): the runs,
    mean +- std over seeds of base and novel top-1, and `hm` = the harmonic mean of the two means, as ViFi-CLIP and
    CoOp-style tables report it (the mean +- std of the per-seed HMs is given too, as hm_seeds_mean/_std)."""
    summary = {"protocol": "base-to-novel", "seeds": list(runs)}
    for metric in ("base", "novel"):
        summary[metric], summary[f"{metric}_std"] = mean_std([run[metric] for run in runs])
    summary["hm"] = harmonic_mean(summary["base"], summary["novel"])
    summary["hm_rule"] = "harmonic mean of the seed means of base and novel top-1"
    summary["hm_seeds_mean"], summary["hm_seeds_std"] = mean_std([run["hm"] for run in runs])
    return summary
