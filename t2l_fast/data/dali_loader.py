"""The DALI backend of the loader contract: NVDEC decoding on the GPU ("mixed"), or DALI's CPU decoder.

One graph for both devices (build_pipeline):
    fn.external_source (parallel: Python worker processes make whole batches, indexed by BatchInfo)
        -> encoded file bytes | frames PyAV decoded, frame indices, augmentation, label, index, failures
    -> fn.decoders.video(frames=indices, pad_mode="none")   (not when PyAV decoded: H.264 on DALI's CPU backend)
    -> fn.resize(roi, size) -> fn.flip -> fn.color_twist (per frame) -> grayscale -> [T, 3, S, S]
The source is stateless: batch b of an epoch is a function of (epoch order, b), and every sample's frames and
augmentation come from the same random streams as the PyAV backend (ClipDataset), so both backends produce the
same clips up to interpolation rounding. Frame counts and sizes come from the preflight manifest (built once and
cached beside the list when missing), so no PyAV runs per sample when DALI decodes.

Failures: a video the manifest marks bad, or whose bytes cannot be read in `decode_timeout`, is replaced in the
source like in the PyAV backend (the replacements travel with the batch as its `failures` output). A batch DALI
itself fails on (a frame past the end, a codec it refuses, a hang) raises with on_dali_error="raise"; otherwise
the files it failed on are named, the PyAV path makes that batch, the fallback is counted, and a new pipeline
starts at the next batch.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import T2LError, UnsupportedOptionError
from ..optional import dali_version, require
from .augment import EVAL_RESIZE_RATIO, draw_train_params
from .clip_dataset import ClipDataset, ShardSampler, batch_count, load_with_replacement
from .decode import VideoDecodeError, decode_frames, run_with_timeout
from .loader_base import LoaderBase, collate
from .preflight import GPU_PIXEL_FORMATS, EntryKey, entry_key
from .sampling import AUGMENT_STREAM, sample_rng

PROBE_CODECS = {"vp9": "webm", "mjpeg": "avi", "h264": "mp4"}  # codec -> container of its probe clip
ON_DALI_ERROR = ("fallback", "raise")
FAILURES_BYTES = 2048  # fixed size of a sample's failures output (JSON, zero-padded): DALI batches need one shape
_IDENTITY_TWIST = np.array([1.0, 1.0, 1.0, 0.0], np.float32)


class DaliBatchError(T2LError, RuntimeError):
    """DALI failed on a batch and on_dali_error="raise" (the message names the files), or DALI itself is broken."""


# Consecutive failed batches that no file explains (none of their files fails alone) before the loader stops:
# DALI itself is broken there (on a GPU: NVDEC unusable), and falling back batch by batch would be a silent 10-100x
# slowdown while the loader still says DALI.
BROKEN_AFTER_BATCHES = 3


@functools.lru_cache(maxsize=1)
def cpu_decodable_codecs() -> frozenset:
    """Codecs DALI's CPU video decoder handles here, found by decoding a generated clip of each (cached on disk
    per DALI version: the PyPI wheel does VP8/VP9/MJPEG, other builds may do more)."""
    cache = Path.home() / ".cache" / "t2l-fast" / f"dali-cpu-codecs-{dali_version() or 'unknown'}.json"
    if cache.is_file():
        return frozenset(json.loads(cache.read_text()))
    # DALI: "Codec ... is not supported by the CPU variant of this operator" for the others
    supported = [codec for codec in PROBE_CODECS if decodes_a_generated_clip(codec, None, (32, 32))]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(sorted(supported)))
    return frozenset(supported)


def decodes_a_generated_clip(codec: str, device_id: int | None, size: tuple[int, int]) -> bool:
    """Whether DALI decodes a clip of `codec` written here (height x width `size`) on the CPU or GPU `device_id`."""
    from .synthetic import frame_stamped_clip, write_video

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"probe.{PROBE_CODECS[codec]}"
        write_video(path, frame_stamped_clip(4, *size), codec)
        try:
            decode_with_dali(path, [0, 3], device_id)
            return True
        except RuntimeError:
            return False


def decode_with_dali(path: Path, frames: Sequence[int], device_id: int | None = None) -> np.ndarray:
    """Raw uint8 [F, H, W, 3] of `frames` of one file from DALI's decoder (CPU, or NVDEC on GPU `device_id`); raises
    where the batch pipeline would (the codec probe, and naming the file a batch failed on)."""
    dali = require("nvidia.dali", "dali", "DALI decoding")
    fn = dali.fn

    @dali.pipeline_def(batch_size=1, num_threads=1, device_id=device_id, prefetch_queue_depth=1)
    def graph():
        encoded = fn.external_source(source=lambda: [read_video_bytes(path)], batch=True)
        return fn.decoders.video(encoded, device="cpu" if device_id is None else "mixed", frames=list(frames),
                                 pad_mode="none")

    pipe = graph()
    pipe.build()
    out = pipe.run()[0]
    return np.array(out.as_cpu()[0] if device_id is not None else out[0])


def read_video_bytes(path: Path) -> np.ndarray:
    """The encoded file, for DALI's decoder to demux."""
    return np.fromfile(path, np.uint8)


