"""The model zoo and `ModelSpec`, the one way recipes and the Python API name a model."""

from compress.models.spec import ModelSpec, build_model, load_checkpoint, save_checkpoint
from compress.models.zoo import MODELS

__all__ = ["MODELS", "ModelSpec", "build_model", "load_checkpoint", "save_checkpoint"]
