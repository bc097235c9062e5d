"""`t2l demo`: the product end to end on built-in synthetic data (no downloads), one stage after another, each
saying what it showed, into one run folder with `report.md`, `report.html` and `summary.json`.

Stages (stages.py) write their results to `stages/NAME.json`; a re-run reuses every finished stage of the same
budget (`force` redoes them). A folder that is not empty and was not written by the demo is never touched.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..io import atomic_write, claim_folder
from .stages import STAGES, Run

MARKER = ".t2l-demo"


def _claim_folder(out: Path) -> None:
    """Make `out` a demo folder: new, empty, or already marked as one; anything else is refused."""
    claim_folder(out, MARKER, "a demo folder")
    (out / MARKER).write_text(json.dumps({"t2l_fast_version": __version__}) + "\n")


def _finished(saved: Path, fast: bool) -> dict | None:
    """The result a finished stage saved at this budget; None when absent, of the other budget, or unreadable (a
    file torn by a kill means the stage did not finish)."""
    try:
        result = json.loads(saved.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) and result.get("fast") == fast else None


def run_demo(out_dir: str = "runs/demo", fast: bool = False, force: bool = False,
             log: Callable[[str], None] | None = None) -> dict:
    """Run (or reuse) every stage, then write the report; returns the summary. fast: the test suite's budget
    (about 2 minutes on 2 cores: every stage runs, the learning results are not meaningful)."""
    from .report import write_outputs

    log = log or (lambda line: print(line, flush=True))
    out = Path(out_dir)
    _claim_folder(out)
    run = Run(out=out, fast=fast, results={}, log=log)
    started = time.time()
    log(f"t2l demo -> {out} ({'--fast: the test budget' if fast else 'full budget'}); stages reused unless --force")
    redo = force  # once a stage runs, every later one runs too: it may read the new results
    for number, stage in enumerate(STAGES, 1):
        saved = out / "stages" / f"{stage.name}.json"
        result = None if redo else _finished(saved, fast)
        if result is not None:
            run.results[stage.name] = result
            log(f"[{number:>2}/{len(STAGES)}] {stage.title}: reused ({saved})")
            continue
        redo = True
        log(f"[{number:>2}/{len(STAGES)}] {stage.title} ...")
        stage_started = time.time()
        result = {"fast": fast, **stage.run(run), "seconds": round(time.time() - stage_started, 1)}
        saved.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2, default=str) + "\n"
        atomic_write(saved, lambda tmp, text=text: Path(tmp).write_text(text))  # a kill leaves old or new
        run.results[stage.name] = result
        for line in result.get("lines", []):
            log(f"      {line}")
        log(f"      done in {result['seconds']} s")
    summary = write_outputs(run, seconds=round(time.time() - started, 1))
    log(f"report: {out / 'report.md'}, {out / 'report.html'}; headline figures: {out / 'summary.json'}")
    return summary
