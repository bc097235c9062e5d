"""The batch a server runs its backend at (`t2l serve --run-batch auto`): measured once per machine, export and
backend, and cached beside the export (serve_batch.json).

Batches 1, 2, 4, ... up to the server's limit are timed in turn on the video encoder; the timing stops once a batch
gives clearly fewer clips/s than the best so far. The smallest batch within TOLERANCE of the best throughput wins:
the same throughput at less latency. On a CPU where batching does not pay that is 1; on a GPU, usually the limit.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..errors import InputFileError
from .backend_choice import MEASURED_GRAPH, cache_key, measurement_clips, read_choice, write_choice
from .base import timed_calls
from .bundle import ExportedModel
from .export_runners import export_runner

BATCH_FILE = "serve_batch.json"
FORMAT = "t2l-fast-serve-batch"
CALLS = 2  # timed calls per batch, after one warm-up call
TOLERANCE = 0.03  # a smaller batch within 3% of the best throughput is taken


@dataclass(frozen=True)
class BatchChoice:
    batch: int
    line: str  # which batch, and why, in one line
    record: dict


def candidate_batches(max_batch: int) -> list[int]:
    """1, 2, 4, ... below `max_batch`, then `max_batch` itself."""
    return sorted({1 << k for k in range(max_batch.bit_length()) if 1 << k < max_batch} | {max_batch})


def measure_batches(bundle: ExportedModel, backend: str, device: str, batches: Sequence[int]) -> dict[str, float]:
    """Clips/s of the video encoder on `backend` per batch of `batches` (the fastest of CALLS calls after a warm-up),
    in order, stopping after the first batch clearly slower than the best before it."""
    clips = measurement_clips(bundle)  # [2, T, 3, S, S]
    results: dict[str, float] = {}
    with export_runner(bundle, backend, MEASURED_GRAPH, device=device) as runner:
        for batch in batches:
            feed = {"frames": clips[np.arange(batch) % len(clips)]}  # [batch, T, 3, S, S]
            results[str(batch)] = round(batch / min(timed_calls(runner, feed, CALLS)), 3)
            if results[str(batch)] < (1 - TOLERANCE) * max(results.values()):
                break
    return results


def _check_record(record) -> None:
    """Raise InputFileError (a ValueError) unless `record` has the format, a key and positive clips/s per batch."""
    if record.get("format") != FORMAT or not isinstance(record["key"], dict):
        raise InputFileError(f"format is not {FORMAT!r}")
    for batch, clips_per_s in record["clips_per_s"].items():
        if not (batch.isdigit() and int(batch) >= 1 and isinstance(clips_per_s, (int, float))
                and math.isfinite(clips_per_s) and clips_per_s > 0):
            raise InputFileError(f"batch {batch!r}: {clips_per_s!r} is not a throughput")


def best_batch(clips_per_s: dict[str, float]) -> int:
    """The smallest batch within TOLERANCE of the best throughput."""
    best = max(clips_per_s.values())
    return min(int(batch) for batch, rate in clips_per_s.items() if rate >= (1 - TOLERANCE) * best)


def choose_run_batch(bundle: ExportedModel, backend: str, device: str, max_batch: int,
                     measure: Callable[[ExportedModel, str, str, Sequence[int]], dict[str, float]] = measure_batches
                     ) -> BatchChoice:
    """The batch `backend` runs best at here, up to `max_batch`: measured once and cached; one line says which."""
    batches = candidate_batches(max_batch)
    key = {**cache_key(bundle, device), "measured": {"graph": MEASURED_GRAPH, "backend": backend,
                                                     "batches": batches, "calls": CALLS}}
    path = bundle.directory / BATCH_FILE
    record = read_choice(path, _check_record, "serve batch")
    if record is not None and record["key"] == key and record["clips_per_s"]:
        how = f"measured {record['measured_at']} on this machine ({path})"
    else:
        record = {"format": FORMAT, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "key": key, "clips_per_s": measure(bundle, backend, device, batches)}
        how = f"measured now; {write_choice(path, record)}"
    batch = best_batch(record["clips_per_s"])
    figures = ", ".join(f"{rate:g} at {size}" for size, rate in record["clips_per_s"].items())
    return BatchChoice(batch, f"runs batches of {batch}, the smallest within {TOLERANCE:.0%} of the best "
                              f"throughput of {backend} ({figures} clips/s); {how}", record)
