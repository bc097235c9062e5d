"""Stopping a run cleanly on SIGINT/SIGTERM: a signal is only noted, then acted on between steps, by every rank."""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

from . import distributed

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the exit status of a run a signal stopped


class StopSignals:
    """While entered, SIGINT and SIGTERM are noted instead of interrupting (never inside a step); the previous
    handlers come back on exit."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._note) for s in SIGNAL_EXIT}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _note(self, signum, frame) -> None:
        self.received = signum

    def stop_if_received(self, save_state: Callable[[], Path], step: int, config_file: Path) -> None:
        """After a step: when any rank got a signal, every rank saves the state and exits 130 (SIGINT) or 143
        (SIGTERM); rank 0 says how to continue."""
        stop = distributed.agree(self.received or 0)  # a signal on any rank stops them all
        if not stop:
            return
        state = save_state()
        if distributed.rank_and_world()[0] == 0:
            print(f"{signal.Signals(stop).name} at step {step}: state saved to {state}; continue with: t2l train "
                  f"--config {config_file} --resume {state}", file=sys.stderr, flush=True)
        raise SystemExit(SIGNAL_EXIT[signal.Signals(stop)])
