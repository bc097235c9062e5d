"""ONNX Runtime's GPU providers as the runner sees them: the libraries loaded before the session, a provider that did
not register (warned with the reason and the fix), where the nodes really ran (a profile of the first inference),
and the throughput benchmark's refusal of an ONNX Runtime GPU backend that ran on the CPU. On this CPU machine a
fake onnxruntime-gpu session stands in; the `gpu` test runs the real CUDA provider."""
import importlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


from t2l_fast.runtime.ort_runner import (  # noqa: E402
    PROVIDERS,
    OrtRunner,
    cpu_fallback_warning,
    node_placement,
    profiled_placement,
)

CPU, CUDA, TENSORRT = PROVIDERS["cpu"], PROVIDERS["cuda"], PROVIDERS["tensorrt"]
REAL_SESSION = ort.InferenceSession
REAL_IMPORT = importlib.import_module


@pytest.fixture(scope="module")
def tiny_export(tiny_exports):
    """(t2l_tiny model, its exported video_encoder.onnx): T=8, 32x32 frames; read only."""
    model, folder = tiny_exports.shared()
    return model, folder / "video_encoder.onnx"


def frames(batch: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (batch, 8, 3, 32, 32)).astype(np.uint8)


def node_events(per_provider: dict[str, list[str]]) -> list[dict]:
    """Profile events as ONNX Runtime writes them: one "Node" event per node (op types per provider), a session
    event, and a node reported twice (counted once)."""
    events = [{"cat": "Session", "name": "model_run", "args": {}}]
    for provider, ops in per_provider.items():
        events += [{"cat": "Node", "name": f"/{provider}/{op}_{i}_kernel_time",
                    "args": {"op_name": op, "provider": provider}} for i, op in enumerate(ops)]
    return events + [dict(events[-1])]


class FakeGpuSession:
    """Stands in for an onnxruntime-gpu session: runs on the real CPU session, reports `registered` providers and
    writes `events` as its profile."""

    def __init__(self, path, registered, events, profile: Path):
        self._cpu = REAL_SESSION(path, providers=[CPU])
        self.registered, self.events, self.profile = registered, events, profile
        self.profiling = True

    def get_providers(self):
        return list(self.registered)

    def get_inputs(self):
        return self._cpu.get_inputs()

    def get_outputs(self):
        return self._cpu.get_outputs()

    def run(self, names, feed):
        return self._cpu.run(names, feed)

    def end_profiling(self) -> str:
        if not self.profiling:
            return ""
        self.profiling = False
        self.profile.write_text(json.dumps(self.events))
        return str(self.profile)


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """install(registered, events, compiled_in, tensorrt_imports) -> the order of library loads and session
    creation; ONNX Runtime's session, provider list, preload_dlls and `import tensorrt` are faked."""
    calls: list[str] = []

    def install(registered, events=(), compiled_in=(TENSORRT, CUDA, CPU), tensorrt_imports=True):
        def session(path, sess_options=None, providers=None):
            calls.append("session")
            assert sess_options.enable_profiling, "a GPU session must be profiled"
            return FakeGpuSession(path, registered, list(events), tmp_path / "profile.json")

        def import_module(name, *args, **kwargs):
            if name != "tensorrt":
                return REAL_IMPORT(name, *args, **kwargs)
            calls.append("import tensorrt")
            if not tensorrt_imports:
                raise ImportError("No module named 'tensorrt'")

        monkeypatch.setattr(ort, "InferenceSession", session)
        monkeypatch.setattr(ort, "get_available_providers", lambda: list(compiled_in))
        monkeypatch.setattr(ort, "preload_dlls", lambda *args, **kwargs: calls.append("preload_dlls"), raising=False)
        monkeypatch.setattr(importlib, "import_module", import_module)
        return calls

    return install


