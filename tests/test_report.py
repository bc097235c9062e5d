import json

from t2l_fast.perf.report import conditions, markdown_table, pivot, write_report


def test_report_json_markdown_and_conditions(tmp_path):
    rows = [{"backend": "pyav", "clips_per_s": 12.345}, {"backend": "dali", "clips_per_s": 1234.5}]
    paths = write_report(tmp_path, "loader", title="Loader", rows=rows, columns=["backend", "clips_per_s"],
                         conditions=conditions(batch_size=4), definitions={"clips_per_s": "clips per second"},
                         notes=["a note"], panels=[pivot(rows, lambda r: "B=1", lambda r: r["backend"], "clips_per_s")])
    document = json.loads(paths["json"].read_text())
    assert document["rows"] == rows and document["conditions"]["batch_size"] == 4
    for key in ("device", "cpu", "cpu_count", "torch_threads", "versions", "git_sha", "time"):
        assert key in document["conditions"]
    assert "torch" in document["conditions"]["versions"]
    text = paths["md"].read_text()
    assert "| pyav | 12.3 |" in text and "| dali | 1,234 |" in text
    assert "clips per second" in text and "a note" in text
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    assert document["conditions"]["git_dirty"] in (True, False)  # this checkout is a git clone


def test_pivot_groups_rows_into_series():
    rows = [{"g": "a", "s": "x", "v": 1.0}, {"g": "a", "s": "y", "v": 2.0}, {"g": "b", "s": "y", "v": 3.0}]
    panel = pivot(rows, lambda r: r["g"], lambda r: r["s"], "v")
    assert panel.groups == ["a", "b"] and panel.series == {"x": [1.0, None], "y": [2.0, 3.0]}


def test_markdown_table_blank_for_missing_cells():
    assert markdown_table([{"a": 1}], ["a", "b"]).splitlines()[-1] == "| 1 |  |"
