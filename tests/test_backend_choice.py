"""`--backend auto`: picks among the backends that can run and passed their gates, measured once per machine and
export and cached in backend_choice.json (the measurement is monkeypatched here, never timed, except in the one
test that runs it for real and checks only what it chose and why)."""
import json

import numpy as np
import pytest
from export_cache import CLASSES, add_int8_graphs

from t2l_fast.cli import main
from t2l_fast.runtime import backend_choice
from t2l_fast.runtime.backend_choice import CHOICE_FILE, choose_backend
from t2l_fast.runtime.bundle import ExportedModel
from t2l_fast.runtime.export_runners import BACKENDS

pytest.importorskip("openvino", reason="auto is tested with OpenVINO installed (pip install 't2l-fast[onnx]')")

# what the stand-in measurement reports: the INT8 backends fastest, so only their gate can keep auto off them
MILLISECONDS = {"openvino-int8": 1.0, "onnx-int8": 2.0, "openvino-bf16": 3.0, "openvino": 4.0, "onnx": 5.0}


class FakeMeasurement:
    """Stands in for measure_backends: counts its calls and reports MILLISECONDS for every CPU backend, asked for or
    not (so that what auto refuses is refused by auto, not by the stand-in)."""

    def __init__(self):
        self.calls = []

    def __call__(self, bundle, names, device):
        self.calls.append(list(names))
        return {name: {"ms_per_clip": ms, "parity": None, "passed": True, "why": None}
                for name, ms in MILLISECONDS.items()}


@pytest.fixture
def export(tiny_exports, tmp_path):
    return tiny_exports.copy(tmp_path / "export")


@pytest.mark.parametrize("passed", [True, False], ids=["int8-gate-passed", "int8-gate-failed"])
def test_auto_never_picks_a_graph_whose_gate_failed(export, passed):
    add_int8_graphs(export, gate_passed=passed)
    measure = FakeMeasurement()
    choice = choose_backend(ExportedModel(export), "cpu", measure=measure)
    if passed:
        assert choice.backend == "openvino-int8" and "onnx-int8" in measure.calls[0]
    else:
        assert choice.backend == "openvino-bf16" and not any("int8" in name for name in measure.calls[0])
        assert "onnx-int8, openvino-int8: the INT8 graphs did not pass the agreement gate" in choice.line
    assert choice.line.startswith(f"backend auto: {choice.backend} (")
    assert "measured now (first run here)" in choice.line


def test_the_measurement_is_cached_and_taken_again_when_the_machine_or_export_changes(export, monkeypatch):
    measure = FakeMeasurement()
    first = choose_backend(ExportedModel(export), "cpu", measure=measure)
    second = choose_backend(ExportedModel(export), "cpu", measure=measure)
    assert len(measure.calls) == 1 and second.backend == first.backend == "openvino-bf16"
    assert f"on this machine ({export / CHOICE_FILE})" in second.line
    record = json.loads((export / CHOICE_FILE).read_text())
    assert record["chosen"] == "openvino-bf16" and record["key"]["machine"]["cpu"] and record["measured_at"]
    assert not list(export.glob(f".{CHOICE_FILE}*"))  # written through a temporary file, renamed

    identity = backend_choice.machine_identity
    monkeypatch.setattr(backend_choice, "machine_identity", lambda gpu: {**identity(gpu), "cpu": "another CPU"})
    assert "machine changed" in choose_backend(ExportedModel(export), "cpu", measure=measure).line
    assert len(measure.calls) == 2
    add_int8_graphs(export, gate_passed=True)  # the export changed: new graphs, a new verdict
    assert choose_backend(ExportedModel(export), "cpu", measure=measure).backend == "openvino-int8"
    assert len(measure.calls) == 3


def test_a_cached_choice_is_checked_again(export):
    """A cached record that names an INT8 backend is not trusted once the verdict says failed (whatever the key)."""
    add_int8_graphs(export, gate_passed=True)
    measure = FakeMeasurement()
    assert choose_backend(ExportedModel(export), "cpu", measure=measure).backend == "openvino-int8"
    bundle = ExportedModel(export)
    bundle.manifest["int8"]["gate"]["passed"] = False  # in memory only: the cache key still matches
    choice = choose_backend(bundle, "cpu", measure=measure)
    assert len(measure.calls) == 1 and choice.backend == "openvino-bf16"


@pytest.mark.parametrize("content", ["{not json", '{"format": "t2l-fast-backend-choice", "key": {}, "results": '
                                     '{"rm -rf": {"ms_per_clip": 1, "passed": true}}}', "[]"])
def test_a_corrupt_cache_is_ignored_with_a_warning(export, content):
    (export / CHOICE_FILE).write_text(content)
    measure = FakeMeasurement()
    with pytest.warns(RuntimeWarning, match="not a backend choice record"):
        choice = choose_backend(ExportedModel(export), "cpu", measure=measure)
    assert len(measure.calls) == 1 and choice.backend == "openvino-bf16"
    assert json.loads((export / CHOICE_FILE).read_text())["chosen"] == "openvino-bf16"


def test_a_read_only_export_is_measured_but_not_written(export, monkeypatch):
    monkeypatch.setattr(backend_choice.os, "access", lambda path, mode: False)
    choice = choose_backend(ExportedModel(export), "cpu", measure=FakeMeasurement())
    assert "not cached" in choice.line and not (export / CHOICE_FILE).exists()


def test_auto_measures_for_real_and_skips_a_changed_int8_graph(export, tmp_path, capsys):
    """The real measurement (a few calls per backend on the tiny export): it picks a backend that ran and passed
    parity, says why in one line, and a tampered INT8 graph (gate passed, file changed since) is never picked."""
    from t2l_fast.data.synthetic import synthetic_clip, write_video

    add_int8_graphs(export, gate_passed=True)
    with open(export / "video_encoder_int8.onnx", "ab") as f:
        f.write(b"\0")
    video, descriptions = tmp_path / "clip.mp4", tmp_path / "descriptions.csv"
    write_video(video, synthetic_clip(np.random.default_rng(0), 0, 24, 64, 64))
    descriptions.write_text("".join(f"{name},{name}\n" for name in CLASSES))  # the export's class texts
    assert main(["predict", str(video), "--classes", ",".join(CLASSES), "--descriptions", str(descriptions),
                 "--onnx", str(export), "--device", "cpu", "--no-cache"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("backend auto:")]
    record = json.loads((export / CHOICE_FILE).read_text())
    assert record["chosen"] in ("onnx", "openvino", "openvino-bf16") and f"backend auto: {record['chosen']} (" in line
    for name in ("onnx-int8", "openvino-int8"):
        assert not record["results"][name]["passed"] and "sha256" in record["results"][name]["why"]
    assert all(record["results"][name]["passed"] for name in ("onnx", "openvino"))
    assert set(record["results"]) | set(record["excluded"]) == set(BACKENDS)
    assert f"from {export} (" in out and "classifier graph" in out and "1 clip)" in out
