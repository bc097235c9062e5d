"""Nothing the user had is lost, table-driven (issue 24, data loss): a command writes only into a folder it claims
(new, empty, its own, or --force), never over one of its own inputs, and an interrupted or failed write leaves the
earlier output whole. Each row: the command, its input, the exit code, the message, and the sha256 of every file
around it before and after (docs/RELIABILITY_TESTS.md lists the rows)."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from t2l_fast.cli import main
from t2l_fast.io import recover_killed_swap
from t2l_fast.runtime.bundle import ExportedModel


def _hashes(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and link) under `folder`, hidden ones included."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "link"
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def _foreign(folder: Path) -> Path:
    """A folder holding someone's work, which no command of t2l wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("months of work")
    return folder


def _data(tmp: Path) -> tuple[Path, Path]:
    """A data root with one (stand-in) video, its list, and a preflight report of it; (root, report)."""
    root = tmp / "data"
    root.mkdir()
    (root / "a.mp4").write_bytes(b"a video's bytes")
    (root / "list.txt").write_text("a.mp4 0\n")
    report = tmp / "list.check.json"
    report.write_text(json.dumps({"root": str(root), "videos": [{"path": "a.mp4", "label": 0, "verdict": "ok",
                                                                  "notes": []}]}))
    return root, report


def _transcode(out_root):
    return lambda tmp: ["data", "transcode", str(_data(tmp)[1]), "--out-root", str(out_root(tmp))]


def _report_named_list(tmp: Path) -> list[str]:
    """An earlier transcode folder whose list.txt is the report given (it would be written over)."""
    _, report = _data(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / ".t2l-transcode").touch()
    os.replace(report, tmp / "out" / "list.txt")
    return ["data", "transcode", str(tmp / "out" / "list.txt"), "--out-root", str(tmp / "out")]


def _link(tmp: Path, target: Path) -> Path:
    (tmp / "link.txt").symlink_to(target)
    return tmp / "link.txt"


def _check(out):
    return lambda tmp: ["data", "check", str(tmp / "data" / "list.txt"), "--root", str(_data(tmp)[0]), "--out",
                        str(out(tmp))]


def _clean_list_is_the_input(tmp: Path) -> list[str]:
    """--out a.json writes a.clean.txt beside it: here that is the list being checked."""
    root, _ = _data(tmp)
    os.replace(root / "list.txt", root / "a.clean.txt")
    return ["data", "check", str(root / "a.clean.txt"), "--root", str(root), "--out", str(root / "a.json")]


def _fewshot(out):
    def command(tmp):
        root, _ = _data(tmp)
        (tmp / "classes.txt").write_text("run\n")
        return ["data", "fewshot", str(root / "list.txt"), "--root", str(root), "--shots", "1", "--classes",
                str(tmp / "classes.txt"), "--out", str(out(tmp))]
    return command


def _convert(out):
    def command(tmp):
        root, _ = _data(tmp)
        (tmp / "official.txt").write_text("/x/videos/a.mp4 10 0\n")
        return ["data", "convert-list", str(tmp / "official.txt"), "--root", str(root), "--out", str(out(tmp))]
    return command


SYNTH = ["--classes", "moving right,moving left", "--clips-per-class", "1", "--eval-clips-per-class", "1",
         "--frames", "2", "--size", "16x16"]

