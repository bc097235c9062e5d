"""Helpers of the export, engine, CMake and Triton tests: tiny-model exports (each model and precision exported
once per session, shared read-only or copied) and a stand-in for NVIDIA's command-line builders."""
import shutil
from pathlib import Path

import torch

import t2l_fast
from t2l_fast.deploy.onnx_export import ExportOptions, export_with_classes
from t2l_fast.text.classifier import build_classifier

CLASSES = ["growing", "shrinking", "moving right"]


def class_descriptions(model):
    """T2L scores classes by description (here the names themselves); the others by their names in templates."""
    return CLASSES if model.config.kind == "t2l" else None


def class_embeddings(model):
    descriptions = class_descriptions(model)
    return build_classifier(model, CLASSES, descriptions=descriptions).embeddings, descriptions


def export_tiny(name, out, precision="fp32", **options):
    torch.manual_seed(0)
    model = t2l_fast.create_model(name).eval()
    manifest = export_with_classes(model, out, CLASSES, descriptions=class_descriptions(model),
                                   options=ExportOptions(precision=precision, **options), log=lambda line: None)
    return model, manifest


class TinyExports:
    """This session's exports of the tiny models, each model and precision exported once (the `tiny_exports`
    fixture of conftest.py): `shared` ones are read, never changed; `copy` gives one to change freely."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory, self.exports = tmp_path_factory, {}

    def shared(self, name: str = "t2l_tiny", precision: str = "fp32"):
        """(model, folder) of the session's export of tiny model `name`."""
        if (name, precision) not in self.exports:
            out = self.tmp_path_factory.mktemp(f"{name}-{precision}")
            model, _ = export_tiny(name, out, precision=precision)
            self.exports[name, precision] = model, out
        return self.exports[name, precision]

    def copy(self, destination: Path, name: str = "t2l_tiny", precision: str = "fp32") -> Path:
        """A copy of the shared export of tiny model `name` at `destination`."""
        shutil.copytree(self.shared(name, precision)[1], destination, dirs_exist_ok=True)
        return destination


def stand_in_cli(bin_dir: Path, name: str) -> Path:
    """An executable `name` in `bin_dir` standing in for trtexec / tensorrt_rtx: it writes its own command line
    into the --saveEngine file, so a test can check what it was given."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text('#!/bin/sh\nfor a in "$@"; do case $a in --saveEngine=*) echo "$@" > "${a#--saveEngine=}";; '
                    'esac; done\n')
    path.chmod(0o755)
    return path


def add_int8_graphs(folder: Path, gate_passed: bool, calibration=None) -> None:
    """Give the export in `folder` INT8 video encoder and classifier graphs and an INT8 gate verdict in its manifest:
    quantized on `calibration` clips (uint8 [N, T, 3, S, S]) when given, else copies of the fp32 graphs (stand-ins
    for tests of what reads the verdict). The verdict is written as given: the real gate is test_int8's."""
    from t2l_fast.deploy.int8 import quantize_graph
    from t2l_fast.deploy.onnx_export import write_manifest
    from t2l_fast.io import file_sha256
    from t2l_fast.runtime.bundle import ExportedModel
    from t2l_fast.runtime.export_runners import KEPT_FP32

    bundle = ExportedModel(folder)
    for kind in ("video_encoder", "classifier"):
        target = folder / f"{kind}_int8.onnx"
        if calibration is None:
            shutil.copyfile(bundle.graph_path(kind), target)
        else:
            quantize_graph(bundle.graph_path(kind), target, "static", calibration)
        bundle.graphs[f"{kind}_int8"] = dict(bundle.graphs[kind], file=target.name, sha256=file_sha256(target),
                                             external_data=[], precision="int8", graph=kind)
    bundle.manifest["int8"] = {"gate": {"passed": gate_passed, "top1_agreement": 1.0 if gate_passed else 0.9,
                                        "mean_cosine": 0.999}, "kept_fp32": KEPT_FP32}
    write_manifest(folder, bundle.manifest)
