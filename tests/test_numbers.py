"""One rule for numbers from the command line and config files: type (bools are not numbers), finite, range."""
import pytest

from t2l_fast.cli import main
from t2l_fast.numbers import NumberError, checked_number
from t2l_fast.training.config import ConfigError, load_config


@pytest.mark.parametrize("value, limits, fragment", [
    (True, dict(integer=True), "not an integer"), (2.5, dict(integer=True), "not an integer"),
    (float("nan"), {}, "not a finite number"), (float("inf"), dict(minimum=0), "not a finite number"),
    (0, dict(integer=True, minimum=1), "must be >= 1"), (-5, dict(minimum=0), "must be >= 0"),
    (0.0, dict(above=0), "must be > 0"), ("8", dict(integer=True), "not an integer"),
])
def test_numbers_that_nobody_could_mean_are_refused(value, limits, fragment):
    with pytest.raises(NumberError, match=fragment):
        checked_number(value, "--x", **limits)
    assert checked_number(8, "--x", integer=True, minimum=1) == 8 and checked_number(8.0, "--x", integer=True) == 8


PREDICT = ["predict", "v.mp4", "--model", "clip_tiny", "--classes", "a,b"]
BAD_OPTIONS = [  # (command, the option's message); those that gave a traceback are in test_trust.py
    ([*PREDICT, "--topk", "0"], "--topk: value = 0: must be >= 1"),
    ([*PREDICT, "--window-seconds", "-1"], "must be >= 0"),
    (["data", "check", "l.txt", "--root", ".", "--timeout", "0"], "--timeout: value = 0.0: must be > 0"),
    (["bench", "training", "--batch", "0"], "--batch: value = 0: must be >= 1"),
    (["bench", "training", "--steps", "-1"], "--steps: value = -1: must be >= 1"),
    (["bench", "throughput", "--seconds", "-1"], "--seconds: value = -1.0: must be > 0"),
    (["export", "trt", "--onnx", "x", "--max-batch", "1000000000"], "--max-batch: value = 1000000000: must be >= 1 "
                                                                     "and <= 4096"),
    (["export", "triton", "--onnx", "x", "--out", "r", "--queue-delay-us", "-5"], "--queue-delay-us: value = -5"),
    (["export", "onnx", "--model", "t2l_tiny", "--out", "o", "--calibration-clips", "-5"], "must be >= 1"),
    (["export", "onnx", "--model", "t2l_tiny", "--out", "o", "--min-gate-clips", "-1"], "must be >= 1"),
]


@pytest.mark.parametrize("command, message", BAD_OPTIONS, ids=[" ".join(c[:2] + c[-2:]) for c, _ in BAD_OPTIONS])
def test_bad_numbers_on_the_command_line_are_one_clear_error(command, message, capsys):
    assert main(command) == 2 and message in capsys.readouterr().err


def test_a_bool_is_not_a_batch_size_in_a_config(tmp_path):
    with pytest.raises(ConfigError, match="batch_size = True is not a valid int"):
        load_config(None, [f"data.root={tmp_path}", "batch_size=true"])
