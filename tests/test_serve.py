"""`t2l serve` on a real Triton server (the PyTriton wheel's tritonserver), loopback only: parity with local
predict, HTTP and gRPC, `t2l predict --server`, concurrent load, bad requests under load, a slow client. One server
for the module."""
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from export_cache import CLASSES
from serve_helpers import MAX_BATCH, clips, start_server
from test_export import videos  # noqa: F401 (a fixture)

from t2l_fast.cli import main
from t2l_fast.deploy.client import ServedExport, ServerError, connect, infer
from t2l_fast.perf.serve_load import run_load
from t2l_fast.runtime.bundle import ExportedModel

CLASSIFIER, VIDEO = "t2l_tiny_classifier", "t2l_tiny_video_encoder"


@pytest.fixture(scope="module")
def served(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny")
    server = start_server(folder)
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
    from t2l_fast.cli.common import EXPORT_BACKENDS
    from t2l_fast.deploy.serve_model import RequestError, run_batched
    from t2l_fast.runtime import factory

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
    assert EXPORT_BACKENDS == factory.EXPORT_BACKENDS  # the CLI's copy (kept light for --help)
