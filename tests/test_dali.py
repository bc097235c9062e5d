"""DALI backends against the PyAV reference. CPU tests run wherever the DALI wheel is installed; GPU tests need CUDA."""
import json
import time
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali", reason="DALI is not installed (pip install 't2l-fast[dali]')")

from t2l_fast.data import LoaderConfig, build_video_loader  # noqa: E402
from t2l_fast.data.augment import NO_COLOUR  # noqa: E402
from t2l_fast.data.dali_loader import DaliBatchError, cpu_decodable_codecs, decode_with_dali  # noqa: E402
from t2l_fast.data.decode import decode_frames  # noqa: E402
from t2l_fast.data.sampling import sample_rng, segment_indices  # noqa: E402
from t2l_fast.data.synthetic import (  # noqa: E402
    SynthConfig,
    frame_stamped_clip,
    read_stamp,
    synthetic_clip,
    write_synthetic_dataset,
    write_video,
)

RAW_MEAN_TOLERANCE = 2.0  # mean |DALI - PyAV| in 0..255 levels before resizing: YUV->RGB rounding (~1.4 seen)
AUGMENTED_MEAN_TOLERANCE = 2.5  # after the same crop/flip/colour parameters, both backends' resizers
DALI_8x32 = LoaderConfig(frames=8, size=32, backend="dali")
STRICT_DALI_8x32 = LoaderConfig(frames=8, size=32, backend="dali", on_dali_error="raise")  # no PyAV fallback


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
    dali, pyav = decode_with_dali(path, indices).astype(int), decode_frames(path, indices).astype(int)
    assert dali.shape == pyav.shape == (8, 64, 96, 3)
    assert np.abs(dali - pyav).mean() <= RAW_MEAN_TOLERANCE
    stamped = tmp_path / f"stamped.{extension}"
    write_video(stamped, frame_stamped_clip(30, 48, 64), codec)
    assert [read_stamp(f) for f in decode_with_dali(stamped, [0, 5, 5, 29])] == [0, 5, 5, 29]  # no off-by-one


def test_dali_cpu_decoder_really_runs_and_refuses_h264(tmp_path):
    write_video(tmp_path / "clip.mp4", frame_stamped_clip(4, 32, 32), "h264")
    with pytest.raises(RuntimeError, match="Failed to create video decoder"):  # DALI logs "Codec 27 (h264) is not
        # supported by the CPU variant of this operator"
        decode_with_dali(tmp_path / "clip.mp4", [0])


@pytest.mark.parametrize("split", ["train", "val"])
def test_dali_returns_exactly_the_requested_frames(stamped, split, monkeypatch):
    root, counts = stamped

    def no_pyav(*args, **kwargs):
        raise AssertionError("PyAV decoded a frame: DALI's decoder should have")

    monkeypatch.setattr("t2l_fast.data.dali_loader.decode_frames", no_pyav)
    config = LoaderConfig(frames=8, size=32, backend="dali", augment=NO_COLOUR)
    loader = build_video_loader(root / "list.txt", root, config, split=split, batch_size=2, seed=5, device="cpu")
    loader.set_epoch(1)
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
        config = LoaderConfig(frames=8, size=32, backend=backend, num_workers=0)
        loader = build_video_loader(vp9_set / f"{split}.txt", vp9_set, config, split=split, batch_size=5, seed=2,
                                    device="cpu")
        batches[backend] = (len(loader), list(loader))
    assert batches["pyav"][0] == batches["dali"][0] == len(batches["dali"][1])
    for a, b in zip(batches["pyav"][1], batches["dali"][1]):
        assert a["video"].shape == b["video"].shape and a["video"].dtype == b["video"].dtype == torch.uint8
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["label"], b["label"]) and a["path"] == b["path"]
        assert (a["video"].float() - b["video"].float()).abs().mean() <= AUGMENTED_MEAN_TOLERANCE


