"""The verdict on the paper's efficiency claims, from measured rows (perf/flops.py, perf/throughput.py,
perf/training_cost.py): one row per claim and accounting.

A claim holds when the measured figure reaches HOLDS_FRACTION of the claimed one (ratios: measured >= 0.9 x
claimed; a parameter count: claimed >= 0.9 x measured). A claim that fails at equal frames with the full count but
holds under another accounting "holds only under" it.
"""
from __future__ import annotations

from collections.abc import Sequence

HOLDS_FRACTION = 0.9
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
NOT_MEASURABLE, NOT_MEASURED = "not measurable on this machine", "not measured (see the note)"
T2L, VIFI = "t2l_vit_b16", "vificlip_vit_b16"


def verdict(measured: float | None, claimed: float, larger_is_better: bool = True) -> str:
    """holds / does not hold for one figure (None: not measured)."""
    if measured is None:
        return NOT_MEASURED
    reached = measured >= HOLDS_FRACTION * claimed if larger_is_better else claimed >= HOLDS_FRACTION * measured
    return HOLDS if reached else DOES_NOT_HOLD


def overall(claim: str, paper: str, rows: Sequence[dict], primary: str) -> dict:
    """The claim's summary row: holds if the `primary` accounting holds; else holds only under the accountings that
    do; else does not hold."""
    held = [r["accounting"] for r in rows if r["verdict"] == HOLDS]
    measured = [r for r in rows if r["verdict"] in (HOLDS, DOES_NOT_HOLD)]
    if not measured:
        result = rows[0]["verdict"] if rows else NOT_MEASURED
    elif primary in held:
        result = HOLDS
    elif held:
        result = "holds only under accounting " + "; ".join(held)
    else:
        result = DOES_NOT_HOLD
    return {"claim": claim, "paper": paper, "measured": "", "accounting": "overall", "verdict": result}


def _row(claim: str, paper: str, measured: float | None, claimed: float, accounting: str, unit: str = "x",
         larger_is_better: bool = True, note: str = "") -> dict:
    shown = "" if measured is None else f"{measured:.2f}{unit}"
    return {"claim": claim, "paper": paper, "measured": shown, "measured_value": measured, "claimed_value": claimed,
            "accounting": accounting, "verdict": verdict(measured, claimed, larger_is_better), "note": note}


def _find(rows: Sequence[dict], model: str, frames: int, **match) -> dict | None:
    return next((r for r in rows if r["model"] == model and r["frames"] == frames
                 and all(r.get(k) == v for k, v in match.items())), None)


def parameter_claims(flops_rows: Sequence[dict]) -> list[dict]:
    t2l, vifi = _find(flops_rows, T2L, 8), _find(flops_rows, VIFI, 8)
    learnable = t2l["learnable_params"] / 1e6 if t2l else None
    rows = [_row("5.2M learnable parameters", "5.2M", learnable, 5.2, "learnable parameters of t2l_vit_b16", "M",
                 larger_is_better=False)]
    ratio = vifi["learnable_params"] / t2l["learnable_params"] if t2l and vifi else None
    rows.append(_row("25x fewer learnable parameters than prior best", "25x (131M X-CLIP / 5.2M)", ratio, 25.0,
                     "ViFi-CLIP's learnable / T2L's (X-CLIP is not implemented here)",
                     note="the paper's prior best is X-CLIP's 131M; ViFi-CLIP trains 124.3M"))
    return rows


def gflops_claims(flops_rows: Sequence[dict]) -> list[dict]:
    """"3x fewer GFLOPs than ViFi-CLIP" at equal frames, at ViFi-CLIP's 16 and 32 frames, and in the paper's
    likely mixed accounting (ViFi-CLIP 16 frames full vs T2L attention-blind)."""
    claim, paper = "3x fewer GFLOPs than ViFi-CLIP", "3x (281 vs 102 G)"
    t2l = _find(flops_rows, T2L, 8)

    def ratio(frames: int, t2l_key: str = "gflops_full") -> float | None:
        vifi = _find(flops_rows, VIFI, frames)
        return vifi["gflops_full"] / t2l[t2l_key] if t2l and vifi else None

    rows = [_row(claim, paper, ratio(8), 3.0, "equal frames (8 vs 8), full count"),
            _row(claim, paper, ratio(16), 3.0, "ViFi-CLIP 16f vs T2L 8f, full count"),
            _row(claim, paper, ratio(32), 3.0, "ViFi-CLIP 32f vs T2L 8f, full count"),
            _row(claim, paper, ratio(16, "gflops_attention_blind"), 3.0,
                 "ViFi-CLIP 16f full vs T2L 8f attention-blind (the paper's likely accounting)")]
    return rows + [overall(claim, paper, rows, rows[0]["accounting"])]


