"""List-file faults of docs/design/RELIABILITY.md §6 B (16-21); class-file faults (20) are in test_class_files.py."""
import os

import pytest

from t2l_fast.data.lists import VideoListError, read_video_list, restrict_to_classes
from t2l_fast.data.splits import hmdb51_split, ucf101_split


@pytest.fixture
def root(tmp_path):
    data = tmp_path / "data"
    for name in ("a/x.mp4", "a/y.mp4", "b/z w.mp4", "-lead.mp4", "ünï/ç.mp4"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(b"")
    return data


def write(tmp_path, text, name="list.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_official_format_with_spaces_unicode_and_leading_dash(tmp_path, root):
    entries = read_video_list(write(tmp_path, "a/x.mp4 0\nb/z w.mp4 1\n-lead.mp4 2\nünï/ç.mp4 1\n\n# comment\n"),
                              root)
    assert [(e.path.name, e.label) for e in entries] == [("x.mp4", 0), ("z w.mp4", 1), ("-lead.mp4", 2), ("ç.mp4", 1)]
    assert entries[1].source.endswith("list.txt:2")


def test_csv_with_class_names_and_times(tmp_path, root):
    path = write(tmp_path, "path,label,start,end\na/x.mp4,run,1.5,4\na/y.mp4,1,,\n", "list.csv")
    entries = read_video_list(path, root, class_names=["run", "jump"])
    assert [(e.label, e.start, e.end) for e in entries] == [(0, 1.5, 4.0), (1, None, None)]


def test_16_missing_file_reported_with_line(tmp_path, root):
    path = write(tmp_path, "a/x.mp4 0\na/gone.mp4 1\n")
    with pytest.raises(VideoListError, match=r"1 listed video\(s\) do not exist.*list.txt:2: a/gone.mp4"):
        read_video_list(path, root)
    with pytest.warns(UserWarning, match=r"skipped 1 missing.*list.txt:2"):
        assert len(read_video_list(path, root, missing="skip")) == 1


@pytest.mark.parametrize("text, match", [
    ("a/x.mp4\n", r"list.txt:1: expected 'relative/path label'"),
    ("a/x.mp4 zero\n", r"list.txt:1: label 'zero' is not an integer"),
    ("a/x.mp4 0\na/y.mp4 -1\n", r"list.txt:2: label -1 is out of range"),
])
def test_17_bad_lines(tmp_path, root, text, match):
    with pytest.raises(VideoListError, match=match):
        read_video_list(write(tmp_path, text), root)


def test_17_out_of_range_label_and_inverted_times(tmp_path, root):
    with pytest.raises(VideoListError, match=r"list.txt:1: label 5 is out of range \(0..1\)"):
        read_video_list(write(tmp_path, "a/x.mp4 5\n"), root, num_classes=2)
    csv = write(tmp_path, "path,label,start,end\na/x.mp4,0,5,2\n", "l.csv")
    with pytest.raises(VideoListError, match=r"l.csv:2: start 5.0 s is not before end 2.0 s"):
        read_video_list(csv, root)
    with pytest.raises(VideoListError, match=r"l.csv:1: CSV header"):
        read_video_list(write(tmp_path, "file_name,y\na/x.mp4,0\n", "l.csv"), root)
    with pytest.raises(VideoListError, match=r"l.csv:2: 3 columns, the header has 2"):
        read_video_list(write(tmp_path, "path,label\na/x.mp4,0,9\n", "l.csv"), root)


def test_18_paths_escaping_the_root(tmp_path, root):
    (tmp_path / "secret.mp4").write_bytes(b"")
    os.symlink(tmp_path / "secret.mp4", root / "link.mp4")
    for text, match in (("../../etc/passwd 0\n", "contains '..'"), ("/etc/passwd 0\n", "absolute path"),
                        ("link.mp4 0\n", "leads outside the data root")):
        with pytest.raises(VideoListError, match=f"list.txt:1: .*{match}"):
            read_video_list(write(tmp_path, text), root)


def test_19_empty_list_or_all_invalid(tmp_path, root):
    with pytest.raises(VideoListError, match="no usable videos \\(it has no entries\\)"):
        read_video_list(write(tmp_path, "\n# nothing\n"), root)
    with pytest.warns(UserWarning), pytest.raises(VideoListError, match="all listed videos are missing"):
        read_video_list(write(tmp_path, "gone.mp4 0\n"), root, missing="skip")


def test_21_duplicates_warned_and_counted(tmp_path, root):
    with pytest.warns(UserWarning, match=r"2 duplicate entries.*list.txt:2 \(first at line 1\)"):
        entries = read_video_list(write(tmp_path, "a/x.mp4 0\na/x.mp4 0\na/x.mp4 1\n"), root)
    assert len(entries) == 3


def test_k600_style_class_subset(tmp_path, root):
    entries = read_video_list(write(tmp_path, "a/x.mp4 0\na/y.mp4 2\nb/z w.mp4 1\n"), root)
    subset = restrict_to_classes(entries, ["run", "jump", "swim"], ["swim", "run"])
    assert [(e.path.name, e.label) for e in subset] == [("x.mp4", 1), ("y.mp4", 0)]
    with pytest.raises(VideoListError, match="unknown class"):
        restrict_to_classes(entries, ["run"], ["fly"])


def test_ucf101_and_hmdb51_split_files(tmp_path):
    root = tmp_path / "videos"
    for name in ("Archery/v_a.avi", "Archery/v_b.avi", "Bowling/v_c.avi", "brush_hair/h1.avi", "cartwheel/h2.avi"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    ucf = tmp_path / "ucfTrainTestlist"
    ucf.mkdir()
    (ucf / "classInd.txt").write_text("1 Archery\n2 Bowling\n")
    (ucf / "testlist01.txt").write_text("Archery/v_a.avi\nBowling/v_c.avi\n")
    (ucf / "trainlist01.txt").write_text("Archery/v_b.avi 1\n")
    names, entries = ucf101_split(ucf, root, 1, "test")
    assert names == ["Archery", "Bowling"] and [(e.path.name, e.label) for e in entries] == [("v_a.avi", 0),
                                                                                            ("v_c.avi", 1)]
    assert [e.path.name for e in ucf101_split(ucf, root, 1, "train")[1]] == ["v_b.avi"]
    hmdb = tmp_path / "splits"
    hmdb.mkdir()
    (hmdb / "cartwheel_test_split2.txt").write_text("h2.avi 2\nother.avi 0\n")
    (hmdb / "brush_hair_test_split2.txt").write_text("h1.avi 2 \n")
    names, entries = hmdb51_split(hmdb, root, 2, "test")
    assert names == ["brush hair", "cartwheel"] and [(e.path.name, e.label) for e in entries] == [("h1.avi", 0),
                                                                                                 ("h2.avi", 1)]
    with pytest.raises(VideoListError, match="no '\\*_test_split1.txt' files"):
        hmdb51_split(hmdb, root, 1)
    (hmdb / "cartwheel_test_split3.txt").write_bytes(b"h2.avi 2\n\xff\xfe\x00")
    with pytest.raises(VideoListError, match="cartwheel_test_split3.txt: not UTF-8 text"):
        hmdb51_split(hmdb, root, 3)
    (ucf / "testlist02.txt").write_text("Cycling/v_d.avi\n")
    with pytest.raises(VideoListError, match="testlist02.txt:1: folder 'Cycling' is not a class"):
        ucf101_split(ucf, root, 2)


def test_official_t2l_lists_are_converted_onto_the_root(tmp_path):
    from t2l_fast.cli import main

    root = tmp_path / "videos"
    for name in ("v_PushUps_g01_c05.avi", "sub/clap_0.avi"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    official = tmp_path / "test.txt"
    official.write_text("/media/x/UCF/v_PushUps_g01_c05 63 71\n/media/x/UCF/sub/clap_0.avi 53 4\n")
    with pytest.raises(VideoListError, match="looks like the official T2L list format.*t2l data convert-list"):
        read_video_list(official, root)
    assert main(["data", "convert-list", str(official), "--root", str(root), "--out", str(tmp_path / "ours.txt")]) == 0
    assert (tmp_path / "ours.txt").read_text() == "v_PushUps_g01_c05.avi 71\nsub/clap_0.avi 4\n"
    assert [e.label for e in read_video_list(tmp_path / "ours.txt", root)] == [71, 4]
    official.write_text("/media/x/UCF/v_PushUps_g01_c05 63 71\n/media/x/UCF/gone.avi 9 1\n")
    assert main(["data", "convert-list", str(official), "--root", str(root), "--out", str(tmp_path / "o.txt")]) == 2
