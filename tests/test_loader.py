from pathlib import Path

import pytest
import torch

from t2l_fast.data import LoaderConfig, build_video_loader
from t2l_fast.data.augment import NO_COLOUR
from t2l_fast.data.sampling import sample_rng, segment_indices
from t2l_fast.data.synthetic import frame_stamped_clip, read_stamp, write_video

FRAME_COUNTS = [40, 23, 8, 5]  # N > T (even and odd segment lengths), N = T, N < T


@pytest.fixture(scope="module")
def stamped(tmp_path_factory):
    """Frame-stamped videos (frame i shows colour i) with N frames each, and a list labelling video k as k."""
    root = tmp_path_factory.mktemp("stamped")
    lines = []
    for label, frames in enumerate(FRAME_COUNTS):
        name = f"clip {label} n{frames}.mp4"  # a space in the name on purpose
        write_video(root / name, frame_stamped_clip(frames, 48, 64))
        lines.append(f"{name} {label}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root


def stamps(video: torch.Tensor):
    return [[read_stamp(frame.numpy()) for frame in clip] for clip in video]


@pytest.mark.parametrize("split", ["train", "val"])
def test_decoded_indices_are_exactly_the_requested_ones(stamped, split):
    for epoch in (0, 1):
        config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, augment=NO_COLOUR)
        loader = build_video_loader(stamped / "list.txt", stamped, config, split=split, batch_size=2, seed=11)
        loader.set_epoch(epoch)
        seen = 0
        for batch in loader:
            for index, label, got in zip(batch["index"].tolist(), batch["label"].tolist(), stamps(batch["video"])):
                rng = sample_rng(11, epoch, index) if split == "train" else None
                assert got == segment_indices(FRAME_COUNTS[label], 8, train=split == "train", rng=rng)
                seen += 1
        assert seen == 4


def test_contract_shapes_dtype_order(stamped):
    loader = build_video_loader(stamped / "list.txt", stamped, LoaderConfig(frames=8, size=32, backend="pyav",
                                                                            num_workers=2),
                                split="val", batch_size=3)
    batches = list(loader)
    assert len(loader) == len(batches) == 2  # 4 videos, batches of 3, the last one partial in evaluation
    first = batches[0]
    assert set(first) == {"video", "label", "index", "path"}
    assert first["video"].shape == (3, 8, 3, 32, 32) and first["video"].dtype == torch.uint8
    assert first["label"].dtype == torch.int64 and first["index"].dtype == torch.int64
    labels = torch.cat([b["label"] for b in batches]).tolist()
    assert labels == [0, 1, 2, 3]  # evaluation keeps list order
    assert [Path(p).name for p in first["path"]] == ["clip 0 n40.mp4", "clip 1 n23.mp4", "clip 2 n8.mp4"]


def test_float_dtype_is_scaled(stamped):
    config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0, dtype=torch.float32)
    loader = build_video_loader(stamped / "list.txt", stamped, config, split="val", batch_size=4)
    video = next(iter(loader))["video"]
    assert video.dtype == torch.float32 and 0 <= video.min() and video.max() <= 1


def test_same_seed_and_epoch_give_the_same_batches(stamped):
    def epoch_batches(epoch):
        config = LoaderConfig(frames=8, size=32, backend="pyav", num_workers=0)
        loader = build_video_loader(stamped / "list.txt", stamped, config, split="train", batch_size=2, seed=3)
        loader.set_epoch(epoch)
        return [(b["index"].tolist(), b["video"]) for b in loader]

    a, b, c = epoch_batches(1), epoch_batches(1), epoch_batches(2)
    assert [i for i, _ in a] == [i for i, _ in b]
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(a, b))
    assert [i for i, _ in a] != [i for i, _ in c] or not all(torch.equal(x, y) for (_, x), (_, y) in zip(a, c))


