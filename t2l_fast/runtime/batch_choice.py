"""The batch a server runs its video models at (`t2l serve --run-batch auto`): measured once per machine, export,
backend and batch limit, and cached beside the export (serve_batch.json).

Batches 1, 2, 4, ... up to the server's limit are timed in turn on the video encoder; the timing stops at a batch
that gives STOP_BELOW fewer clips/s than the best so far, or that fails to run (too big for the device, outside an
engine's profile). The smallest batch within TOLERANCE of the best throughput wins: about the same throughput at less
latency. On a CPU where batching does not pay that is 1.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..errors import InputFileError, T2LError
from .backend_choice import MEASURED_GRAPH, cache_key, changed, check_time, measurement_clips, read_choice, write_choice
from .base import timed_calls
from .bundle import ExportedModel
from .export_runners import export_runner

BATCH_FILE = "serve_batch.json"
FORMAT = "t2l-fast-serve-batch"
CALLS = 2  # timed calls per batch, after one warm-up call
TOLERANCE = 0.03  # the smallest batch within 3% of the best throughput is taken
STOP_BELOW = 0.10  # the timing stops at a batch 10% below the best so far (above this machine's noise)


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
    in order, stopping at a batch STOP_BELOW slower than the best before it, or before one that fails to run (a
    batch of 1 that fails raises)."""
    clips = measurement_clips(bundle)  # [2, T, 3, S, S]
    results: dict[str, float] = {}
    with export_runner(bundle, backend, MEASURED_GRAPH, device=device) as runner:
        for batch in batches:
            feed = {"frames": clips[np.arange(batch) % len(clips)]}  # [batch, T, 3, S, S]
            try:
                seconds = min(timed_calls(runner, feed, CALLS))
            except (T2LError, RuntimeError, MemoryError) as e:
                if not results:
                    raise T2LError(f"{backend} cannot run one clip of {bundle.directory}'s {MEASURED_GRAPH}: "
                                   f"{str(e).splitlines()[0]}") from None
                break
            results[str(batch)] = float(f"{batch / seconds:.4g}")
            if results[str(batch)] < (1 - STOP_BELOW) * max(results.values()):
                break
    return results


def _check_record(record) -> None:
    """Raise InputFileError (a ValueError) unless `record` has the format, a key, a time, and positive clips/s for the
    first of the batches its key names, in order."""
    if record.get("format") != FORMAT or not isinstance(record["key"], dict):
        raise InputFileError(f"format is not {FORMAT!r}")
    check_time(record)
    rates, batches = record["clips_per_s"], record["key"]["measured"]["batches"]
    if not rates or list(rates) != [str(b) for b in batches[:len(rates)]]:
        raise InputFileError(f"measured batches {list(rates)} are not the first of {batches}")
    for batch, clips_per_s in rates.items():
        if type(clips_per_s) not in (int, float) or not (math.isfinite(clips_per_s) and clips_per_s > 0):
            raise InputFileError(f"batch {batch}: {clips_per_s!r} is not a throughput")


def best_batch(clips_per_s: dict[str, float]) -> int:
    """The smallest batch within TOLERANCE of the best throughput."""
    best = max(clips_per_s.values())
    return min(int(batch) for batch, rate in clips_per_s.items() if rate >= (1 - TOLERANCE) * best)


def choose_run_batch(bundle: ExportedModel, backend: str, device: str, max_batch: int,
                     measure: Callable[[ExportedModel, str, str, Sequence[int]], dict[str, float]] = measure_batches,
                     log: Callable[[str], None] | None = None) -> BatchChoice:
    """The batch `backend` runs the video encoder best at here, up to `max_batch`: measured once and cached (`log`
    hears before a measurement); one line says which and why."""
    batches = candidate_batches(max_batch)
    if batches == [1]:
        return BatchChoice(1, "runs batches of 1 (--max-batch 1)", {})
    key = cache_key(bundle, device, {"graph": MEASURED_GRAPH, "backend": backend, "batches": batches, "calls": CALLS})
    path = bundle.directory / BATCH_FILE
    record = read_choice(path, _check_record, "serve batch")
    if record is not None and record["key"] == key:
        how = f"measured {record['measured_at']} on this machine ({path})"
    else:
        why = changed(record["key"], key) if record else "first run here"
        if log:
            log(f"timing {backend} at batches {batches} to choose the run batch ({why}; once per machine)")
        record = {"format": FORMAT, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "key": key, "clips_per_s": measure(bundle, backend, device, batches)}
        how = f"measured now ({why}); {write_choice(path, record)}"
    batch = best_batch(record["clips_per_s"])
    figures = ", ".join(f"{rate:g} at {size}" for size, rate in record["clips_per_s"].items())
    return BatchChoice(batch, f"runs video batches of {batch}, the smallest within {TOLERANCE:.0%} of the best "
                              f"throughput of {backend} ({figures} clips/s); {how}", record)