def throughput_claims(throughput_rows: Sequence[dict]) -> list[dict]:
    """"4x throughput" per backend and batch: equal frames, and at the operating points (ViFi-CLIP 16f / 32f)."""
    claim, paper = "4x throughput of ViFi-CLIP", "4.5x (322 vs 71 images/s)"
    if not throughput_rows:
        return [dict(_row(claim, paper, None, 4.0, "clips/s, T2L 8f / ViFi-CLIP"),
                     note="no throughput report given: run `t2l bench throughput`, then `t2l bench claims "
                          "--throughput runs/bench/throughput.json`")]
    rows = []
    for backend, batch in sorted({(r["backend"], r["batch"]) for r in throughput_rows if r.get("passed")}):
        t2l = _find(throughput_rows, T2L, 8, backend=backend, batch=batch, passed=True)
        for frames in (8, 16, 32):
            vifi = _find(throughput_rows, VIFI, frames, backend=backend, batch=batch, passed=True)
            if t2l and vifi:
                kind = "equal frames" if frames == 8 else f"ViFi-CLIP {frames}f vs T2L 8f"
                rows.append(_row(claim, paper, t2l["clips_per_s"] / vifi["clips_per_s"], 4.0,
                                 f"{kind}, {backend}, batch {batch}, {t2l['device']}"))
    if not rows:
        return [dict(_row(claim, paper, None, 4.0, "clips/s, T2L 8f / ViFi-CLIP"),
                     note="the throughput report has no t2l_vit_b16 / vificlip_vit_b16 pair that passed its gate")]
    equal = next((r["accounting"] for r in rows if r["accounting"].startswith("equal frames")), "")
    return rows + [overall(claim, paper, rows, equal)]


def training_claims(training_rows: Sequence[dict]) -> list[dict]:
    """Trains on one GPU (one A100-80GB in the T2L README, vs 8 A100s for ViFi-CLIP)."""
    claim, paper = "trains on a single GPU", "1x A100-80GB (ViFi-CLIP: 8x A100)"
    gpu = [r for r in training_rows if r.get("model") == T2L and r.get("device", "cpu") != "cpu"
           and r.get("recipe")]
    if not gpu:
        return [{"claim": claim, "paper": paper, "measured": "", "accounting": "peak GPU memory of a T2L training "
                 "step at the paper's recipe", "verdict": NOT_MEASURABLE,
                 "note": "needs a GPU run of `t2l bench training`; CPU memory says nothing about GPU memory"}]
    peak = max(r["peak_memory_gb"] for r in gpu)
    return [{"claim": claim, "paper": paper, "measured": f"{peak:.1f} GB", "accounting": f"peak GPU memory, "
             f"{gpu[0]['device']}", "verdict": HOLDS if peak <= 80 else DOES_NOT_HOLD, "note": ""}]


def claims_table(flops_rows: Sequence[dict], throughput_rows: Sequence[dict] = (),
                 training_rows: Sequence[dict] = ()) -> list[dict]:
    return (parameter_claims(flops_rows) + gflops_claims(flops_rows) + throughput_claims(throughput_rows)
            + training_claims(training_rows))


COLUMNS = ("claim", "paper", "measured", "accounting", "verdict", "note")
DEFINITIONS: dict[str, str] = {
    "holds": f"the measured figure reaches {HOLDS_FRACTION} x the claimed one (for a parameter count: the claimed "
             f"count is at least {HOLDS_FRACTION} x the measured)",
    "holds only under accounting X": "it fails at equal frames with the full count, and holds under X",
    "GFLOPs": "multiply-adds per view (see the flops report)",
    "throughput": "clips/s of the model (decoding excluded), same backend, batch and machine, one run",
}
