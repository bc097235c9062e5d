"""Concurrent clients against a served model: a fixed number of requests each, every latency and failure kept, and
the batch sizes the server's dynamic batcher formed (from its statistics) over the run."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..deploy.client import ServerError, connect, infer


@dataclass
class LoadResult:
    clients: int
    requests: int  # sent, all clients
    items: int  # clips (batch items) sent
    failures: int
    wall_s: float
    latencies_s: list[float] = field(default_factory=list)  # of the successful requests
    errors: list[str] = field(default_factory=list)  # distinct messages of the failures
    batch_sizes: dict[int, int] = field(default_factory=dict)  # batch size formed -> executions

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else None

    @property
    def items_per_s(self) -> float:
        return (self.items - self.failures * self.items / max(self.requests, 1)) / self.wall_s


def executed_batches(url: str, model: str) -> Counter:
    """Executions of `model` per batch size, from the server's statistics (cumulative since it started)."""
    module, client = connect(url, 10)
    try:
        if module.__name__.endswith("grpc"):
            stats = client.get_inference_statistics(model, as_json=True)
        else:
            stats = client.get_inference_statistics(model)
    finally:
        client.close()
    rows = stats["model_stats"][0].get("batch_stats", [])
    return Counter({int(r["batch_size"]): int(r["compute_infer"]["count"]) for r in rows})


def run_load(url: str, model: str, make_feed: Callable[[int, int], Mapping[str, np.ndarray]], outputs,
             clients: int, requests_per_client: int, timeout_s: float = 30.0, count_batches: bool = True
             ) -> LoadResult:
    """`clients` threads, each with its own connection, sending `requests_per_client` requests of
    make_feed(client, request) to `model` one after another (each request fails after `timeout_s`)."""
    lock, latencies, errors, failures = threading.Lock(), [], [], [0]
    items = [0]
    before = executed_batches(url, model) if count_batches else Counter()

    def client_loop(index: int) -> None:
        module, client = connect(url, timeout_s)
        try:
            for k in range(requests_per_client):
                feed = make_feed(index, k)
                started = time.perf_counter()
                try:
                    infer(module, client, model, feed, outputs, timeout_s)
                    with lock:
                        latencies.append(time.perf_counter() - started)
                except ServerError as e:
                    with lock:
                        failures[0] += 1
                        errors.append(str(e))
                with lock:
                    items[0] += len(next(iter(feed.values())))
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s * (requests_per_client + 1))
    wall = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        raise ServerError(f"{url}: clients still waiting after {wall:.0f} s (each request has {timeout_s} s)")
    formed = executed_batches(url, model) - before if count_batches else Counter()
    return LoadResult(clients, clients * requests_per_client, items[0], failures[0], wall, latencies,
                      sorted(set(errors)), dict(sorted(formed.items())))
