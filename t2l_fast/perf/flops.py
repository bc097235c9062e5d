"""Traced multiply-add counts with fvcore, in two accountings, checked against the closed form (perf/analytic.py).

- full: fvcore with a handle for `aten::scaled_dot_product_attention` (which fvcore skips), traced with the MHA fast
  path off so attention goes through SDPA;
- attention-blind: the same trace with every nn.MultiheadAttention module's count (projections included) taken
  out, as thop 0.1.1 counts it (most likely how the paper's 102 GFLOPs was made).

Elementwise ops (additions, activations, means, layer norms) are not multiply-adds of a product and are not
counted, by the convention of every GFLOPs figure compared here; any other op fvcore cannot count fails the count
when it carries more than 0.1% of the total (estimated as one MAC per output element).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import T2LError
from ..models.layers import TokenAttention
from ..optional import require
from . import analytic

GIGA = 1e9
ELEMENTWISE = {"aten::add", "aten::sub", "aten::mul", "aten::div", "aten::gelu", "aten::sigmoid", "aten::mean",
               "aten::softmax", "aten::unflatten", "aten::expand_as", "aten::clamp_min", "aten::linalg_vector_norm",
               "aten::neg", "aten::exp", "aten::rsub", "aten::pow", "aten::sum", "aten::argmax"}
NORMS = ("aten::layer_norm", "aten::group_norm", "aten::batch_norm", "aten::instance_norm")  # fvcore counts these
MAX_UNCOUNTED_SHARE = 1e-3
AGREEMENT = 0.01  # traced counts must be within 1% of the analytic ones


def _sdpa_macs(inputs, outputs) -> int:
    """q [..., L, E], k [..., S, E], v [..., S, Ev]: L*S*E for the scores and L*S*Ev for the weighted sum."""
    q, k, v = (value.type().sizes() for value in inputs[:3])
    return math.prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


def _output_elements(inputs, outputs) -> int:
    sizes = outputs[0].type().sizes() if outputs and hasattr(outputs[0].type(), "sizes") else None
    return math.prod(sizes) if sizes else 0


class _Encode(nn.Module):
    def __init__(self, model, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, x):
        return getattr(self.model, self.method)(x)


@dataclass
class Count:
    """One traced count, in MACs."""

    full: int
    attention_blind: int
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)  # attention, mlp, adapters, patch embedding, other
    uncounted: dict[str, int] = field(default_factory=dict)  # elementwise, norm and unknown ops (one per output)


def _analyse(fvcore, wrapper, example, estimated: Sequence[str]):
    """fvcore's analysis with the SDPA handle, and the ops `estimated` (not products: elementwise ops, norms) at one
    per output element."""
    analysis = fvcore.FlopCountAnalysis(wrapper, example)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_macs)
    for op in estimated:
        analysis.set_op_handle(op, _output_elements)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.by_operator()  # the trace
    return analysis


def trace_count(model, method: str, example: torch.Tensor) -> Count:
    """fvcore count of model.<method>(example), both accountings. One trace counts the products and estimates the
    elementwise ops and norms at one per output element (what is left out, and a check that nothing heavy is); a
    second trace runs only when an op of neither kind turns up, to estimate it too."""
    with warnings.catch_warnings():  # fvcore jit-scripts a loss at import, which torch 2.14 deprecates
        warnings.filterwarnings("ignore", category=FutureWarning)
        fvcore = require("fvcore.nn", "bench", "FLOP counting")
    from ..deploy.onnx_graph import mha_fast_path_off

    wrapper = _Encode(model.eval(), method)
    estimated = sorted(ELEMENTWISE) + list(NORMS)
    with mha_fast_path_off(), torch.no_grad():
        analysis = _analyse(fvcore, wrapper, example, estimated)
        unknown = sorted(analysis.unsupported_ops())
        if unknown:
            analysis = _analyse(fvcore, wrapper, example, estimated + unknown)
    not_products = {op.split("::")[-1]: op for op in estimated + unknown}  # fvcore's short name -> the op
    modules = {name: sum(int(v) for op, v in ops.items() if op not in not_products)
               for name, ops in analysis.by_module_and_operator().items()}
    by_operator = {f"aten::{op}": int(v) for op, v in analysis.by_operator().items() if v and op not in not_products}
    uncounted = {not_products[op]: int(v) for op, v in analysis.by_operator().items() if v and op in not_products}
    total = sum(by_operator.values())
    unknown_share = sum(uncounted.get(op, 0) for op in unknown) / total
    if unknown_share > MAX_UNCOUNTED_SHARE:
        raise T2LError(f"fvcore cannot count {', '.join(unknown)} in {model.config.name}.{method}, and they carry "
                       f"about {unknown_share:.2%} of the total (limit {MAX_UNCOUNTED_SHARE:.1%}); add a handle for "
                       f"them in t2l_fast/perf/flops.py")
    names = {name: type(m) for name, m in wrapper.named_modules()}
    attention = _module_sum(modules, names, lambda n, kind: kind in (nn.MultiheadAttention, TokenAttention))
    groups = {"attention": attention,
              "mlp": _module_sum(modules, names, lambda n, kind: n.endswith(".mlp")),
              "adapters": _module_sum(modules, names, lambda n, kind: n.endswith("_adapters")),
              "patch_embedding": modules.get("model.backbone.visual.conv1", 0)}
    groups["other"] = total - sum(groups.values())
    return Count(full=total, attention_blind=total - attention, by_operator=by_operator, by_module=groups,
                 uncounted=uncounted)


def _module_sum(modules: dict[str, int], names, keep) -> int:
    return sum(modules.get(n, 0) for n, kind in names.items() if keep(n, kind))


def count_model(name: str, frames_list: Sequence[int] = (), check: bool = True) -> list[dict]:
    """Rows (one per frame count; T2L only at its own T) of a registered model: parameters, GFLOPs per view in
    both traced accountings and in closed form, text encoder per prompt; checked within 1% when `check`."""
    from ..models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    c = model.config
    learnable, total_params = model.count_parameters()
    frames_list = [c.frames] if c.kind == "t2l" or not frames_list else list(frames_list)
    text = trace_count(model, "encode_text", torch.zeros(1, c.text.context_length, dtype=torch.long))
    rows = []
    for frames in frames_list:
        video = torch.randn(1, frames, 3, c.vision.image_size, c.vision.image_size)
        count = trace_count(model, "encode_video", video)
        row = {"model": name, "kind": c.kind, "frames": frames, "image_size": c.vision.image_size,
               "gflops_full": count.full / GIGA, "gflops_attention_blind": count.attention_blind / GIGA,
               "gflops_analytic": analytic.vision_macs(c, frames) / GIGA,
               "gflops_analytic_attention_blind": analytic.vision_macs(c, frames, attention=False) / GIGA,
               "text_gflops_full": text.full / GIGA, "text_gflops_attention_blind": text.attention_blind / GIGA,
               "text_gflops_analytic": analytic.text_macs(c) / GIGA,
               "text_gflops_analytic_attention_blind": analytic.text_macs(c, attention=False) / GIGA,
               "learnable_params": learnable, "total_params": total_params,
               "by_module_gflops": {k: v / GIGA for k, v in count.by_module.items()},
               "by_operator_gflops": {k: v / GIGA for k, v in count.by_operator.items()},
               "uncounted_elementwise_g": {k: v / GIGA for k, v in count.uncounted.items()}}
        if check:
            check_agreement(row)
        rows.append(row)
    return rows


def check_agreement(row: dict) -> None:
    """Raise if a traced count and its closed form differ by more than AGREEMENT."""
    pairs = (("gflops_full", "gflops_analytic"), ("gflops_attention_blind", "gflops_analytic_attention_blind"),
             ("text_gflops_full", "text_gflops_analytic"),
             ("text_gflops_attention_blind", "text_gflops_analytic_attention_blind"))
    for traced, closed in pairs:
        if abs(row[traced] - row[closed]) > AGREEMENT * row[closed]:
            raise T2LError(f"{row['model']} at {row['frames']} frames: {traced} {row[traced]:.3f} G and {closed} "
                           f"{row[closed]:.3f} G differ by more than {AGREEMENT:.0%}: the model or the closed form "
                           f"in t2l_fast/perf/analytic.py changed")
