"""Import checkpoints of the official ViFi-CLIP repository (muzairkhattak/ViFi-CLIP, utils/tools.py epoch_saving).

Their files are `torch.save({'model', 'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config'})`, where
'config' is a yacs CfgNode and 'model' the DDP state dict (`module.` prefix) of its ViFiCLIP wrapper:
  image_encoder.*                                -> backbone.visual.*
  text_encoder.{transformer.*, positional_embedding, ln_final.*, text_projection} -> backbone.* (same names)
  logit_scale                                    -> backbone.logit_scale
  prompt_learner.{complete_text_embeddings, token_prefix, token_suffix}  class-specific buffers: dropped (ViFi-CLIP
                                                    drops them on load too)
The token embedding is not in the file (ViFiCLIP never holds it, so it never trains): it comes from the CLIP
weights ViFi-CLIP started from, given as `pretrained`, and is checked against the start-of-text row of the
dropped prompt embeddings when they are there.
"""
from __future__ import annotations

import collections
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..io import safe_torch_load
from .backbone import load_state_dict_strict
from .official import fits, model_state
from .registry import get_model_config, list_models

TOKEN_EMBEDDING = "backbone.token_embedding.weight"
PROMPT_EMBEDDINGS = "prompt_learner.complete_text_embeddings"  # [classes, 77, width]: token embeddings of prompts
START_OF_TEXT = 49406  # CLIP's BPE start token: row 0 of every prompt
_RENAMES = (("image_encoder.", "backbone.visual."), ("text_encoder.", "backbone."),
            ("logit_scale", "backbone.logit_scale"))


def read_vificlip_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(weights in our key layout, the dropped prompt buffers, the run's config as plain dicts) of a ViFi-CLIP file.
    The yacs CfgNode is read as an OrderedDict, so no code from the file runs (weights_only stays on)."""
    with torch.serialization.safe_globals([(collections.OrderedDict, "yacs.config.CfgNode")]):
        checkpoint = safe_torch_load(Path(path))
    state = model_state(checkpoint, path, "ViFi-CLIP", "image_encoder.conv1.weight")
    prompts = {k: v for k, v in state.items() if k.startswith("prompt_learner.")}
    if any("VPT" in k or k.endswith(".ctx") for k in state):
        raise CheckpointError(f"{path}: a ViFi-CLIP prompting checkpoint (learned prompt vectors); only the fully "
                              f"fine-tuned ViFi-CLIP (TRAINER.ViFi_CLIP.PROMPT_MODEL false) can be imported")
    ours = {}
    for key, value in state.items():
        if key in prompts:
            continue
        for theirs, mine in _RENAMES:
            if key.startswith(theirs):
                ours[mine + key[len(theirs):]] = value
                break
        else:
            raise CheckpointError(f"{path}: unexpected key {key!r} for a ViFi-CLIP checkpoint")
    config = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    return ours, prompts, config if isinstance(config, dict) else {}


def load_official_vificlip(path: str | Path, pretrained: str, model_name: str | None = None,
                           device: str | None = None):
    """A ready ViFi-CLIP model from an official ViFi-CLIP checkpoint, its token embedding from `pretrained` (the CLIP
    weights it was fine-tuned from: 'openai', ViT-B-16.pt, ...); T from the run's DATA.NUM_FRAMES (else 8)."""
    from .build import build_model

    state, prompts, run_config = read_vificlip_checkpoint(path)
    frames = int(run_config.get("DATA", {}).get("NUM_FRAMES", 8))
    names = [model_name] if model_name else [n for n in list_models() if get_model_config(n).kind == "vificlip"]
    for name in names:
        config = get_model_config(name, frames=frames)
        if config.kind != "vificlip":
            raise CheckpointError(f"{path}: ViFi-CLIP weights need a ViFi-CLIP model, not {name} ({config.kind})")
        if fits(config, state, absent=(TOKEN_EMBEDDING,)):
            break
    else:
        raise CheckpointError(f"{path}: the weights (image conv1 {tuple(state['backbone.visual.conv1.weight'].shape)})"
                              f" fit none of {names}; pass model_name= for a matching registered model")
    model = build_model(config, pretrained=pretrained)
    token_embedding = model.state_dict()[TOKEN_EMBEDDING]
    if PROMPT_EMBEDDINGS in prompts:
        start = prompts[PROMPT_EMBEDDINGS][0, 0].float()
        if not torch.allclose(start, token_embedding[START_OF_TEXT], atol=1e-3):
            raise CheckpointError(f"{path}: the CLIP weights {pretrained!r} are not the ones this ViFi-CLIP model was "
                                  f"fine-tuned from (their start-of-text embedding differs from the file's prompts); "
                                  f"pass the original CLIP weights of {config.name}")
    load_state_dict_strict(model, {**state, TOKEN_EMBEDDING: token_embedding}, str(path))
    model.backbone_source = None  # every weight but the token embedding came from this file
    return model.to(device) if device else model
