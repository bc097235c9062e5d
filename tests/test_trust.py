"""Trust boundaries, table-driven: nothing read from a file (a checkpoint's config, a manifest, a list) is consent to
run code or a path out of its folder. Each row: a crafted input, the command, its exit code and message, and the
files outside the folder that must stay as they were (docs/RELIABILITY_TESTS.md lists the rows)."""
import ast
import json
import os
from pathlib import Path

import pytest
import torch
from export_cache import CLASSES

import t2l_fast
from t2l_fast.cli import main
from t2l_fast.io import file_sha256


def _checkpoint_recording_torchscript(tmp_path: Path) -> Path:
    """A learnable-only checkpoint whose config.json names a TorchScript archive as its backbone."""
    folder, model = tmp_path / "ckpt", t2l_fast.create_model("t2l_tiny")
    model.backbone_source = "torchscript:/its/own/archive.pt"  # as saved by a run the user did opt in for
    t2l_fast.save_checkpoint(model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "backbone": f"torchscript:{tmp_path / 'evil.pt'}"}))
    return folder


def _export_with_manifest(tiny_exports, tmp_path: Path, change) -> Path:
    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _graph_file(manifest):
    manifest["graphs"]["classifier"]["file"] = "../victim/classifier.onnx"


def _external_data(manifest):
    manifest["graphs"]["classifier"]["external_data"] = [{"file": "../../../../etc/passwd", "sha256": "0" * 64}]


def _model_name(manifest):
    manifest["model"]["name"] = manifest["model"]["config"]["name"] = "../../X"


def _video(tmp_path: Path) -> str:
    (tmp_path / "clip.mp4").write_bytes(b"")
    return str(tmp_path / "clip.mp4")


CODE_EXECUTION = [  # (name, command given the checkpoint folder and tmp_path)
    ("predict", lambda ckpt, tmp: ["predict", _video(tmp), "--checkpoint", str(ckpt), "--classes", "run,jump"]),
    ("export onnx", lambda ckpt, tmp: ["export", "onnx", "--checkpoint", str(ckpt), "--out", str(tmp / "out")]),
    ("eval", lambda ckpt, tmp: ["eval", "--checkpoint", str(ckpt), "--root", str(tmp), "--list",
                                str(tmp / "list.txt"), "--classes", str(tmp / "classes.txt")]),
]


@pytest.mark.parametrize("name, command", CODE_EXECUTION, ids=[row[0] for row in CODE_EXECUTION])
def test_a_checkpoint_cannot_consent_to_running_a_torchscript_archive(tmp_path, monkeypatch, capsys, name, command):
    (tmp_path / "list.txt").write_text("clip.mp4 0\n")
    (tmp_path / "classes.txt").write_text("run\njump\n")
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load ran the archive"))
    assert main(command(_checkpoint_recording_torchscript(tmp_path), tmp_path)) == 2
    assert "records the TorchScript backbone" in capsys.readouterr().err


OUTSIDE_THE_FOLDER = [  # (name, manifest change, command given the export folder and tmp_path)
    ("export trt: a graph file out of the folder", _graph_file,
     lambda onnx, tmp: ["export", "trt", "--onnx", str(onnx), "--max-batch", "2", "--runtime", "tensorrt-rtx"]),
    ("export triton: external data out of the folder", _external_data,
     lambda onnx, tmp: ["export", "triton", "--onnx", str(onnx), "--out", str(tmp / "repo")]),
    ("predict: external data out of the folder", _external_data,
     lambda onnx, tmp: ["predict", _video(tmp), "--onnx", str(onnx), "--backend", "onnx", "--classes",
                        ",".join(CLASSES)]),
    ("export triton --name ../../X", lambda manifest: None,
     lambda onnx, tmp: ["export", "triton", "--onnx", str(onnx), "--out", str(tmp / "a" / "b" / "repo"),
                        "--name", "../../X"]),
    ("export triton: a manifest model name ../../X", _model_name,
     lambda onnx, tmp: ["export", "triton", "--onnx", str(onnx), "--out", str(tmp / "a" / "b" / "repo")]),
]


