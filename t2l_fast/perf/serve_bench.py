"""`t2l bench serve`: served throughput and latency at 1/4/16/64 clients against the same backend in process at its
best batch, on one export folder, in one run."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..deploy.serve import ServeOptions, TritonServer, resolve_backend
from ..runtime.base import timed_calls
from ..runtime.bundle import ExportedModel
from ..runtime.export_runners import export_runner
from .serve_load import run_load


def _clips(spec, batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, spec.frames, 3, spec.image_size, spec.image_size),
                                                dtype=np.uint8)  # [B, T, 3, S, S]


def _row(mode: str, clients: int, batch: int, latencies: Sequence[float], clips_per_s: float, **extra) -> dict:
    p50, p90, p99 = (float(np.percentile(latencies, q)) * 1e3 for q in (50, 90, 99))
    return {"mode": mode, "clients": clients, "batch": batch, "clips_per_s": round(clips_per_s, 2),
            "p50_ms": round(p50, 2), "p90_ms": round(p90, 2), "p99_ms": round(p99, 2), **extra}


def in_process_rows(bundle: ExportedModel, backend: str, device: str, batches: Sequence[int], calls: int
                    ) -> list[dict]:
    """The video encoder on `backend` in this process, `calls` timed calls per batch after one warm-up."""
    rows = []
    with export_runner(bundle, backend, "video_encoder", device=device) as runner:
        for batch in batches:
            latencies = timed_calls(runner, {"frames": _clips(bundle.input_spec, batch)}, calls)
            rows.append(_row("in-process", 1, batch, latencies, batch / float(np.median(latencies))))
    return rows


def served_rows(bundle: ExportedModel, options: ServeOptions, clients: Sequence[int], requests: int,
                clips_per_s: float, log: Callable[[str], None] = print) -> tuple[list[dict], str]:
    """The video encoder served by `t2l serve`: `requests` one-clip requests per client count, after a warm-up;
    each row names the batch the server ran at (run_batch). Also returns the server's line on its run batch.
    A request may wait for every other client's clip before its own: its timeout is three times that wait at
    `clips_per_s` (in process), at least 120 s, so a slow model's queue is not counted as failures."""
    rows, spec = [], bundle.input_spec
    with TritonServer(bundle.directory, options, log=log) as server:
        log(f"served: {server.batch_line}")
        batch_line = server.batch_line
        model = f"{bundle.config.name}_video_encoder"
        run_load(server.http_url, model, lambda c, k: {"frames": _clips(spec, 1, c)}, ["embedding"], 2, 4)
        for count in clients:
            load = run_load(server.http_url, model, lambda c, k: {"frames": _clips(spec, 1, c)}, ["embedding"],
                            count, max(1, requests // count), timeout_s=max(120.0, 3 * count / max(clips_per_s, 1e-3)))
            rows.append(_row("served", count, 1, load.latencies_s, load.items_per_s, requests=load.requests,
                             failures=load.failures, batch_sizes=load.batch_sizes, run_batch=server.run_batch))
    return rows, batch_line


def run_serve_bench(export_dir: Path, backend: str, clients: Sequence[int], requests: int, max_batch: int,
                    calls: int, log: Callable[[str], None] = print, run_batch: int | None = None
                    ) -> tuple[list[dict], list[str]]:
    """In-process rows (batch 1 up to max_batch, doubling), then served rows, each with its vs_in_process against
    the best in-process throughput; and the lines saying which backend and run batch the server used. `backend` auto
    is resolved once, here: both sides run the backend it chose."""
    options = ServeOptions(host="127.0.0.1", http_port=0, grpc_port=0, metrics_port=0, max_batch=max_batch,
                           run_batch=run_batch)  # checked before any measuring
    bundle = ExportedModel(export_dir)
    backend, device, line = resolve_backend(bundle, backend, None)
    log(line)
    batches = sorted({1, max_batch} | {b for b in (2, 4, 8, 16, 32, 64) if b < max_batch})
    log(f"in process: {backend}, batches {batches}")
    rows = in_process_rows(bundle, backend, device, batches, calls)
    best = max(r["clips_per_s"] for r in rows)
    log(f"served: {backend}, clients {list(clients)}, {requests} requests each")
    served, batch_line = served_rows(bundle, replace(options, backend=backend, device=device), clients, requests,
                                     best, log)
    rows += served
    for row in rows:
        row["vs_in_process"], row["backend"] = round(row["clips_per_s"] / best, 3), backend
    return rows, [line, f"the server {batch_line}"]


def targets(rows: Sequence[dict]) -> list[str]:
    """The serving targets: at 16 clients >= 0.9x the best in-process throughput (dynamic batching hides the
    server); p99 latency at 1 client <= 1.2x in process at batch 1."""
    served = {r["clients"]: r for r in rows if r["mode"] == "served"}
    alone = next((r for r in rows if r["mode"] == "in-process" and r["batch"] == 1), None)
    lines = []
    if 16 in served:
        ratio = served[16]["vs_in_process"]
        lines.append(f"16 clients: {ratio:.2f}x the best in-process throughput (target >= 0.9x: "
                     f"{'met' if ratio >= 0.9 else 'missed'})")
    if 1 in served and alone:
        ratio = served[1]["p99_ms"] / alone["p99_ms"]
        lines.append(f"1 client: p99 {served[1]['p99_ms']:,.0f} ms, {ratio:.2f}x in process at batch 1 "
                     f"({alone['p99_ms']:,.0f} ms; target <= 1.2x: {'met' if ratio <= 1.2 else 'missed'})")
    return lines
