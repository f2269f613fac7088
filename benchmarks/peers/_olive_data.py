"""Olive user script: the calibration .npy as an Olive dataset of ({input name: sample}, label) pairs."""

from __future__ import annotations

import numpy as np
import torch
from olive.data.registry import Registry


@Registry.register_dataset()
def npy_calibration(path: str, input_name: str):
    x = torch.from_numpy(np.ascontiguousarray(np.load(path), dtype=np.float32))
    return [({input_name: sample}, 0) for sample in x]
