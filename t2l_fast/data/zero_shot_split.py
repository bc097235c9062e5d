"""Zero-shot splits of synthetic actions: classes named like real ones ("a circle moving left"), each with a
one-sentence description (as the paper's GPT descriptions), made of a shape and a motion; held-out classes never
appear in training. Time-reversed twins stay together (a class and its reversal are both seen or both unseen), so
within the unseen classes no frame and no unordered set of frames separates a pair.

Splits:
- compositional: every unseen class's shape and motion were seen in training, never together (a Latin square:
  each shape holds out one motion pair, each motion pair is held out for one shape);
- unseen-motion: vertical motion is never trained on; its words ("top", "bottom") are known to the text tower only
  from captions of single frames (`t2l pretrain-tiny`).

`write_zero_shot_dataset` writes ordinary lists and class files, so `t2l train` / `t2l eval` run on them as on
Kinetics -> UCF101: `classes.txt`, `descriptions.csv`, `train.txt`, `val.txt` (seen classes), and
`unseen_classes.txt`, `unseen_descriptions.csv`, `unseen_test.txt` (unseen classes only).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UnsupportedOptionError
from ..io import claim_folder
from .synthetic import (
    FPS,
    MARKER,
    SHAPES,
    ActionClass,
    SynthConfig,
    check_clip_size,
    write_class_files,
    write_lists,
)

NOUNS = {"circle": "circle", "square": "square", "diamond": "diamond", "pointer": "triangle"}
# (motion, forward name, backward name, forward description, backward description); "{}" is the shape's noun. A
# description says where the motion ends, in the words pre-training captions use for single frames (right, bottom,
# large, solid, ...): the words a tiny text tower can know before any video. Twins differ in that word only.
MOTIONS = (
    ("translate_x", "moving right", "moving left", "a {} moves sideways and ends up on the right",
     "a {} moves sideways and ends up on the left"),
    ("translate_y", "moving down", "moving up", "a {} moves vertically and ends up at the bottom",
     "a {} moves vertically and ends up at the top"),
    ("scale", "growing", "shrinking", "a {} changes size and ends up large", "a {} changes size and ends up small"),
    ("fade", "fading in", "fading out", "a {} changes opacity and ends up solid",
     "a {} changes opacity and ends up faint"),
)
ZERO_SHOT_SPLITS: dict[str, frozenset[tuple[str, str]]] = {  # split -> unseen (shape, motion)
    "compositional": frozenset({("circle", "translate_x"), ("square", "translate_y"), ("diamond", "scale"),
                                ("pointer", "fade")}),
    "unseen-motion": frozenset((shape, "translate_y") for shape in SHAPES),
}


def all_actions() -> list[ActionClass]:
    """Every shape x motion class, twins adjacent (forward, then backward), in a fixed order (ids seed clips)."""
    actions = []
    for shape in SHAPES:
        noun = NOUNS[shape]
        for motion, forward, backward, forward_text, backward_text in MOTIONS:
            actions.append(ActionClass(f"a {noun} {forward}", forward_text.format(noun), motion, False, shape))
            actions.append(ActionClass(f"a {noun} {backward}", backward_text.format(noun), motion, True, shape))
    return actions


def split_classes(name: str) -> tuple[list[tuple[int, ActionClass]], list[tuple[int, ActionClass]]]:
    """(seen, unseen) classes of split `name` as (generator id, action) pairs."""
    if name not in ZERO_SHOT_SPLITS:
        raise UnsupportedOptionError(f"unknown zero-shot split {name!r}; choose from {', '.join(ZERO_SHOT_SPLITS)}")
    unseen = ZERO_SHOT_SPLITS[name]
    numbered = list(enumerate(all_actions(), start=100))  # ids apart from the order-only classes' 0..11
    return ([(i, a) for i, a in numbered if (a.shape, a.motion) not in unseen],
            [(i, a) for i, a in numbered if (a.shape, a.motion) in unseen])


def write_zero_shot_dataset(out_dir: Path, split: str, config: SynthConfig | None = None, jobs: int = 1,
                            force: bool = False) -> dict[str, int]:
    """Write split `split`'s videos, lists and class files (module docstring) and `synth.json` into a new or empty
    folder, or one a synth command wrote (`force`: any folder); returns the number of clips per list.
    config.classes is ignored (the split decides the classes)."""
    config = config or SynthConfig()
    check_clip_size(config)
    seen, unseen = split_classes(split)
    out_dir = Path(out_dir)
    claim_folder(out_dir, MARKER, "a synthetic dataset", option="OUT_DIR", force=force, mark=True)
    lists = write_lists(out_dir, [("train", "train", seen, config.clips_per_class),
                                  ("val", "val", seen, config.eval_clips_per_class),
                                  ("unseen_test", "test", unseen, config.eval_clips_per_class)], config, jobs)
    write_class_files(out_dir, [a for _, a in seen])
    write_class_files(out_dir, [a for _, a in unseen], prefix="unseen_")
    info = {"generator": "t2l-fast synthetic actions, zero-shot split", "version": 1, "split": split,
            **{k: v for k, v in config.__dict__.items() if k != "classes"},
            "seen_classes": [a.name for _, a in seen], "unseen_classes": [a.name for _, a in unseen],
            "fps": FPS, "clips": {name: len(lines) for name, lines in lists.items()}}
    (out_dir / "synth.json").write_text(json.dumps(info, indent=2) + "\n")
    return info["clips"]
