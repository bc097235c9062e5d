"""Bad and odd videos (docs/design/RELIABILITY.md §6 A; the mapping table is docs/RELIABILITY_TESTS.md)."""
import json
import time
import warnings
from pathlib import Path

import pytest

from t2l_fast.cli import main
from t2l_fast.data import LoaderConfig, build_video_loader
from t2l_fast.data import clip_dataset as loader_module
from t2l_fast.data.clip_dataset import TooManyBadVideos
from t2l_fast.data.decode import DecodeTimeout, VideoDecodeError, count_frames, decode_frames, run_with_timeout
from t2l_fast.data.fixtures import write_fixture_zoo
from t2l_fast.data.preflight import probe_all, probe_video
from t2l_fast.data.synthetic import frame_stamped_clip, read_stamp, write_video
from t2l_fast.data.transcode import transcode_video

BAD = {
    "truncated.mp4": "cannot open as a video",
    "zero-byte.mp4": "empty file",
    "stub-5kb.mp4": "cannot open as a video",
    "text.mp4": "cannot open as a video",
    "image.mp4": "an image (jpeg_pipe), not a video",
    "audio-only.mp4": "no video stream",
    "overreported.mp4": "no frame decodes",
    "huge-8192.avi": "exceed",
}
OK = {  # name: (decoded frames, note that must appear or None)
    "good h264.mp4": (48, None),
    "three-frames.mp4": (3, None),
    "one-frame.mp4": (1, None),
    "vfr.mp4": (20, "variable frame rate"),
    "odd-455x256.webm": (12, "odd size 455x256"),
    "tiny-16x16.mp4": (12, "too small for NVDEC"),
    "portrait-rotated.mp4": (8, "display rotation 90"),
    "yuv444p.mp4": (12, "pixel format yuv444p"),
    "yuv422p.mp4": (12, "pixel format yuv422p"),
    "gray.mkv": (12, "pixel format gray"),
    "yuv420p10le.mp4": (12, "pixel format yuv420p10le"),
    "xvid-latin1.avi": (12, "codec mpeg4"),
    "ünïcödé é.mp4": (12, None),
    "-leading-dash.mp4": (12, None),
    "long-gop.mp4": (120, "long GOP"),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    names = write_fixture_zoo(folder)
    assert set(BAD) | set(OK) | {"bit-flipped.mp4"} == set(names)
    return folder


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_get_a_named_reason(zoo, name):
    result = probe_video(zoo / name)
    assert result["verdict"] == "bad" and BAD[name] in result["reason"]
    with pytest.raises(VideoDecodeError, match=name.replace(".", r"\.")):
        decode_frames(zoo / name, [0]) if name != "zero-byte.mp4" else count_frames(zoo / name)


@pytest.mark.parametrize("name", sorted(OK))
def test_odd_but_usable_files_decode_and_are_noted(zoo, name):
    frames, note = OK[name]
    result = probe_video(zoo / name)
    assert result["verdict"] == "ok" and result["num_frames"] == frames
    if note:
        assert any(note in n for n in result["notes"]), result["notes"]
    assert decode_frames(zoo / name, [0, frames - 1]).shape[0] == 2


def test_bit_flipped_never_crashes(zoo):
    result = probe_video(zoo / "bit-flipped.mp4")
    assert result["verdict"] in ("ok", "bad") and (result["reason"] or result["notes"])


def test_rotated_portrait_matches_ffmpeg_autorotate(zoo):
    # 64x32 landscape pixels, top-left quadrant red, display rotation 90: ffmpeg 5.1's autorotate gives a 32-wide,
    # 64-high frame with the red block at the bottom left (checked once with `ffmpeg -i ... -f rawvideo`).
    frame = decode_frames(zoo / "portrait-rotated.mp4", [0])[0]
    assert frame.shape == (64, 32, 3)
    red = frame[..., 0] > 128
    assert red[40:, :12].all() and not red[:24].any() and not red[:, 20:].any()


def test_stamped_frames_of_odd_formats_are_exact(zoo):
    for name in ("yuv444p.mp4", "yuv422p.mp4", "gray.mkv", "yuv420p10le.mp4", "xvid-latin1.avi", "odd-455x256.webm",
                 "vfr.mp4", "long-gop.mp4"):
        frames = decode_frames(zoo / name, [0, 7, 11])
        if name == "gray.mkv":
            continue  # gray keeps no colour, so no stamp
        assert [read_stamp(f) for f in frames] == [0, 7, 11], name


def test_fewer_frames_than_t_are_padded(zoo):
    (zoo / "short.txt").write_text("three-frames.mp4 0\none-frame.mp4 1\n")
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0)
    batch = next(iter(build_video_loader(zoo / "short.txt", zoo, config, split="val", batch_size=2)))
    assert batch["video"].shape == (2, 8, 3, 32, 32)


