"""One comparator for every parity gate: max-abs, max-rel and cosine per output, against stated tolerances."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """What an output must meet: each bound that is not None is checked."""

    max_abs: float | None = None
    max_rel: float | None = None  # |a - b| / max(|b|, rel_floor), elementwise maximum
    min_cosine: float | None = None  # cosine of each row (the last axis) with the reference, minimum
    rel_floor: float = 1e-6


FP32_GATE = Tolerance(max_abs=1e-4)  # fp32 backends vs the fp32 reference: embeddings are L2-normalized
REDUCED_GATE = Tolerance(min_cosine=0.99)  # bf16, fp16 and int8: every clip's embedding keeps its direction


@dataclass
class Comparison:
    """Figures per output, and which bounds failed."""

    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = []
        for name, f in self.figures.items():
            verdict = f"FAIL ({self.failures[name]})" if name in self.failures else "ok"
            lines.append(f"{name}: max-abs {f['max_abs']:.2e}  max-rel {f['max_rel']:.2e}  "
                         f"min-cosine {f['min_cosine']:.6f}  {verdict}")
        return "\n".join(lines)


_NO_FIGURES = {"max_abs": float("nan"), "max_rel": float("nan"), "min_cosine": float("nan")}


def _figures(actual: np.ndarray, reference: np.ndarray, rel_floor: float) -> dict[str, float]:
    a, b = actual.astype(np.float64), reference.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported below as non-finite
        difference = np.abs(a - b)
    rows_a, rows_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    norms = np.linalg.norm(rows_a, axis=1) * np.linalg.norm(rows_b, axis=1)
    cosine = np.where(norms > 0, (rows_a * rows_b).sum(1) / np.maximum(norms, 1e-300), 1.0)
    return {"max_abs": float(difference.max()), "max_rel": float((difference / np.maximum(np.abs(b), rel_floor)).max()),
            "min_cosine": float(cosine.min()), "finite": bool(np.isfinite(a).all()),
            "reference_finite": bool(np.isfinite(b).all())}


def compare_outputs(actual: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                    tolerances: Mapping[str, Tolerance]) -> Comparison:
    """Compare each output named in `tolerances`; a missing output, a shape change or NaN/Inf fails it."""
    result = Comparison()
    for name, tolerance in tolerances.items():
        if name not in actual or name not in reference:
            result.failures[name] = "missing output"
            result.figures[name] = dict(_NO_FIGURES)
            continue
        a, b = np.asarray(actual[name]), np.asarray(reference[name])
        if a.shape != b.shape:
            result.failures[name] = f"shape {list(a.shape)} vs reference {list(b.shape)}"
            result.figures[name] = dict(_NO_FIGURES)
            continue
        figures = _figures(a, b, tolerance.rel_floor)
        result.figures[name] = figures
        problems = []
        if not figures["finite"]:
            problems.append("NaN or Inf in the output")
        if not figures["reference_finite"]:
            problems.append("NaN or Inf in the reference")
        for key, bound in (("max_abs", tolerance.max_abs), ("max_rel", tolerance.max_rel)):
            if bound is not None and not figures[key] <= bound:  # NaN fails too
                problems.append(f"{key} {figures[key]:.3g} > {bound:g}")
        if tolerance.min_cosine is not None and not figures["min_cosine"] >= tolerance.min_cosine:
            problems.append(f"min_cosine {figures['min_cosine']:.6f} < {tolerance.min_cosine:g}")
        if problems:
            result.failures[name] = "; ".join(problems)
    return result
