"""What TensorRT made of a graph: the engine inspector's layer list, summarised (layer count, Myelin regions, and
whether attention looks fused). fp16 graphs keep LayerNorm and Softmax in fp32 (deploy/onnx_graph), which can stop
TensorRT fusing attention; this says whether it did, so a slow fp16 engine is explained.

Reading an engine needs a GPU (deserialising it); summarising the inspector's JSON does not.
"""
from __future__ import annotations

import json
from pathlib import Path

# No documented string marks fused attention: these appear in the names of TensorRT's fused multi-head attention
# (fMHA) and flash-attention tactics and layers, so matching them is a heuristic, said so wherever it is reported.
ATTENTION_MARKERS = ("mha", "fmha", "flash")
LAYER_TEXT_FIELDS = ("Name", "TacticName", "Metadata")
HEURISTIC = "heuristic: 'mha', 'fmha' or 'flash' in a layer's name, tactic or metadata"


def engine_information(engine: Path) -> str:
    """The engine inspector's JSON for `engine` (its sidecar checked first; needs a GPU that can run it)."""
    from .trt_runner import TrtRunner
    from .trt_support import load_tensorrt

    with TrtRunner(engine) as runner:
        trt = load_tensorrt(runner.sidecar["runtime"]["name"]).trt
        inspector = runner.engine.create_engine_inspector()
        return inspector.get_engine_information(trt.LayerInformationFormat.JSON)


def _layer_text(layer: str | dict) -> str:
    """The searchable text of one layer: its name (LAYER_NAMES_ONLY), or its name, tactic and metadata (DETAILED)."""
    if isinstance(layer, str):
        return layer
    return " ".join(str(layer.get(field, "")) for field in LAYER_TEXT_FIELDS)


def _layer_name(layer: str | dict) -> str:
    return layer if isinstance(layer, str) else str(layer.get("Name", "?"))


def summarize_layers(inspector_json: str) -> dict[str, object]:
    """Layer count, Myelin regions ("ForeignNode"), whether the layers carry details (profiling verbosity
    DETAILED) and whether any layer looks like fused attention (a heuristic: ATTENTION_MARKERS)."""
    layers = json.loads(inspector_json).get("Layers", [])
    attention = [_layer_name(layer) for layer in layers
                 if any(marker in _layer_text(layer).lower() for marker in ATTENTION_MARKERS)]
    return {"layers": len(layers),
            "detailed": bool(layers) and all(isinstance(layer, dict) for layer in layers),
            "myelin_regions": sum("foreignnode" in _layer_text(layer).lower() for layer in layers),
            "attention_fused": bool(attention), "attention_layers": attention[:20], "heuristic": HEURISTIC}


def describe_layers(summary: dict[str, object]) -> str:
    """One line: "N layers (M Myelin regions), attention fused: yes (heuristic)"."""
    hidden = "" if summary["detailed"] else "; names only (build with DETAILED profiling verbosity for tactics)"
    return (f"{summary['layers']} layers ({summary['myelin_regions']} Myelin regions), attention fused: "
            f"{'yes' if summary['attention_fused'] else 'no'} (heuristic){hidden}")