def test_h264_on_cpu_is_decoded_by_pyav_and_augmented_by_dali(tmp_path):
    write_synthetic_dataset(tmp_path, SynthConfig(classes=("growing", "shrinking"), clips_per_class=3,
                                                  eval_clips_per_class=1))
    loaders = [build_video_loader(tmp_path / "train.txt", tmp_path, LoaderConfig(frames=8, size=32, backend=backend,
                                                                                 num_workers=0),
                                  split="train", batch_size=3, device="cpu") for backend in ("pyav", "dali")]
    assert not loaders[1].decode_in_dali
    for a, b in zip(*loaders):
        assert torch.equal(a["index"], b["index"]) and (a["video"].float() - b["video"].float()).abs().mean() < 1.0


def _inflate_manifest_count(list_file, video, frames):
    """Make the cached manifest claim `frames` frames for `video` (as when PyAV's count and DALI's differ)."""
    manifest = list_file.with_name(f"{list_file.stem}.check.manifest.json")
    document = json.loads(manifest.read_text())
    document["videos"][video]["num_frames"] = frames
    manifest.write_text(json.dumps(document))


@pytest.fixture
def short_by_four(stamped):
    """The stamped set, with the manifest claiming 4 more frames of s1.webm than it has."""
    root, counts = stamped
    build_video_loader(root / "list.txt", root, DALI_8x32, split="val", batch_size=2, device="cpu")
    _inflate_manifest_count(root / "list.txt", "s1.webm", counts[1] + 4)
    yield root
    (root / "list.check.manifest.json").unlink()


def test_a_frame_past_the_end_fails_and_names_its_file_in_strict_mode(short_by_four):
    loader = build_video_loader(short_by_four / "list.txt", short_by_four, STRICT_DALI_8x32, split="val",
                                batch_size=2, device="cpu")
    with pytest.raises(DaliBatchError, match=r"batch 0 of the epoch .*: .*s1\.webm: .*out-of-bounds frame index"):
        list(loader)


def test_a_frame_past_the_end_is_a_bad_clip_not_a_black_frame(short_by_four):
    config = LoaderConfig(frames=8, size=32, backend="dali", max_bad_fraction=0.5)
    loader = build_video_loader(short_by_four / "list.txt", short_by_four, config, split="val", batch_size=2,
                                device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    assert len(batches) == len(loader) and sum(len(b["label"]) for b in batches) == 4
    assert loader.fallback_batches == 1  # the batch holding s1.webm was made by the PyAV path
    assert [path for path, _ in loader.bad_videos] == [str(short_by_four / "s1.webm")]  # counted once
    assert "s1.webm" not in [p.rsplit("/", 1)[-1] for b in batches for p in b["path"]]
    assert any("s1.webm" in str(w.message) and "only" in str(w.message) for w in caught)
    for batch in batches:  # no black frame anywhere (stamp colours are never black)
        assert all(frame.max() > 0 for clip in batch["video"] for frame in clip)


def test_one_codec_the_cpu_decoder_refuses_sends_the_set_to_pyav(vp9_set):
    write_video(vp9_set / "liar.mp4", frame_stamped_clip(24, 64, 64), "h264")
    (vp9_set / "liar.mp4").rename(vp9_set / "liar.webm")  # H.264 behind a .webm name
    lines = (vp9_set / "val.txt").read_text().splitlines()
    (vp9_set / "liar.txt").write_text("\n".join(lines[:3] + ["liar.webm 0"] + lines[3:]) + "\n")
    loader = build_video_loader(vp9_set / "liar.txt", vp9_set, STRICT_DALI_8x32, split="val", batch_size=2,
                                device="cpu")
    assert not loader.decode_in_dali and "PyAV decoding" in loader.backend  # the manifest knows the codec
    assert sum(len(b["label"]) for b in loader) == len(lines) + 1 and not loader.bad_videos


def test_unopenable_videos_are_replaced_before_dali(vp9_set):
    (vp9_set / "text.webm").write_text("not a video")
    lines = (vp9_set / "train.txt").read_text().splitlines()
    (vp9_set / "bad.txt").write_text("\n".join(lines + ["text.webm 1"]) + "\n")
    config = LoaderConfig(frames=8, size=32, backend="dali", max_bad_fraction=0.5)
    loader = build_video_loader(vp9_set / "bad.txt", vp9_set, config, split="train", batch_size=5, seed=4,
                                device="cpu")
    with pytest.warns(UserWarning, match=r"text.webm: unusable per the preflight manifest \(cannot open as a video"
                                         r".*replaced by another clip"):
        batches = list(loader)
    assert all("text.webm" not in p for b in batches for p in b["path"])


def test_a_rotated_video_is_refused_by_dali_not_decoded_sideways(stamped):
    root, counts = stamped
    build_video_loader(root / "list.txt", root, DALI_8x32, split="val", batch_size=2, device="cpu")
    manifest = root / "list.check.manifest.json"
    document = json.loads(manifest.read_text())
    document["videos"]["s0.webm"]["rotation"] = 90  # as preflight records a phone video's display matrix
    manifest.write_text(json.dumps(document))
    try:
        config = LoaderConfig(frames=8, size=32, backend="dali", max_bad_fraction=0.5, on_dali_error="raise")
        loader = build_video_loader(root / "list.txt", root, config, split="val", batch_size=2, device="cpu")
        with pytest.warns(UserWarning, match=r"s0\.webm: display rotation 90 degrees.*t2l data transcode"):
            batches = list(loader)
        assert sum(len(b["label"]) for b in batches) == len(counts)
    finally:
        manifest.unlink()


def test_pyav_converts_with_bt601_whatever_the_tag_as_dali_does(tmp_path):
    import av

    colour = (200, 40, 40)
    path = tmp_path / "bt709.mp4"
    with av.open(str(path), "w") as container:  # RGB -> YUV with BT.601 (PyAV's default), stream tagged BT.709
        stream = container.add_stream("libx264", rate=25, options={
            "crf": "10", "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709"})
        stream.width, stream.height, stream.pix_fmt = 320, 256, "yuv420p"
        image = np.full((256, 320, 3), colour, np.uint8)
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).colorspace == 1  # BT.709 tag, which players would honour
    assert np.abs(decode_frames(path, [0])[0, 128, 160].astype(int) - colour).max() <= 3


