"""`t2l serve --run-batch auto`: the batch a server runs its backend at, measured once per machine, export and
backend and cached in serve_batch.json. The measurement is stood in for (or its clock is), except in the one test
that runs it for real and checks only its shape."""
import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from t2l_fast.cli import build_parser
from t2l_fast.errors import T2LError
from t2l_fast.runtime import backend_choice, base, batch_choice
from t2l_fast.runtime.batch_choice import BATCH_FILE, best_batch, candidate_batches, choose_run_batch
from t2l_fast.runtime.bundle import ExportedModel


@pytest.fixture
def export(tiny_exports, tmp_path):
    return ExportedModel(tiny_exports.copy(tmp_path / "export"))


class FakeMeasurement:
    """Stands in for measure_batches: counts its calls and reports `rates` for the batches asked for."""

    def __init__(self, rates):
        self.rates, self.calls = rates, []

    def __call__(self, bundle, backend, device, batches):
        self.calls.append((backend, list(batches)))
        return {str(b): self.rates[b] for b in batches}


@pytest.mark.parametrize("max_batch,batches", [(1, [1]), (8, [1, 2, 4, 8]), (12, [1, 2, 4, 8, 12]),
                                               (32, [1, 2, 4, 8, 16, 32])])
def test_candidates_double_up_to_the_limit(max_batch, batches):
    assert candidate_batches(max_batch) == batches


@pytest.mark.parametrize("rates,batch", [({"1": 10.0, "2": 10.2, "4": 9.0}, 1),  # batching does not pay: 1
                                         ({"1": 10.0, "2": 15.0, "4": 15.3}, 2),  # within 3% of the best: smaller
                                         ({"1": 10.0, "2": 15.0, "4": 30.0}, 4)])
def test_the_smallest_batch_near_the_best_throughput_wins(rates, batch):
    assert best_batch(rates) == batch


def test_the_choice_is_cached_per_backend_and_limit(export):
    measure = FakeMeasurement({1: 5.0, 2: 9.0, 4: 9.1, 8: 7.0})
    first = choose_run_batch(export, "onnx", "cpu", 8, measure=measure)
    again = choose_run_batch(export, "onnx", "cpu", 8, measure=measure)
    assert first.batch == again.batch == 2 and len(measure.calls) == 1
    assert first.line.startswith("runs video batches of 2, the smallest within 3% of the best throughput of onnx")
    assert "5 at 1, 9 at 2, 9.1 at 4, 7 at 8 clips/s" in first.line and "measured now (first run here)" in first.line
    assert f"on this machine ({export.directory / BATCH_FILE})" in again.line
    choose_run_batch(export, "openvino", "cpu", 8, measure=measure)  # another backend, another limit: measured again
    choose_run_batch(export, "openvino", "cpu", 4, measure=measure)
    assert measure.calls[1:] == [("openvino", [1, 2, 4, 8]), ("openvino", [1, 2, 4])]


def test_one_batch_allowed_is_not_measured(export):
    measure = FakeMeasurement({})
    assert choose_run_batch(export, "onnx", "cpu", 1, measure=measure).batch == 1 and not measure.calls


@pytest.mark.parametrize("tamper", [lambda r: r["clips_per_s"].update({"64": 1e9}),  # above --max-batch
                                    lambda r: r["clips_per_s"].update({"3": 1e9}),  # not a batch it timed
                                    lambda r: r["clips_per_s"].update({"1": True}),
                                    lambda r: r["clips_per_s"].clear(),
                                    lambda r: r.pop("measured_at"),
                                    lambda r: r.update(measured_at="\x1b[2Jnot a time")],
                         ids=["above-limit", "untimed-batch", "bool", "empty", "no-time", "bad-time"])
def test_a_record_with_the_right_key_but_bad_contents_is_measured_again(export, tamper):
    measure = FakeMeasurement({1: 5.0, 2: 9.0, 4: 9.1, 8: 7.0})
    choose_run_batch(export, "onnx", "cpu", 8, measure=measure)
    path = export.directory / BATCH_FILE
    record = json.loads(path.read_text())
    tamper(record)
    path.write_text(json.dumps(record))
    with pytest.warns(RuntimeWarning, match="not a serve batch record"):
        choice = choose_run_batch(export, "onnx", "cpu", 8, measure=measure)
    assert choice.batch == 2 and len(measure.calls) == 2


