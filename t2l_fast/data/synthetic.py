"""A synthetic action dataset that only temporal order can solve, and frame-stamped clips for exact-index checks.

Classes come in time-reversed pairs ("moving right" / "moving left", "growing" / "shrinking", ...). A clip of the
second class of a pair is a clip of the first class played backwards, and every random choice (shape, colours,
texture, size, path end-points, hold times at both ends, speed) is drawn symmetrically, so a clip and its reversal
are equally likely: no single frame and no unordered set of frames tells the two classes apart.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnsupportedOptionError
from ..io import claim_folder
from ..numbers import NumberError

# (forward class, backward class, motion, forward description, backward description)
PAIRS: tuple[tuple[str, str, str, str, str], ...] = (
    ("moving right", "moving left", "translate_x",
     "a shape travels across the frame from left to right", "a shape travels across the frame from right to left"),
    ("moving down", "moving up", "translate_y",
     "a shape travels down the frame from top to bottom", "a shape travels up the frame from bottom to top"),
    ("moving diagonally down right", "moving diagonally up left", "translate_diagonal",
     "a shape travels diagonally from the top left towards the bottom right",
     "a shape travels diagonally from the bottom right towards the top left"),
    ("growing", "shrinking", "scale",
     "a shape grows larger and larger in place", "a shape shrinks smaller and smaller in place"),
    ("rotating clockwise", "rotating anticlockwise", "rotate",
     "a pointed shape turns clockwise around its centre", "a pointed shape turns anticlockwise around its centre"),
    ("fading in", "fading out", "fade",
     "a faint shape becomes solid and clearly visible", "a solid shape becomes faint and disappears"),
)
CLASS_NAMES: tuple[str, ...] = tuple(name for pair in PAIRS for name in pair[:2])
DESCRIPTIONS: dict[str, str] = {p[0]: p[3] for p in PAIRS} | {p[1]: p[4] for p in PAIRS}
SHAPES = ("circle", "square", "diamond", "pointer")
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # each split draws from its own stream: held-out clips are new
CODECS = {"h264": ("libx264", "mp4", "yuv420p"), "vp9": ("libvpx-vp9", "webm", "yuv420p"),
          "mjpeg": ("mjpeg", "avi", "yuvj420p")}
FPS = 25
MARKER = ".t2l-synth"  # left in a folder `t2l data synth` wrote, which it may write again


def twin(label: int) -> int:
    """The label of the time-reversed twin class."""
    return label ^ 1


# ------------------------------------------------------------------------------------------------- rendering
def _shape_distance(kind: str, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Signed distance in pixels (negative inside) of a shape of half-size `radius` centred at the origin."""
    if kind == "circle":
        return np.hypot(x, y) - radius
    if kind == "square":
        qx, qy = np.abs(x) - radius * 0.8, np.abs(y) - radius * 0.8
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    if kind == "diamond":
        return (np.abs(x) + np.abs(y) - radius) / math.sqrt(2)
    # "pointer": an isosceles triangle pointing up (-y): only a full turn maps it onto itself
    tip, base_y, half_base = -radius, 0.7 * radius, 0.55 * radius
    edges = []
    for (x0, y0), (x1, y1) in (((0, tip), (half_base, base_y)), ((half_base, base_y), (-half_base, base_y)),
                               ((-half_base, base_y), (0, tip))):
        nx, ny = (y1 - y0), -(x1 - x0)  # outward normal of a clockwise polygon in image coordinates
        norm = np.hypot(nx, ny)
        edges.append(((x - x0) * nx + (y - y0) * ny) / norm)
    return np.max(np.stack(edges), axis=0)


@dataclass
class ClipParams:
    """Every random choice of one forward-motion clip."""

    shape: str
    foreground: np.ndarray  # [3] 0..255
    background: np.ndarray  # [3] 0..255
    texture: np.ndarray  # [H, W, 3] static background noise
    centre: np.ndarray  # [2, 2] (x, y) at the start and at the end of the motion, pixels
    radius: np.ndarray  # [2] half-size at start and end, pixels
    angle: np.ndarray  # [2] orientation at start and end, radians (clockwise on screen)
    opacity: np.ndarray  # [2] at start and end
    hold: np.ndarray  # [2] frames held still before and after the motion


