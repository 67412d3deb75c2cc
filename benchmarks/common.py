"""What every benchmark prints first: the machine its numbers come from."""

from __future__ import annotations

import platform

import torch


def device_name() -> str:
    """The GPU's name, or the CPU's (its architecture when the processor has no name)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return platform.processor() or platform.machine()


def device_line(extra: str = "") -> str:
    """``device: <name>, torch <version>, <threads> threads[, extra]``."""
    line = f"device: {device_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    return f"{line}, {extra}" if extra else line