class BatchSource:
    """Batch `first_batch + info.iteration` of the epoch `order`, as the graph's inputs (see the module docstring).
    Stateless, so DALI's worker processes can make several batches at once."""

    def __init__(self, dataset: ClipDataset, facts: dict[EntryKey, dict], order: list[int], batch_size: int,
                 batches: int, first_batch: int, decode_in_dali: bool, nvdec: bool):
        self.dataset, self.facts, self.order = dataset, facts, order
        self.batch_size, self.batches, self.first_batch = batch_size, batches, first_batch
        self.decode_in_dali, self.nvdec = decode_in_dali, nvdec

    def indices_of(self, batch: int) -> list[int]:
        return self.order[batch * self.batch_size:(batch + 1) * self.batch_size]

    def __call__(self, info) -> tuple:
        batch = self.first_batch + info.iteration
        if batch >= self.batches:
            raise StopIteration
        samples = [self.sample(index) for index in self.indices_of(batch)]
        return tuple(list(column) for column in zip(*samples))

    def sample(self, index: int) -> tuple:
        """One sample's inputs (a video that fails here is replaced, and the failures go with it)."""
        ds = self.dataset

        def load(candidate: int) -> tuple:
            return run_with_timeout(lambda: self.inputs(candidate), ds.decode_timeout,
                                    str(ds.entries[candidate].path))

        inputs, _, failures = load_with_replacement(ds, index, load)
        return inputs + (encode_failures(failures),)

    def decoder_inputs(self, index: int) -> tuple[np.ndarray, list[int], tuple[int, int]]:
        """(bytes or PyAV frames, the indices DALI's decoder reads (shifted to a trimmed window), (H, W))."""
        ds, entry = self.dataset, self.dataset.entries[index]
        facts = self.facts[entry_key(entry)]
        if "bad" in facts:
            raise VideoDecodeError(f"{entry.path}: unusable per the preflight manifest ({facts['bad']})")
        frames = ds.clip_indices(index, facts["num_frames"])
        if self.nvdec and facts.get("pixel_format") not in GPU_PIXEL_FORMATS:
            raise VideoDecodeError(f"{entry.path}: pixel format {facts.get('pixel_format')}, which NVDEC does not "
                                   f"decode (8-bit 4:2:0 only); `t2l data transcode` re-encodes it")
        if self.decode_in_dali and facts.get("rotation"):
            raise VideoDecodeError(f"{entry.path}: display rotation {facts['rotation']} degrees, which DALI's decoders "
                                   f"ignore (PyAV applies it); `t2l data transcode` writes the video upright")
        if self.decode_in_dali:
            return read_video_bytes(entry.path), [f + facts["first_frame"] for f in frames], (facts["height"],
                                                                                           facts["width"])
        video = decode_frames(entry.path, frames, entry.start, entry.end)  # [T, H, W, 3]: DALI still augments
        return video, frames, video.shape[1:3]

    def inputs(self, index: int) -> tuple:
        ds = self.dataset
        video, frames, (height, width) = self.decoder_inputs(index)
        twist = np.tile(_IDENTITY_TWIST, (ds.frames, 1))
        gray, flip = 1.0, 0
        if ds.train:
            params = draw_train_params(sample_rng(ds.seed, ds.epoch, index, AUGMENT_STREAM), height, width,
                                       ds.frames, ds.size, ds.augment)
            x, y, w, h = params.crop
            roi_start, roi_end = np.float32([y, x]), np.float32([y + h, x + w])
            flip = int(params.flip)
            if params.jitter is not None:
                twist = params.jitter.astype(np.float32)
            gray = 0.0 if params.grayscale else 1.0
        else:
            roi_start, roi_end = _centre_crop_roi(height, width, ds.size)
        return (video, np.int32(frames), roi_start, roi_end, np.array(flip, np.int32), twist,
                np.array(gray, np.float32), np.array(ds.entries[index].label, np.int64), np.array(index, np.int64))


