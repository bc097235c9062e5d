"""DALI backends against the PyAV reference. CPU tests run wherever the DALI wheel is installed; GPU tests need CUDA."""
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali", reason="DALI is not installed (pip install 't2l-fast[dali]')")

from t2l_fast.data import build_video_loader  # noqa: E402
from t2l_fast.data.augment import NO_COLOUR  # noqa: E402
from t2l_fast.data.dali_loader import _decode_with_dali, cpu_decodable_codecs  # noqa: E402
from t2l_fast.data.decode import decode_frames  # noqa: E402
from t2l_fast.data.sampling import sample_rng, segment_indices  # noqa: E402
from t2l_fast.data.synthetic import (SynthConfig, frame_stamped_clip, read_stamp, synthetic_clip,  # noqa: E402
                                     write_synthetic_dataset, write_video)

RAW_MEAN_TOLERANCE = 2.0  # mean |DALI - PyAV| in 0..255 levels before resizing: YUV->RGB rounding (~1.4 seen)
AUGMENTED_MEAN_TOLERANCE = 2.5  # after the same crop/flip/colour parameters, both backends' resizers


@pytest.fixture(scope="module")
def vp9_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("vp9")
    write_synthetic_dataset(root, SynthConfig(clips_per_class=2, eval_clips_per_class=1, codec="vp9"))
    return root


@pytest.fixture(scope="module")
def stamped(tmp_path_factory):
    root = tmp_path_factory.mktemp("stamped")
    counts = [40, 23, 8, 5]
    for label, n in enumerate(counts):
        write_video(root / f"s{label}.webm", frame_stamped_clip(n, 48, 64), "vp9")
    (root / "list.txt").write_text("".join(f"s{label}.webm {label}\n" for label in range(len(counts))))
    return root, counts


def test_cpu_codec_probe_finds_the_wheels_decoders():
    assert {"vp9", "mjpeg"} <= cpu_decodable_codecs()


@pytest.mark.parametrize("codec, extension", [("vp9", "webm"), ("mjpeg", "avi")])
def test_dali_cpu_decoder_returns_pyav_frames(tmp_path, codec, extension):
    path = tmp_path / f"clip.{extension}"
    write_video(path, synthetic_clip(np.random.default_rng(1), 0, 24, 64, 96), codec)
    indices = [1, 4, 4, 7, 10, 13, 16, 22]
    dali, pyav = _decode_with_dali(path, indices).astype(int), decode_frames(path, indices).astype(int)
    assert dali.shape == pyav.shape == (8, 64, 96, 3)
    assert np.abs(dali - pyav).mean() <= RAW_MEAN_TOLERANCE
    stamped = tmp_path / f"stamped.{extension}"
    write_video(stamped, frame_stamped_clip(30, 48, 64), codec)
    assert [read_stamp(f) for f in _decode_with_dali(stamped, [0, 5, 5, 29])] == [0, 5, 5, 29]  # no off-by-one


def test_dali_cpu_decoder_really_runs_and_refuses_h264(tmp_path):
    write_video(tmp_path / "clip.mp4", frame_stamped_clip(4, 32, 32), "h264")
    with pytest.raises(RuntimeError, match="Failed to create video decoder"):  # DALI logs "Codec 27 (h264) is not
        # supported by the CPU variant of this operator" 
        _decode_with_dali(tmp_path / "clip.mp4", [0])


@pytest.mark.parametrize("split", ["train", "val"])
def test_dali_returns_exactly_the_requested_frames(stamped, split, monkeypatch):
    root, counts = stamped

    def no_pyav(*args, **kwargs):
        raise AssertionError("PyAV decoded a frame: DALI's decoder should have")

    monkeypatch.setattr("t2l_fast.data.dali_loader.decode_frames", no_pyav)
    loader = build_video_loader(root / "list.txt", root, split=split, frames=8, size=32, batch_size=2,
                                backend="dali", augment=NO_COLOUR, seed=5, epoch=1)
    assert loader.decode_in_dali
    for batch in loader:
        for index, label, clip in zip(batch["index"].tolist(), batch["label"].tolist(), batch["video"]):
            rng = sample_rng(5, 1, index) if split == "train" else None
            expected = segment_indices(counts[label], 8, train=split == "train", rng=rng)
            assert [read_stamp(frame.numpy()) for frame in clip] == expected


