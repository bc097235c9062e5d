"""Import (and export) checkpoints of the official T2L repository.

Their files are `torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict'})` of the whole CLIP model, often
fp16, in OpenAI key layout (possibly behind a `module.` prefix), plus:
  visual.transformer.T_prompt_embeddings              [layers, T, width]  -> temporal_tokens
  visual.transformer.resblocks.{i}.Adapter.D_fc{1,2}  (Linear)            -> vision_adapters.{i}.fc{1,2}
  transformer.resblocks.{i}.Adapter.D_fc{1,2}         (Linear)            -> text_adapters.{i}.fc{1,2}
  visual.temporal_embedding                           [1, T, width]       frozen zeros, a no-op: checked and dropped
Every other key is the OpenAI CLIP key, which open_clip's CLIP uses unchanged (our `backbone.` prefix).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..io import safe_torch_load
from .backbone import drop_openai_extras, load_state_dict_strict, strip_prefix
from .config import ModelConfig
from .registry import get_model_config, list_models

TOKENS_KEY = "visual.transformer.T_prompt_embeddings"
TEMPORAL_EMBEDDING_KEY = "visual.temporal_embedding"
# (our name pattern, official name pattern); groups carry the block index and the layer/tensor names.
_RENAMES = (
    (r"temporal_tokens", TOKENS_KEY.replace(".", r"\.")),
    (r"vision_adapters\.(\d+)\.fc([12])\.(weight|bias)",
     r"visual\.transformer\.resblocks\.(\d+)\.Adapter\.D_fc([12])\.(weight|bias)"),
    (r"text_adapters\.(\d+)\.fc([12])\.(weight|bias)",
     r"transformer\.resblocks\.(\d+)\.Adapter\.D_fc([12])\.(weight|bias)"),
    (r"backbone\.(.+)", r"(.+)"),
)


def _template(pattern: str) -> str:
    """A regex with groups -> a format string with {0}, {1}, ... in their places."""
    count = iter(range(99))
    return re.sub(r"\([^)]*\)", lambda _: "{" + str(next(count)) + "}", pattern).replace("\\", "")


def _rename(name: str, to_official: bool) -> str:
    for ours, theirs in _RENAMES:
        source, target = (ours, theirs) if to_official else (theirs, ours)
        match = re.fullmatch(source, name)
        if match:
            return _template(target).format(*match.groups())
    raise KeyError(name)


def to_official_state_dict(model) -> dict[str, torch.Tensor]:
    """Our T2L's weights in the official key layout (with the zero `temporal_embedding` the official model has)."""
    state = {_rename(k, to_official=True): v for k, v in model.state_dict().items()}
    state[TEMPORAL_EMBEDDING_KEY] = torch.zeros(1, model.config.frames, model.config.vision.width)
    return state


def model_state(checkpoint, path: str | Path, kind: str, required_key: str) -> dict[str, torch.Tensor]:
    """The model state dict of a loaded training checkpoint ({'model_state_dict' | 'state_dict' | 'model': ...}
    or the state dict itself), fp32, without `module.` prefix or OpenAI extras; it must hold `required_key`."""
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ("model_state_dict", "state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict) or required_key not in strip_prefix(state):
        raise CheckpointError(f"{path}: not an official {kind} checkpoint (no {required_key!r} in its model state "
                              f"dict)")
    state = strip_prefix(state)
    return {k: v.float() if v.is_floating_point() else v for k, v in drop_openai_extras(state).items()}


def read_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of an official T2L checkpoint file (see model_state)."""
    return model_state(safe_torch_load(Path(path)), path, "T2L", TOKENS_KEY)


def from_official_state_dict(state: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Official layout -> our state dict keys; the zero `temporal_embedding` is checked and dropped."""
    state = dict(state)
    temporal_embedding = state.pop(TEMPORAL_EMBEDDING_KEY, None)
    if temporal_embedding is not None and temporal_embedding.abs().max() > 0:
        warnings.warn(f"{source}: {TEMPORAL_EMBEDDING_KEY} is not all zeros (max |x| = "
                      f"{temporal_embedding.abs().max().item():.3g}); the official model keeps it frozen at zero and "
                      f"T2L has no temporal position encoding, so it is dropped. Outputs may differ from the "
                      f"official model's.", stacklevel=2)
    return {_rename(k, to_official=False): v for k, v in state.items()}


def fits(config: ModelConfig, state: dict[str, torch.Tensor], absent: tuple[str, ...] = ()) -> bool:
    """Whether `state` has exactly the keys and shapes of `config`'s model, less the `absent` keys."""
    from .build import build_model

    expected = {k: v.shape for k, v in build_model(config, device="meta").state_dict().items() if k not in absent}
    return expected.keys() == state.keys() and all(expected[k] == state[k].shape for k in expected)


def infer_config(state: dict[str, torch.Tensor], model_name: str | None = None,
                 source: str = "state dict") -> ModelConfig:
    """The registered T2L config (with T from the weights) whose shapes match `state` (our key layout)."""
    frames = state["temporal_tokens"].shape[1]
    names = [model_name] if model_name else [n for n in list_models() if get_model_config(n).kind == "t2l"]
    for name in names:
        config = get_model_config(name)
        if config.kind != "t2l":
            raise CheckpointError(f"{source}: official T2L weights need a T2L model, not {name} ({config.kind})")
        if fits(config.replace(frames=frames), state):
            return config.replace(frames=frames)
    tokens = tuple(state["temporal_tokens"].shape)
    raise CheckpointError(f"{source}: the weights (temporal tokens {tokens}: layers, T, width) fit none of "
                          f"{names}; pass model_name= for a matching registered model")


def load_official_t2l(path: str | Path, model_name: str | None = None, device: str | None = None):
    """A ready T2L model from an official T2L checkpoint file (architecture and T inferred from the weights)."""
    from .build import build_model

    state = from_official_state_dict(read_official_state_dict(path), str(path))
    config = infer_config(state, model_name, str(path))
    model = build_model(config)
    load_state_dict_strict(model, state, str(path))
    model.backbone_source = None  # the backbone came from this file
    return model.to(device) if device else model


def official_layout(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official checkpoint layout for `config` (what `to_official_state_dict` writes)."""
    from .build import build_model

    return {k: tuple(v.shape) for k, v in to_official_state_dict(build_model(config, device="meta")).items()}