def test_failures_that_do_not_fit_the_output_are_still_counted():
    from t2l_fast.data.dali_loader import FAILURES_BYTES, _failures_of, encode_failures

    failures = [(f"/data/vidéos/{'x' * 150}_{i}.mp4", "cannot open as a video " + "y" * 300) for i in range(10)]
    row = encode_failures(failures)
    assert row.shape == (FAILURES_BYTES,)
    decoded = _failures_of(torch.from_numpy(np.stack([row, encode_failures([])])))
    assert len(decoded) == 10 and decoded[0] == (failures[0][0], failures[0][1][:300])
    assert decoded[-1][0] == "(not named)"


def test_the_source_runs_ahead_of_consumption(vp9_set, tmp_path, monkeypatch):
    from t2l_fast.data import dali_loader

    log, read = tmp_path / "reads.log", dali_loader.read_video_bytes

    def logged(path):  # runs in DALI's forked worker processes: they append to one file
        with open(log, "a") as out:
            out.write(f"{path}\n")
        return read(path)

    monkeypatch.setattr(dali_loader, "read_video_bytes", logged)
    loader = build_video_loader(vp9_set / "train.txt", vp9_set, LoaderConfig(frames=4, size=32, backend="dali"),
                                split="train", batch_size=2, device="cpu")
    assert len(loader) >= 6
    batches = iter(loader)
    next(batches)  # one batch consumed; the workers go on preparing the next ones meanwhile
    for _ in range(200):
        if log.is_file() and len(log.read_text().splitlines()) >= 3 * 2:
            break
        time.sleep(0.1)
    assert len(log.read_text().splitlines()) >= 3 * 2, "the source did not prepare batches ahead"


def test_no_pyav_open_per_sample_when_the_manifest_exists(stamped, monkeypatch):
    root, counts = stamped
    cpu_decodable_codecs()  # (cached; its probe writes clips with PyAV)
    build_video_loader(root / "list.txt", root, DALI_8x32, split="val", batch_size=2, device="cpu")
    assert (root / "list.check.manifest.json").is_file()  # built once, beside the list

    def no_open(*args, **kwargs):
        raise AssertionError("PyAV opened a video in the hot path")

    monkeypatch.setattr("av.open", no_open)  # inherited by DALI's forked workers
    loader = build_video_loader(root / "list.txt", root, STRICT_DALI_8x32, split="val", batch_size=2, device="cpu")
    assert sum(len(b["label"]) for b in loader) == len(counts) and not loader.bad_videos


