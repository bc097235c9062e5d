"""One report format for every benchmark: JSON (with the measurement conditions), a Markdown table, an optional PNG."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..optional import installed, installed_versions

_VERSIONS = ("t2l-fast", "torch", "torchvision", "open_clip_torch", "av", "nvidia-dali", "onnxruntime",
             "onnxruntime-gpu", "openvino", "nncf", "tensorrt", "tensorrt-rtx-cu13", "fvcore", "numpy")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*words: str) -> str | None:
    try:
        out = subprocess.run(["git", *words], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def conditions(**extra) -> dict[str, object]:
    """Where and how a measurement ran: device, CPU, threads, versions, git sha (and whether tracked files other
    than the committed reports differed from it), time; plus `extra`."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    sha = _git("rev-parse", "--short", "HEAD") or None
    # the committed reports under docs/benchmarks/ are what a run rewrites: their changes don't make the code dirty
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(exclude,top)docs/benchmarks")) \
        if sha else None
    return {"device": gpu or "cpu", "gpu": gpu, "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "versions": {name: version for name, version in installed_versions(_VERSIONS).items() if version},
            "git_sha": sha, "git_dirty": dirty,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Panel:
    """One bar chart of a report's PNG: a group of bars per label (y axis), one bar per series in each group."""

    xlabel: str
    groups: list[str]
    series: dict[str, list[float | None]]  # series name -> one value per group (None: no bar)


def pivot(rows: Sequence[dict], group: Callable[[dict], str], series: Callable[[dict], str], value: str,
          xlabel: str | None = None) -> Panel:
    """A Panel of rows[value], grouped by group(row), one series per series(row)."""
    groups = list(dict.fromkeys(group(r) for r in rows))
    names = list(dict.fromkeys(series(r) for r in rows))
    cells = {(group(r), series(r)): r.get(value) for r in rows}
    return Panel(xlabel or value, groups, {n: [cells.get((g, n)) for g in groups] for n in names})


def _draw(path: Path, title: str, panels: Sequence[Panel]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = max(2.5, 0.25 * max(len(p.groups) * max(1, len(p.series)) for p in panels) + 1)
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), height), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        width = 0.8 / max(1, len(panel.series))
        for index, (name, values) in enumerate(panel.series.items()):
            places = [g + index * width for g, v in enumerate(values) if v is not None]
            axis.barh(places, [v for v in values if v is not None], height=width, label=name)
        axis.set_yticks([g + 0.4 - width / 2 for g in range(len(panel.groups))], panel.groups, fontsize=7)
        axis.invert_yaxis()
        axis.set_xlabel(panel.xlabel)
        if len(panel.series) > 1:
            axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(out_dir: Path, name: str, *, title: str, rows: list[dict], columns: Sequence[str],
                 conditions: dict[str, object], definitions: dict[str, str], notes: Sequence[str] = (),
                 panels: Sequence[Panel] = ()) -> dict[str, Path]:
    """Write out_dir/name.json and name.md (and name.png of `panels` when matplotlib is installed). Returns the
    written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md"}
    document = {"title": title, "conditions": conditions, "definitions": definitions, "rows": rows,
                "notes": list(notes)}
    paths["json"].write_text(json.dumps(document, indent=2, default=str) + "\n")
    conditions_text = "\n".join(f"- {k}: {v}" for k, v in conditions.items() if k != "versions")
    versions = ", ".join(f"{k} {v}" for k, v in conditions.get("versions", {}).items())
    definitions_text = "\n".join(f"- **{k}**: {v}" for k, v in definitions.items())
    notes_text = "\n".join(f"- {n}" for n in notes)
    paths["md"].write_text(f"# {title}\n\n{markdown_table(rows, columns)}\n\n## Definitions\n{definitions_text}\n\n"
                           f"## Conditions\n{conditions_text}\n- versions: {versions}\n"
                           + (f"\n## Notes\n{notes_text}\n" if notes else ""))
    if panels and rows and installed("matplotlib"):
        paths["png"] = out_dir / f"{name}.png"
        _draw(paths["png"], title, panels)
    return paths
