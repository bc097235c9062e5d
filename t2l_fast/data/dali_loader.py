"""The DALI backends of the loader contract: NVDEC decoding on the GPU ("mixed"), or DALI's CPU decoder.

One graph for both devices:
    fn.external_source -> (encoded bytes | frames decoded by PyAV), frame indices, augmentation parameters
    -> fn.decoders.video(frames=indices)          (skipped when PyAV decoded: H.264 & co. on the CPU)
    -> fn.resize(roi, size) -> fn.flip -> fn.color_twist (per frame) -> grayscale -> [T, 3, S, S]
The Python side draws every sample's frames and augmentation from the same random streams as the PyAV backend
(ClipDataset), so both backends produce the same clips up to interpolation rounding; the colour twist is exact.

Failures: a video that cannot even be opened is replaced before DALI sees it (as in the PyAV backend). If DALI
fails on a batch anyway, that batch is rebuilt by the PyAV path (which replaces the bad video and reports it) and
the pipeline is recreated, so one bad file never leaves a dead pipeline behind.
"""
from __future__ import annotations

import functools
import json
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch

from ..optional import installed, require
from .augment import EVAL_RESIZE_RATIO, draw_train_params
from .decode import decode_frames
from .loader import ClipDataset, ShardSampler, VideoLoader, batch_count, load_with_replacement
from .sampling import AUGMENT_STREAM, sample_rng

PROBE_CODECS = {"vp9": "webm", "mjpeg": "avi", "h264": "mp4"}  # codec -> container of its probe clip
_IDENTITY_TWIST = np.array([1.0, 1.0, 1.0, 0.0], np.float32)


@functools.lru_cache(maxsize=1)
def cpu_decodable_codecs() -> frozenset:
    """Codecs DALI's CPU video decoder handles here, found by decoding a generated clip of each (cached on disk
    per DALI version: the PyPI wheel does VP8/VP9/MJPEG, other builds may do more)."""
    from .synthetic import frame_stamped_clip, write_video

    version = installed("nvidia-dali-cuda130") or installed("nvidia-dali-cuda120") or "unknown"
    cache = Path.home() / ".cache" / "t2l-fast" / f"dali-cpu-codecs-{version}.json"
    if cache.is_file():
        return frozenset(json.loads(cache.read_text()))
    supported = []
    with tempfile.TemporaryDirectory() as folder:
        for codec, extension in PROBE_CODECS.items():
            path = Path(folder) / f"probe.{extension}"
            write_video(path, frame_stamped_clip(4, 32, 32), codec)
            try:
                _decode_with_dali(path, [0, 3])
                supported.append(codec)
            except RuntimeError:  # DALI: "Codec ... is not supported by the CPU variant of this operator"
                pass
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(sorted(supported)))
    return frozenset(supported)


def _decode_with_dali(path: Path, frames: List[int]) -> np.ndarray:
    """Raw uint8 [F, H, W, 3] of `frames` from DALI's CPU decoder (tests and the codec probe)."""
    dali = require("nvidia.dali", "dali", "DALI decoding")
    fn = dali.fn

    @dali.pipeline_def(batch_size=1, num_threads=1, device_id=None, prefetch_queue_depth=1)
    def graph():
        encoded = fn.external_source(source=lambda: [np.fromfile(path, np.uint8)], batch=True)
        return fn.decoders.video(encoded, device="cpu", frames=frames)

    pipe = graph()
    pipe.build()
    return np.array(pipe.run()[0][0])


