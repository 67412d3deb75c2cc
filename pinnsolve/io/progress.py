"""Progress display: a one-line bar in a terminal, plain periodic lines otherwise, or nothing."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Called with each history row. In a TTY it redraws one line; elsewhere (CI logs, files) it
    prints a line at most every ``interval_s`` seconds and at each phase change."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, interval_s: float = 5.0):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self._last_print = -float("inf")
        self._phase: tuple | None = None
        self._done = 0

    def __call__(self, row: dict) -> None:
        if self.quiet:
            return
        done = row.get("phase_step", 0)
        phase = (row.get("stage"), row["phase"])
        if phase != self._phase or done < self._done:  # a new phase (or the same one again)
            if self._phase is not None and self.tty:
                self.stream.write("\n")
            self._phase = phase
            self._last_print = -float("inf")
        self._done = done
        line = self._format(row)
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:160])
            self.stream.flush()
        elif time.monotonic() - self._last_print >= self.interval_s:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_print = time.monotonic()

    @staticmethod
    def _format(row: dict) -> str:
        """``done/total`` are the phase's own steps (a resumed phase counts on from where it
        stopped); the explorer's phases are named ``explore/<phase>``, apart from training's."""
        done, total = row.get("phase_step", 0), row.get("phase_total", 0)
        bar = ""
        if total:
            filled = int(20 * min(1.0, done / total))
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        bc = max((v for k, v in row.items() if k.endswith("_max")), default=None)
        bc_text = f"  max|bc| {bc:.2e}" if bc is not None else ""
        err = f"  rel L2 {row['rel_l2_error']:.2e}" if "rel_l2_error" in row else ""
        bbi = ""
        if "bbi_energy" in row:
            bbi = (
                f"  V {row['bbi_v']:.2e} E {row['bbi_energy']:.2e} |π| {row['bbi_pi_norm']:.1e}"
                f" bounces {row['bbi_bounces']:.0f}"
            )
        name = row["phase"] if row.get("stage") != "explore" else f"explore/{row['phase']}"
        return (
            f"{name:>6} {bar}step {done}/{total}  loss {row['loss']:.3e}"
            f"{bc_text}{err}{bbi}  {row['time_s']:.1f}s"
        )

    def close(self) -> None:
        if self.tty and self._phase is not None and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()
