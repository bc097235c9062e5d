"""`t2l serve` on a real Triton server (the PyTriton wheel's tritonserver), loopback only: parity with local
predict, HTTP and gRPC, `t2l predict --server`, concurrent load, bad requests under load, a slow client. One server
for the module."""
import argparse
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from export_cache import CLASSES, add_int8_graphs
from serve_helpers import MAX_BATCH, clips, start_server
from test_export import videos  # noqa: F401 (a fixture)

from t2l_fast.backend_names import BACKENDS
from t2l_fast.cli import build_parser, main
from t2l_fast.deploy.client import ServedExport, ServerError, connect, infer
from t2l_fast.deploy.serve import ServeError, ServeOptions, resolve_backend
from t2l_fast.perf.serve_load import run_load
from t2l_fast.runtime.bundle import ExportedModel

CLASSIFIER, VIDEO = "t2l_tiny_classifier", "t2l_tiny_video_encoder"


@pytest.fixture(scope="module")
def served(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny")
    server = start_server(folder, run_batch=3)  # the video models run Triton's batches (up to 8) in parts of 3
    yield server, folder
    log = server.log_path.read_text(errors="replace")
    assert server.stop() == 0  # a clean exit within the exit timeout
    assert "Traceback" not in log  # no Python errors logged, bad requests included


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_outputs_equal_local_runners(served, protocol):
    server, folder = served
    remote = ServedExport(server.http_url if protocol == "http" else server.grpc_url)
    bundle, frames = ExportedModel(folder), clips(MAX_BATCH + 3)  # above the server's batch: two requests
    ids = np.random.default_rng(1).integers(0, 49408, (2, 77), dtype=np.int64)
    for kind, feed in (("classifier", {"frames": frames}), ("video_encoder", {"frames": frames}),
                       ("text_encoder", {"token_ids": ids})):
        with bundle.runner(kind) as local, remote.runner(kind) as far:
            expected, actual = local.infer(feed), far.infer(feed)
        for name, value in expected.items():
            np.testing.assert_allclose(actual[name], value, atol=1e-4, rtol=1e-4)
    assert (actual["embedding"] != 0).any()
    assert remote.class_names == CLASSES and remote.backend == "onnx"


@pytest.mark.parametrize("classes", [CLASSES, CLASSES[::-1]], ids=["classifier-model", "encoder-models"])
def test_predict_server_prints_what_local_predict_prints(served, videos, capsys, classes):  # noqa: F811
    server, folder = served
    common = [str(videos / "videos" / "test"), "--classes", ",".join(classes), "--descriptions",
              str(videos / "descriptions.csv")]
    assert main(["predict", *common, "--backend", "onnx", "--onnx", str(folder)]) == 0
    local = capsys.readouterr().out.splitlines()
    assert main(["predict", *common, "--server", server.grpc_url]) == 0
    remote = capsys.readouterr().out.splitlines()
    assert "served at" in remote[0] and len(local) == len(remote) > 3
    assert remote[1:] == local[1:]  # after the header line: the same videos, labels and figures


def test_health_and_metrics(served):
    server, _ = served
    with urllib.request.urlopen(f"{server.http_url}/v2/health/ready", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        assert "nv_inference_request_success" in response.read().decode()


def _good_load(server, clients, requests, result):
    result.append(run_load(server.http_url, VIDEO, lambda c, k: {"frames": clips(1 + (c + k) % 2, seed=c)},
                           ["embedding"], clients, requests, timeout_s=30))


@pytest.mark.parametrize("clients,requests", [(1, 4), (4, 4), (16, 2), (64, 1)])
def test_concurrent_clients_all_succeed_and_batches_form(served, clients, requests):
    server, _ = served
    result = []
    _good_load(server, clients, requests, result)
    load = result[0]
    print(f"{clients} clients: {load.requests} requests, {load.failures} failed, batch sizes formed "
          f"{load.batch_sizes}, p50 {load.percentile(50) * 1e3:.1f} ms")
    assert load.failures == 0, load.errors
    assert sum(size * count for size, count in load.batch_sizes.items()) == load.items
    assert max(load.batch_sizes) <= MAX_BATCH
    if clients >= 16:
        assert max(load.batch_sizes) > 2  # the dynamic batcher joined clients' requests


def _raw_post(server, path: str, body: bytes, headers: dict | None = None) -> int:
    request = urllib.request.Request(f"{server.http_url}{path}", data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_bad_requests_get_errors_while_good_clients_go_on(served):
    server, _ = served
    result = []
    load = threading.Thread(target=_good_load, args=(server, 8, 6, result))
    load.start()
    module, client = connect(server.http_url)
    bad = {"wrong dtype": (VIDEO, {"frames": clips(1).astype(np.float32)}),
           "wrong shape": (VIDEO, {"frames": clips(1, size=31)}),
           "too many frames": (VIDEO, {"frames": clips(1, frames=9)}),
           "batch above the limit": (CLASSIFIER, {"frames": clips(MAX_BATCH + 1)}),
           "unknown model": ("t2l_tiny_nothing", {"frames": clips(1)}),
           "wrong input name": (VIDEO, {"pixels": clips(1)})}
    messages = {}
    for what, (model, feed) in bad.items():
        with pytest.raises(ServerError) as error:
            infer(module, client, model, feed, ["embedding"])
        messages[what] = str(error.value)
    client.close()
    assert _raw_post(server, f"/v2/models/{VIDEO}/infer", b"\x00\xffgarbage{{") >= 400
    assert _raw_post(server, f"/v2/models/{VIDEO}/infer", b'{"inputs": [{"name": "frames"}]}',
                     {"Content-Type": "application/json"}) >= 400
    load.join(120)
    assert not load.is_alive() and result[0].failures == 0, result[0].errors
    assert "t2l_tiny_nothing" in messages["unknown model"]
    assert "FP32" in messages["wrong dtype"] or "UINT8" in messages["wrong dtype"]


def test_a_slow_client_does_not_stall_the_others(served):
    import tritonclient.http as httpclient

    server, _ = served
    frames = httpclient.InferInput("frames", [1, 8, 3, 32, 32], "UINT8")
    frames.set_data_from_numpy(clips(1))
    body, json_size = httpclient.InferenceServerClient.generate_request_body([frames])
    head = (f"POST /v2/models/{VIDEO}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Inference-Header-Content-Length: {json_size}\r\nContent-Type: application/octet-stream\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.ports["http"]), timeout=30) as slow:
        slow.sendall(head.encode() + body[:len(body) // 2])  # half a request, then a pause
        started = time.monotonic()
        fast = []
        _good_load(server, 2, 2, fast)
        assert fast[0].failures == 0 and time.monotonic() - started < 20
        slow.sendall(body[len(body) // 2:])
        answer = b""
        while b'"embedding"' not in answer and (chunk := slow.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b'"embedding"' in answer, answer[:300]


def test_run_batched_answers_each_request_alone():
    from t2l_fast.deploy.serve_model import RequestError, run_batched

    class Doubler:
        def infer(self, feed):
            if feed["x"].sum() < 0:
                raise RuntimeError("negative")
            return {"y": feed["x"] * 2}

    one, two = np.ones((1, 2)), np.full((2, 2), 3.0)
    results = run_batched(Doubler(), [{"x": one}, RequestError("too many frames"), {"x": two}])
    assert results[1] == "too many frames"
    np.testing.assert_array_equal(results[0]["y"], one * 2)
    np.testing.assert_array_equal(results[2]["y"], two * 2)
    failed = run_batched(Doubler(), [{"x": -one}, RequestError("bad")])
    assert failed[0].startswith("inference failed: RuntimeError: negative") and failed[1] == "bad"


def test_run_batched_runs_in_parts_of_the_run_batch():
    from t2l_fast.deploy.serve_model import run_batched

    class Recorder:
        sizes = []

        def infer(self, feed):
            self.sizes.append(len(feed["x"]))
            return {"y": feed["x"] * 2}

    feeds = [{"x": np.full((n, 2), float(n))} for n in (1, 2, 2)]
    results = run_batched(Recorder(), feeds, run_batch=2)
    assert Recorder.sizes == [2, 2, 1]
    for feed, result in zip(feeds, results):
        np.testing.assert_array_equal(result["y"], feed["x"] * 2)

    class NotBatchMajor:
        def infer(self, feed):
            return {"y": np.zeros((3, 2))}

    failed = run_batched(NotBatchMajor(), feeds, run_batch=2)
    assert all(f.startswith("inference failed: BackendError: output 'y' has shape (3, 2), not one row per item of 2")
               for f in failed)


def test_the_served_repository_aims_for_the_run_batch(tiny_exports, tmp_path):
    import json
    import re

    from t2l_fast.deploy.serve import TritonServer
    from t2l_fast.deploy.serve_model import TritonPythonModel
    from t2l_fast.deploy.serve_repository import write_served_repository

    _, folder = tiny_exports.shared("t2l_tiny")
    names = write_served_repository(ExportedModel(folder), tmp_path / "repo", "onnx", "cpu", 8, 100, run_batch=2)
    for name in names:  # the video models run batches of 2; the text encoder whole batches
        config = (tmp_path / "repo" / name / "config.pbtxt").read_text()
        batch = 8 if name.endswith("text_encoder") else 2
        assert "max_batch_size: 8" in config and f"preferred_batch_size: [ {batch} ]" in config
        assert f'key: "t2l_run_batch"\n  value: {{ string_value: "{batch}" }}' in config
    video = tmp_path / "repo" / next(n for n in names if n.endswith("video_encoder")) / "config.pbtxt"
    params = dict(re.findall(r'key: "(t2l_\w+)"\n  value: \{ string_value: "([^"\\]*)" \}', video.read_text()))
    model = TritonPythonModel()  # the served model reads what the repository wrote
    model.initialize({"model_config": json.dumps({"parameters": {k: {"string_value": v} for k, v in params.items()},
                                                  "input": [{"name": "frames"}], "output": [{"name": "embedding"}]})})
    try:
        assert model.run_batch == 2 and model.max_frames == 8
    finally:
        model.finalize()
    with pytest.raises(ServeError, match=r"--run-batch 9: give 1 to --max-batch \(8\), or auto"):
        TritonServer(folder, ServeOptions(max_batch=8, run_batch=9))


def _backend_choices(*command):
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return set(next(a for a in parser._actions if a.dest == "backend").choices)


def test_serve_takes_the_backends_predict_takes():
    assert _backend_choices("serve") == _backend_choices("predict") - {"torch"} == {"auto", *BACKENDS}
    assert _backend_choices("bench", "serve") == _backend_choices("serve")


def test_a_backend_that_cannot_run_is_refused_before_the_server_starts(tiny_exports, tmp_path):
    folder = tiny_exports.copy(tmp_path / "export")
    add_int8_graphs(folder, gate_passed=False)
    bundle = ExportedModel(folder)
    for name, device, why in (("openvino-int8", "cpu", "did not pass the agreement gate"),
                              ("tensorrt", "cpu", "runs on an NVIDIA GPU only"),
                              ("openvino", "cuda", "runs on the CPU only")):
        with pytest.raises(ServeError, match=why) as error:
            resolve_backend(bundle, name, device)
        assert "\n" not in str(error.value) and f"--backend {name}" in str(error.value)
    assert resolve_backend(bundle, "onnx", "cpu")[:2] == ("onnx", "cpu")


@pytest.mark.parametrize("backend", ["openvino", "auto"])
def test_a_server_on_openvino_or_auto_predicts_what_local_predict_does(tiny_exports, videos, capsys, tmp_path,  # noqa: F811
                                                                      backend):
    pytest.importorskip("openvino")
    folder = tiny_exports.copy(tmp_path / "export")  # auto caches its measurement in the folder
    server = start_server(folder, backend=backend, run_batch=None if backend == "auto" else MAX_BATCH)
    common = [str(videos / "videos" / "test"), "--classes", ",".join(CLASSES), "--descriptions",
              str(videos / "descriptions.csv")]
    try:
        assert main(["predict", *common, "--server", server.http_url]) == 0
        remote = capsys.readouterr().out.splitlines()
        assert main(["predict", *common, "--backend", backend, "--onnx", str(folder), "--device", "cpu"]) == 0
        local = capsys.readouterr().out.splitlines()
    finally:
        assert server.stop() == 0
    summary = server.summary()
    print(summary, remote[0], sep="\n")
    if backend == "auto":  # chosen once at start, said in the summary; local auto reuses that measurement
        assert f"backend auto: {server.backend} (" in summary and "the fastest that passed its gates" in summary
        assert local[0].startswith(f"backend auto: {server.backend} (") and "on this machine" in local[0]
        assert f"runs video batches of {server.run_batch}, the smallest within 3% of the best throughput" in summary
    else:
        assert server.backend == "openvino" and "backend openvino (OpenVINO on cpu)" in summary
    assert f"(on the server: {BACKENDS[server.backend].describe()}, " in remote[0] and len(remote) > 3
    assert remote[1:] == local[-(len(remote) - 1):]  # after the header line: the same videos, labels and figures


def test_bench_serve_reports_served_against_in_process(tiny_exports, tmp_path, capsys):
    """`t2l bench serve` on a tiny export: in-process rows at batch 1..max, served rows per client count with no
    failed request, the batch sizes the server formed, and the two serving targets stated."""
    import json

    export = tiny_exports.copy(tmp_path / "export")
    assert main(["bench", "serve", "--onnx", str(export), "--backend", "onnx", "--clients", "1", "4", "16",
                 "--requests", "16", "--max-batch", "4", "--calls", "2", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "out" / "serve.json").read_text())["rows"]
    assert [(r["mode"], r["batch"]) for r in rows if r["mode"] == "in-process"] == [("in-process", b)
                                                                                 for b in (1, 2, 4)]
    served = [r for r in rows if r["mode"] == "served"]
    assert [r["clients"] for r in served] == [1, 4, 16] and all(r["failures"] == 0 for r in served)
    assert sum(sum(int(n) for n in r["batch_sizes"].values()) for r in served) > 0
    assert all(r["backend"] == "onnx" and r["vs_in_process"] > 0 for r in rows)
    assert "16 clients: " in printed and "target >= 0.9x" in printed and "1 client: p99" in printed
