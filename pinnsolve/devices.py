"""Where a run's tensors live: the device and dtype a config asks for, and moving nested states
(checkpoints, explorer records, what travels between ranks) to a device and dtype. Its own
module, below every layer, because the optimizers, the explorer, the ranks and the solver all
move such states."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .errors import ConfigError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; asking for CUDA without it is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("'cuda' was asked for but torch sees no CUDA device", key="[run] device")
    return torch.device(name)


def on_device(obj: Any, device: torch.device | str, dtype: torch.dtype | None = None) -> Any:
    """``obj`` with every tensor in it detached and copied to ``device`` (nested dicts, lists and
    tuples), floating-point ones to ``dtype`` when given: what travels between ranks goes as CPU
    tensors, and each rank moves it back."""
    if isinstance(obj, Tensor):
        to = dtype if dtype is not None and obj.is_floating_point() else obj.dtype
        return obj.detach().to(device, to, copy=True)
    if isinstance(obj, dict):
        return {key: on_device(value, device, dtype) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(on_device(value, device, dtype) for value in obj)
    return obj
