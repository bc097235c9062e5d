"""Rank 0's record of a training run: metrics.jsonl lines, TensorBoard scalars (when tensorboard is installed), an
epoch's progress bar, and the clips per second since the run started."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from ..progress import progress_bar


def _tensorboard(folder: Path):
    """A TensorBoard SummaryWriter when tensorboard is installed, else None."""
    from ..optional import installed

    if not installed("tensorboard"):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class RunLog:
    """Opened on every rank, it writes on rank 0 only (`output` given): other ranks count clips and show no bar."""

    def __init__(self, output: Path | None):
        self.started, self.clips, self.last = time.time(), 0, {}  # last: the last training step's line
        self._file = open(output / "metrics.jsonl", "a") if output else None
        self._board = _tensorboard(output / "tensorboard") if output else None
        self._bar = None

    def record(self, entry: dict, group: str) -> None:
        """One JSONL line, and its numbers as TensorBoard scalars of `group` at entry["step"]."""
        if self._file is None:
            return
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        if self._board:
            for key, value in entry.items():
                if key not in ("step", "epoch"):
                    self._board.add_scalar(f"{group}/{key}", value, entry["step"])

    def progress(self, steps: Iterable, description: str, done: int, total: int) -> Iterable:
        """`steps` behind an epoch's progress bar (rank 0); a log file gets a line per 30 s, a terminal more."""
        self._bar = progress_bar(steps, desc=description, leave=False, initial=done, total=total,
                                 disable=self._file is None)
        return self._bar

    def train_step(self, position: dict, clips: int, metrics: dict | None, lr: float) -> None:
        """Count a step's clips (all ranks'); record its metrics (unless it was skipped) with its lr and the clips
        per second so far. position: {"step": ..., "epoch": ...}."""
        self.clips += clips
        if metrics is None:
            return
        self.last = {**position, **metrics, "lr": lr, "clips_per_s": self.clips / (time.time() - self.started)}
        self.record(self.last, "train")
        self._bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{lr:.2e}", clips_s=f"{self.last['clips_per_s']:.1f}",
                              refresh=False)  # redrawn with the bar's own count, at its interval

    def close(self) -> None:
        if self._file:
            self._file.close()
        if self._board:
            self._board.close()
