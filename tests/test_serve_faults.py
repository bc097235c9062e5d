"""`t2l serve` faults, loopback only: the server killed mid-load (clients get errors within their timeout) and
restarted (serves again); SIGTERM to `t2l serve` with requests in flight (they finish or get an error, the command
exits); a 2-minute soak with resident memory checked (slow tier)."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from serve_helpers import clips, start_server

from t2l_fast.deploy.serve import ServeOptions, TritonServer
from t2l_fast.perf.serve_load import run_load

VIDEO = "t2l_tiny_video_encoder"
ROOT = Path(__file__).resolve().parents[1]


def _load(url, clients, requests, result, timeout_s=5.0, count_batches=False):
    result.append(run_load(url, VIDEO, lambda c, k: {"frames": clips(2, seed=c)}, ["embedding"], clients, requests,
                           timeout_s=timeout_s, count_batches=count_batches))


def test_killed_server_fails_its_clients_in_time_then_a_restart_serves(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny")
    server = start_server(folder)
    result = []
    load = threading.Thread(target=_load, args=(server.http_url, 8, 200, result))
    load.start()
    time.sleep(1.0)
    server.kill()
    load.join(60)  # each request gives up after 5 s; no client may hang
    server.stop()
    assert not load.is_alive() and result[0].failures > 0 and len(result[0].latencies_s) > 0
    again = TritonServer(folder, ServeOptions(backend="onnx", device="cpu", host="127.0.0.1", max_batch=8,
                                              exit_timeout_s=3,
                                              **{f"{k}_port": v for k, v in server.ports.items()})).start()
    try:
        after = []
        _load(again.http_url, 2, 2, after)
        assert after[0].failures == 0 and again.http_url == server.http_url
    finally:
        again.stop()


def test_sigterm_lets_in_flight_requests_end_and_the_command_exit(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny")
    command = [sys.executable, "-m", "t2l_fast.cli", "serve", "--onnx", str(folder), "--host", "127.0.0.1",
               "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0", "--max-batch", "8",
               "--exit-timeout", "3", "--backend", "onnx", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        summary = ""
        while not summary.startswith("serving") and process.poll() is None:
            summary = process.stdout.readline()  # the one-line startup summary, once ready
        url = re.search(r"HTTP (http://\S+),", summary)
        assert url and "backend onnx" in summary and "up to 8 clips" in summary, summary
        result = []
        load = threading.Thread(target=_load, args=(url.group(1), 4, 100, result, 10.0))
        load.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 128 + signal.SIGTERM
        load.join(60)
        assert not load.is_alive() and len(result[0].latencies_s) > 0  # served until the signal, then errors
        assert result[0].failures + len(result[0].latencies_s) == result[0].requests
    finally:
        if process.poll() is None:
            process.kill()


def _rss_mb(server) -> float:
    """Resident memory of the server and its stub processes (its process group), in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == server.process.pid:
                status = (entry / "status").read_text()
                total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        except (OSError, AttributeError):
            continue
    return total / 1024


SOAK_GROWTH_MB = 50  # the stated bound: after warm-up, 2 minutes of load may add at most this much


@pytest.mark.slow
def test_two_minute_soak_keeps_memory_flat(tiny_exports):
    _, folder = tiny_exports.shared("t2l_tiny")
    server = start_server(folder)
    try:
        _load(server.http_url, 4, 20, [])  # warm-up: sessions, arenas, buffers
        start, deadline, rounds = _rss_mb(server), time.monotonic() + 120, 0
        while time.monotonic() < deadline:
            result = []
            _load(server.http_url, 8, 10, result)
            assert result[0].failures == 0, result[0].errors
            rounds += 1
        end = _rss_mb(server)
        print(f"soak: {rounds * 80} requests, server RSS {start:.0f} MB -> {end:.0f} MB")
        assert end - start <= SOAK_GROWTH_MB
    finally:
        server.stop()