@pytest.mark.parametrize("split", ["train", "val"])
def test_backends_agree(vp9_set, split):
    batches = {}
    for backend in ("pyav", "dali"):
        loader = build_video_loader(vp9_set / f"{split}.txt", vp9_set, split=split, frames=8, size=32,
                                    batch_size=5, backend=backend, num_workers=0, seed=2)
        batches[backend] = (len(loader), list(loader))
    assert batches["pyav"][0] == batches["dali"][0] == len(batches["dali"][1])
    for a, b in zip(batches["pyav"][1], batches["dali"][1]):
        assert a["video"].shape == b["video"].shape and a["video"].dtype == b["video"].dtype == torch.uint8
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["label"], b["label"]) and a["path"] == b["path"]
        assert (a["video"].float() - b["video"].float()).abs().mean() <= AUGMENTED_MEAN_TOLERANCE


def test_h264_on_cpu_is_decoded_by_pyav_and_augmented_by_dali(tmp_path):
    write_synthetic_dataset(tmp_path, SynthConfig(classes=("growing", "shrinking"), clips_per_class=3,
                                                  eval_clips_per_class=1))
    loaders = [build_video_loader(tmp_path / "train.txt", tmp_path, split="train", frames=8, size=32, batch_size=3,
                                  backend=backend, num_workers=0) for backend in ("pyav", "dali")]
    assert not loaders[1].decode_in_dali
    for a, b in zip(*loaders):
        assert torch.equal(a["index"], b["index"]) and (a["video"].float() - b["video"].float()).abs().mean() < 1.0


def test_a_file_dali_cannot_decode_costs_one_batch_not_the_pipeline(vp9_set):
    # An H.264 stream behind a .webm name: PyAV opens it, DALI's CPU decoder refuses it mid-pipeline.
    write_video(vp9_set / "liar.mp4", frame_stamped_clip(24, 64, 64), "h264")
    (vp9_set / "liar.mp4").rename(vp9_set / "liar.webm")
    lines = (vp9_set / "val.txt").read_text().splitlines()
    (vp9_set / "liar.txt").write_text("\n".join(lines[:3] + ["liar.webm 0"] + lines[3:]) + "\n")
    loader = build_video_loader(vp9_set / "liar.txt", vp9_set, split="val", frames=8, size=32, batch_size=2,
                                backend="dali", max_bad_fraction=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    assert len(batches) == len(loader) and sum(len(b["label"]) for b in batches) == len(lines) + 1
    assert any("DALI failed on its batch" in str(w.message) for w in caught)


def test_unopenable_videos_are_replaced_before_dali(vp9_set):
    (vp9_set / "text.webm").write_text("not a video")
    lines = (vp9_set / "train.txt").read_text().splitlines()
    (vp9_set / "bad.txt").write_text("\n".join(lines + ["text.webm 1"]) + "\n")
    loader = build_video_loader(vp9_set / "bad.txt", vp9_set, split="train", frames=8, size=32, batch_size=5,
                                backend="dali", max_bad_fraction=0.5, seed=4)
    with pytest.warns(UserWarning, match="text.webm: cannot open as a video.*replaced by another clip"):
        batches = list(loader)
    assert all("text.webm" not in p for b in batches for p in b["path"])


@pytest.mark.parametrize("split, shards", [("train", 3), ("val", 3)])
def test_dali_sharding_matches_pyav(vp9_set, split, shards):
    for backend in ("pyav", "dali"):
        seen = [[i for b in build_video_loader(vp9_set / f"{split}.txt", vp9_set, split=split, frames=4, size=32,
                                               batch_size=2, backend=backend, num_workers=0, shard_id=rank,
                                               num_shards=shards)
                 for i in b["index"].tolist()] for rank in range(shards)]
        assert len({len(s) for s in seen}) == 1
        flat = [i for s in seen for i in s]
        if split == "train":
            assert len(flat) == len(set(flat))
        if backend == "pyav":
            reference = seen
        else:
            assert seen == reference


@pytest.mark.gpu
def test_gpu_nvdec_matches_cpu(vp9_set):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU with NVDEC; this machine has none")
    cpu = list(build_video_loader(vp9_set / "val.txt", vp9_set, split="val", frames=8, size=32, batch_size=4,
                                  backend="dali", device="cpu"))
    gpu = list(build_video_loader(vp9_set / "val.txt", vp9_set, split="val", frames=8, size=32, batch_size=4,
                                  backend="dali", device="cuda"))
    for a, b in zip(cpu, gpu):
        assert b["video"].is_cuda and torch.equal(a["index"], b["index"].cpu())
        assert (a["video"].float() - b["video"].cpu().float()).abs().mean() <= AUGMENTED_MEAN_TOLERANCE
