"""PyTorch runner: a deployable graph module (t2l_fast.models.graphs) behind the same contract as the ONNX runners."""
from __future__ import annotations

import numpy as np
import torch

from .base import Runner, TensorSpec


class TorchRunner(Runner):
    """Runs graph `kind` of `model` eagerly in fp32 under inference_mode (the reference of every parity gate)."""

    def __init__(self, model, kind: str, class_embeddings: torch.Tensor | None = None,
                 device: str | None = None):
        from ..models.graphs import INPUTS, OUTPUTS, build_graph

        self.kind, self.name = kind, f"torch {model.config.name} {kind}"
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.graph = build_graph(kind, model.eval(), class_embeddings).to(self.device)
        spec = model.input_spec
        frames = "frames" if model.config.kind != "t2l" else spec.frames  # T2L has one token per frame: fixed T
        shapes = {"frames": (np.uint8, ("batch", frames, 3, spec.image_size, spec.image_size)),
                  "token_ids": (np.int64, ("batch", model.config.text.context_length))}
        self.input_specs = [TensorSpec(name, np.dtype(shapes[name][0]), shapes[name][1]) for name in INPUTS[kind]]
        self.output_names = list(OUTPUTS[kind])

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            args = [torch.from_numpy(feed[spec.name]).to(self.device) for spec in self.input_specs]
            outputs = self.graph(*args)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return {name: out.float().cpu().numpy() for name, out in zip(self.output_names, outputs)}