def test_trimmed_entries_are_decoded_by_dali_from_their_window(tmp_path, monkeypatch):
    write_video(tmp_path / "long.webm", frame_stamped_clip(60, 48, 64), "vp9", fps=10)
    (tmp_path / "list.csv").write_text("path,label,start,end\nlong.webm,0,1.0,3.4\nlong.webm,1,4.0,\n")
    monkeypatch.setattr("t2l_fast.data.dali_loader.decode_frames", lambda *a, **k: pytest.fail("PyAV decoded"))
    loader = build_video_loader(tmp_path / "list.csv", tmp_path, STRICT_DALI_8x32, split="val", batch_size=2,
                                device="cpu")
    (batch,) = list(loader)
    windows = {0: (10, 24), 1: (40, 20)}  # label: (first frame, frames in the window) at 10 fps
    for label, clip in zip(batch["label"].tolist(), batch["video"]):
        first, count = windows[label]
        expected = [first + i for i in segment_indices(count, 8, train=False)]
        assert [read_stamp(frame.numpy()) for frame in clip] == expected


def test_a_hung_read_is_replaced_after_the_timeout(stamped, monkeypatch):
    from t2l_fast.data import dali_loader

    root, _ = stamped
    read = dali_loader.read_video_bytes
    monkeypatch.setattr(dali_loader, "read_video_bytes",
                        lambda path: time.sleep(30) if path.name == "s2.webm" else read(path))
    config = LoaderConfig(frames=8, size=32, backend="dali", decode_timeout=1.0, max_bad_fraction=0.5,
                          on_dali_error="raise")
    loader = build_video_loader(root / "list.txt", root, config, split="val", batch_size=2, device="cpu")
    with pytest.warns(UserWarning, match=r"s2\.webm: decoding took longer than 1 s.*replaced by another clip"):
        batches = list(loader)
    assert sum(len(b["label"]) for b in batches) == 4 and loader.fallback_batches == 0


@pytest.mark.parametrize("split, shards", [("train", 3), ("val", 3)])
def test_dali_sharding_matches_pyav(vp9_set, split, shards):
    for backend in ("pyav", "dali"):
        config = LoaderConfig(frames=4, size=32, backend=backend, num_workers=0)
        seen = [[i for b in build_video_loader(vp9_set / f"{split}.txt", vp9_set, config, split=split, batch_size=2,
                                               shard=(rank, shards), device="cpu")
                 for i in b["index"].tolist()] for rank in range(shards)]
        assert len({len(s) for s in seen}) == 1
        flat = [i for s in seen for i in s]
        if split == "train":
            assert len(flat) == len(set(flat))
        if backend == "pyav":
            reference = seen
        else:
            assert seen == reference


# ------------------------------------------------------------------------------------------- on a GPU (NVDEC)
@pytest.fixture(scope="module")
def h264_b_frames(tmp_path_factory):
    """Frame-stamped 320x256 H.264 mp4 with B-frames (NVDEC's minimum sizes are far below), 33-90 frames."""
    root = tmp_path_factory.mktemp("h264")
    counts = [75, 48, 33, 90]
    for label, n in enumerate(counts):
        write_video(root / f"b{label}.mp4", frame_stamped_clip(n, 256, 320), "h264", b_frames=3)
    (root / "list.txt").write_text("".join(f"b{label}.mp4 {label}\n" for label in range(len(counts))))
    return root, counts


@pytest.mark.dali_gpu
@pytest.mark.parametrize("split", ["train", "val"])
def test_nvdec_decodes_h264_with_b_frames_at_exact_indices(h264_b_frames, split):
    root, counts = h264_b_frames
    config = LoaderConfig(frames=8, size=32, backend="dali", augment=NO_COLOUR, on_dali_error="raise")
    loader = build_video_loader(root / "list.txt", root, config, split=split, batch_size=2, seed=5, device="cuda")
    loader.set_epoch(1)
    assert "NVDEC" in loader.backend
    seen = 0
    for batch in loader:
        assert batch["video"].is_cuda
        for index, label, clip in zip(batch["index"].tolist(), batch["label"].tolist(), batch["video"].cpu()):
            rng = sample_rng(5, 1, index) if split == "train" else None
            expected = segment_indices(counts[label], 8, train=split == "train", rng=rng)
            assert [read_stamp(frame.numpy()) for frame in clip] == expected
            seen += 1
    assert seen == len(counts) and loader.fallback_batches == 0 and not loader.bad_videos


