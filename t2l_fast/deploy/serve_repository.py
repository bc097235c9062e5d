"""What `t2l serve` hands the `tritonserver` binary of NVIDIA's PyTriton wheel: a model repository of Python-backend
models (deploy/serve_model.py) over an export folder, a backend folder with the stub for this Python, and the
environment the stub needs.

The binary is driven directly, not through PyTriton's Python API: PyTriton's proxy sends outputs through
`pb_utils.Tensor(name, array)`, which the wheel's stub (it reads numpy 1's dtype layout) fills with 0 bytes under
numpy 2.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependencyError
from ..io import path_part
from ..runtime.bundle import ExportedModel
from ..runtime.graph_header import read_graph_facts
from .triton import GRAPHS, LABELS, model_config

VIDEO_GRAPHS = ("classifier", "video_encoder")  # the graphs that take frames, and so the serve run batch
MANIFEST_KEYS = ("format", "model", "precision", "classes", "class_texts")  # what a client needs of the manifest
SHIM = ('"""Written by `t2l serve`: the model is t2l_fast.deploy.serve_model, from the t2l-fast it ran."""\n'
        'import sys\n\nsys.path.insert(0, {root!r})\n'
        'from t2l_fast.deploy.serve_model import TritonPythonModel  # noqa: E402,F401\n')


@dataclass(frozen=True)
class TritonInstall:
    """The parts of the PyTriton wheel a server needs."""

    binary: Path
    python_backend: Path  # libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub built for this Python's minor version
    libs: Path  # the wheel's bundled shared libraries


def find_triton() -> TritonInstall:
    """The `tritonserver` of the installed PyTriton wheel (found without importing PyTriton), or a one-line error."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("t2l serve needs NVIDIA's tritonserver from the nvidia-pytriton wheel; install "
                                     "it with pip install 't2l-fast[triton]'")
    root = Path(next(iter(spec.submodule_search_locations)))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(root / "tritonserver/bin/tritonserver", root / "tritonserver/backends/python",
                            root / f"tritonserver/python_backend_stubs/{version}/triton_python_backend_stub",
                            root.parent / "nvidia_pytriton.libs")
    missing = [p for p in (install.binary, install.python_backend, install.stub) if not p.exists()]
    if missing:
        raise MissingDependencyError(f"{missing[0]}: missing from the nvidia-pytriton wheel (Python {version} "
                                     f"needs its stub); reinstall it with pip install 't2l-fast[triton]'")
    return install


def server_environment(install: TritonInstall) -> dict[str, str]:
    """The server's environment: this interpreter's own libpython first on LD_LIBRARY_PATH (the stub links
    libpython3.X; the system's, under another build of the same Python such as pyenv's, fails model loading with
    `'_thread.RLock' object has no attribute '_recursion_count'`), the wheel's libraries, and this interpreter's
    folder first on PATH (the stub embeds the Python it finds there, with its site-packages)."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR")
    library = sysconfig.get_config_var("INSTSONAME") or ""
    first = [libdir] if libdir and library and (Path(libdir) / library).exists() else []
    paths = first + [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p] + [str(install.libs)]
    env["LD_LIBRARY_PATH"] = ":".join(paths)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def write_backends(install: TritonInstall, folder: Path) -> Path:
    """A backend folder holding the Python backend with this Python's stub (the layout tritonserver expects)."""
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in install.python_backend.iterdir():
        if item.is_file():
            shutil.copy2(item, python / item.name)
    shutil.copy2(install.stub, python / "triton_python_backend_stub")
    return folder


def _pbtxt_string(text: str) -> str:
    """`text` as a protobuf text-format string literal (UTF-8 kept as is)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _parameters(values: dict[str, str]) -> str:
    return "".join(f'parameters {{\n  key: "{key}"\n  value: {{ string_value: {_pbtxt_string(value)} }}\n}}\n'
                   for key, value in values.items())


def write_served_repository(bundle: ExportedModel, folder: Path, backend: str, device: str, max_batch: int,
                            queue_delay_us: int, run_batch: int | None = None) -> list[str]:
    """One Python-backend model per graph of `bundle` (NAME_video_encoder, NAME_text_encoder, NAME_classifier) in
    `folder`; returns their names. Each carries the export's manifest facts for clients (parameter t2l_manifest).
    The video models (classifier, video encoder) prefer batches of `run_batch` (default `max_batch`) and run what
    they are handed in parts of that size; the text encoder runs whole batches of up to `max_batch`."""
    root = str(Path(__file__).resolve().parents[2])
    manifest = {key: bundle.manifest[key] for key in MANIFEST_KEYS if key in bundle.manifest}
    names = []
    for kind in (k for k in GRAPHS if k in bundle.graphs):
        name = path_part(f"{bundle.config.name}_{kind}", f"{bundle.directory}: the model name")  # from the manifest
        facts = read_graph_facts(bundle.verified_graph_path(kind))
        (folder / name / "1").mkdir(parents=True, exist_ok=True)
        (folder / name / "1" / "model.py").write_text(SHIM.format(root=root))
        labels, batch = None, (run_batch or max_batch) if kind in VIDEO_GRAPHS else max_batch
        if kind == "classifier":
            labels = LABELS
            (folder / name / LABELS).write_text("".join(f"{c}\n" for c in bundle.class_names))
        extra = _parameters({"t2l_export_dir": str(bundle.directory.resolve()), "t2l_graph": kind,
                             "t2l_backend": backend, "t2l_device": device,
                             "t2l_max_frames": str(bundle.manifest["model"]["frames"]),
                             "t2l_run_batch": str(batch),
                             "t2l_manifest": json.dumps(manifest, ensure_ascii=False)})
        extra += "instance_group [\n  {\n    kind: KIND_CPU\n    count: 1\n  }\n]\n"
        (folder / name / "config.pbtxt").write_text(model_config(
            name, "python", facts.inputs, facts.outputs, max_batch, (batch,), queue_delay_us,
            labels=labels, extra=extra))
        names.append(name)
    return names