def draw_clip_params(rng: np.random.Generator, motion: str, frames: int, height: int, width: int,
                     shape: str | None = None) -> ClipParams:
    """Random parameters of a forward clip of `motion` (of `shape`, else a random one); every draw is symmetric
    under time reversal."""
    side = min(height, width)
    drawn = "pointer" if motion == "rotate" else SHAPES[rng.integers(len(SHAPES))]
    shape = shape or drawn
    background = rng.uniform(0, 255, 3)
    foreground = rng.uniform(0, 255, 3)
    while np.abs(foreground - background).sum() < 150:  # keep the shape visible
        foreground = rng.uniform(0, 255, 3)
    texture = rng.normal(0, 6, (height, width, 3))
    radius = np.full(2, rng.uniform(0.12, 0.2) * side)
    margin = 0.12 * side  # keep shapes inside the central crop of evaluation
    centre = np.tile(np.array([rng.uniform(margin + radius[0], width - margin - radius[0]),
                               rng.uniform(margin + radius[0], height - margin - radius[0])]), (2, 1))
    angle = np.full(2, rng.uniform(0, 2 * math.pi))
    opacity = np.ones(2)
    if motion.startswith("translate"):
        axes = {"translate_x": [0], "translate_y": [1], "translate_diagonal": [0, 1]}[motion]
        for axis in axes:
            extent = (width, height)[axis]
            low, high = margin + radius[0], extent - margin - radius[0]
            span = rng.uniform(0.45, 1.0) * (high - low)  # speed: distance covered in the clip
            start = rng.uniform(low, high - span)
            centre[:, axis] = (start, start + span)
    elif motion == "scale":
        small = rng.uniform(0.07, 0.11) * side
        radius = np.array([small, small * rng.uniform(1.8, 2.6)])
    elif motion == "rotate":
        angle = angle[0] + np.array([0.0, rng.uniform(math.radians(70), math.radians(150))])
    elif motion == "fade":
        opacity = np.array([rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)])
    else:
        raise UnsupportedOptionError(f"unknown motion {motion!r}")
    hold = rng.integers(0, max(1, frames // 5), size=2)  # still frames at each end, drawn independently
    return ClipParams(shape, foreground, background, texture, centre, radius, angle, opacity, hold)


def render_clip(params: ClipParams, frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] of the forward motion."""
    t = np.arange(frames, dtype=np.float64)
    first, last = params.hold[0], frames - 1 - params.hold[1]
    progress = np.clip((t - first) / max(last - first, 1), 0, 1)[:, None, None]  # [T, 1, 1]

    def at(pair):
        return pair[0] + (pair[1] - pair[0]) * progress

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx, dy = xs[None] - at(params.centre[:, 0]), ys[None] - at(params.centre[:, 1])  # [T, H, W]
    angle = at(params.angle)
    cos, sin = np.cos(angle), np.sin(angle)
    local_x, local_y = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the plane back by the shape's angle
    distance = _shape_distance(params.shape, local_x, local_y, at(params.radius))
    alpha = (np.clip(0.5 - distance, 0, 1) * at(params.opacity))[..., None]  # [T, H, W, 1], anti-aliased edge
    background = params.background + params.texture  # [H, W, 3]
    frames_rgb = background * (1 - alpha) + params.foreground * alpha
    return np.clip(np.rint(frames_rgb), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ActionClass:
    """One synthetic action: a motion played forward or backward, by one shape or (shape None) a random one."""

    name: str
    description: str
    motion: str
    backward: bool
    shape: str | None = None


ORDER_CLASSES = tuple(ActionClass(pair[i], pair[3 + i], pair[2], bool(i)) for pair in PAIRS for i in (0, 1))


def action_clip(rng: np.random.Generator, action: ActionClass, frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] of `action`: the forward motion, reversed in time for a backward class."""
    params = draw_clip_params(rng, action.motion, frames, height, width, action.shape)
    clip = render_clip(params, frames, height, width)
    return clip[::-1].copy() if action.backward else clip


def synthetic_clip(rng: np.random.Generator, label: int, frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] of class `label` (an index into CLASS_NAMES)."""
    return action_clip(rng, ORDER_CLASSES[label], frames, height, width)


# ------------------------------------------------------------------------------------------------- frame stamps
def stamp_colour(index: int) -> tuple[int, int, int]:
    """The uniform colour of frame `index` of a frame-stamped clip (indices 0..1023)."""
    return 8 * (index % 32) + 4, 8 * (index // 32 % 32) + 4, 128


def read_stamp(frame: np.ndarray) -> int:
    """The index a frame-stamped frame ([H, W, 3] or [3, H, W] uint8) carries, from its median colour."""
    frame = np.asarray(frame)
    channels_first = frame.shape[0] == 3 and frame.shape[-1] != 3
    red, green = (np.median(frame[c] if channels_first else frame[..., c]) for c in (0, 1))
    return int(round((red - 4) / 8)) + 32 * int(round((green - 4) / 8))


def frame_stamped_clip(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] whose frame i is the uniform colour stamp_colour(i)."""
    if frames > 1024:
        raise NumberError(f"frame stamps encode at most 1024 frames, asked for {frames}")
    clip = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        clip[i] = stamp_colour(i)
    return clip


# ------------------------------------------------------------------------------------------------- encoding
def write_video(path: Path, clip: np.ndarray, codec: str = "h264", fps: int = FPS, b_frames: int = 0) -> None:
    """Encode uint8 [T, H, W, 3] RGB to `path` with PyAV (deterministic: one encoder thread, fixed quality);
    b_frames: consecutive B-frames allowed (H.264), as camera and web encodes use."""
    import av

    if codec not in CODECS:
        raise UnsupportedOptionError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    name, _, pixel_format = CODECS[codec]
    options = {"h264": {"crf": "12", "preset": "fast", "bf": str(b_frames)},
               "vp9": {"crf": "12", "b": "0", "deadline": "good", "cpu-used": "4"},
               "mjpeg": {"q:v": "2"}}[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(name, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], pixel_format
        stream.thread_count = 1
        if codec == "mjpeg":
            stream.codec_context.qmin = stream.codec_context.qmax = 2
        for frame in clip:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


# ------------------------------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class SynthConfig:
    classes: tuple[str, ...] = CLASS_NAMES  # any subset of CLASS_NAMES, kept in CLASS_NAMES order
    clips_per_class: int = 20  # training clips per class
    eval_clips_per_class: int = 8  # val and test clips per class
    frames: int = 24  # frames per clip (a multiple of 8 with an odd quotient keeps centre sampling symmetric)
    width: int = 64
    height: int = 64
    codec: str = "h264"
    seed: int = 0


def check_clip_size(config: SynthConfig) -> None:
    if config.width % 2 or config.height % 2 or min(config.width, config.height) < 16:
        raise UnsupportedOptionError(f"frame size {config.width}x{config.height}: both sides must be even and >= 16")
    if config.frames < 2:
        raise NumberError(f"frames must be >= 2, got {config.frames}")


@dataclass(frozen=True)
class ClipJob:
    """One video to write: the generator's seeds (dataset seed, split seed, class id, clip number) and its class."""

    seeds: tuple[int, int, int, int]
    action: ActionClass
    path: str


def _write_clip(job: tuple[ClipJob, SynthConfig]) -> None:
    clip_job, config = job
    clip = action_clip(np.random.default_rng(list(clip_job.seeds)), clip_job.action, config.frames, config.height,
                       config.width)
    write_video(Path(clip_job.path), clip, config.codec)


def split_jobs(out_dir: Path, split: str, classes: Sequence[tuple[int, ActionClass]], count: int,
               config: SynthConfig) -> tuple[list[str], list[ClipJob]]:
    """List lines ("videos/SPLIT/CLASS/N.ext label", labels in `classes` order) and the jobs that write them;
    classes: (generator id, action) pairs: the id seeds the clips, so a class draws the same clips in any list."""
    extension = CODECS[config.codec][1]
    lines, jobs = [], []
    for label, (class_id, action) in enumerate(classes):
        for number in range(count):
            relative = f"videos/{split}/{action.name.replace(' ', '_')}/{number:05d}.{extension}"
            lines.append(f"{relative} {label}")
            jobs.append(ClipJob((config.seed, SPLIT_SEEDS[split], class_id, number), action, str(out_dir / relative)))
    return lines, jobs


def write_clips(jobs: Sequence[ClipJob], config: SynthConfig, processes: int = 1) -> None:
    """Render and encode every job's clip, in `processes` worker processes (they only run numpy and PyAV)."""
    work = [(job, config) for job in jobs]
    if processes > 1:
        from multiprocessing import Pool

        with Pool(processes) as pool:
            for _ in pool.imap_unordered(_write_clip, work, chunksize=16):
                pass
    else:
        for item in work:
            _write_clip(item)


def write_lists(out_dir: Path, plan: Sequence[tuple[str, str, Sequence[tuple[int, ActionClass]], int]],
                config: SynthConfig, processes: int = 1) -> dict[str, list[str]]:
    """Write every clip and list file of `plan`: (list name, split, (generator id, action) classes, clips per
    class) rows; returns each list's lines."""
    lists, work = {}, []
    for list_name, split, classes, count in plan:
        lists[list_name], split_work = split_jobs(out_dir, split, classes, count, config)
        work += split_work
    write_clips(work, config, processes)
    for list_name, lines in lists.items():
        (out_dir / f"{list_name}.txt").write_text("\n".join(lines) + "\n")
    return lists


def write_class_files(out_dir: Path, actions: Sequence[ActionClass], prefix: str = "") -> None:
    """`{prefix}classes.txt` (one name a line) and `{prefix}descriptions.csv` (name, description)."""
    (out_dir / f"{prefix}classes.txt").write_text("\n".join(a.name for a in actions) + "\n")
    with open(out_dir / f"{prefix}descriptions.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["class name", "description"])
        writer.writerows([a.name, a.description] for a in actions)


def write_synthetic_dataset(out_dir: Path, config: SynthConfig = SynthConfig(), jobs: int = 1,
                            force: bool = False) -> dict[str, int]:
    """Write videos, `train.txt`/`val.txt`/`test.txt`, `classes.txt`, `descriptions.csv`, `synth.json` into a new
    or empty folder, or one this function wrote (`force`: any folder). Returns the number of clips per split."""
    unknown = [c for c in config.classes if c not in CLASS_NAMES]
    if unknown:
        raise UnsupportedOptionError(f"unknown synthetic classes {unknown}; choose from {list(CLASS_NAMES)}")
    check_clip_size(config)
    classes = [(label, action) for label, action in enumerate(ORDER_CLASSES) if action.name in config.classes]
    out_dir = Path(out_dir)
    claim_folder(out_dir, MARKER, "a synthetic dataset", option="OUT_DIR", force=force, mark=True)
    lists = write_lists(out_dir, [(split, split, classes, config.clips_per_class if split == "train" else
                                   config.eval_clips_per_class) for split in SPLIT_SEEDS], config, jobs)
    write_class_files(out_dir, [action for _, action in classes])
    names = [action.name for _, action in classes]
    info = {"generator": "t2l-fast synthetic order-only actions", "version": 1, **config.__dict__,
            "classes": names, "pairs": [[a, b] for a, b, *_ in PAIRS if a in names and b in names],
            "fps": FPS, "clips": {split: len(lines) for split, lines in lists.items()}}
    (out_dir / "synth.json").write_text(json.dumps(info, indent=2) + "\n")
    return info["clips"]


def twin_order_problem(classes: Sequence[str]) -> str | None:
    """Why `classes` do not list time-reversed twins as labels 2k, 2k + 1 (a name whose twin is listed elsewhere),
    or None; names without a known twin are not judged."""
    for label in range(len(classes)):
        partner = pair_of(classes, label)
        if partner is not None and partner != twin(label):
            placed = repr(classes[twin(label)]) if twin(label) < len(classes) else "nothing"
            return (f"class {label} {classes[label]!r} would be paired with {placed}, but its twin is class {partner} "
                    f"{classes[partner]!r}")
    return None


def pair_of(classes: Sequence[str], label: int) -> int | None:
    """The label (in `classes`) of the time-reversed twin of `classes[label]`, or None if it is absent. A name is
    a motion ("moving left") or ends with one ("a circle moving left"); the twin swaps it ("... moving right")."""
    name = classes[label]
    for forward, backward, *_ in PAIRS:
        for this, other in ((forward, backward), (backward, forward)):
            if name == this or name.endswith(" " + this):
                partner = name[:len(name) - len(this)] + other
                return classes.index(partner) if partner in classes else None
    return None