REFUSED = [  # (name, command given tmp_path, message fragment): exit 2, and no file under tmp_path changes
    ("synth into someone's folder", lambda tmp: ["data", "synth", str(_foreign(tmp / "out")), *SYNTH],
     "not a synthetic dataset (no .t2l-synth)"),
    ("fixtures into someone's folder", lambda tmp: ["data", "fixtures", str(_foreign(tmp / "out"))],
     "add --force to write into it anyway"),
    ("transcode into someone's folder", _transcode(lambda tmp: _foreign(tmp / "out")),
     "--out-root {tmp}/out: not empty and not a transcode output"),
    ("transcode --out-root = the data root", _transcode(lambda tmp: tmp / "data"), "is the data root"),
    ("transcode --out-root inside the data root", _transcode(lambda tmp: tmp / "data" / "new"),
     "lies inside the data root"),
    ("transcode --out-root holding the data root", _transcode(lambda tmp: tmp), "holds the data root"),
    ("transcode over its own report", _report_named_list, "that is the input"),
    ("check --out = the list", _check(lambda tmp: tmp / "data" / "list.txt"), "that is the input"),
    ("check --out = a link to the list", _check(lambda tmp: _link(tmp, tmp / "data" / "list.txt")),
     "that is the input"),
    ("check: the clean list it writes = the list", _clean_list_is_the_input, "a.clean.txt: that is the input"),
    ("convert-list --out = the list", _convert(lambda tmp: tmp / "official.txt"), "that is the input"),
    ("fewshot --out = the list", _fewshot(lambda tmp: tmp / "data" / "list.txt"), "that is the input"),
    ("fewshot --out = a link to the list", _fewshot(lambda tmp: _link(tmp, tmp / "data" / "list.txt")),
     "that is the input"),
    ("fewshot --out = its class file", _fewshot(lambda tmp: tmp / "classes.txt"), "that is the input"),
    ("export onnx into someone's folder", lambda tmp: ["export", "onnx", "--model", "clip_tiny", "--out",
                                                       str(_foreign(tmp / "out"))], "not an earlier export"),
]


@pytest.mark.parametrize("name, command, message", REFUSED, ids=[row[0] for row in REFUSED])
def test_a_command_never_writes_over_someone_elses_folder_or_its_own_inputs(tmp_path, capsys, name, command,
                                                                            message):
    arguments = command(tmp_path)
    before = _hashes(tmp_path)
    assert main(arguments) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert _hashes(tmp_path) == before


WRITTEN = [  # (name, command given tmp_path, a file it writes): exit 0, someone's file and the inputs untouched
    ("synth --force", lambda tmp: ["data", "synth", str(_foreign(tmp / "out")), *SYNTH, "--force"], "out/train.txt"),
    ("transcode --force", lambda tmp: [*_transcode(lambda tmp: _foreign(tmp / "out"))(tmp), "--force"],
     "out/list.txt"),
]


