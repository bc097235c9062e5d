"""Few-shot training lists (docs/design/T2L_SPEC.md §5): K videos per class from a list, deterministically per seed,
optionally restricted to a class subset (base-to-novel: the base classes) and relabelled to the subset's order.

The draw of a class: its videos sorted by path, shuffled by a generator seeded with (seed, label), the first K kept.
So a class's draw depends on neither the list's order nor the other classes, and for one seed the K=2 draw is part
of the K=4 draw, and so on. Labels are those of the written list (the subset's order with a subset).

These are our draws, not the published ones: ViFi-CLIP ships its few-shot lists (`train1_few_shot_K.txt`) and
16-shot base lists (`fs_base_s{1,2,3}_train.txt`); use those to compare with published numbers.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io import check_not_input
from ..numbers import NumberError
from .lists import PathLike, VideoEntry, VideoListError, read_video_list, restrict_to_classes, write_video_list


def _position(entry: VideoEntry):
    return str(entry.path), entry.start or 0.0


def draw_few_shot(entries: Sequence[VideoEntry], shots: int, seed: int, *,
                  class_names: Sequence[str] | None = None, where: str = "the list") -> list[VideoEntry]:
    """`shots` entries of every class (labels 0..C-1, C = len(class_names), else the highest label + 1), in class
    order, each class's videos in path order. A class with fewer videos is an error naming it."""
    if shots < 1:
        raise NumberError(f"shots must be >= 1, got {shots}")
    if seed < 0:
        raise NumberError(f"seed must be >= 0, got {seed}")
    by_label: dict[int, list[VideoEntry]] = defaultdict(list)
    for entry in entries:
        by_label[entry.label].append(entry)
    num_classes = len(class_names) if class_names is not None else max(by_label) + 1
    short = [label for label in range(num_classes) if len(by_label[label]) < shots]
    if short:
        def name(label: int) -> str:
            return f"{class_names[label]!r} (label {label})" if class_names is not None else f"label {label}"

        listing = "; ".join(f"{name(label)} has {len(by_label[label])}" for label in short[:10])
        most = min(len(by_label[label]) for label in short)
        raise VideoListError(
            f"{where}: {len(short)} class(es) have fewer than {shots} videos: {listing}"
            f"{' ...' if len(short) > 10 else ''}. Lower --shots (to at most {most}), add videos of these classes "
            f"to the list, or leave the classes out with --subset-classes")
    chosen = []
    for label in range(num_classes):
        videos = sorted(by_label[label], key=_position)
        order = np.random.default_rng([seed, label]).permutation(len(videos))[:shots]
        chosen += sorted((videos[i] for i in order), key=_position)
    return chosen


def write_few_shot_list(list_file: PathLike, root: PathLike, out: PathLike, *, shots: int, seed: int,
                        classes_file: PathLike | None = None,
                        subset_file: PathLike | None = None) -> list[VideoEntry]:
    """Draw a few-shot list from `list_file` (paths under `root`) and write it to `out` (see write_video_list);
    returns the drawn entries. subset_file: keep only its classes, relabelled in its order (needs classes_file)."""
    from ..text.class_files import read_class_names

    check_not_input(Path(out), [list_file, classes_file, subset_file])
    if subset_file and not classes_file:
        raise VideoListError(f"--subset-classes {subset_file} needs --classes: the class names of {list_file}, to "
                             f"find the subset's classes in it")
    class_names = read_class_names(classes_file) if classes_file else None
    entries = read_video_list(list_file, root, class_names=class_names)
    if subset_file:
        subset = read_class_names(subset_file)
        entries = restrict_to_classes(entries, class_names, subset, where=f"--subset-classes {subset_file}")
        class_names = subset
    chosen = draw_few_shot(entries, shots, seed, class_names=class_names, where=str(list_file))
    write_video_list(chosen, root, Path(out))
    return chosen
