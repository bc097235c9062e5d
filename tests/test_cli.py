import json
import subprocess
import sys

import pytest

from t2l_fast.cli import main


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["t2l_vit_b16"]["learnable_params"] == 5_204_736
    assert rows["t2l_vit_b16"]["total_params"] == 154_825_473
    assert rows["vificlip_vit_b16"]["learnable_params"] == 124_323_841
    for row in rows.values():
        assert set(row) >= {"name", "learnable_params", "total_params", "frames", "image_size"}
        assert row["total_params"] > 0


def test_models_table(capsys):
    assert main(["models"]) == 0
    assert "5,204,736" in capsys.readouterr().out


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys; from t2l_fast.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'open_clip', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version(capsys):
    assert main(["--version"]) == 0 and "t2l-fast" in capsys.readouterr().out


def test_error_is_reported_not_raised(tmp_path, capsys):
    assert main(["convert-official", str(tmp_path / "missing.pt"), str(tmp_path / "out")]) == 2
    assert "missing.pt" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["export", "onnx", "--model", "t2l_tinny", "--out", "{tmp}/o"],
     "unknown model 't2l_tinny'; did you mean t2l_tiny"),
    (["bench", "flops", "--models", "nosuch"], "unknown model 'nosuch'"),
    (["train", "--config", "{tmp}/latin1.yaml"], "latin1.yaml: not valid UTF-8 (byte 10)"),
    (["data", "transcode", "{tmp}/no-report.json", "--out-root", "{tmp}/t"],
     "no-report.json: No such file or directory (check the path and its permissions)"),
    (["demo", "--fast", "--out", "/proc/t2l-demo"], "--out /proc/t2l-demo: cannot write there"),
    (["convert-official", "{tmp}/latin1.yaml", "{tmp}/o"], "refused to load"),
])
def test_expected_failures_are_one_line_and_debug_shows_the_traceback(argv, message, tmp_path, capsys):
    (tmp_path / "latin1.yaml").write_bytes("model: caf\xe9".encode("latin-1"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "(--debug shows the traceback)" in err
    assert len(err.strip().splitlines()) == 1, err
    with pytest.raises((Exception, SystemExit)) as raised:
        main([*argv, "--debug"])
    assert not isinstance(raised.value, SystemExit)


def test_interrupt_exits_130(monkeypatch, capsys):
    from t2l_fast.cli import info

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "_env", interrupted)
    assert main(["env"]) == 130
    assert "t2l env: interrupted" in capsys.readouterr().err


def test_env_reports_components(capsys):
    assert main(["env"]) in (0, 1)
    out = capsys.readouterr().out
    assert "torch" in out and "cuda_available" in out and "onnxruntime_conflict" in out


def test_device_strings_and_conflicting_model_are_one_line_errors(tmp_path, capsys):
    import torch

    import t2l_fast

    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    base = ["predict", str(video), "--classes", "run,jump"]
    assert main([*base, "--model", "clip_tiny", "--device", "gpu0"]) == 2
    assert "--device 'gpu0': not a device; use cpu, cuda or cuda:N" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*base, "--model", "clip_tiny", "--device", "cuda"]) == 2
        assert "this machine has no usable CUDA GPU(s); use --device cpu" in capsys.readouterr().err
    t2l_fast.save_checkpoint(t2l_fast.create_model("clip_tiny"), tmp_path / "ck", full=True)
    assert main([*base, "--model", "t2l_tiny", "--checkpoint", str(tmp_path / "ck"), "--device", "cpu"]) == 2
    assert "holds clip_tiny, but --model t2l_tiny was given" in capsys.readouterr().err