def _centre_crop_roi(height: int, width: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source-pixel ROI of 'resize the short side to size*256/224, centre-crop size x size'."""
    scale = round(size * EVAL_RESIZE_RATIO) / min(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return (np.float32([top / scale, left / scale]), np.float32([(top + size) / scale, (left + size) / scale]))


def build_pipeline(source: BatchSource, *, batch_size: int, size: int, train: bool, device_id: int | None,
                   decode_in_dali: bool, num_threads: int, py_workers: int, decode_only: bool = False):
    """The DALI graph (see the module docstring). device_id=None: CPU only; an int: that GPU with NVDEC. The
    default (dynamic) executor prefetches two batches; the source's workers prepare py_workers + 1 ahead.
    decode_only: stop after decoding (the loader benchmark's decode stage)."""
    dali = require("nvidia.dali", "dali", "the DALI loader")
    fn, types = dali.fn, dali.types
    gpu = device_id is not None
    # fork is cheap, but DALI refuses it once the CUDA driver is up in this process (torch.cuda.is_available()
    # already starts it): on a GPU always spawn, which re-imports in the workers and pickles the source
    start = "spawn" if gpu or torch.cuda.is_initialized() else "fork"

    @dali.pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=2,
                       py_num_workers=py_workers, py_start_method=start)
    def graph():
        video, frames, roi_start, roi_end, flip, twist, gray, label, index, failures = fn.external_source(
            source=source, num_outputs=10, batch=True, batch_info=True, parallel=True,
            prefetch_queue_depth=py_workers + 1)
        if decode_in_dali:  # pad_mode="none": an index past the end fails instead of coming back black
            video = fn.decoders.video(video, device="mixed" if gpu else "cpu", frames=frames, pad_mode="none")
        elif gpu:
            video = video.gpu()
        if decode_only:
            return video, label, index, failures
        interpolation = types.INTERP_LINEAR if train else types.INTERP_CUBIC
        video = fn.resize(video, roi_start=roi_start, roi_end=roi_end, size=(size, size), antialias=True,
                          interp_type=interpolation)
        video = fn.flip(video, horizontal=flip)
        video = fn.color_twist(video, brightness=fn.per_frame(twist[:, 0]), contrast=fn.per_frame(twist[:, 1]),
                               saturation=fn.per_frame(twist[:, 2]), hue=fn.per_frame(twist[:, 3]))
        video = fn.color_twist(video, saturation=gray)  # 0: grayscale, 1: unchanged
        return fn.transpose(video, perm=[0, 3, 1, 2]), label, index, failures

    with warnings.catch_warnings():  # without DALI decoding (or past it) some source outputs go unused
        warnings.filterwarnings("ignore", message="The external source node .* not used")
        pipe = graph()
        pipe.build()
    return pipe


def encode_failures(failures: list[tuple[str, str]]) -> np.ndarray:
    """uint8 [FAILURES_BYTES]: a sample's (path, reason) failures as zero-padded JSON, whole entries only; those
    that do not fit are counted (so the bad-video budget still sees them)."""
    kept: list = []
    for path, reason in failures:
        candidate = json.dumps({"failures": kept + [(path, reason[:300])], "more": 0}, ensure_ascii=False)
        if len(candidate.encode()) > FAILURES_BYTES - 32:
            break
        kept.append((path, reason[:300]))
    text = json.dumps({"failures": kept, "more": len(failures) - len(kept)}, ensure_ascii=False).encode()
    return np.frombuffer(text.ljust(FAILURES_BYTES, b"\0"), np.uint8)


def _failures_of(column: torch.Tensor) -> list[tuple]:
    """The (path, reason) failures the source recorded, from the batch's failures output [B, FAILURES_BYTES]."""
    found = []
    for row in column.cpu().numpy():
        record = json.loads(row.tobytes().rstrip(b"\0"))
        found += [tuple(pair) for pair in record["failures"]]
        found += [("(not named)", "a replaced video whose name did not fit DALI's failures output")] * record["more"]
    return found


class DaliVideoLoader(LoaderBase):
    """The loader contract on DALI (DALIGenericIterator over build_pipeline); on_dali_error: "fallback" (the PyAV
    path makes a batch DALI failed on; counted in `fallback_batches`) or "raise" (DaliBatchError)."""

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, facts: dict[EntryKey, dict], *,
                 batch_size: int, drop_last: bool, device: torch.device, dtype: torch.dtype | None,
                 max_bad_fraction: float, on_dali_error: str = "fallback", py_workers: int | None = None):
        super().__init__(dataset, sampler, batch_size=batch_size, drop_last=drop_last, device=device, dtype=dtype,
                         max_bad_fraction=max_bad_fraction)
        if on_dali_error not in ON_DALI_ERROR:
            raise UnsupportedOptionError(f"on_dali_error must be one of {ON_DALI_ERROR}, got {on_dali_error!r}")
        self.facts, self.on_dali_error = facts, on_dali_error
        self.device_id = (device.index or 0) if device.type == "cuda" else None
        cores = os.cpu_count() or 1
        # DALI's thread pool caps concurrent demux/decode: H100/H200 carry 7 NVDEC engines
        self.num_threads = min(8, max(cores, 2)) if self.device_id is not None else max(1, cores)
        self.py_workers = py_workers or max(1, min(4, cores))
        if self.device_id is None:  # CPU: DALI decodes what its CPU decoder can, PyAV the rest
            codecs = {f.get("codec") for f in facts.values() if "bad" not in f}
            self.decode_in_dali = bool(codecs) and codecs <= cpu_decodable_codecs()
        else:
            self.decode_in_dali = True
        decoder = "NVDEC" if self.device_id is not None else "DALI CPU decoder" if self.decode_in_dali else "PyAV"
        self.backend = f"dali ({decoder} decoding, DALI augmentation)"

    def source_for(self, order: list[int], first_batch: int) -> BatchSource:
        """The source of this epoch `order` from its batch `first_batch`."""
        return BatchSource(self.dataset, self.facts, order, self.batch_size,
                           batch_count(len(order), self.batch_size, self.drop_last), first_batch, self.decode_in_dali,
                           nvdec=self.device_id is not None)

    def pipeline(self, order: list[int], first_batch: int, decode_only: bool = False):
        """A built pipeline of this loader's graph over the epoch `order` from batch `first_batch`."""
        return build_pipeline(self.source_for(order, first_batch), batch_size=self.batch_size,
                              size=self.dataset.size, train=self.dataset.train, device_id=self.device_id,
                              decode_in_dali=self.decode_in_dali, num_threads=self.num_threads,
                              py_workers=self.py_workers, decode_only=decode_only)

    def _iterator_from(self, order: list[int], batch: int):
        """A new pipeline and iterator whose first batch is `batch` of this epoch."""
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = self.pipeline(order, batch)
        # The source raises StopIteration after the last batch (full batches only in training: drop_last).
        return DALIGenericIterator(pipe, ["video", "label", "index", "failures"], auto_reset=False,
                                   last_batch_policy=LastBatchPolicy.PARTIAL, prepare_first_batch=False)

    def __iter__(self) -> Iterator[dict]:
        self.bad_videos, self.fallback_batches = [], 0
        budget = self.max_bad_fraction * len(self.sampler)
        order = list(self.sampler)
        iterator = self._iterator_from(order, 0)
        timeout = self.dataset.decode_timeout and self.dataset.decode_timeout * self.batch_size
        self._unexplained = 0
        for batch in range(batch_count(len(order), self.batch_size, self.drop_last)):
            try:
                data = run_with_timeout(lambda pipeline=iterator: next(pipeline)[0], timeout, f"DALI batch {batch}")
                index = data["index"].view(-1).cpu()
                out = {"video": data["video"], "label": data["label"].view(-1), "index": index,
                       "path": [str(self.dataset.entries[i].path) for i in index.tolist()],
                       "failures": _failures_of(data["failures"])}
                self._unexplained = 0
            except Exception as e:  # DALI could not make this batch
                out = self._fallback(order, batch, e)
                iterator = self._iterator_from(order, batch + 1)
            self._report(out.pop("failures"), budget)
            yield self._to_device(out)

    def _fallback(self, order: list[int], batch: int, error: Exception) -> dict:
        """Name the files DALI failed on; raise (strict) or make the batch with the PyAV path."""
        source = self.source_for(order, 0)
        indices = source.indices_of(batch)
        culprits = self._culprits(source, indices)
        self._check_not_broken(culprits, indices, error)
        named = "; ".join(f"{path}: {reason}" for path, reason in culprits) or f"no single file ({error})"
        if self.on_dali_error == "raise":
            raise DaliBatchError(f"DALI failed on batch {batch} of the epoch (or on one it was preparing ahead): "
                                 f"{named}") from error
        self.fallback_batches += 1
        out = collate([self.dataset[i] for i in source.indices_of(batch)])
        failed_in_pyav = {path for path, _ in out["failures"]}
        out["failures"] += [(path, f"DALI failed on it ({reason}); PyAV decoded its batch instead")
                            for path, reason in culprits if path not in failed_in_pyav]
        if not culprits:  # no file fails alone (DALI may raise a prefetched batch's error early): blame none
            warnings.warn(f"DALI failed on batch {batch} of the epoch, or on one it was preparing ahead "
                          f"({_first_line(error)}); no file of the batch fails alone; PyAV made the batch "
                          f"({self.fallback_batches} fallback(s) this epoch)", stacklevel=3)
        return out

    def _check_not_broken(self, culprits: list[tuple[str, str]], indices: list[int], error: Exception) -> None:
        """Raise when DALI's decoder itself is broken here: a batch whose every file fails alone while a clip written
        here fails too (a GPU without a usable NVDEC, at its first batch), or BROKEN_AFTER_BATCHES failed batches in
        a row that no single file explains. Bad files, however many, are not that."""
        if not self.decode_in_dali:  # PyAV decodes inside the source: DALI's decoder is not the suspect
            return
        if culprits and len(culprits) >= len(indices):
            codec, size = ("h264", (256, 320)) if self.device_id is not None else (self._cpu_probe_codec(), (32, 32))
            if not decodes_a_generated_clip(codec, self.device_id, size):
                raise self._broken(error, f"cannot decode a {codec} clip written here either") from error
        self._unexplained = 0 if culprits else self._unexplained + 1
        if self._unexplained >= BROKEN_AFTER_BATCHES:
            what = f"failed on {self._unexplained} batches in a row that no single file explains"
            raise self._broken(error, what) from error

    @staticmethod
    def _cpu_probe_codec() -> str:
        """A codec DALI's CPU decoder handles here (VP9 in the PyPI wheel)."""
        codecs = cpu_decodable_codecs()
        return "vp9" if "vp9" in codecs or not codecs else sorted(codecs)[0]

    def _broken(self, error: Exception, what: str) -> DaliBatchError:
        where = ("NVDEC is unusable here: no libnvcuvid (the driver's video library), or a container started "
                 "without the video driver capability (set NVIDIA_DRIVER_CAPABILITIES=compute,utility,video)"
                 if self.device_id is not None else "DALI's CPU decoder fails on this machine")
        return DaliBatchError(f"DALI {what} (last error: {_first_line(error)}): {where}. Fix that, or load with "
                              f"PyAV (LoaderConfig(backend='pyav'); in a training config: data.backend: pyav)")

    def _culprits(self, source: BatchSource, indices: list[int]) -> list[tuple[str, str]]:
        """(path, reason) of each sample of a failed batch that DALI's decoder fails on alone."""
        if not self.decode_in_dali:
            return []
        found = []
        for index in indices:
            try:  # the file the source really handed DALI (a bad one is replaced there first)
                (_, frames, _), candidate, _ = load_with_replacement(self.dataset, index, source.decoder_inputs)
            except Exception:  # nothing DALI could be blamed for
                continue
            path = str(self.dataset.entries[candidate].path)
            try:
                run_with_timeout(lambda path=path, frames=frames: decode_with_dali(Path(path), frames, self.device_id),
                                 self.dataset.decode_timeout, path)
            except Exception as e:  # this file is (one of) the batch's problem(s)
                found.append((path, _first_line(e)))
        return found

    def __len__(self) -> int:
        return batch_count(len(self.sampler), self.batch_size, self.drop_last)


def _first_line(error: Exception) -> str:
    """DALI's errors span many lines (the pipeline's traceback); the line that says what went wrong (the one after
    "encountered:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "encountered:" in lines[:-1]:
        return lines[lines.index("encountered:") + 1][:300]
    return (lines or [type(error).__name__])[0][:300]