# ------------------------------------------------------------------ libraries and registration
def test_tensorrt_is_imported_and_dlls_preloaded_before_the_session(fake_gpu, tiny_export):
    calls = fake_gpu([TENSORRT, CUDA, CPU])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every provider registered: no warning
        runner = OrtRunner(tiny_export[1], ("tensorrt", "cuda"), cache=False).__enter__()
    assert calls == ["preload_dlls", "import tensorrt", "session"]
    assert runner.provider_fallback is None and runner.providers_in_use == [TENSORRT, CUDA, CPU]
    runner.__exit__(None, None, None)


def test_cpu_runner_loads_no_gpu_library_and_profiles_nothing(fake_gpu, tiny_export, monkeypatch):
    calls = fake_gpu([CPU])
    monkeypatch.setattr(ort, "InferenceSession", REAL_SESSION)
    with OrtRunner(tiny_export[1], cache=False) as runner:
        runner.infer({"frames": frames()})
    assert calls == [] and runner.nodes_per_provider is None


def test_gpu_provider_compiled_in_but_not_registered_warns_with_the_reason(fake_gpu, tiny_export):
    fake_gpu([CPU])
    runner = OrtRunner(tiny_export[1], ("cuda",), cache=False)
    with pytest.warns(RuntimeWarning, match="not in use") as record:
        runner.__enter__()
    message = str(record[0].message)
    assert str(tiny_export[1]) in message and "['cuda']" in message
    assert "compiled in but could not load" in message and "CUDA 12 and cuDNN 9" in message
    assert runner.provider_fallback in message
    runner.__exit__(None, None, None)


def test_gpu_provider_not_compiled_in_names_the_extra(fake_gpu, tiny_export):
    fake_gpu([CPU], compiled_in=[CPU])
    with pytest.warns(RuntimeWarning, match=r"not in this onnxruntime build .*t2l-fast\[onnx-gpu\]"):
        OrtRunner(tiny_export[1], ("cuda",), cache=False).__enter__().__exit__(None, None, None)


def test_tensorrt_that_cannot_be_imported_is_named_in_the_warning(fake_gpu, tiny_export, monkeypatch):
    calls = fake_gpu([CUDA, CPU], tensorrt_imports=False)
    monkeypatch.delattr(ort, "preload_dlls")  # onnxruntime < 1.21
    runner = OrtRunner(tiny_export[1], ("tensorrt", "cuda"), cache=False)
    with pytest.warns(RuntimeWarning, match=r"\['tensorrt'\] are not in use") as record:
        runner.__enter__()
    message = str(record[0].message)
    assert "`import tensorrt` failed (No module named 'tensorrt')" in message
    assert "tensorrt-cu12>=10.8,<11" in message and "has no preload_dlls() (1.21+)" in message
    assert calls == ["import tensorrt", "session"]
    runner.__exit__(None, None, None)


# ------------------------------------------------------------------ where the nodes ran
def test_node_placement_of_a_real_cpu_profile(tiny_export, tmp_path):
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = REAL_SESSION(str(tiny_export[1]), sess_options=options, providers=[CPU])
    session.run(None, {"frames": frames()})
    placement = profiled_placement(session)
    assert list(tmp_path.iterdir()) == []  # the profile file is deleted
    assert list(placement.nodes_per_provider) == [CPU] and placement.nodes_per_provider[CPU] > 10
    assert "MatMul" in placement.cpu_op_types or "FusedMatMul" in placement.cpu_op_types
    assert cpu_fallback_warning("video_encoder.onnx", placement, ["cpu"]) is None
    asked_gpu = cpu_fallback_warning("video_encoder.onnx", placement, ["cuda", "cpu"])
    count = placement.nodes_per_provider[CPU]
    assert asked_gpu.startswith(f"video_encoder.onnx: {count} of {count} nodes ran on the CPU although ['cuda']")