def test_check_command_names_every_file(zoo, capsys):
    assert main(["data", "check", str(zoo / "list.txt"), "--root", str(zoo), "--timeout", "20",
                 "--out", str(zoo / "check" / "report.json")]) == 1  # a finding: the zoo has bad videos
    out = capsys.readouterr().out
    report = json.loads((zoo / "check" / "report.json").read_text())
    listed = (zoo / "list.txt").read_text().splitlines()
    assert len(report["videos"]) == len(listed)
    for video in report["videos"]:
        assert video["verdict"] in ("ok", "bad") and video["path"] in out
        assert video["verdict"] == "ok" or video["reason"]
    manifest = json.loads((zoo / "check" / "report.manifest.json").read_text())["videos"]
    assert manifest["long-gop.mp4"]["num_frames"] == 120 and "truncated.mp4" not in manifest
    clean = (zoo / "check" / "report.clean.txt").read_text().splitlines()
    assert "good h264.mp4 0" in clean and not any(line.startswith("text.mp4") for line in clean)


def _hang_on_long_gop(path, limits):
    if path.name == "long-gop.mp4":
        time.sleep(600)
    return probe_video(path, limits)


def test_preflight_bounds_a_hanging_probe(zoo):
    started = time.time()
    paths = [zoo / "long-gop.mp4", zoo / "good h264.mp4", zoo / "one-frame.mp4"]
    results = probe_all(paths, jobs=2, timeout=3, probe=_hang_on_long_gop)
    assert time.time() - started < 60
    assert "no answer within 3 s" in results[paths[0]]["reason"]
    assert results[paths[1]]["verdict"] == results[paths[2]]["verdict"] == "ok", results


@pytest.mark.filterwarnings("ignore:.*duplicate entries")
def test_loader_replaces_bad_videos_and_keeps_its_length(zoo):
    (zoo / "mixed.txt").write_text("".join(f"good h264.mp4 {i % 2}\n" for i in range(40))
                                   + "truncated.mp4 0\ntext.mp4 1\n")
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=2)
    loader = build_video_loader(zoo / "mixed.txt", zoo, config, split="train", batch_size=6, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    assert len(batches) == len(loader) == 42 // 6
    messages = [str(w.message) for w in caught if "replaced by another clip" in str(w.message)]
    assert len(messages) == len(loader.bad_videos) == 2
    assert any("truncated.mp4" in m for m in messages) and "(2 bad this epoch)" in messages[-1]
    assert all("good h264.mp4" in p for b in batches for p in b["path"])


@pytest.mark.filterwarnings("ignore:.*duplicate entries")
def test_loader_stops_with_a_summary_past_the_budget(zoo):
    (zoo / "mostly-bad.txt").write_text("good h264.mp4 0\n" * 10 + "text.mp4 0\n" * 10)
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, max_bad_fraction=0.05)
    loader = build_video_loader(zoo / "mostly-bad.txt", zoo, config, split="val", batch_size=4)
    with pytest.warns(UserWarning), pytest.raises(TooManyBadVideos, match=r"(?s)more than 5% .*text.mp4: cannot"):
        list(loader)


def test_loader_bounds_a_hanging_decode(zoo, monkeypatch):
    real = loader_module.decode_frames

    def hang_on_one(path, *args):
        if path.name == "one-frame.mp4":
            time.sleep(30)
        return real(path, *args)

    monkeypatch.setattr(loader_module, "decode_frames", hang_on_one)
    (zoo / "hang.txt").write_text("good h264.mp4 0\none-frame.mp4 1\nthree-frames.mp4 0\n")
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, decode_timeout=2, max_bad_fraction=0.5)
    loader = build_video_loader(zoo / "hang.txt", zoo, config, split="val", batch_size=3)
    started = time.time()
    with pytest.warns(UserWarning, match="one-frame.mp4: decoding took longer than 2 s"):
        batch = next(iter(loader))
    assert time.time() - started < 20 and batch["video"].shape[0] == 3
    with pytest.raises(DecodeTimeout):
        run_with_timeout(lambda: time.sleep(5), 0.5, "sleeper")


