"""`t2l demo`: the product end to end on built-in synthetic data (no downloads), stage by stage, each saying what it
showed, into one run folder with `report.md`, `report.html` and `summary.json`. Neighbouring stages marked
side_by_side (data and pre-training; the three trainings) run at the same time, each in a process of its own
(side_by_side.py), where there is more than one core.

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
from .side_by_side import can_run_side_by_side, run_side_by_side
from .stages import STAGES, Run, Stage, timed

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
    (about 2.5 minutes on 2 cores: every stage runs, the learning results are not meaningful)."""
    from .report import write_outputs

    log = log or (lambda line: print(line, flush=True))
    out = Path(out_dir)
    _claim_folder(out)
    run = Run(out=out, fast=fast, results={}, log=log)
    started = time.time()
    log(f"t2l demo -> {out} ({'--fast: the test budget' if fast else 'full budget'}); stages reused unless --force")
    first = 0  # the first stage to run: once a stage runs, every later one runs too (it may read the new results)
    while not force and first < len(STAGES) and (result := _finished(saved := _saved(out, STAGES[first]), fast)):
        run.results[STAGES[first].name] = result
        log(f"[{first + 1:>2}/{len(STAGES)}] {STAGES[first].title}: reused ({saved})")
        first += 1
    while first < len(STAGES):
        group = _side_by_side_group(first)
        if can_run_side_by_side(group):
            for number in range(first, first + len(group)):
                log(f"[{number + 1:>2}/{len(STAGES)}] {STAGES[number].title} ... (side by side, each in a process "
                    f"of its own; progress: {out / 'logs'})")
            run_side_by_side(run, group, lambda stage, result: _keep(run, stage, result, titled=True))
        else:
            group = group[:1]
            log(f"[{first + 1:>2}/{len(STAGES)}] {group[0].title} ...")
            _keep(run, group[0], timed(group[0], run), titled=False)
        first += len(group)
    summary = write_outputs(run, seconds=round(time.time() - started, 1))
    log(f"report: {out / 'report.md'}, {out / 'report.html'}; headline figures: {out / 'summary.json'}")
    return summary


def _saved(out: Path, stage: Stage) -> Path:
    return out / "stages" / f"{stage.name}.json"


def _side_by_side_group(first: int) -> list[Stage]:
    """STAGES[first] and, if it may run side by side, the stages after it that may too."""
    group = [STAGES[first]]
    while group[-1].side_by_side and first + len(group) < len(STAGES) and STAGES[first + len(group)].side_by_side:
        group.append(STAGES[first + len(group)])
    return group


def _keep(run: Run, stage: Stage, result: dict, titled: bool) -> None:
    """Save a stage's result (a kill leaves the old file or the new one), add it to the run and log its lines
    (under its title when it ran side by side with others)."""
    saved = _saved(run.out, stage)
    saved.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    atomic_write(saved, lambda tmp: Path(tmp).write_text(text))
    run.results[stage.name] = result
    if titled:
        run.log(f"   {stage.title}:")
    for line in result.get("lines", []):
        run.log(f"      {line}")
    run.log(f"      done in {result['seconds']} s")
