"""`t2l serve`: a real Triton Inference Server (the PyTriton wheel's `tritonserver`) over an export folder's graphs,
with dynamic batching, HTTP and gRPC, health/ready and Prometheus metrics; stopped cleanly (in-flight requests
finish within the exit timeout, then the server exits).

    with TritonServer("exports/t2l_b16", ServeOptions(http_port=0, grpc_port=0, metrics_port=0)) as server:
        print(server.summary())   # endpoints, models, backend, batch limits
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import T2LError
from ..runtime.bundle import ExportedModel
from ..runtime.export_runners import backend, unavailable_reason
from .serve_repository import find_triton, server_environment, write_backends, write_served_repository

RLOCK_PITFALL = "_recursion_count"  # the stub ran on another build's libpython (see server_environment)


class ServeError(T2LError):
    """The server could not start, or stopped (the message says why and what to do)."""


@dataclass(frozen=True)
class ServeOptions:
    backend: str = "auto"  # auto, or a backend of runtime/export_runners.py (t2l_fast.backend_names)
    device: str | None = None  # None: cuda when torch sees a GPU, else cpu
    host: str = "0.0.0.0"
    http_port: int = 8000  # 0: a free port
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 32  # the largest batch Triton's dynamic batcher forms (and a request may carry)
    run_batch: int | None = None  # the video models' batch per backend call (None: measured, runtime/batch_choice.py)
    queue_delay_us: int = 2000  # the longest a request waits for others to batch with
    exit_timeout_s: int = 10  # on stop, how long in-flight requests get to finish
    start_timeout_s: float = 180.0

    def __post_init__(self):
        if self.max_batch < 1:
            raise ServeError(f"--max-batch {self.max_batch}: give 1 or more")
        if self.run_batch is not None and not 1 <= self.run_batch <= self.max_batch:
            raise ServeError(f"--run-batch {self.run_batch}: give 1 to --max-batch ({self.max_batch}), or auto")


def free_port(host: str) -> int:
    """A port free on `host` now (the OS's pick; another process could take it before the server binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1" if host == "0.0.0.0" else host, 0))
        return probe.getsockname()[1]


def resolve_backend(bundle: ExportedModel, name: str, device: str | None) -> tuple[str, str, str]:
    """(backend, device, one line saying which and why) that a server of `bundle` runs: auto measured once per
    machine (runtime/backend_choice.py); a named backend checked here (installed, runs on `device`, INT8 gate
    passed), so that a refusal is one line rather than models failing to load inside the server."""
    from ..runtime.backend_choice import choose_backend, default_device

    if name == "auto":
        choice = choose_backend(bundle, device)
        return choice.backend, choice.device, choice.line
    device = default_device(device)
    reason = unavailable_reason(name, bundle, device)
    if reason:
        raise ServeError(f"--backend {name} cannot serve {bundle.directory} on {device}: {reason}")
    return name, device, f"backend {name} ({backend(name).describe()} on {device})"


class TritonServer:
    """One `tritonserver` process serving an export folder; a context manager (start on entry, stop on exit)."""

    def __init__(self, export_dir, options: ServeOptions = ServeOptions(), log: Callable[[str], None] | None = None):
        self.bundle, self.options, self.log = ExportedModel(export_dir), options, log
        self.process: subprocess.Popen | None = None
        self.work: Path | None = None
        self.models: list[str] = []
        self.backend, self.device, self.backend_line = options.backend, options.device, ""  # resolved by start()
        self.run_batch, self.batch_line = options.run_batch, ""  # resolved by start()
        self.ports = {key: getattr(options, f"{key}_port") or free_port(options.host)
                      for key in ("http", "grpc", "metrics")}

    # ----------------------------------------------------------------- facts
    @property
    def address(self) -> str:
        return "127.0.0.1" if self.options.host == "0.0.0.0" else self.options.host

    @property
    def http_url(self) -> str:
        return f"http://{self.address}:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.address}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{self.ports['metrics']}/metrics"

    @property
    def log_path(self) -> Path:
        return self.work / "tritonserver.log"

    def summary(self) -> str:
        o = self.options
        return (f"serving {self.bundle.directory} on Triton: HTTP {self.http_url}, gRPC {self.grpc_url}, metrics "
                f"{self.metrics_url}; models {', '.join(self.models)}; dynamic batching up to {o.max_batch} clips, "
                f"queue delay {o.queue_delay_us} us; {self.backend_line}; {self.batch_line}; Ctrl-C stops")

    # ----------------------------------------------------------------- life
    def start(self) -> TritonServer:
        """Resolve the backend, write the repository, start the server and wait until it is ready (or raise
        ServeError)."""
        install = find_triton()
        o = self.options
        self.backend, self.device, self.backend_line = resolve_backend(self.bundle, o.backend, o.device)
        self.run_batch, self.batch_line = self._run_batch()
        self.work = Path(tempfile.mkdtemp(prefix="t2l-serve-"))
        try:
            self.models = write_served_repository(self.bundle, self.work / "models", self.backend, self.device,
                                                  o.max_batch, o.queue_delay_us, self.run_batch)
        except BaseException:  # a refused export leaves no work folder behind
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        command = [str(install.binary), f"--model-repository={self.work / 'models'}",
                   f"--backend-directory={write_backends(install, self.work / 'backends')}",
                   f"--http-address={o.host}", f"--grpc-address={o.host}", f"--metrics-address={o.host}",
                   f"--http-port={self.ports['http']}", f"--grpc-port={self.ports['grpc']}",
                   f"--metrics-port={self.ports['metrics']}", f"--exit-timeout-secs={o.exit_timeout_s}",
                   "--allow-gpu-metrics=false", "--strict-readiness=true", "--log-verbose=0"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=server_environment(install), start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_batch(self) -> tuple[int, str]:
        """The video models' batch per backend call, and a line saying why: --run-batch, or the one measured once
        per machine (runtime/batch_choice.py)."""
        if self.options.run_batch is not None:
            return self.options.run_batch, f"runs video batches of {self.options.run_batch} (--run-batch)"
        from ..runtime.batch_choice import choose_run_batch

        choice = choose_run_batch(self.bundle, self.backend, self.device, self.options.max_batch, log=self.log)
        return choice.batch, choice.line

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(self._failure(f"tritonserver exited (code {self.process.returncode}) while "
                                               f"loading"))
            if self.ready():
                return
            time.sleep(0.2)
        raise ServeError(self._failure(f"not ready after {self.options.start_timeout_s:.0f} s"))

    def _failure(self, what: str) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if RLOCK_PITFALL in text:
            return (f"{what}: the Python-backend stub loaded another build's libpython; put this interpreter's "
                    f"libpython folder first: export LD_LIBRARY_PATH=<python's sysconfig LIBDIR> (see "
                    f"docs/TRITON.md)")
        errors = [line for line in text.splitlines() if line.startswith("E") or "rror" in line]
        return f"{what}: {errors[-1].strip() if errors else 'no error logged'} (log: {self.log_path})"

    def ready(self) -> bool:
        """Whether /v2/health/ready answers 200 (server up and every model loaded)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then wait for in-flight requests (the exit timeout) and the exit; SIGKILL to the server's
        process group (it and its stubs) if it does not. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.options.exit_timeout_s + 15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reap_group()
        return self.process.returncode

    def _reap_group(self) -> None:
        """Stub processes left in the server's group (a killed server leaves them) are ended; then the work folder
        (kept when the server failed, for its log) goes."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.returncode in (0, -signal.SIGTERM, -signal.SIGKILL) and self.work:
            shutil.rmtree(self.work, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server process alone (fault tests: its clients must get errors, not hang)."""
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