def test_manifest_counts_replace_probing(zoo, monkeypatch):
    main(["data", "check", str(zoo / "list.txt"), "--root", str(zoo), "--out", str(zoo / "m" / "r.json")])

    def no_probing(*args):
        raise AssertionError("count_frames called despite the manifest")

    monkeypatch.setattr(loader_module, "count_frames", no_probing)
    config = LoaderConfig(frames=4, size=32, backend="pyav", num_workers=0, manifest=zoo / "m" / "r.manifest.json")
    loader = build_video_loader(zoo / "m" / "r.clean.txt", zoo, config, split="val", batch_size=4)
    assert sum(len(b["label"]) for b in loader) == len(OK) + 1


def test_transcode_makes_gpu_friendly_h264(tmp_path, zoo):
    for name in ("xvid-latin1.avi", "yuv420p10le.mp4", "odd-455x256.webm", "long-gop.mp4", "portrait-rotated.mp4"):
        target = tmp_path / (Path(name).stem + ".mp4")
        transcode_video(zoo / name, target, gop=8)
        result = probe_video(target)
        assert result["verdict"] == "ok" and result["codec"] == "h264" and result["pixel_format"] == "yuv420p"
        assert not any(n.startswith(("odd", "long", "pixel", "codec", "display", "variable")) for n in
                       result["notes"]), (name, result["notes"])
        assert result["num_frames"] == OK[name][0]
    stamps = [read_stamp(f) for f in decode_frames(tmp_path / "long-gop.mp4", range(0, 120, 17))]
    assert stamps == list(range(0, 120, 17))  # constant-rate input: every frame kept, in place


def test_transcode_downscales_to_the_short_side(tmp_path):
    write_video(tmp_path / "hd.mp4", frame_stamped_clip(12, 720, 1280), "h264")
    transcode_video(tmp_path / "hd.mp4", tmp_path / "small.mp4", short_side=320)
    result = probe_video(tmp_path / "small.mp4")
    assert (result["width"], result["height"], result["num_frames"]) == (568, 320, 12)
    assert [read_stamp(f) for f in decode_frames(tmp_path / "small.mp4", [0, 5, 11])] == [0, 5, 11]
    transcode_video(tmp_path / "small.mp4", tmp_path / "same.mp4", short_side=480)  # never upscaled
    assert probe_video(tmp_path / "same.mp4")["height"] == 320


def test_transcode_writes_only_inside_out_root(tmp_path, zoo):
    from t2l_fast.data.transcode import transcode_list

    report = {"root": str(zoo), "videos": [{"verdict": "ok", "path": "../../escape.mp4", "label": 0, "notes": []}]}
    with pytest.raises(VideoDecodeError, match=r"\.\./\.\./escape.mp4: a report path that leads outside --out-root"):
        transcode_list(report, tmp_path / "out")
    assert not (tmp_path.parent / "escape.mp4").exists()


def test_transcode_evens_out_variable_frame_rate(tmp_path, zoo):
    info = transcode_video(zoo / "vfr.mp4", tmp_path / "cfr.mp4")
    result = probe_video(tmp_path / "cfr.mp4")
    assert "variable frame rate" not in result["notes"] and result["num_frames"] == info["frames"]
    stamps = [read_stamp(f) for f in decode_frames(tmp_path / "cfr.mp4", range(info["frames"]))]
    assert stamps == sorted(stamps) and stamps[0] == 0 and stamps[-1] == 19


def test_cli_fixtures_and_transcode(tmp_path, capsys):
    assert main(["data", "fixtures", str(tmp_path / "z")]) == 0
    assert main(["data", "check", str(tmp_path / "z" / "list.txt"), "--root", str(tmp_path / "z")]) == 1  # bad ones
    assert main(["data", "transcode", str(tmp_path / "z" / "list.check.json"), "--out-root", str(tmp_path / "t")]) == 0
    assert main(["data", "check", str(tmp_path / "t" / "list.txt"), "--root", str(tmp_path / "t")]) == 0
    report = json.loads((tmp_path / "t" / "list.check.json").read_text())
    assert report["summary"]["bad"] == 0 and report["summary"]["ok"] == len(OK) + 1
