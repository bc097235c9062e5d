"""A client of `t2l serve` (or of any Triton serving the models it writes): what `t2l predict --server` runs, and
the Python client of docs/TRITON.md.

    served = ServedExport("grpc://localhost:8001")       # or http://localhost:8000
    with served.runner("classifier") as classifier:
        probabilities = classifier.infer({"frames": clips})["probabilities"]   # uint8 [B, T, 3, S, S] -> [B, C]

`ServedExport` answers what `scoring.ExportScorer` asks of an export folder (model config, input spec, classes and
their texts, logit scale) from the served models' `t2l_manifest` parameter, so a served model scores videos exactly
as a local export does: same decoding and sampling, same prompts, same scoring.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from ..errors import T2LError
from ..models.config import InputSpec, ModelConfig
from ..optional import require
from ..runtime.bundle import manifest_input_spec

TRITON_DTYPES = {np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32"}


class ServerError(T2LError):
    """The server is unreachable, or refused a request (the message names the server and its answer)."""


def connect(url: str, timeout_s: float = 60.0):
    """(tritonclient module, client) for `url`: grpc://HOST:PORT, or http://HOST:PORT / HOST:PORT (HTTP)."""
    scheme, _, address = url.rpartition("://")
    if scheme not in ("", "http", "grpc") or not address:
        raise ServerError(f"--server {url}: give http://HOST:PORT or grpc://HOST:PORT")
    if scheme == "grpc":
        module = require("tritonclient.grpc", "triton", "a gRPC client of t2l serve")
        return module, module.InferenceServerClient(address)
    module = require("tritonclient.http", "triton", "an HTTP client of t2l serve")
    return module, module.InferenceServerClient(address, connection_timeout=timeout_s, network_timeout=timeout_s)


def infer(module, client, model: str, feed: Mapping[str, np.ndarray], outputs, timeout_s: float | None = None
          ) -> dict[str, np.ndarray]:
    """One request: numpy arrays in (batch first), the named outputs back; a refusal is a ServerError."""
    tensors = []
    for name, array in feed.items():
        if array.dtype not in TRITON_DTYPES:
            raise ServerError(f"input {name!r} is {array.dtype}; send uint8 frames or int64 token ids")
        tensor = module.InferInput(name, list(array.shape), TRITON_DTYPES[array.dtype])
        tensor.set_data_from_numpy(np.ascontiguousarray(array))
        tensors.append(tensor)
    requested = [module.InferRequestedOutput(name) for name in outputs]
    extra = {"client_timeout": timeout_s} if timeout_s and module.__name__.endswith("grpc") else {}
    try:
        result = client.infer(model, tensors, outputs=requested, **extra)
    except Exception as e:  # noqa: BLE001 - tritonclient raises its own and the transport's exceptions
        raise ServerError(f"{model}: {str(e).strip() or type(e).__name__}") from None
    return {name: result.as_numpy(name) for name in outputs}


class ServedExport:
    """The export a server serves, read from its models' configs."""

    def __init__(self, url: str, timeout_s: float = 60.0):
        self.url, self.timeout_s = url, timeout_s
        self.module, self.client = connect(url, timeout_s)
        self.models, configs = {}, {}
        try:
            names = [entry["name"] for entry in self._index() if entry.get("state", "READY") == "READY"]
            for name in names:
                config = self._config(name)
                if "t2l_manifest" in config.get("parameters", {}):
                    kind = config["parameters"]["t2l_graph"]["string_value"]
                    self.models[kind], configs[kind] = name, config
        except Exception as e:  # noqa: BLE001 - unreachable, or not a Triton server
            raise ServerError(f"{url}: no answer from a Triton server ({str(e).strip() or type(e).__name__}); "
                              f"start one with `t2l serve --onnx DIR`") from None
        if not configs:
            raise ServerError(f"{url}: serves no t2l-fast models (none has a t2l_manifest parameter); serve an "
                              f"export folder with `t2l serve --onnx DIR`")
        first = next(iter(configs.values()))
        self.manifest = json.loads(first["parameters"]["t2l_manifest"]["string_value"])
        self.backend = first["parameters"]["t2l_backend"]["string_value"]
        self.max_batch = {kind: int(config.get("max_batch_size") or 1) for kind, config in configs.items()}
        self.outputs = {kind: [o["name"] for o in config["output"]] for kind, config in configs.items()}
        self.config = ModelConfig.from_dict(self.manifest["model"]["config"])

    def _index(self) -> list[dict]:
        if self.module.__name__.endswith("grpc"):
            return [{"name": m.name, "state": m.state} for m in self.client.get_model_repository_index().models]
        return self.client.get_model_repository_index()

    def _config(self, name: str) -> dict:
        if self.module.__name__.endswith("grpc"):
            from google.protobuf.json_format import MessageToDict

            return MessageToDict(self.client.get_model_config(name).config, preserving_proto_field_name=True)
        return self.client.get_model_config(name)

    # what scoring.ExportScorer reads of an export
    @property
    def class_names(self) -> list | None:
        return self.manifest.get("classes") if "classifier" in self.models else None

    @property
    def input_spec(self) -> InputSpec:
        return manifest_input_spec(self.manifest)

    @property
    def logit_scale(self) -> float:
        return float(self.manifest["model"]["logit_scale"])

    def check_fits(self, model_name: str | None = None) -> None:
        if model_name and model_name != self.manifest["model"]["name"]:
            raise ServerError(f"{self.url} serves {self.manifest['model']['name']}, not {model_name}; drop --model")

    def runner(self, kind: str) -> ServedRunner:
        """A runner (context manager, infer(feed) -> outputs) of the served model of graph `kind`."""
        if kind not in self.models:
            raise ServerError(f"{self.url} serves no {kind} model; it serves {sorted(self.models)}")
        return ServedRunner(self, kind)


class ServedRunner:
    """The runner contract over a served model: batches above the server's limit go as several requests."""

    def __init__(self, served: ServedExport, kind: str):
        self.served, self.kind, self.name = served, kind, served.models[kind]

    def __enter__(self) -> ServedRunner:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        s, size = self.served, len(next(iter(feed.values())))
        step = s.max_batch[self.kind]
        parts = [infer(s.module, s.client, self.name, {k: v[i:i + step] for k, v in feed.items()},
                       s.outputs[self.kind], s.timeout_s) for i in range(0, size, step)]
        return {name: np.concatenate([part[name] for part in parts]) for name in s.outputs[self.kind]}