def test_a_read_only_export_is_measured_every_time(export, monkeypatch):
    monkeypatch.setattr(backend_choice.os, "access", lambda path, mode: False)
    measure = FakeMeasurement({1: 5.0, 2: 4.0})
    lines = [choose_run_batch(export, "onnx", "cpu", 2, measure=measure).line for _ in range(2)]
    assert len(measure.calls) == 2 and all("not cached: " in line and "is read-only" in line for line in lines)
    assert not (export.directory / BATCH_FILE).exists()


@pytest.mark.parametrize("content", ["not json", json.dumps({"format": "t2l-fast-serve-batch", "key": {},
                                                             "clips_per_s": {"1": -3}})])
def test_a_corrupt_record_is_warned_about_and_measured_again(export, content):
    (export.directory / BATCH_FILE).write_text(content)
    measure = FakeMeasurement({1: 5.0, 2: 4.0})
    with pytest.warns(RuntimeWarning, match="not a serve batch record"):
        choice = choose_run_batch(export, "onnx", "cpu", 2, measure=measure)
    assert choice.batch == 1 and len(measure.calls) == 1


def _stand_in_runner(monkeypatch, seconds_per_clip):
    """batch_choice's runner and clock stood in for: a call on B clips takes B * seconds_per_clip(B) (raising what
    that returns when it is an exception); returns the batches asked for."""
    clock, asked = [0.0], []

    class Runner:
        def infer(self, feed):
            batch = len(feed["frames"])
            asked.append(batch)
            cost = seconds_per_clip(batch)
            if isinstance(cost, Exception):
                raise cost
            clock[0] += batch * cost
            return {"embedding": feed["frames"][:, 0, 0, 0, :1]}

    @contextmanager
    def runner(bundle, backend, graph, device):
        yield Runner()

    monkeypatch.setattr(batch_choice, "export_runner", runner)
    monkeypatch.setattr(base, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    return asked


def test_the_timing_stops_once_a_batch_is_clearly_slower(export, monkeypatch):
    """1 s per clip alone, 1.05 s in pairs (within the noise: go on), 1.2 s in fours (slower: stop); 8 never timed."""
    asked = _stand_in_runner(monkeypatch, {1: 1.0, 2: 1.05, 4: 1.2}.get)
    rates = batch_choice.measure_batches(export, "onnx", "cpu", [1, 2, 4, 8])
    assert rates == {"1": 1.0, "2": pytest.approx(1 / 1.05, abs=1e-3), "4": pytest.approx(1 / 1.2, abs=1e-3)}
    assert set(asked) == {1, 2, 4} and asked.count(2) == 1 + batch_choice.CALLS  # a warm-up, then the timed calls


def test_a_batch_that_fails_ends_the_timing_and_a_failing_clip_is_one_line(export, monkeypatch):
    _stand_in_runner(monkeypatch, lambda batch: RuntimeError("out of memory\ndetails") if batch > 2 else 0.5)
    assert batch_choice.measure_batches(export, "onnx", "cpu", [1, 2, 4, 8]) == {"1": 2.0, "2": 2.0}
    _stand_in_runner(monkeypatch, lambda batch: RuntimeError("no kernel\ndetails"))
    with pytest.raises(T2LError, match="onnx cannot run one clip of .*video_encoder: no kernel$"):
        batch_choice.measure_batches(export, "onnx", "cpu", [1, 2])


def test_the_real_measurement_times_batches_in_order(export):
    choice = choose_run_batch(export, "onnx", "cpu", 4)
    measured = [int(b) for b in choice.record["clips_per_s"]]
    assert measured == [1, 2, 4][:len(measured)] and choice.batch in measured
    assert json.loads((export.directory / BATCH_FILE).read_text())["clips_per_s"] == choice.record["clips_per_s"]


def test_run_batch_takes_auto_or_a_positive_batch():
    parser = build_parser()
    for command in (["serve", "--onnx", "x"], ["bench", "serve", "--onnx", "x"]):
        assert parser.parse_args([*command, "--run-batch", "auto"]).run_batch is None
        assert parser.parse_args(command).run_batch is None
        assert parser.parse_args([*command, "--run-batch", "4"]).run_batch == 4
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--run-batch", "0"])
