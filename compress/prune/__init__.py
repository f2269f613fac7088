"""Structured pruning: importance criteria by name and a thin adapter over torch-pruning."""

from compress.prune.engine import IMPORTANCES, ChannelPruner, classifier, layer_names

__all__ = ["IMPORTANCES", "ChannelPruner", "classifier", "layer_names"]