def test_node_placement_of_a_crafted_gpu_profile():
    events = node_events({CUDA: ["MatMul", "MatMul", "Softmax"], CPU: ["Shape", "Gather", "Erf", "Add", "Mul",
                                                                      "Concat", "Softmax"]})
    placement = node_placement(events)
    assert placement.nodes_per_provider == {CPU: 7, CUDA: 3}  # the repeated event counts once
    assert placement.cpu_op_types == ("Add", "Concat", "Erf", "Gather", "Mul", "Shape", "Softmax")
    message = cpu_fallback_warning("g.onnx", placement, ["cuda", "cpu"])
    assert message.startswith("g.onnx: 7 of 10 nodes ran on the CPU although ['cuda'] was asked for")
    assert f"{{'{CPU}': 7, '{CUDA}': 3}}" in message and "Add, Concat, Erf, Gather, Mul and 2 more" in message
    assert cpu_fallback_warning("g.onnx", node_placement(node_events({CUDA: ["MatMul"]})), ["cuda"]) is None


def test_first_inference_records_placement_and_warns_once(fake_gpu, tiny_export, tmp_path):
    fake_gpu([CUDA, CPU], node_events({CUDA: ["MatMul", "Softmax"], CPU: ["Shape"]}))
    with OrtRunner(tiny_export[1], ("cuda",), cache=False) as runner:
        with pytest.warns(RuntimeWarning, match=r"1 of 3 nodes ran on the CPU .*op types on the CPU: Shape"):
            runner.infer({"frames": frames()})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # profiled once: later calls neither profile nor warn
            runner.infer({"frames": frames()})
    assert runner.nodes_per_provider == {CPU: 1, CUDA: 2}
    assert not (tmp_path / "profile.json").exists()


def test_unused_runner_leaves_no_profile_behind(fake_gpu, tiny_export, tmp_path):
    fake_gpu([CUDA, CPU], node_events({CUDA: ["MatMul"]}))
    with OrtRunner(tiny_export[1], ("cuda",), cache=False) as runner:
        pass
    assert not (tmp_path / "profile.json").exists() and runner.nodes_per_provider is None


# ------------------------------------------------------------------ the throughput benchmark's ORT GPU backends
@pytest.mark.parametrize("registered, events, refusal", [
    ([CPU], node_events({CPU: ["MatMul"]}), r"\['cuda'\] are not in use"),
    ([CUDA, CPU], node_events({CPU: ["MatMul"]}), "registered CUDAExecutionProvider but ran none of the graph's"),
    ([CUDA, CPU], node_events({CUDA: ["MatMul"], CPU: ["Shape"]}), None)])
def test_benchmark_refuses_an_onnxruntime_gpu_backend_on_the_cpu(fake_gpu, tiny_export, tmp_path, monkeypatch,
                                                                  registered, events, refusal):
    from t2l_fast.perf import backends
    from t2l_fast.perf.throughput import clips_for

    fake_gpu(registered, events)
    monkeypatch.setattr(backends, "onnx_graph", lambda *args: tiny_export[1])

    def build():
        return backends.build_backend("onnxruntime-cuda-fp16", tiny_export[0], tmp_path, clips_for(32, 8, 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the runner's own warnings; the refusal is checked here
        if refusal:
            with pytest.raises(RuntimeError, match=refusal):
                build()
            return
        backend = build()
    assert backend.row_facts == {"nodes_per_provider": {CPU: 1, CUDA: 1}}
    assert backend.run(clips_for(32, 8, 2)).shape[0] == 2


# ------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
def test_cuda_provider_runs_nodes_of_a_tiny_export(tiny_export):
    if CUDA not in ort.get_available_providers():
        pytest.skip(f"onnxruntime-gpu's CUDA provider is not available (onnxruntime {ort.__version__} has "
                    f"{ort.get_available_providers()}): pip install 't2l-fast[onnx-gpu]'")
    with OrtRunner(tiny_export[1], ("cuda",), cache=False) as runner:
        runner.infer({"frames": frames(2)})
    assert runner.provider_fallback is None, runner.provider_fallback
    assert runner.nodes_per_provider.get(CUDA, 0) > 0, runner.nodes_per_provider