class DaliBatchSource:
    """Builds the batches DALI reads: for batch b of the epoch, the encoded files (or PyAV frames), frame indices
    and augmentation parameters of the clips the ShardSampler orders, drawn exactly as ClipDataset draws them."""

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, batch_size: int, drop_last: bool,
                 decode_in_dali: bool):
        self.dataset, self.sampler, self.batch_size = dataset, sampler, batch_size
        self.drop_last, self.decode_in_dali = drop_last, decode_in_dali
        self.order: List[int] = []
        self.next_batch = 0
        self.failures: List[Tuple[str, str]] = []
        self._threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pyav-decode")

    def start_epoch(self) -> None:
        self.order, self.next_batch, self.failures = list(self.sampler), 0, []

    def batches(self) -> int:
        return batch_count(len(self.order), self.batch_size, self.drop_last)

    def indices_of(self, batch: int) -> List[int]:
        return self.order[batch * self.batch_size:(batch + 1) * self.batch_size]

    def __call__(self):
        if self.next_batch >= self.batches():
            raise StopIteration
        batch, self.next_batch = self.next_batch, self.next_batch + 1
        samples = list(self._threads.map(self._sample, self.indices_of(batch)))
        return tuple(list(column) for column in zip(*samples))

    def _sample(self, index: int):
        """One sample's DALI inputs; a video that cannot be opened is replaced as in the PyAV backend."""
        inputs, _, failures = load_with_replacement(self.dataset, index, self._inputs)
        self.failures += failures
        return inputs

    def _inputs(self, index: int):
        ds = self.dataset
        entry = ds.entries[index]
        frames = ds.clip_indices(index, ds.frame_count(entry))
        if self.decode_in_dali and entry.start is None and entry.end is None:
            video = np.fromfile(entry.path, np.uint8)
            height, width = _frame_size(entry.path)
        else:  # PyAV decodes; DALI still augments
            video = decode_frames(entry.path, frames, entry.start, entry.end)
            height, width = video.shape[1:3]
        twist = np.tile(_IDENTITY_TWIST, (ds.frames, 1))
        gray, flip = np.float32(1.0), np.int32(0)
        if ds.train:
            params = draw_train_params(sample_rng(ds.seed, ds.epoch, index, AUGMENT_STREAM), height, width,
                                       ds.frames, ds.size, ds.augment)
            x, y, w, h = params.crop
            roi_start, roi_end = np.float32([y, x]), np.float32([y + h, x + w])
            flip = np.int32(params.flip)
            if params.jitter is not None:
                twist = params.jitter.astype(np.float32)
            gray = np.float32(0.0 if params.grayscale else 1.0)
        else:
            roi_start, roi_end = _centre_crop_roi(height, width, ds.size)
        return (video, np.int32(frames), roi_start, roi_end, flip, twist, gray, np.int64(entry.label),
                np.int64(index))


def _frame_size(path: Path) -> Tuple[int, int]:
    from .decode import open_video

    container, stream = open_video(path)
    with container:
        return stream.codec_context.height, stream.codec_context.width


