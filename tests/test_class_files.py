import pytest

from t2l_fast.errors import ClassFileError
from t2l_fast.text.class_files import read_class_descriptions, read_class_names


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_txt_one_per_line(tmp_path):
    assert read_class_names(write(tmp_path, "c.txt", "run\njump fast\n\n")) == ["run", "jump fast"]


def test_txt_indexed_like_ucf_classind(tmp_path):
    path = write(tmp_path, "classInd.txt", "2 Archery\n1 ApplyEyeMakeup\n3 BabyCrawling\n")
    assert read_class_names(path) == ["ApplyEyeMakeup", "Archery", "BabyCrawling"]


def test_csv_id_name_with_header(tmp_path):
    path = write(tmp_path, "labels.csv", "id,name\n1,jump\n0,abseiling\n")
    assert read_class_names(path) == ["abseiling", "jump"]


def test_csv_single_column(tmp_path):
    assert read_class_names(write(tmp_path, "c.csv", "name\nrun\n\"sit, then stand\"\n")) == ["run", "sit, then stand"]


def test_bom_and_crlf_are_normalized_with_a_warning(tmp_path):
    path = write(tmp_path, "c.txt", b"\xef\xbb\xbfrun\r\njump\r\n")
    with pytest.warns(UserWarning, match="byte-order mark and Windows"):
        assert read_class_names(path) == ["run", "jump"]


@pytest.mark.parametrize("content, match", [
    ("run\njump\nrun\n", r"c.txt:3: duplicate class 'run' \(first at line 1\)"),
    ("run\n\njump\n", r"c.txt:2: empty line"),
    ("", r"c.txt: no classes"),
])
def test_txt_errors_name_file_and_line(tmp_path, content, match):
    with pytest.raises(ClassFileError, match=match):
        read_class_names(write(tmp_path, "c.txt", content))


@pytest.mark.parametrize("content, match", [
    ("id,name\n0,run\n1,jump,extra\n", r"c.csv:3: expected 1 column"),
    ("id,name\n0,run\nx,jump\n", r"c.csv:3: class id 'x'"),
    ("id,name\n0,run\n5,jump\n", r"c.csv: class ids must be 0..1"),
    ("id,name\n0,run\n1,\n", r"c.csv:3: empty class name"),
])
def test_csv_errors_name_file_and_line(tmp_path, content, match):
    with pytest.raises(ClassFileError, match=match):
        read_class_names(write(tmp_path, "c.csv", content))


def test_non_utf8_is_an_error_with_line(tmp_path):
    with pytest.raises(ClassFileError, match=r"c.txt:2: not valid UTF-8"):
        read_class_names(write(tmp_path, "c.txt", b"run\n\xffjump\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ClassFileError, match="nope.txt: cannot read"):
        read_class_names(tmp_path / "nope.txt")


NAMES = ["run", "jump"]


def test_descriptions_official_layout(tmp_path):
    path = write(tmp_path, "d.csv", 'SNo,Class Name,GPT3 description\n0,jump,"Jump is\nleaving the ground."\n'
                                    "1,run,Run is moving fast.\n")
    assert read_class_descriptions(path, NAMES) == ["Run is moving fast.", "Jump is leaving the ground."]


def test_descriptions_two_columns_no_header(tmp_path):
    path = write(tmp_path, "d.csv", "run,moving fast on foot\njump,leaving the ground\n")
    assert read_class_descriptions(path, NAMES) == ["moving fast on foot", "leaving the ground"]


@pytest.mark.parametrize("content, match", [
    ("run,a\nJUMP,b\n", r"d.csv: no description for 1 class\(es\): \['jump'\]; line 2 has 'JUMP': class names must "
                        r"match the class list exactly"),
    ("run,a\njump,b\nrun,c\n", r"d.csv:3: second description for 'run' \(first at line 1\)"),
    ("run,a\n", r"d.csv: no description for 1 class\(es\): \['jump'\]"),
    ("run,a\njump,b,c\n", r"d.csv:2: expected 2 columns"),
    ("run,a\njump,\n", r"d.csv:2: empty description for 'jump'"),
])
def test_description_errors(tmp_path, content, match):
    with pytest.raises(ClassFileError, match=match):
        read_class_descriptions(write(tmp_path, "d.csv", content), NAMES)


def test_descriptions_of_classes_not_in_the_list_are_ignored_with_one_warning(tmp_path):
    path = write(tmp_path, "d.csv", "run,a\nfly,b\njump,c\nswim,d\n")  # e.g. the K600 CSV against a subset
    with pytest.warns(UserWarning, match=r"d.csv: ignored 2 description\(s\) of classes not in the list \(e.g. 'fly', "
                                         r"'swim' at line 2\)"):
        assert read_class_descriptions(path, NAMES) == ["a", "c"]


def test_class_named_like_a_column_word_is_not_a_header(tmp_path):
    path = write(tmp_path, "d.csv", "classical dance,dancing to classical music\nrun,moving fast\n")
    assert read_class_descriptions(path, ["run", "classical dance"]) == ["moving fast", "dancing to classical music"]
