"""Which products of an ONNX graph INT8 quantization leaves in fp32, by kind (KEPT_FP32), read from the graph's
shape: who reads what, and the shapes of the weights.

- activation x activation products (attention's scores and mixing): their ranges change with every input, and
  quantizing them costs accuracy for little speed;
- the frame-pooled projection: a product whose output is averaged (into ReduceMean through reshapes, casts and a
  bias; not through a residual connection). With it quantized, OpenVINO 2026.4's CPU plugin returned the first clip
  of a batch and zeros for the others (a random t2l_tiny, tests/test_openvino.py); it is one small product per frame;
- bottlenecks: a product that narrows the stream and the one that widens it back, with only a bias and an activation
  between (T2L's adapters, a quarter of the width: ~4% of a block's products), whose narrow GELU activations quantize
  badly;
- the class head: the product whose output reaches a graph output through a constant scale and a bias only;
- the patch embedding: every Conv (the quantizer is not asked to quantize Conv at all).
Every other product with a weight is quantized. With the bottlenecks, the class head and the patch embedding in fp32,
the INT8 logits of the demo's T2L moved 40% less (mean |error| 0.11 -> 0.065 over 4 calibration sets of 64 clips; top-1
flips on 160 clips 2-6 -> 0-2).
"""
from __future__ import annotations

from pathlib import Path

from ..runtime.export_runners import ACTIVATION_PRODUCTS, BOTTLENECKS, CLASS_HEAD, PATCH_EMBEDDING, POOLED_PROJECTION
from . import onnx_graph

_PRODUCTS = ("MatMul", "Gemm")
_BINARY = {"Add", "Sub", "Mul", "Div"}
# ops between a product and the frame average: layout, casts, a bias
_ON_THE_WAY_TO_POOLING = frozenset({"Reshape", "Add", "Flatten", "Squeeze", "Unsqueeze", "Cast", "Transpose"})
# ops between the class head and the logits output: those, and the logit scale
_ON_THE_WAY_TO_LOGITS = _ON_THE_WAY_TO_POOLING | {"Mul", "Div"}
# elementwise ops inside a bottleneck: its bias and activation (exact GELU: Div, Erf, Add, Mul of two activations)
_INSIDE_A_BOTTLENECK = frozenset({"Add", "Sub", "Mul", "Div", "Erf", "Sigmoid", "Tanh", "Relu", "Cast"})


class _Graph:
    """The products of an ONNX graph, its weights' shapes, and who reads what."""

    def __init__(self, path: Path):
        model = onnx_graph.onnx_module().load(str(path), load_external_data=False)
        self.weights = {t.name: list(t.dims) for t in model.graph.initializer}
        self.weights |= {out: list(a.t.dims) for n in model.graph.node if n.op_type == "Constant"
                         for a in n.attribute if a.name == "value" for out in n.output}
        self.outputs = {o.name for o in model.graph.output}
        self.products = [n for n in model.graph.node if n.op_type in _PRODUCTS]
        self.convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
        self.readers: dict[str, list] = {}
        for node in model.graph.node:
            for name in dict.fromkeys(node.input):  # a node that reads a tensor twice is one reader
                self.readers.setdefault(name, []).append(node)
        self._reached: dict[tuple, tuple[list, bool]] = {}

    def reached(self, tensor: str, through: frozenset[str], any_operand: bool = False) -> tuple[list, bool]:
        """(the nodes that read `tensor` directly or through ops in `through`, those excluded; whether a graph
        output is reached that way). A binary op passes only with a weight or constant operand unless
        `any_operand` (a residual connection is not a bias). Memoized: rejoining branches are walked once."""
        key = (tensor, through, any_operand)
        if key not in self._reached:
            nodes, output = [], tensor in self.outputs
            for reader in self.readers.get(tensor, []):
                if reader.op_type in through and (any_operand or reader.op_type not in _BINARY
                                                  or any(name in self.weights for name in reader.input)):
                    more, more_output = self.reached(reader.output[0], through, any_operand)
                    nodes, output = nodes + more, output or more_output
                else:
                    nodes.append(reader)
            self._reached[key] = nodes, output
        return self._reached[key]

    def has_weight(self, product) -> bool:
        return any(name in self.weights for name in product.input[:2])

    def sides(self, product) -> tuple[int, int] | None:
        """(input, output) width of a product with a 2-D weight (either operand; Gemm's transA/transB), else None."""
        first = product.input[0] in self.weights
        weight = self.weights.get(product.input[0] if first else product.input[1])
        if weight is None or len(weight) != 2:
            return None
        flag = "transA" if first else "transB"
        if any(a.name == flag and a.i for a in product.attribute):
            weight = weight[::-1]
        return tuple(weight[::-1]) if first else tuple(weight)  # W @ x maps W's columns to its rows


def fp32_products(path: Path) -> dict[str, list[str]]:
    """The products of graph `path` that stay fp32 (node names), by kind (KEPT_FP32 names; a kind the graph does not
    have is absent)."""
    graph = _Graph(path)
    kept: dict[str, list[str]] = {}

    def keep(kind: str, *nodes) -> None:
        kept.setdefault(kind, []).extend(n.name for n in nodes)

    for product in graph.products:
        out = product.output[0]
        if not graph.has_weight(product):
            keep(ACTIVATION_PRODUCTS, product)
        elif any(r.op_type == "ReduceMean" for r in graph.reached(out, _ON_THE_WAY_TO_POOLING)[0]):
            keep(POOLED_PROJECTION, product)
        elif graph.reached(out, _ON_THE_WAY_TO_LOGITS)[1]:
            keep(CLASS_HEAD, product)
        elif (sides := graph.sides(product)) and sides[1] < sides[0]:
            widening = [r for r in graph.reached(out, _INSIDE_A_BOTTLENECK, any_operand=True)[0]
                        if r.op_type in _PRODUCTS and graph.sides(r) == sides[::-1]]
            if widening:
                keep(BOTTLENECKS, product, *widening)
    if graph.convs:
        kept[PATCH_EMBEDDING] = graph.convs
    return {kind: sorted(set(names)) for kind, names in kept.items()}
