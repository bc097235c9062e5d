"""Measurements in fresh subprocesses, so each one's memory figures are its own."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, List


def run_isolated(module: str, spec: dict) -> List[dict]:
    """Run `python -m module SPEC.json ROWS.json` and return its rows; one {"error": ...} row if it failed."""
    with tempfile.TemporaryDirectory(prefix="t2l-bench-") as scratch:
        spec_path, rows_path = Path(scratch) / "spec.json", Path(scratch) / "rows.json"
        spec_path.write_text(json.dumps(spec))
        result = subprocess.run([sys.executable, "-m", module, str(spec_path), str(rows_path)], capture_output=True,
                                text=True)
        if result.returncode != 0 or not rows_path.is_file():
            last = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
            return [{**{k: v for k, v in spec.items() if isinstance(v, (str, int, float, bool))}, "error": last[:300]}]
        return json.loads(rows_path.read_text())


def worker_main(measure: Callable[[dict], List[dict]]) -> None:
    """The subprocess side: read the spec, measure, write the rows."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(measure(spec), default=float))