@pytest.mark.parametrize("split, size, shards", [("train", 11, 3), ("train", 12, 4), ("val", 11, 3), ("val", 12, 4)])
def test_sharding_splits_an_epoch(tmp_path, split, size, shards):
    write_video(tmp_path / "v.mp4", frame_stamped_clip(8, 32, 32))
    (tmp_path / "list.txt").write_text("".join(f"v.mp4 {i % 2}\n" for i in range(size)))
    per_rank = []
    with pytest.warns(UserWarning, match="duplicate"):
        for rank in range(shards):
            config = LoaderConfig(frames=4, size=32, backend="pyav", num_workers=0)
            loader = build_video_loader(tmp_path / "list.txt", tmp_path, config, split=split, batch_size=1,
                                        shard=(rank, shards))
            per_rank.append([i for b in loader for i in b["index"].tolist()])
    lengths = {len(r) for r in per_rank}
    assert len(lengths) == 1  # every rank has the same number of batches
    flat = [i for r in per_rank for i in r]
    if split == "train":
        assert len(set(flat)) == len(flat) == size // shards * shards  # no overlap, tail dropped
    else:
        assert set(flat) == set(range(size))  # every video, the wrap-around repeats only to even out
        assert len(flat) - len(set(flat)) == -size % shards


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_twin_batches_pair_every_clip_with_its_twin_class(shards):
    from t2l_fast.data.clip_dataset import ShardSampler

    labels = [c for c in range(6) for _ in range(7)]  # 3 twin pairs of classes, 7 clips each
    orders = []
    for rank in range(shards):
        sampler = ShardSampler(len(labels), shard_id=rank, num_shards=shards, shuffle=True, drop_tail=True, seed=3,
                               twin_labels=labels)
        sampler.epoch = 1
        order = list(sampler)
        assert len(order) == len(sampler) == len(labels) // 2 // shards * 2 and order == list(sampler)
        assert all(labels[a] ^ 1 == labels[b] for a, b in zip(order[::2], order[1::2]))  # (clip, twin) pairs
        sampler.start = 4  # a resume mid-epoch: the rest of the same order
        assert list(sampler) == order[4:]
        orders.append(order)
    anchors = [i for order in orders for i in order[::2]]
    assert len(set(anchors)) == len(anchors)  # each rank its own pairs
    sampler.epoch = 2
    sampler.start = 0
    assert list(sampler) != orders[-1]


def test_twin_batches_need_even_batches_and_twin_classes(stamped):
    twins = LoaderConfig(frames=8, size=32, backend="pyav", twin_batches=True)
    with pytest.raises(ValueError, match="batch_size 3 is odd"):
        build_video_loader(stamped / "list.txt", stamped, twins, batch_size=3)
    (stamped / "lonely.txt").write_text("clip 0 n40.mp4 0\nclip 1 n23.mp4 1\nclip 2 n8.mp4 2\n")
    with pytest.raises(ValueError, match=r"lonely.txt: twin batches pair class 2k with 2k \+ 1, and class 2 has no "
                                         r"clips of its twin 3"):
        build_video_loader(stamped / "lonely.txt", stamped, twins, batch_size=2)
    loader = build_video_loader(stamped / "list.txt", stamped, twins, batch_size=2)  # labels 0..3: two twin pairs
    assert all(labels[0] ^ 1 == labels[1] for labels in (b["label"].tolist() for b in loader))


def test_bad_arguments(stamped):
    pyav = LoaderConfig(frames=8, size=32, backend="pyav")
    with pytest.raises(ValueError, match="split must be"):
        build_video_loader(stamped / "list.txt", stamped, pyav, split="test", batch_size=2)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        build_video_loader(stamped / "list.txt", stamped, LoaderConfig(frames=0, size=32), batch_size=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        build_video_loader(stamped / "list.txt", stamped, LoaderConfig(frames=8, size=32), batch_size=8)
    with pytest.raises(ValueError, match="backend must be one of"):
        build_video_loader(stamped / "list.txt", stamped, LoaderConfig(frames=8, size=32, backend="nvdec"),
                           batch_size=2)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA GPU"):
            build_video_loader(stamped / "list.txt", stamped, pyav, batch_size=2, device="cuda")


def test_the_package_exports_the_loader_itself():
    """t2l_fast.data imports the loader lazily (torch, PyAV) but hands out the real function and config."""
    import t2l_fast.data
    from t2l_fast.data import loader

    assert t2l_fast.data.build_video_loader is loader.build_video_loader
    assert t2l_fast.data.LoaderConfig is loader.LoaderConfig
