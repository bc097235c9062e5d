"""Preflight: probe every listed video once, in worker processes with a time limit, before any training.

Each video is opened and decoded from its first to its last frame (so the frame count is the true, decoded one,
whatever the container claims). Verdict "ok" or "bad" with a reason; "ok" videos may carry notes on what GPU
decoding dislikes (pixel format, odd size, variable frame rate, long GOP, rotation) for `t2l data transcode`.
Outputs: a JSON report naming every listed file, a manifest of frame counts the loaders reuse, and a clean list.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputFileError
from ..progress import progress_bar
from .decode import MAX_PIXELS, DecodeTimeout, VideoDecodeError, open_video, run_with_timeout
from .lists import VideoEntry, read_list_text

MANIFEST_FORMAT = "t2l-fast-manifest"
GPU_PIXEL_FORMATS = ("yuv420p", "yuvj420p", "nv12")
NVDEC_MIN_SIDE = 48  # NVDEC refuses smaller frames ("Video is too small")


@dataclass(frozen=True)
class ProbeLimits:
    max_pixels: int = MAX_PIXELS  # width x height
    max_frames: int = 100_000  # decoded frames (about an hour at 30 fps)
    max_bytes: int = 4 << 30  # file size
    long_gop: int = 60  # frames between keyframes above which random access is slow


def probe_video(path: Path, limits: ProbeLimits = ProbeLimits()) -> dict:
    """What the video is and whether it decodes: {"verdict": "ok"|"bad", "reason", "num_frames", ...}."""
    import av

    result: dict = {"verdict": "bad", "reason": None, "notes": []}
    try:
        size = path.stat().st_size
    except OSError as e:
        return {**result, "reason": f"cannot read the file ({e.strerror})"}
    result["bytes"] = size
    if not path.is_file():
        return {**result, "reason": "not a regular file"}
    if size == 0:
        return {**result, "reason": "empty file (0 bytes)"}
    if size > limits.max_bytes:
        return {**result, "reason": f"{size:,} bytes exceed the {limits.max_bytes:,}-byte limit"}
    try:
        container, stream = open_video(path)
    except VideoDecodeError as e:
        return {**result, "reason": str(e).split(": ", 1)[-1]}
    context = stream.codec_context
    result.update(codec=context.name, pixel_format=context.pix_fmt, width=context.width, height=context.height,
                  container=container.format.name)
    if context.width * context.height > limits.max_pixels:
        container.close()
        return {**result, "reason": f"{context.width}x{context.height} frames exceed {limits.max_pixels:,} pixels"}
    times, keyframes, rotation, count = [], [], 0, 0
    try:
        with container:
            for frame in container.decode(stream):
                if count >= limits.max_frames:
                    return {**result, "reason": f"more than {limits.max_frames:,} frames; cut the video"}
                if frame.key_frame:
                    keyframes.append(count)
                if frame.time is not None:
                    times.append(frame.time)
                rotation = frame.rotation
                count += 1
    except av.error.FFmpegError as e:
        if count == 0:
            return {**result, "reason": f"no frame decodes ({e})"}
        result["notes"].append(f"decoding stops after frame {count} ({e}); only those {count} frames are used")
    if count == 0:
        return {**result, "reason": "no video frames"}
    result.update(verdict="ok", num_frames=count, rotation=int(round(rotation)) % 360)
    result["fps"] = round((count - 1) / (times[-1] - times[0]), 3) if len(times) > 1 and times[-1] > times[0] else None
    result["notes"] += _gpu_notes(result, times, keyframes, rotation, limits)
    return result


def _gpu_notes(info: dict, times: list[float], keyframes: list[int], rotation: float,
               limits: ProbeLimits) -> list[str]:
    """What makes this (decodable) video a poor fit for GPU decoding; `t2l data transcode` fixes each."""
    notes = []
    if info["pixel_format"] not in GPU_PIXEL_FORMATS:
        notes.append(f"pixel format {info['pixel_format']}: NVDEC decodes 8-bit 4:2:0 only")
    if info["width"] % 2 or info["height"] % 2:
        notes.append(f"odd size {info['width']}x{info['height']}")
    if min(info["width"], info["height"]) < NVDEC_MIN_SIDE:
        notes.append(f"smaller than {NVDEC_MIN_SIDE} px: too small for NVDEC")
    steps = [b - a for a, b in zip(times, times[1:])]
    if steps and max(steps) - min(steps) > 0.25 * (sum(steps) / len(steps)):
        notes.append("variable frame rate")
    gaps = [b - a for a, b in zip(keyframes, keyframes[1:] + [info["num_frames"]])]
    if gaps and max(gaps) > limits.long_gop:
        notes.append(f"long GOP ({max(gaps)} frames between keyframes): slow random access")
    if int(round(rotation)) % 360:
        notes.append(f"display rotation {rotation:g} degrees (PyAV applies it, GPU decoders do not)")
    if info["codec"] not in ("h264", "hevc", "vp8", "vp9", "av1", "mjpeg"):
        notes.append(f"codec {info['codec']}: not decoded by DALI; transcode to H.264")
    return notes


def _guarded_probe(args) -> dict:
    """One pool task: `probe(path, limits)` given up after `timeout` seconds (see run_with_timeout)."""
    probe, path, limits, timeout = args
    try:
        return run_with_timeout(lambda: probe(Path(path), limits), timeout, path)
    except DecodeTimeout:
        return _unanswered(timeout)


def _unanswered(timeout: float) -> dict:
    return {"verdict": "bad", "notes": [], "reason": f"no answer within {timeout:g} s (decoder hang or crash)"}


POOL_START_SECONDS = 30.0  # workers that have not run a trivial task by then (importing torch and PyAV) never will


def _ready() -> bool:
    return True


def _pool_runs(pool, jobs: int) -> bool:
    """Whether `pool`'s workers run a trivial task: not when they die at start-up again and again (the pool
    replaces each: where spawned workers cannot re-import the main script, as with `python - <<EOF`), nor when
    none has answered within POOL_START_SECONDS."""
    handle, seen = pool.apply_async(_ready), set()
    deadline = time.monotonic() + POOL_START_SECONDS
    while time.monotonic() < deadline:
        try:
            return handle.get(timeout=0.2)
        except multiprocessing.TimeoutError:
            seen.update(child.pid for child in multiprocessing.active_children())
            if len(seen) > 3 * jobs:  # replaced workers: they die before their first task
                return False
    return False


def _probe_here(paths: list[Path], task: Callable[[Path], tuple], progress: Callable[[], None] | None) -> dict:
    """Probes in this process (still each bounded by its timeout), for where worker processes cannot start."""
    warnings.warn(f"probing {len(paths)} video(s) in this process, one at a time: worker processes could not "
                  f"start (spawned workers re-import the main script, which a script read from stdin is not)",
                  stacklevel=3)
    results = {}
    for path in paths:
        results[path] = _guarded_probe(task(path))
        if progress:
            progress()
    return results


def probe_all(paths: Sequence[Path], *, jobs: int = 2, timeout: float = 60.0,
              limits: ProbeLimits = ProbeLimits(), probe: Callable = probe_video,
              progress: Callable[[], None] | None = None) -> dict[Path, dict]:
    """probe_video over `paths` in `jobs` processes, each file given up after `timeout` seconds. A worker that
    dies or stops answering (a native crash or a hang that holds the interpreter) costs its file a "bad"
    verdict and the pool is restarted for the rest; where workers cannot start at all, the files are probed in
    this process (with a warning). `probe` (picklable) replaces probe_video, e.g. in tests."""
    results: dict[Path, dict] = {}
    remaining = list(dict.fromkeys(paths))
    started = False

    def task(path: Path) -> tuple:  # one probe's arguments
        return probe, str(path), limits, timeout

    while remaining:
        pool = multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=100)
        try:
            if not started and not _pool_runs(pool, jobs):
                return _probe_here(remaining, task, progress)
            started = True
            handles = {p: pool.apply_async(_guarded_probe, (task(p),)) for p in remaining}
            for path, handle in handles.items():
                try:
                    results[path] = handle.get(timeout=2 * timeout + 60)  # generous: the worker times itself
                    if progress:
                        progress()
                except multiprocessing.TimeoutError:
                    results[path] = _unanswered(timeout)
                    break
            results.update({p: h.get() for p, h in handles.items() if p not in results and h.ready()})
            remaining = [p for p in remaining if p not in results]
        finally:
            pool.terminate()
            pool.join()
    return results


def report_paths(out: Path) -> dict[str, Path]:
    """The files check_list writes for report `out`: the report, its manifest and clean list beside it."""
    out = Path(out)
    stem = out.name[: -len(".json")] if out.name.endswith(".json") else out.name
    return {"report": out, "manifest": out.with_name(f"{stem}.manifest.json"),
            "clean_list": out.with_name(f"{stem}.clean.txt")}


def check_list(entries: Sequence[VideoEntry], root: Path, list_lines: dict[int, str], out: Path, *,
               jobs: int = 2, timeout: float = 60.0, limits: ProbeLimits = ProbeLimits()) -> dict:
    """Probe `entries`, write `out` (report), its manifest and clean list beside it; return the summary."""
    started = time.time()
    results = probe_all([e.path for e in entries], jobs=jobs, timeout=timeout, limits=limits)
    root = Path(root).resolve()
    videos, manifest, clean = [], {}, []
    for entry in entries:
        result = results[entry.path]
        relative = str(entry.path.relative_to(root))
        videos.append({"path": relative, "label": entry.label, "where": entry.source, **result})
        if result["verdict"] == "ok":
            manifest[relative] = _manifest_entry(result)
            clean.append(list_lines[int(entry.source.rsplit(":", 1)[1])])
    bad = [v for v in videos if v["verdict"] == "bad"]
    summary = {"videos": len(videos), "ok": len(videos) - len(bad), "bad": len(bad),
               "with_gpu_notes": sum(bool(v["notes"]) for v in videos if v["verdict"] == "ok"),
               "seconds": round(time.time() - started, 1)}
    out, paths = Path(out), report_paths(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"root": str(root), "limits": asdict(limits), "summary": summary,
                               "videos": videos}, indent=2) + "\n")
    bad_reasons = {v["path"]: v["reason"] for v in bad}
    _write_manifest(paths["manifest"], root, manifest, bad_reasons, {})
    paths["clean_list"].write_text("".join(line + "\n" for line in clean))
    return {"summary": summary, "paths": paths, "videos": videos}


def read_manifest(path: Path, root: Path) -> dict[Path, int]:
    """Absolute video path -> decoded frame count, from a manifest written by check_list."""
    data = _manifest_document(Path(path))
    base = Path(root).resolve()
    return {base / relative: info["num_frames"] for relative, info in data["videos"].items()}


def _manifest_document(path: Path) -> dict:
    """The JSON of a manifest written by check_list, or an InputFileError naming the file."""
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not a t2l-fast manifest (corrupt JSON: {e}); write it again with `t2l data "
                             f"check`, or delete it") from None
    found = document.get("format") if isinstance(document, dict) else type(document).__name__
    if found != MANIFEST_FORMAT or not isinstance(document.get("videos", {}), dict):
        raise InputFileError(f"{path}: not a t2l-fast manifest (format {found!r}); write it again with `t2l data "
                             f"check`, or delete it")
    return document


def _manifest_entry(result: dict) -> dict:
    return {k: result.get(k) for k in ("num_frames", "width", "height", "codec", "pixel_format", "fps", "bytes",
                                       "rotation")}


def _write_manifest(path: Path, root: Path, videos: dict, bad: dict, windows: dict) -> None:
    document = {"format": MANIFEST_FORMAT, "root": str(root), "videos": videos, "bad": bad, "windows": windows}
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # ranks writing at once never share one
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)


def default_manifest(list_file: Path) -> Path:
    """Where `t2l data check LIST` writes its manifest, and where the DALI loader caches one: STEM.check.manifest.json
    beside the list."""
    return Path(list_file).with_name(f"{Path(list_file).stem}.check.manifest.json")


EntryKey = tuple[Path, float | None, float | None]


def entry_key(entry: VideoEntry) -> EntryKey:
    return entry.path, entry.start, entry.end


def video_facts(entries: Sequence[VideoEntry], root: Path, *, manifest: Path | None = None,
                list_file: Path | None = None, jobs: int = 2, timeout: float = 60.0) -> dict[EntryKey, dict]:
    """Per entry_key: {"num_frames", "width", "height", "codec", "rotation", "first_frame"} for usable videos
    (first_frame: where a trimmed entry's window starts among all frames; 0 otherwise), {"bad": reason} for the
    others.

    Read from `manifest`, else from default_manifest(list_file); videos it lacks (or whose size changed) are probed
    now, with a progress bar, and, without an explicit manifest, the updated one is written beside the list."""
    root = Path(root).resolve()
    cache = Path(manifest) if manifest else default_manifest(list_file) if list_file else None
    document = _manifest_document(cache) if cache and cache.is_file() else {}
    videos, bad, windows = (dict(document.get(k, {})) for k in ("videos", "bad", "windows"))

    def relative(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    def stale(path: Path) -> bool:
        known = videos.get(relative(path))
        if known is None:  # unknown, or bad for a reason that may pass (a decoder hang)
            return relative(path) not in bad or bad[relative(path)].startswith("no answer within")
        if "rotation" not in known or "pixel_format" not in known:  # a manifest from before they were recorded
            return True
        return known.get("bytes") is not None and path.is_file() and path.stat().st_size != known["bytes"]

    unknown = list(dict.fromkeys(e.path for e in entries if stale(e.path)))
    if unknown:
        _probe_into(unknown, relative, videos, bad, windows, jobs, timeout)
    trimmed = [e for e in entries if (e.start is not None or e.end is not None) and relative(e.path) in videos
               and f"{relative(e.path)}|{e.start}|{e.end}" not in windows]
    _count_windows(trimmed, relative, windows, timeout)
    if (unknown or trimmed) and cache and not manifest:
        try:
            _write_manifest(cache, root, videos, bad, windows)
        except OSError as e:
            warnings.warn(f"{cache}: cannot cache the manifest there ({e.strerror}); the videos will be probed "
                          f"again next time (write one with `t2l data check` and pass manifest=)", stacklevel=3)
    facts: dict[EntryKey, dict] = {}
    for entry in entries:
        name = relative(entry.path)
        if name not in videos:
            facts[entry_key(entry)] = {"bad": bad.get(name, "not in the manifest")}
            continue
        facts[entry_key(entry)] = {**videos[name], "first_frame": 0}
        if entry.start is not None or entry.end is not None:
            facts[entry_key(entry)].update(windows[f"{name}|{entry.start}|{entry.end}"])
    return facts


def _probe_into(paths: list[Path], relative: Callable[[Path], str], videos: dict, bad: dict, windows: dict,
                jobs: int, timeout: float) -> None:
    """Probe `paths` (a progress bar) and record each in `videos` or `bad`; a changed video's windows are dropped."""
    with progress_bar(total=len(paths), desc="probing videos (manifest)", unit="video", leave=False) as bar:
        probed = probe_all(paths, jobs=jobs, timeout=timeout, progress=bar.update)
    for path, result in probed.items():
        videos.pop(relative(path), None)
        bad.pop(relative(path), None)
        for key in [k for k in windows if k.startswith(f"{relative(path)}|")]:
            del windows[key]  # the video changed: its trimmed windows are counted again
        if result["verdict"] == "ok":
            videos[relative(path)] = _manifest_entry(result)
        else:
            bad[relative(path)] = result["reason"]


def _count_windows(trimmed: list[VideoEntry], relative: Callable[[Path], str], windows: dict, timeout: float) -> None:
    """Record where each trimmed entry's window starts and how many frames it holds (or why it cannot be read)."""
    from .decode import window_frames

    for entry in progress_bar(trimmed, desc="counting trimmed windows", unit="entry", leave=False,
                              disable=not trimmed):
        key = f"{relative(entry.path)}|{entry.start}|{entry.end}"
        try:
            first, count = run_with_timeout(lambda entry=entry: window_frames(entry.path, entry.start, entry.end),
                                            timeout, str(entry.path))
            windows[key] = {"first_frame": first, "num_frames": count}
        except VideoDecodeError as e:
            windows[key] = {"bad": str(e).split(": ", 1)[-1]}


def read_list_lines(list_file: Path) -> dict[int, str]:
    """Line number -> line text (without its end), to copy good entries into a clean list verbatim."""
    text = read_list_text(Path(list_file))
    return {number: line for number, line in enumerate(text.split("\n"), start=1)}

