"""Captions of single synthetic frames: what a frame shows (shape, colour, position, size, opacity, heading) in a
small English grammar with synonyms, optional parts and varied word order, so a text tower trained on them must
read words rather than match whole strings. `t2l pretrain-tiny` pairs frames with these captions (CLIP's objective).
"""
from __future__ import annotations

import math
import re

import numpy as np

# Named foreground colours of pre-training frames (RGB 0..255).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 225), "yellow": (235, 215, 40),
    "white": (245, 245, 245), "black": (20, 20, 20), "orange": (240, 135, 30), "purple": (140, 50, 170)}
COLOURS = tuple(PALETTE)
SHAPE_WORDS = {"circle": ("circle", "disc", "round shape"), "square": ("square", "box", "block"),
               "diamond": ("diamond", "rhombus"), "pointer": ("triangle", "arrow", "pointer")}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
OPACITY_WORDS = {"faint": ("faint", "barely visible", "see-through"), "half": ("half-transparent", "pale"),
                 "solid": ("solid", "opaque")}
VERTICAL_WORDS = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}
HEADINGS = ("up", "right", "down", "left")  # a pointer at angle 0 points up; angles turn clockwise on screen


def size_word(size: float) -> str | None:
    """`size` = 4 x radius / frame side (0.28..1.04 in synthetic frames)."""
    return "small" if size < 0.5 else "large" if size > 0.75 else None


def opacity_word(opacity: float) -> str:
    return "faint" if opacity < 0.45 else "half" if opacity < 0.8 else "solid"


def position_words(x: float, y: float) -> tuple[str | None, str | None]:
    """(vertical, horizontal) words of a centre at (x, y) in 0..1 of the frame, None near the middle."""
    vertical = "top" if y < 0.42 else "bottom" if y > 0.58 else None
    horizontal = "left" if x < 0.42 else "right" if x > 0.58 else None
    return vertical, horizontal


def heading_word(angle: float) -> str:
    return HEADINGS[round((angle % (2 * math.pi)) / (math.pi / 2)) % 4]


def _position_phrase(rng: np.random.Generator, vertical: str | None, horizontal: str | None) -> str:
    if vertical is None and horizontal is None:
        return str(rng.choice(["in the centre", "in the middle", "at the centre of the frame"]))
    if vertical is None:
        return str(rng.choice([f"on the {horizontal}", f"at the {horizontal}", f"on the {horizontal} side"]))
    if horizontal is None:
        return str(rng.choice([f"at the {vertical}", f"near the {vertical}", f"at the {vertical} of the frame"]))
    word = str(rng.choice(VERTICAL_WORDS[vertical]))
    return str(rng.choice([f"in the {word} {horizontal} corner", f"at the {word} {horizontal}",
                           f"{word} {horizontal}" if rng.uniform() < 0.3 else f"on the {word} {horizontal}"]))


def caption(rng: np.random.Generator, shape: str, colour: str, x: float, y: float, size: float, opacity: float,
            angle: float) -> str:
    """One random caption of a frame; the shape is always named, each other fact is left out now and then."""
    noun = str(rng.choice(SHAPE_WORDS[shape]))
    size_name = size_word(size)
    adjectives = [str(rng.choice(SIZE_WORDS[size_name]))] if size_name and rng.uniform() < 0.8 else []
    if rng.uniform() < 0.8:
        adjectives.append(colour)
    where = _position_phrase(rng, *position_words(x, y)) if rng.uniform() < 0.85 else None
    opacity_name = opacity_word(opacity)
    extras = []
    if opacity_name != "solid" or rng.uniform() < 0.2:
        extras.append(str(rng.choice(OPACITY_WORDS[opacity_name])))
    if shape == "pointer" and rng.uniform() < 0.8:
        extras.append(f"pointing {heading_word(angle)}")
    words = [*adjectives, noun]
    subject = " ".join(["an" if words[0][0] in "aeiou" else "a", *words])
    form = rng.integers(3)
    if form == 0 or where is None:
        parts = [subject] + ([where] if where else [])
        return ", ".join([" ".join(parts), *extras])
    if form == 1:
        return f"{where}: " + ", ".join([subject, *extras])
    return f"there is {subject} {where}" + "".join(f", {extra}" for extra in extras)


