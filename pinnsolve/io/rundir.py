"""The run folder: its status, its protection against overwriting, and checkpoints.

Layout (see docs/running.md): ``config.resolved.toml``, ``status.json``, ``summary.json``,
``history.csv``, ``solutions/sNN.vtu`` (``.xdmf`` for time-dependent problems, with its slices in
``solutions/sNN/tJJ.vtu``), ``solutions.pvd`` (ParaView: every solution from one file),
``plots/*.png``, ``checkpoints/latest.pt``.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, PinnsolveError
from .export import atomic_write, write_json

STATUSES = ("running", "finished", "interrupted", "failed", "diverged")

#: What a run writes (and what --force clears before a new run starts).
OUTPUTS = ("solutions", "rejected", "plots", "checkpoints", "summary.json", "history.csv",
           "config.resolved.toml", "status.json", "solutions.pvd", "sweep", "diagram.csv",
           "diagram.png")  # fmt: skip


#: how the Python API and the command line say "overwrite", "elsewhere" and "continue"
PYTHON_TERMS = {"force": "force=True", "out": "out=...", "resume": "resume=True"}
CLI_TERMS = {"force": "--force", "out": "--out", "resume": "--resume"}


class RunFolderTaken(ConfigError):
    """A run folder holds an earlier run: the message says how to overwrite it, write elsewhere
    or continue it, in the caller's terms (:data:`PYTHON_TERMS` unless re-worded with
    :meth:`in_terms`); ``key`` is ``[output] dir`` when the file chose the folder."""

    def __init__(self, path: Path, status: str, terms: dict[str, str] = PYTHON_TERMS,
                 file: str | None = None, key: str | None = None):  # fmt: skip
        self.path, self.status = path, status
        how = f"pass {terms['force']} to overwrite it or {terms['out']} to write elsewhere"
        if status in ("running", "interrupted"):
            how = f"pass {terms['resume']} to continue it, {how}"
        article = "an" if status[0] in "aeiou" else "a"
        super().__init__(f"{path}: holds {article} {status} run; {how}", file=file, key=key)

    def in_terms(self, terms: dict[str, str]) -> RunFolderTaken:
        return RunFolderTaken(self.path, self.status, terms, self.file, self.key)


def numbered(path: Path, n: int) -> Path:
    """``outputs/bratu1d`` → ``outputs/bratu1d-<n>`` (n ≥ 2; 1 is ``path`` itself)."""
    return path if n == 1 else path.with_name(f"{path.name}-{n}")


def next_free(path: Path) -> Path:
    """The first of ``path-2``, ``path-3``, … that holds no run (a second run of a file whose
    default folder holds a finished one goes there)."""
    n = 2
    while RunDir(numbered(path, n)).status() is not None:
        n += 1
    return numbered(path, n)


def latest(path: Path) -> Path:
    """The last of ``path``, ``path-2``, … that holds a run (where a default-folder resume
    looks), or ``path`` when none does."""
    n = 1
    while RunDir(numbered(path, n + 1)).status() is not None:
        n += 1
    return numbered(path, n)


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
            raise RunFolderTaken(self.path, previous)
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
        now = time.time()
        iso = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        write_json(self.path / "status.json",
                   {"status": status, "time": now, "time_iso": iso, **extra})  # fmt: skip

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))