@pytest.mark.parametrize("name, command, written", WRITTEN, ids=[row[0] for row in WRITTEN])
def test_force_writes_beside_what_is_there_and_a_second_run_needs_no_force(tmp_path, name, command, written):
    arguments = command(tmp_path)
    before = _hashes(tmp_path)
    assert main(arguments) == 0
    after = _hashes(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before and written in after  # nothing there changed
    assert main([a for a in arguments if a != "--force"]) == 0  # the folder is now the command's own


# --------------------------------------------------------------------------------------- re-export into an export
def _logits(folder: Path) -> np.ndarray:
    """The classifier graph's logits of two fixed random clips."""
    bundle = ExportedModel(folder)
    spec = bundle.input_spec
    frames = np.random.default_rng(0).integers(0, 256, (2, spec.frames, 3, spec.image_size, spec.image_size),
                                               dtype=np.uint8)
    with bundle.runner("classifier") as runner:
        return runner.infer({"frames": frames})["logits"]


def _midway(error):
    """export_one as it goes when the export fails midway: part of a graph written, then `error`."""
    def export_one(model, kind, path, *args):
        path.write_bytes(b"half a graph")
        raise error
    return export_one


INTERRUPTED = [  # (name, the error midway, exit code, message)
    ("KeyboardInterrupt", KeyboardInterrupt(), 130, "interrupted"),
    ("an exception midway", OSError(5, "Input/output error"), 2, "Input/output error"),
    ("disk full", OSError(28, "No space left on device"), 2, "No space left on device"),
]
EXPORT = ["export", "onnx", "--model", "clip_tiny", "--classes", "run,jump", "--out"]


@pytest.mark.parametrize("name, error, code, message", INTERRUPTED, ids=[row[0] for row in INTERRUPTED])
def test_an_interrupted_reexport_leaves_the_old_export_whole(tiny_exports, tmp_path, monkeypatch, capsys, name,
                                                             error, code, message):
    from t2l_fast.deploy import onnx_export

    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    (folder / "video_encoder.trtrtx.engine").write_bytes(b"an engine built beside the graphs")
    before, logits = _hashes(tmp_path), _logits(folder)
    monkeypatch.setattr(onnx_export, "export_one", _midway(error))
    assert main([*EXPORT, str(folder)]) == code
    assert message in capsys.readouterr().err
    assert _hashes(tmp_path) == before  # no half folder beside it either
    assert np.array_equal(_logits(folder), logits)


def test_a_reexport_swaps_in_whole_and_keeps_what_else_the_folder_held(tiny_exports, tmp_path, monkeypatch):
    """The new export replaces the old one's files (a graph only the old manifest listed goes too); an engine or a
    note the user put there stays. The graphs are the session's export, written by a stand-in to save time."""
    from t2l_fast.deploy import onnx_export

    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["graphs"]["old_int8"] = dict(manifest["graphs"]["classifier"], file="old_int8.onnx")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "old_int8.onnx").write_bytes(b"a graph of the old export")
    (folder / "notes.txt").write_text("ours")

    def write_export(model, out_dir, *args):
        new = tiny_exports.copy(out_dir, "clip_tiny")
        manifest = json.loads((new / "manifest.json").read_text()) | {"note": "the new export"}
        (new / "manifest.json").write_text(json.dumps(manifest))
        return manifest

    monkeypatch.setattr(onnx_export, "_write_export", write_export)
    assert main([*EXPORT, str(folder)]) == 0
    assert ExportedModel(folder).manifest["note"] == "the new export" and _logits(folder).shape == (2, 3)
    assert (folder / "notes.txt").read_text() == "ours" and not (folder / "old_int8.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


SLOW_EXPORT = """import sys, time
from t2l_fast.cli import main
from t2l_fast.deploy import onnx_export

def export_one(model, kind, path, *args):  # midway: a graph being written, slowly
    path.write_bytes(b"half a graph")
    print("midway", flush=True)
    time.sleep(120)

onnx_export.export_one = export_one
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_signal_to_a_reexport_keeps_the_old_export(tiny_exports, tmp_path, sig):
    """A real signal to `t2l export onnx`, sent while a new graph is being written into the staging folder: SIGINT
    exits 130 having removed the staging folder; SIGKILL cannot clean up, so the next run removes what it left."""
    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    before, logits = _hashes(tmp_path), _logits(folder)
    command = [sys.executable, "-c", SLOW_EXPORT, *EXPORT, str(folder)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}) as export:
        for line in export.stdout:
            if line.strip() == "midway":
                break
        assert export.poll() is None, export.stderr.read()
        export.send_signal(sig)
        code = export.wait(60)
        assert (code, "interrupted" in export.stderr.read()) == ((130, True) if sig == signal.SIGINT else (-9, False))
    if sig == signal.SIGKILL:
        [left] = tmp_path.glob(f".export.partial-{export.pid}-*")
        with pytest.warns(RuntimeWarning, match=f"removed {left.name}, left by a run that was killed"):
            assert len(recover_killed_swap(folder)) == 1
    assert _hashes(tmp_path) == before and np.array_equal(_logits(folder), logits)


@pytest.mark.parametrize("given", [".", ".."], ids=["the current folder", "the folder holding it"])
def test_export_refuses_to_replace_the_current_folder(tiny_exports, tmp_path, monkeypatch, capsys, given):
    """Replacing the folder the shell stands in would move it away under the user: refused before any work."""
    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    (folder / "sub").mkdir()
    monkeypatch.chdir(folder / "sub" if given == ".." else folder)
    before = _hashes(tmp_path)
    assert main(["export", "onnx", "--model", "clip_tiny", "--out", given]) == 2
    assert f"--out {given}: that is (or holds) the current folder" in capsys.readouterr().err
    assert _hashes(tmp_path) == before


def test_a_run_killed_between_the_two_renames_gets_its_old_folder_back(tmp_path):
    """SIGKILL after `folder` became `.folder.old-PID-*` and before the new one took its name: the next run puts the
    old folder back (and leaves the siblings of a live writer alone)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    folder = tmp_path / "export"
    (tmp_path / f".export.old-{dead}-ab12").mkdir()
    (tmp_path / f".export.old-{dead}-ab12" / "manifest.json").write_text("{}")
    (tmp_path / f".export.partial-{dead}-cd34").mkdir()
    (tmp_path / f".export.partial-{os.getpid()}-ef56").mkdir()  # a live writer's (this process)
    (tmp_path / ".export.partial-99999999999999999999-ab").mkdir()  # no pid (crafted): not a staging folder
    (tmp_path / f"..export.partial-{dead}-ab12.partial-{dead}-0f").mkdir()  # nested (export --precision int8)
    (tmp_path / f".myexport.partial-{dead}-ab").mkdir()  # another folder's
    with pytest.warns(RuntimeWarning) as caught:
        recover_killed_swap(folder)
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        f"removed ..export.partial-{dead}-ab12.partial-{dead}-0f, left by a run that was killed",
        f"put back the previous folder from .export.old-{dead}-ab12 (a run was killed mid-swap)",
        f"removed .export.partial-{dead}-cd34, left by a run that was killed"]
    assert (folder / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".export.partial-{os.getpid()}-ef56",
                                                          ".export.partial-99999999999999999999-ab",
                                                          f".myexport.partial-{dead}-ab", "export"]


