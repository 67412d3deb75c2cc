"""Optimizers of pinnsolve beyond torch's own: BBI (energy-conserving descent with bounces)."""

from .bbi import (
    BBI,
    V_FLOOR,
    BBIConfig,
    BBIState,
    bbi_diagnostics,
    bbi_energy,
    bbi_init,
    bbi_resync_energy,
    bbi_step,
    bounce_directions,
    member_seeds,
)

__all__ = [
    "BBI",
    "V_FLOOR",
    "BBIConfig",
    "BBIState",
    "bbi_diagnostics",
    "bbi_energy",
    "bbi_init",
    "bbi_resync_energy",
    "bbi_step",
    "bounce_directions",
    "member_seeds",
]