POSITION_WEIGHT = 3.0  # left/right and top/bottom negatives, over size, opacity, heading (1) and shape (0.5 each):
# position is the fact a tiny text tower learns last (cosine 0.996 between "a shape on the left" and "... right")


def _opposites(shape: str, x: float, y: float, size: float, opacity: float, angle: float) -> list[dict]:
    """The facts a caption of this frame can name that have an opposite, each turned to it (as keyword changes of
    `caption`): left <-> right, top <-> bottom, small <-> large, faint <-> solid, a pointer's heading; and another
    shape."""
    vertical, horizontal = position_words(x, y)
    turned = [{"shape": other} for other in SHAPE_WORDS if other != shape]
    if horizontal:
        turned.append({"x": 1 - x})
    if vertical:
        turned.append({"y": 1 - y})
    if size_word(size):
        turned.append({"size": 0.9 if size_word(size) == "small" else 0.35})
    if opacity_word(opacity) != "half":
        turned.append({"opacity": 0.95 if opacity_word(opacity) == "faint" else 0.2})
    if shape == "pointer":
        turned.append({"angle": angle + math.pi})
    return turned


def caption_with_negative(rng: np.random.Generator, shape: str, colour: str, x: float, y: float, size: float,
                          opacity: float, angle: float) -> tuple[str, str]:
    """(a caption of the frame, a hard negative): the same words with one fact turned to its opposite (left for
    right, faint for solid, ...), as NegCLIP's hard negatives; contrasting the two teaches the text tower that those
    words matter. Facts are weighted (POSITION_WEIGHT) so that opposites, what time-reversed actions differ in, come
    up more often than another shape. The twin is drawn with a copy of the caption's random state, so it mostly keeps
    its words and order; where it leaves the turned fact out it may still be true of the frame, and the negative is
    then the caption itself (unusable)."""
    facts = {"shape": shape, "colour": colour, "x": x, "y": y, "size": size, "opacity": opacity, "angle": angle}
    turned = _opposites(shape, x, y, size, opacity, angle)
    weights = np.array([POSITION_WEIGHT if {"x", "y"} & change.keys() else 0.5 if "shape" in change else 1.0
                        for change in turned])
    change = turned[int(rng.choice(len(turned), p=weights / weights.sum()))]
    twin = _replica(rng)  # the same draws, as far as the turned fact allows
    positive, negative = caption(rng, **facts), caption(twin, **{**facts, **change})
    return positive, negative if _says(negative, _words_of(change)) else positive


def _replica(rng: np.random.Generator) -> np.random.Generator:
    """A generator that draws what `rng` draws next (its state copied: 3x faster than a deepcopy)."""
    twin = np.random.Generator(type(rng.bit_generator)(0))
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def _words_of(change: dict) -> tuple[str, ...]:
    """The words a caption uses for one turned fact (one of `_opposites`' changes)."""
    (fact, value), = change.items()
    if fact == "shape":
        return SHAPE_WORDS[value]
    if fact == "x":
        return (position_words(value, 0.5)[1],)
    if fact == "y":
        return VERTICAL_WORDS[position_words(0.5, value)[0]]
    if fact == "size":
        return SIZE_WORDS[size_word(value)]
    if fact == "opacity":
        return OPACITY_WORDS[opacity_word(value)]
    return (f"pointing {heading_word(value)}",)


def _says(text: str, phrases: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(phrase)}\b", text) for phrase in phrases)


def named_sides(text: str, x: float, y: float) -> tuple[int, int]:
    """Which side of the frame a caption of a frame centred at (x, y) places it on, per axis: (1 right / 0 left,
    1 bottom / 0 top), -1 where the caption does not say (a pointer's heading is not a side)."""
    words = text.replace(",", " ").replace(":", " ").split()
    vertical, horizontal = position_words(x, y)
    said = []
    for side, named, synonyms in ((horizontal, "right", (horizontal,)),
                                  (vertical, "bottom", VERTICAL_WORDS.get(vertical, ()))):
        places = [i for i, word in enumerate(words) if word in synonyms and (i == 0 or words[i - 1] != "pointing")]
        said.append(int(side == named) if side and places else -1)
    return tuple(said)
