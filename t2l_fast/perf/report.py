"""One report format for every benchmark: JSON (with the measurement conditions), a Markdown table, an optional PNG."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..optional import installed

_VERSIONS = ("t2l-fast", "torch", "torchvision", "open_clip_torch", "av", "nvidia-dali-cuda130", "onnxruntime",
             "onnxruntime-gpu", "tensorrt", "fvcore", "numpy")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_sha() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def conditions(**extra) -> Dict[str, object]:
    """Where and how a measurement ran: device, CPU, threads, versions, git sha, time; plus `extra`."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"device": gpu or "cpu", "gpu": gpu, "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "versions": {name: installed(name) for name in _VERSIONS if installed(name)}, "git_sha": _git_sha(),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out_dir: Path, name: str, *, title: str, rows: List[dict], columns: Sequence[str],
                 conditions: Dict[str, object], definitions: Dict[str, str], notes: Sequence[str] = (),
                 plot: Optional[Dict[str, str]] = None) -> Dict[str, Path]:
    """Write out_dir/name.json and name.md (and name.png when `plot` = {"label": column, "value": column} and
    matplotlib is installed). Returns the written paths."""
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
    if plot and installed("matplotlib"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3))
        axis.barh([str(r[plot["label"]]) for r in rows], [float(r[plot["value"]]) for r in rows])
        axis.set_xlabel(plot["value"])
        axis.set_title(title)
        figure.tight_layout()
        paths["png"] = out_dir / f"{name}.png"
        figure.savefig(paths["png"], dpi=120)
        plt.close(figure)
    return paths
