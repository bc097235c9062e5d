"""Class probabilities of uint8 clips, whatever runs the model: a PyTorch model with its zero-shot classifier
(`TorchScorer`), or an export folder's graphs on one backend (`ExportScorer`). `scorers_for` gives the scorers of one
model for any class list, which is what evaluation needs (every split or subset has its own classes)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .video_ops import normalize_video


class TorchScorer:
    """Class probabilities of uint8 clips from a PyTorch model and its zero-shot classifier."""

    backend = "torch"

    def __init__(self, model, classifier):
        self.model, self.classifier = model, classifier
        self.spec, self.class_names = model.input_spec, classifier.class_names
        self.device = next(model.parameters()).device

    def __enter__(self) -> TorchScorer:
        return self

    def __exit__(self, *exc) -> None:
        pass

    @torch.no_grad()
    def probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, 3, S, S] -> [B, C]."""
        video = normalize_video(clips.to(self.device), self.spec)
        return self.classifier.probabilities(self.model.encode_video(video), self.model.logit_scale()).float().cpu()


class ExportScorer:
    """Class probabilities of uint8 clips from an export folder, on ONNX Runtime or on TensorRT engines built from
    its graphs (`open_runner(kind)` gives the runner of graph `kind`): the classifier graph when it holds these
    classes with these texts, else the video encoder against class embeddings from the text encoder."""

    def __init__(self, bundle, class_names: Sequence[str], descriptions: Sequence[str] | None = None,
                 templates=None, open_runner=None, backend: str = "onnx"):
        from .text.classifier import ZeroShotClassifier, build_prompts, combine_templates, flatten_prompts
        from .text.tokenize import tokenize

        open_runner = open_runner or bundle.runner
        self.backend, self.spec, self.class_names = backend, bundle.input_spec, list(class_names)
        prompts = build_prompts(bundle.config, self.class_names, descriptions, templates)
        self.classifier, self.runner = None, None
        if bundle.class_names == self.class_names and bundle.manifest.get("class_texts") == prompts:
            self.graph, self.via = open_runner("classifier"), "classifier graph"
            return
        with open_runner("text_encoder") as text:
            ids = tokenize(flatten_prompts(prompts), bundle.config.text.context_length).numpy()
            embeddings = torch.from_numpy(text.infer({"token_ids": ids})["embedding"])  # [K*C, D]
        embeddings = combine_templates(embeddings.view(len(prompts[0]), len(prompts), -1))
        self.classifier, self.logit_scale = ZeroShotClassifier(self.class_names, embeddings), bundle.logit_scale
        self.graph, self.via = open_runner("video_encoder"), "video and text encoder graphs"

    def __enter__(self) -> ExportScorer:
        self.runner = self.graph.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.graph.__exit__(*exc)

    def probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        outputs = self.runner.infer({"frames": clips.numpy()})
        if self.classifier is None:
            return torch.from_numpy(outputs["probabilities"])
        return self.classifier.probabilities(torch.from_numpy(outputs["embedding"]), self.logit_scale)


class TorchScorers:
    """TorchScorer of one PyTorch model for any class list (its classifier built from the class texts)."""

    def __init__(self, model):
        self.model, self.spec, self.name = model, model.input_spec, model.config.name
        self.device = next(model.parameters()).device  # where the loader puts batches

    def __call__(self, class_names: Sequence[str], descriptions: Sequence[str] | None = None,
                 templates=None) -> TorchScorer:
        from .text.classifier import build_classifier

        self.model.eval()
        return TorchScorer(self.model, build_classifier(self.model, class_names, descriptions=descriptions,
                                                        templates=templates))


class ExportScorers:
    """ExportScorer of one export folder on one backend for any class list (`open_runner(kind)` gives the runner of
    graph `kind`); batches stay on the CPU, since the runners take numpy arrays."""

    device = torch.device("cpu")

    def __init__(self, bundle, open_runner, backend: str):
        self.bundle, self.open_runner, self.backend = bundle, open_runner, backend
        self.spec, self.name = bundle.input_spec, bundle.config.name

    def __call__(self, class_names: Sequence[str], descriptions: Sequence[str] | None = None,
                 templates=None) -> ExportScorer:
        return ExportScorer(self.bundle, class_names, descriptions, templates, open_runner=self.open_runner,
                            backend=self.backend)


def scorers_for(model) -> TorchScorers | ExportScorers:
    """`model` as scorers: a PyTorch model is wrapped, scorers are returned as they are."""
    return TorchScorers(model) if isinstance(model, torch.nn.Module) else model