@pytest.mark.parametrize("name, change, command", OUTSIDE_THE_FOLDER, ids=[row[0] for row in OUTSIDE_THE_FOLDER])
def test_names_from_a_manifest_or_an_option_never_leave_their_folder(tiny_exports, tmp_path, capsys, name,
                                                                     change, command):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "precious.txt").write_text("months of work")
    arguments = command(_export_with_manifest(tiny_exports, tmp_path, change), tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "export" not in p.parts)
    assert main(arguments) == 2
    assert "not a plain name" in capsys.readouterr().err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "export" not in p.parts)
    assert [p for p in after if p not in before and "repo" not in p.parts] == []  # nothing written outside
    assert (tmp_path / "victim" / "precious.txt").read_text() == "months of work"
    assert not (tmp_path / "X_video_encoder").exists() and not (tmp_path / "a" / "X_video_encoder").exists()


def test_an_official_list_line_cannot_lead_out_of_the_root(tmp_path, capsys):
    (tmp_path / "root").mkdir()
    official = tmp_path / "official.txt"
    official.write_text("/x/videos/a.mp4 10 0\n/x/videos/../../../etc/passwd 10 1\n")
    out = tmp_path / "list.txt"
    assert main(["data", "convert-list", str(official), "--root", str(tmp_path / "root"), "--out", str(out)]) == 2
    assert "contains '..'" in capsys.readouterr().err and not out.exists()


SILENTLY_WRONG = [  # (name, manifest change, message fragment)
    ("classes reordered", lambda m: m.update(classes=list(reversed(m["classes"]))), "are not the classifier graph's"),
    ("logit_scale negative", lambda m: m["model"].update(logit_scale=-100.0), "is not the positive, finite"),
    ("logit_scale infinite", lambda m: m["model"].update(logit_scale=float("inf")), "is not the positive, finite"),
    ("logit_scale changed", lambda m: m["model"].update(logit_scale=m["model"]["logit_scale"] * 2), "exported with"),
]


@pytest.mark.parametrize("name, change, message", SILENTLY_WRONG, ids=[row[0] for row in SILENTLY_WRONG])
def test_manifest_facts_that_decide_the_answer_must_match_the_graphs(tiny_exports, tmp_path, capsys, name,
                                                                     change, message):
    """A manifest edited after export would give confident wrong labels, inverted rankings or NaN scores."""
    folder = _export_with_manifest(tiny_exports, tmp_path, change)
    classes = CLASSES if "classes" in name else CLASSES[:2]  # other classes: the text encoder path, which scales
    command = ["predict", _video(tmp_path), "--onnx", str(folder), "--backend", "onnx", "--classes", ",".join(classes)]
    assert main(command) == 2
    assert message in capsys.readouterr().err


def test_a_named_pipe_is_refused_not_waited_on(tmp_path, capsys):
    """Opening a FIFO blocks until a writer comes; a video is a regular file, checked before opening."""
    import os

    os.mkfifo(tmp_path / "fifo.mp4")
    assert main(["predict", str(tmp_path / "fifo.mp4"), "--model", "clip_tiny", "--classes", "run,jump"]) == 1
    assert "fifo.mp4: not a regular file" in capsys.readouterr().out


