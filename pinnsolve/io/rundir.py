"""The run folder: its status, its protection against overwriting, and checkpoints.

Layout (see docs/running.md): ``config.resolved.toml``, ``status.json``, ``summary.json``,
``history.csv``, ``solutions/sNN.vtu`` (``.xdmf`` for time-dependent problems), ``plots/*.png``,
``checkpoints/latest.pt``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import PinnsolveError
from .export import atomic_write, write_json

STATUSES = ("running", "finished", "interrupted", "failed", "diverged")

#: What a run writes (and what --force clears before a new run starts).
OUTPUTS = ("solutions", "rejected", "plots", "checkpoints", "summary.json", "history.csv",
           "config.resolved.toml", "status.json", "sweep", "diagram.csv",
           "diagram.png")  # fmt: skip


class RunDir:
    """One run's folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoints" / "latest.pt"

    def status(self) -> str | None:
        try:
            return json.loads((self.path / "status.json").read_text())["status"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def prepare(self, force: bool) -> None:
        """Create the folder; refuse to overwrite an earlier run unless ``force``."""
        previous = self.status()
        if previous is not None and not force:
            raise PinnsolveError(
                f"{self.path}: holds a {previous} run; pass --force to overwrite it "
                "or --out to write elsewhere"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise PinnsolveError(
                f"{self.path}: cannot write the run folder ({err.strerror or err})"
            ) from None
        for name in OUTPUTS:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

    def load_checkpoint(self, config_hash: str, device) -> dict[str, Any]:
        """The checkpoint of an unfinished run to resume; refuses a finished run, a missing
        checkpoint, or one written with different settings."""
        status = self.status()
        if status is None or not self.checkpoint_path.exists():
            raise PinnsolveError(f"{self.path}: no run to resume (no checkpoint found)")
        if status == "finished":
            raise PinnsolveError(f"{self.path}: the run there has finished; nothing to resume")
        try:
            state = torch.load(self.checkpoint_path, map_location=device, weights_only=False)
        except Exception as err:  # a damaged file: say so in one line
            raise PinnsolveError(f"{self.checkpoint_path}: unreadable checkpoint ({err})") from None
        if state.get("config_hash") != config_hash:
            raise PinnsolveError(
                f"{self.path}: the resolved settings changed since this run started (the problem "
                "file, or the options of another pinnsolve version); resume needs the same "
                "settings (or start over with --force)"
            )
        return state

    def set_status(self, status: str, **extra: Any) -> None:
        assert status in STATUSES, status
        write_json(self.path / "status.json", {"status": status, "time": time.time(), **extra})

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))
