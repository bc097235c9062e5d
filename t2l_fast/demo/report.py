"""The demo's outputs: `report.md`, the same as a self-contained `report.html` (images embedded), and
`summary.json` with every headline figure. Both reports are rendered from one list of blocks."""
from __future__ import annotations

import base64
import html
import json
import platform
from collections.abc import Sequence
from pathlib import Path

from ..optional import installed, installed_versions

Block = tuple[str, object]  # ("h2" | "p" | "code" | "img" | "table", content)
INT8_FIGURES = ("clips", "top1_agreement", "mean_cosine", "min_cosine", "flips_per_class", "median_margin",
                "median_margin_flipped")  # the INT8 gate's figures in summary.json, per attempt too
VERSIONED = ("torch", "open_clip_torch", "av", "nvidia-dali", "onnx", "onnxruntime", "onnxruntime-gpu",
             "tensorrt", "tensorrt-rtx-cu13", "fvcore", "openvino")


def versions() -> dict:
    import torch

    found = installed_versions(VERSIONED)
    return {"python": platform.python_version(), **{k: v for k, v in found.items() if v},
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}


def training_curves(run) -> str | None:
    """One plot of the training loss per step of both trained models (None without matplotlib)."""
    if not installed("matplotlib"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    for stage in ("train_t2l", "train_vificlip"):
        steps, losses = zip(*run.results[stage]["losses"])
        axis.plot(steps, losses, label=run.results[stage]["model"])
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.legend()
    figure.tight_layout()
    path = run.out / "train" / "curves.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return run.relative(path)


def headline(run, seconds: float) -> dict:
    """The figures a script or dashboard reads."""
    r = run.results
    return {
        "fast": run.fast, "seconds": seconds, "versions": versions(),
        "loader": {"backend": r["loader"]["backend"], "clips_per_s": r["loader"]["clips_per_s"],
                   "bad_videos": r["loader"]["bad_videos"], "fallback_batches": r["loader"]["fallback_batches"]},
        "preflight": {"bad": sum(s["bad"] for s in r["check"]["splits"].values()),
                      "h264_flagged_before": r["check"]["h264_before"]["with_gpu_notes"],
                      "h264_flagged_after": r["check"]["h264_after"]["with_gpu_notes"]},
        "pretrain": {k: v for k, v in r["pretrain"].items() if k.endswith(("_r1", "_r5", "_accuracy"))
                     or k == "gallery"},
        "training": {r[s]["model"]: {"steps": r[s]["steps"], "first_loss": r[s]["losses"][0][1],
                                     "last_loss": r[s]["losses"][-1][1], "val_top1": r[s]["val_top1"],
                                     "val_epochs": r[s].get("val_epochs")}
                     for s in ("train_t2l", "train_vificlip")},
        "unseen_classes": {"split": "compositional", "chance": r["evaluate"]["chance"], **r["evaluate"]["models"]},
        "unseen_motion": r["evaluate"]["unseen_motion"],
        "order_test": r["order_test"]["within_pair_accuracy"],
        "export": {"exported": r["export"].get("exported", False), "parity": r["export"]["parity"]},
        "int8": int8_summary(r["int8"]),
        "engine": {k: r["engine"].get(k) for k in ("built", "engine", "runtime", "targets", "reason", "run")},
        "claims": [{k: row.get(k) for k in ("claim", "accounting", "measured_value", "claimed_value", "verdict")}
                   for row in r["bench"]["claims"]],
    }


def int8_summary(result: dict) -> dict:
    """The INT8 stage's verdict, kept mode and gate figures, and every attempt's figures."""
    return {"passed": result["passed"], "mode": result.get("mode"),
            **{k: result.get("gate", {}).get(k) for k in INT8_FIGURES},
            "attempts": [{"mode": a["mode"], "passed": a["passed"], **{k: a["gate"].get(k) for k in INT8_FIGURES}}
                         for a in result.get("attempts", [])]}


def blocks(run, curves: str | None) -> list[Block]:
    from .stages import STAGES

    r = run.results
    budget = "--fast (the test budget: mechanics only)" if run.fast else "full budget"
    out: list[Block] = [("h1", "t2l-fast demo"), ("p", (
        f"Built-in synthetic data, no downloads; {budget}. Loader: {r['loader']['backend']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions().items()) + "."))]
    claims = r["bench"]["claims"]
    if claims:
        out += [("h2", "Claims verdict"), ("table", (("claim", "paper", "measured", "accounting", "verdict"), [
            [row.get(k, "") for k in ("claim", "paper", "measured", "accounting", "verdict")] for row in claims]))]
    unseen = r["evaluate"]
    out += [("h2", "Unseen classes (compositional split: shape and motion seen, never together)"), ("table", (
        ("model", "top-1", "top-5", "within pairs"),
        [[name, f"{v['top1']:.3f}", f"{v['top5']:.3f}", f"{v['within_pair_accuracy']:.3f}"]
         for name, v in unseen["models"].items()] + [["chance", f"{unseen['chance']:.3f}", "", "0.500"]]))]
    out += [("h2", "Order test (held-out clips of the seen classes)"), ("table", (
        ("model", "within-pair accuracy (chance 0.5)"), [
        [name, f"{value:.3f}"] for name, value in r["order_test"]["within_pair_accuracy"].items()]))]
    for number, stage in enumerate(STAGES, 1):
        result = r[stage.name]
        description = " ".join((stage.run.__doc__ or "").split())
        out += [("h2", f"{number}. {stage.title} ({result['seconds']} s)"), ("p", description)]
        out += [("p", line) for line in result.get("lines", [])]
        out += _stage_tables(stage.name, result)
        if stage.name == "train_vificlip" and curves:
            out.append(("img", (curves, "training loss per step")))
        out += [("img", (image, image)) for image in result.get("images", [])]
        if result.get("commands"):
            out.append(("code", "\n".join(result["commands"])))
    return out


def _stage_tables(name: str, result: dict) -> list[Block]:
    """The figures of the export, INT8 and engine stages as tables."""
    if name == "export" and result.get("parity"):
        rows = [[graph, batch, output, f"{values['max_abs']:.2g}", f"{values['min_cosine']:.6f}", figures["passed"]]
                for graph, figures in result["parity"].items()
                for batch, outputs in figures.items() if batch.startswith("batch_")
                for output, values in outputs.items() if isinstance(values, dict) and "max_abs" in values]
        return [("table", (("graph", "batch", "output", "max-abs to PyTorch", "min cosine", "passed"), rows))]
    if name == "int8" and result.get("gate"):
        keys = ("clips", "top1_agreement", "min_top1_agreement", "mean_cosine", "min_mean_cosine", "min_cosine",
                "flips_per_class", "median_margin", "median_margin_flipped")
        attempts = result.get("attempts") or [{"mode": "static", "passed": result["passed"], "gate": result["gate"]}]
        return [("table", (("gate", *(a["mode"] for a in attempts)),
                           [[k, *(a["gate"].get(k) for a in attempts)] for k in keys]
                           + [["passed", *(a["passed"] for a in attempts)]]))]
    if name == "engine" and result.get("built"):
        rows = [["engine", result["engine"]], ["bytes", result["bytes"]], ["sidecar", result["sidecar"]],
                ["runtime", f"{result['runtime']['name']} {result['runtime']['version']}"],
                ["targets", result["targets"]]]
        return [("table", (("engine", "value"), rows)), ("code", result["rebuild"])]
    return []


def _markdown(items: Sequence[Block]) -> str:
    lines = []
    for kind, content in items:
        if kind in ("h1", "h2"):
            lines.append(("# " if kind == "h1" else "## ") + str(content))
        elif kind == "p":
            lines.append(str(content))
        elif kind == "code":
            lines.append(f"```\n{content}\n```")
        elif kind == "img":
            path, caption = content
            lines.append(f"![{caption}]({path})")
        elif kind == "table":
            header, rows = content
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            continue
        lines.append("")
    return "\n".join(lines) + "\n"


def _html(items: Sequence[Block], root: Path) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>t2l-fast demo</title><style>body{font-family:"
             "sans-serif;max-width:60em;margin:auto;padding:1em}table{border-collapse:collapse}td,th{border:1px solid "
             "#ccc;padding:.2em .5em}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}img{max-width:100%}</style>"
             "</head><body>"]
    for kind, content in items:
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(str(content))}</p>")
        elif kind == "code":
            parts.append(f"<pre>{html.escape(str(content))}</pre>")
        elif kind == "img":
            path, caption = content
            data = base64.b64encode((root / path).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        elif kind == "table":
            header, rows = content
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                                   for row in rows) + "</table>")
    return "".join(parts) + "</body></html>\n"


def write_outputs(run, seconds: float) -> dict:
    """report.md, report.html and summary.json in the run folder; returns the summary."""
    items = blocks(run, training_curves(run))
    (run.out / "report.md").write_text(_markdown(items))
    (run.out / "report.html").write_text(_html(items, run.out))
    summary = headline(run, seconds)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