def test_an_engine_never_overwrites_its_graph_and_a_failed_build_keeps_the_old_engine(tiny_exports, tmp_path,
                                                                                      monkeypatch, capsys):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX not installed: pip install 't2l-fast[tensorrt-rtx]'")
    folder = tiny_exports.copy(tmp_path / "export", "clip_tiny")
    graph, engine = folder / "classifier.onnx", tmp_path / "classifier.engine"
    command = ["export", "trt", "--onnx", str(graph), "--runtime", "tensorrt-rtx", "--out"]
    before = graph.read_bytes()
    assert main([*command, str(graph)]) == 2
    assert "that is the ONNX graph being built" in capsys.readouterr().err and graph.read_bytes() == before
    engine.write_bytes(b"the old engine")
    real_write = Path.write_bytes

    def disk_full_halfway(path, data):  # the disk fills up after half of the new engine is written
        real_write(path, data[: len(data) // 2])
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(Path, "write_bytes", disk_full_halfway)
    assert main([*command, str(engine)]) == 2
    monkeypatch.undo()
    assert "No space left on device" in capsys.readouterr().err
    assert engine.read_bytes() == b"the old engine" and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("content, message", [("{not json", "not JSON"), ('{"a": 1}', "no rows"), ("[]", "no rows")])
def test_a_benchmark_report_that_is_not_one_is_refused_before_any_counting(tmp_path, capsys, content, message):
    (tmp_path / "throughput.json").write_text(content)
    command = ["bench", "claims", "--throughput", str(tmp_path / "throughput.json"), "--out", str(tmp_path / "out")]
    assert main(command) == 2
    assert f"throughput.json: not a benchmark report ({message}" in capsys.readouterr().err


def _export_without_mean(tmp: Path, tiny_exports) -> list[str]:
    folder = _export_with_manifest(tiny_exports, tmp, lambda manifest: manifest["model"].pop("mean"))
    return ["predict", _video(tmp), "--onnx", str(folder), "--backend", "onnx", "--classes", ",".join(CLASSES)]


def _engine_with_empty_profile(tmp: Path, tiny_exports) -> list[str]:
    """An engine whose sidecar (hash and all) is whole but for `profile: {}`."""
    folder = tiny_exports.copy(tmp / "export", "clip_tiny")
    engine = tmp / "classifier.engine"
    engine.write_bytes(b"engine bytes")
    frames = {"name": "frames", "dtype": "uint8", "shape": [-1, 8, 3, 32, 32]}
    sidecar = {"format": "t2l-fast-trt-engine", "engine": {"file": engine.name, "sha256": file_sha256(engine)},
               "runtime": {"name": "tensorrt", "version": "10.8.0.43"}, "target": {"compute_capabilities": ["8.9"]},
               "onnx": {"file": "classifier.onnx", "sha256": "0" * 64, "graph": "classifier"}, "inputs": [frames],
               "outputs": [], "profile": {}, "rebuild": "t2l export trt --onnx classifier.onnx"}
    (tmp / "classifier.engine.json").write_text(json.dumps(sidecar))
    return ["export", "triton", "--onnx", str(folder), "--engine", str(engine), "--out", str(tmp / "repo")]


def _symlink_loop(command: str):
    """A list naming a.mp4 in a root where a.mp4 -> b.mp4 -> a.mp4, given to `command`."""
    def build(tmp: Path, tiny_exports) -> list[str]:
        (tmp / "a.mp4").symlink_to("b.mp4")
        (tmp / "b.mp4").symlink_to("a.mp4")
        (tmp / "list.txt").write_text("a.mp4 0\n")
        (tmp / "classes.txt").write_text("run\njump\n")
        data = {"data": ["data", "check", str(tmp / "list.txt"), "--root", str(tmp)],
                "eval": ["eval", "--model", "clip_tiny", "--root", str(tmp), "--list", str(tmp / "list.txt"),
                         "--classes", str(tmp / "classes.txt")],
                "train": ["train", "--set", "model=t2l_tiny", f"data.root={tmp}", f"data.train_list={tmp}/list.txt",
                          f"data.classes={tmp}/classes.txt", f"output_dir={tmp}/run"]}
        return data[command]
    return build


def _graph_with_truncated_data(tmp: Path, tiny_exports) -> list[str]:
    """A one-node ONNX graph whose weights live in graph.onnx.data, cut to half its bytes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(4096, dtype=np.float32), "weights")
    node = helper.make_node("Add", ["x", "weights"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4096])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4096])], [weights])
    onnx.save_model(helper.make_model(graph), str(tmp / "graph.onnx"), save_as_external_data=True,
                    location="graph.onnx.data", size_threshold=0)
    data = (tmp / "graph.onnx.data").read_bytes()
    (tmp / "graph.onnx.data").write_bytes(data[: len(data) // 2])
    return ["export", "trt", "--onnx", str(tmp / "graph.onnx"), "--runtime", "tensorrt-rtx"]


def _export_with_altered_data(tmp: Path, tiny_exports) -> list[str]:
    """An export whose manifest lists a weights file that is not the one it hashed (same name, other bytes)."""
    def listed(manifest):
        manifest["graphs"]["video_encoder"]["external_data"] = [{"file": "video_encoder.onnx.data",
                                                                 "sha256": "0" * 64}]
    folder = _export_with_manifest(tiny_exports, tmp, listed)
    (folder / "video_encoder.onnx.data").write_bytes(b"other bytes")
    return ["predict", _video(tmp), "--onnx", str(folder), "--backend", "onnx", "--classes", "run,jump"]


def _given(*command: str):
    return lambda tmp, tiny_exports: [part.replace("TMP", str(tmp)) for part in command]


PREDICT = ("predict", "v.mp4", "--model", "clip_tiny", "--classes", "a,b")
TRACEBACKS = [  # (name, command given tmp_path and the export fixture, message fragment); each exits 2, one line
    ("manifest without model.mean", _export_without_mean, "incomplete manifest (no model.mean)"),
    ("engine sidecar with profile {}", _engine_with_empty_profile, "incomplete sidecar (no profile of its inputs)"),
    ("symlink loop: data check", _symlink_loop("data"), "a.mp4 is a symlink loop"),
    ("symlink loop: eval", _symlink_loop("eval"), "a.mp4 is a symlink loop"),
    ("symlink loop: train", _symlink_loop("train"), "a.mp4 is a symlink loop"),
    ("--set with a python/object tag", _given("train", "--set", 'model=!!python/object/apply:os.system ["echo x"]'),
     "--set model: not valid YAML, or a tag that is not plain data"),
    ("pretrain-tiny --out a folder", _given("pretrain-tiny", "--out", "TMP"), "a folder; pretrain-tiny writes one"),
    ("pretrain-tiny --steps 0 --frames 0", _given("pretrain-tiny", "--out", "TMP/b.safetensors", "--steps", "0",
                                                  "--frames", "0"), "value = 0: must be >= "),
    ("pretrain-tiny --frames 1", _given("pretrain-tiny", "--out", "TMP/b.safetensors", "--frames", "1"),
     "--frames: value = 1: must be >= 2"),
    *[(f"export trt --workspace {value}", _given("export", "trt", "--onnx", "x", "--workspace", value), message)
      for value, message in (("nan", "not a finite number"), ("inf", "not a finite number"),
                             ("1e30", "must be > 0 and <= 1024"))],
    ("export onnx --calibration-clips 0", _given("export", "onnx", "--model", "t2l_tiny", "--out", "TMP/o",
                                                 "--calibration-clips", "0"), "--calibration-clips: value = 0"),
    ("predict --topk -3", _given(*PREDICT, "--topk", "-3"), "--topk: value = -3: must be >= 1"),
    ("predict --window-seconds nan", _given(*PREDICT, "--window-seconds", "nan"), "value = nan: not a finite"),
    ("bench flops --frames 0", _given("bench", "flops", "--frames", "0"), "--frames: value = 0: must be >= 1"),
    ("eval --batch-size 0", _given("eval", "--model", "clip_tiny", "--batch-size", "0"), "--batch-size: value = 0"),
    ("data check --jobs 0", _given("data", "check", "l.txt", "--root", ".", "--jobs", "0"), "--jobs: value = 0"),
    ("truncated .onnx.data", _graph_with_truncated_data, "graph.onnx.data: the weights file is truncated: tensor "
                                                         "'weights' of graph.onnx needs its bytes up to 16,384"),
    ("altered .onnx.data", _export_with_altered_data, "video_encoder.onnx.data: does not match manifest.json "
                                                      "(sha256 differs: truncated or altered"),
]


@pytest.mark.parametrize("name, command, message", TRACEBACKS, ids=[row[0] for row in TRACEBACKS])
def test_bad_input_is_one_line_naming_it_not_a_traceback(tiny_exports, tmp_path, capsys, monkeypatch, name,
                                                           command, message):
    monkeypatch.setattr("os.system", lambda *a: pytest.fail("the YAML tag ran os.system"))
    assert main(command(tmp_path, tiny_exports)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith(("usage:", " "))]) == 1, err


# ---------------------------------------------------------------- grep-level: the rules hold in the code itself
PACKAGE = Path(t2l_fast.__file__).parent


def _trees():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


BARE_RAISE_ALLOWED = {  # (file, message fragment): why it is a programming error, not bad input
    ("data/sampling.py", "training sampling needs an rng"): "a caller's bug: the loaders always pass their rng",
}


def test_bad_input_raises_a_t2l_error_that_the_cli_prints_as_one_line():
    """A bare ValueError/RuntimeError escapes the CLI's one-line handler as a traceback."""
    found = []
    for name, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(call, ast.Name) and call.id in ("ValueError", "RuntimeError"):
                    text = ast.unparse(node)
                    if not any(file == name and fragment in text for file, fragment in BARE_RAISE_ALLOWED):
                        found.append(f"{name}:{node.lineno}: {text[:90]}")
    assert found == [], "raise a T2LError subclass (t2l_fast/errors.py) for bad input:\n" + "\n".join(found)


def test_torch_jit_load_runs_only_in_the_one_function_that_takes_the_callers_consent():
    loads, calls = [], []
    for name, tree in _trees():
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and node.attr == "load" and ast.unparse(node.value).endswith("jit"):
                    loads.append((name, function))
                if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("load_torchscript_state"):
                    calls.append((name, node))
    assert [(name, function.name) for name, function in loads] == [("models/backbone.py", "load_torchscript_state")]
    function = loads[0][1]
    assert [a.arg for a in function.args.kwonlyargs] == ["consent"] and function.args.kw_defaults == [None]
    first_check = next(n for n in function.body if isinstance(n, ast.If))
    assert "consent" in ast.unparse(first_check.test) and isinstance(first_check.body[0], ast.Raise)
    consents = [next(k.value for k in call.keywords if k.arg == "consent") for _, call in calls]
    assert consents and not any(isinstance(value, ast.Constant) for value in consents)  # never a blanket True


FILE_KEYS = {"file", "backbone", "checkpoint", "location", "path", "engine", "onnx", "model", "name"}
CHECKED = {"path_part", "inside", "under"}  # t2l_fast.io's containment checks
PATH_ALLOWED = {  # (file, code): why the path is safe without the helpers
    ("data/transcode.py", "Path(video['path'])"): "checked in place: a report path out of --out-root is refused",
    ("demo/stages.py", "Path(summary['backbone'])"): "the return value of pretrain_tiny in this process",
    ("demo/stages.py", "Path(summary['model'])"): "the return value of train in this process",
}


def _names_a_file(node) -> bool:
    """Whether `node` reads a string key that names a file (x["file"], x.get("checkpoint"))."""
    for n in ast.walk(node):
        key = n.slice if isinstance(n, ast.Subscript) else n.args[0] if (
            isinstance(n, ast.Call) and ast.unparse(n.func).endswith(".get") and n.args) else None
        if isinstance(key, ast.Constant) and key.value in FILE_KEYS:
            return True
    return False


def test_paths_from_manifest_checkpoint_and_stage_strings_go_through_the_containment_check():
    unchecked = []
    for name, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                part = node.right
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("Path", "joinpath") and node.args:
                part = node.args[0]
            else:
                continue
            helper = isinstance(part, ast.Call) and ast.unparse(part.func).split(".")[-1] in CHECKED | {"file"}
            if _names_a_file(part) and not helper and (name, ast.unparse(node)) not in PATH_ALLOWED:
                unchecked.append(f"{name}:{node.lineno}: {ast.unparse(node)[:90]}")
    assert unchecked == [], "join names read from files with t2l_fast.io.inside/under or ExportedModel.file:\n" + \
        "\n".join(unchecked)
    bundle = ast.parse((PACKAGE / "runtime" / "bundle.py").read_text())
    joins = {function.name for function in ast.walk(bundle) if isinstance(function, ast.FunctionDef)
             for node in ast.walk(function) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
             and ast.unparse(node.left) == "self.directory" and ast.unparse(node.right) != "MANIFEST"}
    assert joins == {"file"}  # the one place an export's files are named, through path_part


def test_a_served_model_is_never_named_out_of_the_repository_folder(tiny_exports, tmp_path):
    """`t2l serve` names its models after the manifest's model (NAME_video_encoder): a plain name only."""
    from t2l_fast.deploy.serve_repository import write_served_repository
    from t2l_fast.runtime.bundle import ExportedModel

    bundle = ExportedModel(_export_with_manifest(tiny_exports, tmp_path, _model_name))
    with pytest.raises(t2l_fast.errors.T2LError, match="the model name '../../X_video_encoder': not a plain name"):
        write_served_repository(bundle, tmp_path / "a" / "b" / "repo", "onnx", "cpu", 8, 100)
    assert [p.name for p in tmp_path.rglob("X_*")] == []


def test_a_demo_stage_file_cannot_point_out_of_the_demo_folder(tmp_path):
    from t2l_fast.demo.stages import Run

    run = Run(out=tmp_path, fast=True, results={"train_t2l": {"checkpoint": "runs/t2l/model"},
                                                "pretrain": {"backbone": "../../victim/backbone.safetensors"}},
              log=print)
    assert run.artifact("train_t2l", "checkpoint") == tmp_path / "runs" / "t2l" / "model"
    with pytest.raises(t2l_fast.errors.T2LError, match="the pretrain stage's backbone '..': not a plain name"):
        run.artifact("pretrain", "backbone")


def test_preflight_probes_in_process_where_spawned_workers_cannot_start(tmp_path):
    """A script fed on stdin cannot be re-imported by spawn workers: every worker dies at start-up. The probes run
    in this process instead, at once, with a warning saying why (not 180 s per file of waiting for the pool)."""
    import subprocess
    import sys

    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    script = ("from pathlib import Path\nfrom t2l_fast.data.preflight import probe_all\n"
              "results = probe_all([Path('empty.mp4'), Path('text.mp4')], jobs=2, timeout=60)\n"
              "print(sorted((path.name, result['verdict']) for path, result in results.items()))\n")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run([sys.executable, "-"], input=script, text=True, capture_output=True, cwd=tmp_path,
                          env=env, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[('empty.mp4', 'bad'), ('text.mp4', 'bad')]"
    assert "probing 2 video(s) in this process, one at a time: worker processes could not start" in done.stderr



def _int8(calibration: str):
    """export onnx --precision int8 with a gate list of one clip and --calibration `calibration` (under tmp)."""
    def build(tmp: Path) -> list[str]:
        (tmp / "clip.mp4").write_bytes(b"")
        (tmp / "gate.txt").write_text("clip.mp4 0\n")
        (tmp / "empty.txt").write_text("# no clips yet\n")
        return ["export", "onnx", "--model", "t2l_tiny", "--out", str(tmp / "o"), "--precision", "int8", "--classes",
                "run,jump", "--root", str(tmp), "--gate-list", str(tmp / "gate.txt"), "--calibration",
                str(tmp / calibration), "--min-gate-clips", "1"]
    return build


def _bench(*command: str):
    def build(tmp: Path) -> list[str]:
        (tmp / "file").write_text("a file, not a folder")
        return ["bench", *[part.replace("TMP", str(tmp)) for part in command]]
    return build


CHEAP_FIRST = [  # (name, command given tmp_path, the expensive function that must not run, message fragment)
    ("int8: a missing calibration list", _int8("missing.txt"), "t2l_fast.cli.export.load_model",
     "missing.txt: cannot read (No such file or directory)"),
    ("int8: an empty calibration list", _int8("empty.txt"), "t2l_fast.cli.export.load_model",
     "empty.txt: no usable videos (it has no entries)"),
    ("bench throughput --out a file", _bench("throughput", "--quick", "--out", "TMP/file"),
     "t2l_fast.perf.reports.throughput_plan", "--out TMP/file: cannot write there"),
    ("bench training --out under a file", _bench("training", "--quick", "--out", "TMP/file/bench"),
     "t2l_fast.perf.reports.training_report", "--out TMP/file/bench: cannot write there"),
    ("bench flops --json under a file", _bench("flops", "--quick", "--json", "TMP/file/rows.json", "--out", "TMP/o"),
     "t2l_fast.perf.reports.flops_report", "--json TMP/file: cannot write there"),
    ("bench claims --out a file", _bench("claims", "--out", "TMP/file"), "t2l_fast.perf.reports.claims_report",
     "--out TMP/file: cannot write there"),
    ("bench serve --out a file", _bench("serve", "--onnx", "TMP", "--out", "TMP/file"),
     "t2l_fast.perf.reports.serve_report", "--out TMP/file: cannot write there"),
]


@pytest.mark.parametrize("name, command, expensive, message", CHEAP_FIRST, ids=[row[0] for row in CHEAP_FIRST])
def test_cheap_inputs_are_checked_before_expensive_work(tmp_path, capsys, monkeypatch, name, command, expensive,
                                                        message):
    """A missing INT8 list was reported after ~18 s of fp32 export, an unusable bench --out after ~55 s."""
    monkeypatch.setattr(expensive, lambda *a, **k: pytest.fail(f"{expensive} ran before the cheap check"))
    assert main(command(tmp_path)) == 2
    assert message.replace("TMP", str(tmp_path)) in capsys.readouterr().err


@pytest.mark.parametrize("weights, noted", [([], True), (["--pretrained", "PRETRAINED"], False)])
def test_export_of_random_weights_says_so_as_predict_does(tmp_path, capsys, monkeypatch, weights, noted):
    from safetensors.torch import save_file

    backbone = tmp_path / "backbone.safetensors"
    save_file(t2l_fast.create_model("clip_tiny").backbone.state_dict(), str(backbone))
    monkeypatch.setattr("t2l_fast.deploy.onnx_export.export_with_classes", lambda *a, **k: {"graphs": {}})
    command = ["export", "onnx", "--model", "clip_tiny", "--out", str(tmp_path / "o"),
               *[str(backbone) if part == "PRETRAINED" else part for part in weights]]
    assert main(command) == 0
    note = "; note: no --pretrained or --checkpoint, so the weights are random and so are the scores"
    assert (note in capsys.readouterr().out) == noted


def test_every_test_the_trust_table_names_exists():
    """docs/RELIABILITY_TESTS.md's trust-boundary rows name their tests; a renamed or removed test is caught."""
    import re

    tests = Path(__file__).parent
    section = (tests.parent / "docs" / "RELIABILITY_TESTS.md").read_text().split("## Trust boundaries")[1]
    section = section.split("\n## ")[0]  # the next section's rows are tests/test_trust_writes.py's
    defined = {name for path in tests.glob("test_*.py") for name in re.findall(r"^def (test_\w+)\(", path.read_text(),
                                                                                 re.M)}
    named = set(re.findall(r"\b(test_\w+)", section)) - {"test_trust", "test_demo", "test_trust_writes"}
    assert named and named <= defined, sorted(named - defined)
    rows = {row[0] for table in (TRACEBACKS, CHEAP_FIRST) for row in table}
    cited = set(re.findall(r"`(?:test_\w+)?\[([^\]`]+)\]`", section))  # `test_x[row]` or `[row]`
    assert cited and cited <= rows, sorted(cited - rows)
