"""Model configs, the registry, T2L / ViFi-CLIP / CLIP, checkpoints and converters."""
from .config import InputSpec, ModelConfig, TextTowerConfig, VisionTowerConfig
from .registry import create_model, get_model_config, list_models

__all__ = ["InputSpec", "ModelConfig", "TextTowerConfig", "VisionTowerConfig", "create_model", "get_model_config",
           "list_models"]