def _centre_crop_roi(height: int, width: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Source-pixel ROI of 'resize the short side to size*256/224, centre-crop size x size'."""
    scale = round(size * EVAL_RESIZE_RATIO) / min(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return (np.float32([top / scale, left / scale]), np.float32([(top + size) / scale, (left + size) / scale]))


def build_pipeline(source: DaliBatchSource, *, batch_size: int, size: int, train: bool, device_id: Optional[int],
                   decode_in_dali: bool, num_threads: int = 2):
    """The DALI graph (see the module docstring). device_id=None: CPU only; an int: that GPU with NVDEC."""
    dali = require("nvidia.dali", "dali", "the DALI loader")
    fn, types = dali.fn, dali.types
    gpu = device_id is not None

    @dali.pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id,
                       prefetch_queue_depth=2, exec_async=False, exec_pipelined=False)
    def graph():
        video, frames, roi_start, roi_end, flip, twist, gray, label, index = fn.external_source(
            source=source, num_outputs=9, batch=True)
        if decode_in_dali:
            video = fn.decoders.video(video, device="mixed" if gpu else "cpu", frames=frames)
        elif gpu:
            video = video.gpu()
        interpolation = types.INTERP_LINEAR if train else types.INTERP_CUBIC
        video = fn.resize(video, roi_start=roi_start, roi_end=roi_end, size=(size, size), antialias=True,
                          interp_type=interpolation)
        video = fn.flip(video, horizontal=flip)
        video = fn.color_twist(video, brightness=fn.per_frame(twist[:, 0]), contrast=fn.per_frame(twist[:, 1]),
                               saturation=fn.per_frame(twist[:, 2]), hue=fn.per_frame(twist[:, 3]))
        video = fn.color_twist(video, saturation=gray)  # 0: grayscale, 1: unchanged
        return fn.transpose(video, perm=[0, 3, 1, 2]), label, index

    with warnings.catch_warnings():  # without DALI decoding, the frame indices are used by PyAV, not the graph
        warnings.filterwarnings("ignore", message="The external source node .* is not used")
        pipe = graph()
        pipe.build()
    return pipe


class DaliVideoLoader(VideoLoader):
    """The loader contract on DALI (DALIGenericIterator over build_pipeline); set_epoch / len / iteration as the
    PyAV VideoLoader, whose dataset it reuses to rebuild a batch on which DALI failed."""

    def __init__(self, dataset: ClipDataset, sampler: ShardSampler, *, batch_size: int, drop_last: bool,
                 device: torch.device, dtype: Optional[torch.dtype], max_bad_fraction: float):
        super().__init__(dataset, sampler, batch_size=batch_size, drop_last=drop_last, num_workers=0,
                         device=device, dtype=dtype, max_bad_fraction=max_bad_fraction)
        self.device_id = (device.index or 0) if device.type == "cuda" else None
        if self.device_id is None:  # CPU: DALI decodes what its CPU decoder can, PyAV the rest
            codecs = cpu_decodable_codecs()
            self.decode_in_dali = all(_codec_guess(e.path) in codecs for e in dataset.entries[:16])
        else:
            self.decode_in_dali = True
        self.source = DaliBatchSource(dataset, sampler, batch_size, drop_last, self.decode_in_dali)
        decoder = "NVDEC" if self.device_id is not None else "DALI CPU decoder" if self.decode_in_dali else "PyAV"
        self.backend = f"dali ({decoder} decoding, DALI augmentation)"

    def _iterator_from(self, batch: int):
        """A new pipeline and iterator whose first batch is `batch` of this epoch."""
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        self.source.next_batch = batch
        pipe = build_pipeline(self.source, batch_size=self.batch_size, size=self.dataset.size,
                              train=self.dataset.train, device_id=self.device_id,
                              decode_in_dali=self.decode_in_dali)
        # The source raises StopIteration after the last batch (full batches only in training: drop_last).
        return DALIGenericIterator(pipe, ["video", "label", "index"], last_batch_policy=LastBatchPolicy.PARTIAL,
                                   auto_reset=False, prepare_first_batch=False)

    def __iter__(self) -> Iterator[dict]:
        self.bad_videos = []
        budget = self.max_bad_fraction * len(self.sampler)
        self.source.start_epoch()
        iterator = self._iterator_from(0)
        for batch in range(self.source.batches()):
            try:
                data = next(iterator)[0]
                index = data["index"].view(-1).cpu()
                out = {"video": data["video"], "label": data["label"].view(-1), "index": index,
                       "path": [str(self.dataset.entries[i].path) for i in index.tolist()], "failures": []}
            except Exception as e:  # DALI could not make this batch: the PyAV path makes it; a new pipeline follows
                out = self._pyav_batch(batch, e)
                iterator = self._iterator_from(batch + 1)
            failures, self.source.failures = self.source.failures, []
            self._report(failures + out.pop("failures"), budget)
            yield self._to_device(out)

    def _pyav_batch(self, batch: int, error: Exception) -> dict:
        from .loader import _collate

        out = _collate([self.dataset[i] for i in self.source.indices_of(batch)])
        if not out["failures"]:  # every video decoded with PyAV: only DALI failed, which is worth one report
            out["failures"] = [(out["path"][0], f"DALI failed on its batch ({type(error).__name__}: {error}); "
                                                f"PyAV decoded the batch instead")]
        return out

    def __len__(self) -> int:
        return batch_count(len(self.sampler), self.batch_size, self.drop_last)


def _codec_guess(path: Path) -> str:
    """The codec a file most likely holds, from its extension (DALI's failures are handled anyway)."""
    return {".webm": "vp9", ".avi": "mjpeg"}.get(path.suffix.lower(), "h264")
