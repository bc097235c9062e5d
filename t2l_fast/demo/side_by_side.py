"""Demo stages side by side: each in a spawned worker process with its share of torch's threads, its output (Python's
and native libraries') in logs/STAGE.log of the demo folder. Training a tiny model on a CPU keeps one core busy with
the model and leaves the rest to the loader's decoding; on 2 cores two runs side by side finish about 35% sooner than
one after the other.

A stage's error ends the group: the stages not started are cancelled and the running ones stopped. Every stage that
finished before is kept (the next `t2l demo` reuses it). Workers exit when the demo process dies (a watchdog).
Scripts that call `run_demo` need an `if __name__ == "__main__":` guard (spawned workers import the script).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from ..errors import T2LError
from ..runtime.machine_id import usable_cpus
from .stages import Run, Stage, timed


def can_run_side_by_side(stages: list[Stage]) -> bool:
    """Whether there is more than one stage and more than one usable core to put them on."""
    return len(stages) > 1 and usable_cpus() > 1


def run_side_by_side(run: Run, stages: list[Stage], keep: Callable[[Stage, dict], None]) -> None:
    """Run `stages` at once (as many as there are usable cores) and `keep` each result in stage order as it comes."""
    cores = usable_cpus()
    workers = min(len(stages), cores)
    (run.out / "logs").mkdir(parents=True, exist_ok=True)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_watch_parent,
                               initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_run_in_worker, stage, run.out, run.fast, run.results,
                               cores if stage.all_threads else max(1, cores // workers)) for stage in stages]
        for stage, future in zip(stages, futures):
            keep(stage, future.result())
    except BrokenProcessPool as e:  # a worker killed (out of memory, a signal), or a result that would not unpickle
        raise T2LError(f"a process running {', '.join(s.name for s in stages)} stopped without a Python error ({e}); "
                       f"its output is in {run.out / 'logs'}. Run `t2l demo` again: finished stages are reused") \
            from None
    finally:
        _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop what still runs (nothing does after a normal end)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # no public way to stop a worker
        if process.is_alive():
            process.terminate()


def _watch_parent(parent: int) -> None:
    """In a worker: exit when the demo process is gone (killed outright, it cannot stop its workers)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_in_worker(stage: Stage, out: Path, fast: bool, results: dict, threads: int) -> dict:
    """A worker's stage, with `threads` torch threads; a T2LError comes back as a plain one (a subclass with more
    constructor arguments would not unpickle), its traceback in the log."""
    import torch

    torch.set_num_threads(threads)
    with _output_to(out / "logs" / f"{stage.name}.log"):
        try:
            return timed(stage, Run(out=out, fast=fast, results=results, log=print))
        except T2LError as e:
            traceback.print_exc()
            raise T2LError(f"{stage.title}: {e}") from None


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """This process's file descriptors 1 and 2 (Python's output and native libraries') into `path`, line by line."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout.reconfigure(line_buffering=True)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