# --------------------------------------------------------------------------------------------- INT8 into an export
def _quantize(folder: Path, monkeypatch, agreement):
    from t2l_fast.deploy import int8

    spec = ExportedModel(folder).input_spec
    clips = np.random.default_rng(0).integers(0, 256, (4, spec.frames, 3, spec.image_size, spec.image_size),
                                              dtype=np.uint8)
    monkeypatch.setattr(int8, "check_int8_lists", lambda *a, **k: None)  # the lists are stand-ins, as the clips
    monkeypatch.setattr(int8, "load_clips", lambda *a, **k: clips)
    monkeypatch.setattr(int8, "agreement", agreement)
    return int8.quantize_export(folder, mode="dynamic", gate_list="gate.txt", root="data", min_gate_clips=4,
                                log=lambda line: None)


def _figures(top1):
    return lambda bundle, clips: {"clips": 4, "top1_agreement": top1, "mean_cosine": 1.0, "p1_cosine": 1.0,
                                  "min_cosine": 1.0}


def _interrupt(bundle, clips):
    assert (bundle.directory / "video_encoder_int8.onnx").is_file()  # midway: the INT8 graphs are written
    raise KeyboardInterrupt


@pytest.mark.parametrize("agreement, error", [(_interrupt, KeyboardInterrupt), (_figures(0.5), "GateRefusedError")],
                         ids=["interrupted", "gate refused"])
def test_an_interrupted_or_refused_int8_step_leaves_the_export_as_it_was(tiny_exports, tmp_path, monkeypatch,
                                                                         agreement, error):
    from t2l_fast.deploy.int8 import GateRefusedError

    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    before = _hashes(tmp_path)
    with pytest.raises(GateRefusedError if error == "GateRefusedError" else error):
        _quantize(folder, monkeypatch, agreement)
    assert _hashes(tmp_path) == before


@pytest.mark.parametrize("agreement, code", [(_interrupt, 130), (_figures(0.5), 2)],
                         ids=["interrupted", "gate refused"])
