"""One inference contract over every backend: a runner is a context manager with `infer(feed) -> outputs`.

    with OrtRunner("export/classifier.onnx") as runner:
        outputs = runner.infer({"frames": clips})          # numpy arrays in, numpy arrays out
    report = compare_outputs(outputs, reference, tolerances)  # every parity gate uses this comparator
"""
from .base import ArtifactError, Runner, TensorSpec
from .compare import Comparison, Tolerance, compare_outputs

__all__ = ["ArtifactError", "Comparison", "Runner", "TensorSpec", "Tolerance", "compare_outputs"]
