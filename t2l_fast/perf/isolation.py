"""Measurements in fresh subprocesses, so each one's memory figures are its own; the subprocess reports progress."""
from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PROGRESS = "t2l-progress: "  # a stderr line of the worker that the parent reads as a progress step


def run_isolated(module: str, spec: dict, on_progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run `python -m module SPEC.json ROWS.json` and return its rows; one {"error": ...} row if it failed, and a
    KeyboardInterrupt if SIGINT stopped it (an interrupted benchmark is not a finished one).
    The worker's `report_progress` lines go to `on_progress` as they come."""
    with tempfile.TemporaryDirectory(prefix="t2l-bench-") as scratch:
        spec_path, rows_path = Path(scratch) / "spec.json", Path(scratch) / "rows.json"
        spec_path.write_text(json.dumps(spec))
        last_lines: collections.deque = collections.deque(maxlen=20)
        with subprocess.Popen([sys.executable, "-m", module, str(spec_path), str(rows_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as worker:
            for line in worker.stderr:
                if line.startswith(PROGRESS):
                    if on_progress:
                        on_progress(line[len(PROGRESS):].strip())
                elif line.strip():
                    last_lines.append(line.strip())
        if worker.returncode in (-signal.SIGINT, 130):  # Ctrl-C stopped the measurement: so it stops the caller
            raise KeyboardInterrupt
        if worker.returncode != 0 or not rows_path.is_file():
            last = (list(last_lines) or [f"exit {worker.returncode}"])[-1]
            return [{**{k: v for k, v in spec.items() if isinstance(v, (str, int, float, bool))}, "error": last[:300]}]
        return json.loads(rows_path.read_text())


def report_progress(text: str) -> None:
    """The worker side: one finished step, for the parent's progress bar."""
    print(PROGRESS + text, file=sys.stderr, flush=True)


def worker_main(measure: Callable[[dict], list[dict]]) -> None:
    """The subprocess side: read the spec, measure, write the rows."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(measure(spec), default=float))