def test_export_precision_int8_swaps_fp32_and_int8_in_together(tiny_exports, tmp_path, monkeypatch, capsys,
                                                                agreement, code):
    """`t2l export onnx --precision int8` over an earlier export: the new fp32 graphs and the INT8 ones replace the
    old export in one swap, so an interrupt during INT8 leaves the old export, not a new fp32 one; a refused gate
    leaves the new fp32 export without INT8 graphs (tests/test_int8.py), and nothing beside the folder."""
    from t2l_fast.deploy import int8, onnx_export

    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    def new_export(model, out, *args, **kwargs):  # the session's export plus a file that marks it as the new one
        for entry in out.iterdir():  # replaced, never written through: they are hard links of the old export's
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        tiny_exports.copy(out, "clip_tiny")
        (out / "new.txt").write_text("the new export")
        return ExportedModel(out).manifest

    monkeypatch.setattr(onnx_export, "export_with_classes", new_export)  # tested here: the swap, not the export
    clips = np.random.default_rng(0).integers(0, 256, (4, 8, 3, 32, 32), dtype=np.uint8)
    monkeypatch.setattr(int8, "check_int8_lists", lambda *a, **k: None)  # stand-in lists and clips, as above
    monkeypatch.setattr(int8, "load_clips", lambda *a, **k: clips)
    monkeypatch.setattr(int8, "agreement", agreement)
    before = _hashes(tmp_path)
    assert main(["export", "onnx", "--model", "clip_tiny", "--out", str(folder), "--classes", "a,b,c",
                 "--precision", "int8", "--int8-mode", "dynamic", "--gate-list", "gate.txt", "--root", "data",
                 "--min-gate-clips", "4"]) == code
    if code == 130:
        assert _hashes(tmp_path) == before
    else:
        assert (folder / "new.txt").is_file() and not list(folder.glob("*int8*"))
        assert "int8" not in json.loads((folder / "manifest.json").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_int8_graphs_are_swapped_in_with_the_manifest(tiny_exports, tmp_path, monkeypatch):
    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    before = _hashes(folder)
    _quantize(folder, monkeypatch, _figures(1.0))
    bundle = ExportedModel(folder)
    assert bundle.verified_graph_path("video_encoder_int8") and bundle.manifest["int8"]["gate"]["passed"]
    after = _hashes(folder)
    assert {k: after[k] for k in before if k != "manifest.json"} == {k: v for k, v in before.items()
                                                                     if k != "manifest.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


# ------------------------------------------------------------------------------------------------ the demo, SIGINT
def test_sigint_during_a_demo_stage_is_not_exit_0_nor_a_finished_stage(tmp_path, monkeypatch, capsys):
    """The benchmark stage measures in subprocesses: one that SIGINT stopped stops the stage, the demo exits 130,
    and the stage is not recorded (a re-run does it again)."""
    from t2l_fast.demo import MARKER
    from t2l_fast.demo.stages import STAGES
    from t2l_fast.perf import reports

    (tmp_path / MARKER).write_text("{}\n")
    (tmp_path / "stages").mkdir()
    for stage in STAGES[:-1]:  # every stage before the benchmarks finished
        (tmp_path / "stages" / f"{stage.name}.json").write_text(json.dumps({"fast": True}))
    assert STAGES[-1].name == "bench"
    monkeypatch.setattr(reports, "flops_report", lambda *a, **k: None)
    monkeypatch.setattr(reports, "throughput_report", _interrupted_worker(tmp_path, monkeypatch))
    assert main(["demo", "--fast", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "stages" / "bench.json").exists()


def _interrupted_worker(tmp_path: Path, monkeypatch):
    """throughput_report as it goes when Ctrl-C reaches its measuring subprocess: run_isolated of a worker that
    SIGINT stops."""
    from t2l_fast.perf.isolation import run_isolated

    (tmp_path / "sigint_worker.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return lambda *a, **k: run_isolated("sigint_worker", {"backend": "torch-eager"})
