"""The CLIP backbone (an open_clip `CLIP`) and every way of loading its weights offline."""
from __future__ import annotations

import math
import os
import warnings
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..io import file_sha256, safe_torch_load
from .config import ModelConfig

# Keys OpenAI/TorchScript files carry beside the weights: ints, and the causal mask (rebuilt by open_clip).
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


def build_backbone(config: ModelConfig):
    """A randomly initialised open_clip CLIP with the towers of `config`."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    v, t = config.vision, config.text
    model = CLIP(
        embed_dim=config.embed_dim,
        vision_cfg=CLIPVisionCfg(layers=v.layers, width=v.width, head_width=v.head_width,
                                 patch_size=v.patch_size, image_size=v.image_size),
        text_cfg=CLIPTextCfg(context_length=t.context_length, vocab_size=t.vocab_size, width=t.width,
                             heads=t.heads, layers=t.layers),
        quick_gelu=config.quick_gelu,
        init_logit_scale=math.log(config.logit_scale),
    )
    return model


def project_text(backbone, x: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """ln_final, end-of-text pooling and projection of open_clip's text tower: [N, L, W] -> [N, D] (unnormalized)."""
    x = backbone.ln_final(x)
    # CLIP's EOT id (49407) is the largest in its vocabulary, so the arg-max over ids finds it (open_clip's
    # "argmax" pooling). In int32: exact for any vocabulary, and what ONNX Runtime's and TensorRT's ArgMax both take.
    eot = token_ids.to(torch.int32).argmax(dim=-1)  # [N]
    x = x[torch.arange(x.shape[0], device=x.device), eot]  # [N, W]
    projection = backbone.text_projection
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def drop_openai_extras(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Without the non-weight entries OpenAI/TorchScript files carry (at any prefix)."""
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in _OPENAI_EXTRA_KEYS}


def strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a DataParallel/DDP `module.` prefix if every key has it."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


# OpenAI's released CLIP TorchScript archives (the sha256 in their download URLs): ViT-B/32, ViT-B/16, ViT-L/14
OPENAI_TORCHSCRIPT_SHA256 = {"40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
                             "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
                             "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"}


def read_clip_state_dict(source: str, open_clip_arch: str | None = None) -> dict[str, torch.Tensor]:
    """CLIP weights in open_clip/OpenAI key layout from a file, `local-dir:DIR` or an open_clip pretrained tag
    of `open_clip_arch`.

    OpenAI's own `ViT-B-16.pt` is a TorchScript archive, which `weights_only=True` cannot read: it is opened with
    `torch.jit.load(map_location="cpu")` and only its state dict is kept. Loading TorchScript can run code, so it is
    done only for OpenAI's released files (recognised by their sha256) or when asked: `torchscript:PATH`.
    """
    trust_torchscript = source.startswith("torchscript:")
    source = source.removeprefix("torchscript:")
    if source.startswith("local-dir:"):
        directory = Path(source[len("local-dir:"):])
        candidates = [directory / n for n in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                                              "model.safetensors", "pytorch_model.bin")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise CheckpointError(f"{directory}: no CLIP weights found; expected one of "
                                  f"{[c.name for c in candidates]}")
        return read_clip_state_dict(str(found[0]))
    path = Path(source)
    if not path.exists():
        if os.sep in source or source.endswith((".pt", ".pth", ".bin", ".safetensors")) or not open_clip_arch:
            raise CheckpointError(f"{source}: no such file")
        return open_clip_pretrained_state_dict(open_clip_arch, source)
    if path.suffix == ".safetensors":
        state = read_safetensors(path)
    elif _is_torchscript(path):
        state = load_torchscript_state(path, consent=trust_torchscript)
    else:
        state = safe_torch_load(path)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict of tensors, found {type(state).__name__}")
    state = strip_prefix(drop_openai_extras(state))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_torchscript_state(path: Path, *, consent: bool) -> dict[str, torch.Tensor]:
    """The state dict of TorchScript archive `path`. Loading one can run the code inside it, so this is the only
    place that does (tests/test_trust.py checks it), with the caller's consent (torchscript:PATH given by the user,
    never read from a file) or for OpenAI's released CLIP files (recognised by their sha256)."""
    if not (consent or file_sha256(path) in OPENAI_TORCHSCRIPT_SHA256):
        raise CheckpointError(f"{path}: a TorchScript archive that is not one of OpenAI's released CLIP files; "
                              f"loading it can run the code inside. If you trust it, pass torchscript:{path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError as e:
        raise CheckpointError(f"{path}: cannot read this TorchScript archive ({e})") from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file; a corrupt or truncated file raises a CheckpointError naming it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError and OSError variants
        raise CheckpointError(f"{path}: cannot read safetensors file ({e}); it is corrupt or truncated. "
                              f"Re-download or re-save it.") from None


def load_backbone_weights(backbone, source: str, config: ModelConfig) -> None:
    """Load CLIP weights from `source` (see read_clip_state_dict) into `backbone`, strictly."""
    state = read_clip_state_dict(source, config.open_clip_arch)
    load_state_dict_strict(backbone, state, source)


def open_clip_pretrained_state_dict(arch: str, tag: str) -> dict[str, torch.Tensor]:
    """Weights of open_clip's `arch` with pretrained `tag`, from open_clip's cache (the network the first time)."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg, list_pretrained_tags_by_model

    config = get_pretrained_cfg(arch, tag)
    if not config:
        raise CheckpointError(f"{tag!r} is neither a file nor an open_clip pretrained tag of {arch}; "
                              f"tags: {list_pretrained_tags_by_model(arch)}")
    try:
        path = download_pretrained(config)
    except Exception as e:  # hub and URL errors come in many types
        raise CheckpointError(f"could not fetch open_clip {arch}/{tag} ({type(e).__name__}: {e}). Offline? Pass a "
                              f"local file instead, e.g. pretrained='/path/ViT-B-16.pt'.") from None
    return read_clip_state_dict(path)


def load_state_dict_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict(strict=True) whose error names the source and the missing/unexpected/mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mis_shaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label} keys (e.g. {keys[:4]})")
        if mis_shaped:
            k = mis_shaped[0]
            parts.append(f"{len(mis_shaped)} keys with other shapes (e.g. {k}: file {tuple(state[k].shape)} "
                         f"vs model {tuple(own[k].shape)})")
        raise CheckpointError(f"{source}: weights do not fit this architecture: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True)