@pytest.mark.dali_gpu
def test_nvdec_fails_on_a_frame_past_the_end_instead_of_padding(h264_b_frames):
    root, counts = h264_b_frames
    common = dict(split="val", batch_size=2, device="cuda")
    build_video_loader(root / "list.txt", root, DALI_8x32, **common)  # writes the manifest
    _inflate_manifest_count(root / "list.txt", "b2.mp4", counts[2] + 6)
    try:
        with pytest.raises(DaliBatchError, match=r"b2\.mp4: .*frame"):
            list(build_video_loader(root / "list.txt", root, STRICT_DALI_8x32, **common))
    finally:
        (root / "list.check.manifest.json").unlink()


@pytest.mark.dali_gpu
def test_nvdec_matches_the_cpu_path(h264_b_frames):
    root, _ = h264_b_frames
    batches = {device: list(build_video_loader(root / "list.txt", root, STRICT_DALI_8x32, split="val",
                                               batch_size=2, device=device))
               for device in ("cpu", "cuda")}  # CPU: PyAV decodes H.264, DALI augments
    for a, b in zip(batches["cpu"], batches["cuda"]):
        assert torch.equal(a["index"], b["index"].cpu())
        assert (a["video"].float() - b["video"].cpu().float()).abs().mean() <= AUGMENTED_MEAN_TOLERANCE


class _BrokenPipeline:
    """A DALI pipeline that fails every batch, as one on a GPU without a usable NVDEC does."""

    def __next__(self):
        raise RuntimeError('Assert on "cuvidCreateVideoParser" failed: CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND')


@pytest.mark.parametrize("every_file_fails_alone", [False, True])
def test_a_dali_that_fails_every_batch_stops_with_the_reason_instead_of_falling_back_forever(
        vp9_set, monkeypatch, every_file_fails_alone):
    from t2l_fast.data import dali_loader

    loader = build_video_loader(vp9_set / "train.txt", vp9_set, DALI_8x32, split="train", batch_size=2, device="cpu")
    monkeypatch.setattr(dali_loader.DaliVideoLoader, "_iterator_from", lambda self, order, batch: _BrokenPipeline())
    if every_file_fails_alone:  # the decoder itself is broken: each file, and a clip written here, fail alone
        def broken_decoder(path, frames, device_id=None):
            raise RuntimeError(f"{path}: CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND")
        monkeypatch.setattr(dali_loader, "decode_with_dali", broken_decoder)
    expected = "cannot decode a vp9 clip written here" if every_file_fails_alone else "3 batches in a row"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallbacks before the rule fires warn, as before
        with pytest.raises(DaliBatchError, match=f"{expected}.*data.backend: pyav"):
            for _ in loader:
                pass
    assert loader.fallback_batches == (0 if every_file_fails_alone else 2)


def test_batches_of_genuinely_bad_files_never_look_like_a_broken_dali(vp9_set, monkeypatch):
    """Every file of each batch fails alone, but a clip written here decodes: bad files, counted and replaced by the
    PyAV path as before; the loader does not stop."""
    from t2l_fast.data import dali_loader

    loader = build_video_loader(vp9_set / "train.txt", vp9_set, DALI_8x32, split="train", batch_size=2, device="cpu")
    monkeypatch.setattr(dali_loader.DaliVideoLoader, "_iterator_from", lambda self, order, batch: _BrokenPipeline())
    monkeypatch.setattr(dali_loader.DaliVideoLoader, "_culprits",
                        lambda self, source, indices: [(f"bad{i}.webm", "corrupt") for i in indices])
    monkeypatch.setattr(dali_loader.DaliVideoLoader, "_report", lambda self, failures, budget: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(loader)
    assert len(batches) == len(loader) and loader.fallback_batches == len(loader)
