"""Do two versions of pinnsolve give the same results? A fingerprint of the bundled runs.

A refactor must not change what a run finds. This script solves the bundled problems at their
files' seeds and writes, per problem, everything a run's result is made of except wall times:
every solution's summary entry (residual, infeasibility, errors, norms, provenance), a SHA-256 of
its exported field values, the explorer's attempt log and the loss history. Run it on the old
commit with ``--write``, on the new one with ``--compare``; any difference is printed and the
exit code is 1::

    git stash; python benchmarks/same_results.py --write /tmp/before.json; git stash pop
    python benchmarks/same_results.py --compare /tmp/before.json

Bit-identical is the standard (the same seed, the same operations in the same order); compare on
the same machine and torch build, since another BLAS may round differently.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import pinnsolve as ps

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("bratu1d", "elastica1d", "poisson2d")
#: keys that measure time, not results
TIMING = {"wall_time_s", "time_s", "round_search_s"}


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _digest(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {
        name: hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()
        for name, a in sorted(arrays.items())
    }


def fingerprint(name: str, out: Path) -> dict:
    """Solve ``problems/<name>.toml`` into ``out`` and return what its result is made of."""
    result = ps.solve(ROOT / "problems" / f"{name}.toml", out=out, force=True)
    summary = result.summary
    return {
        "status": summary["status"],
        "solutions": _without_timing(summary["solutions"]),
        "values": [_digest(s.values) for s in result.solutions],
        "explore": _without_timing(summary.get("explore")),
        "history": _without_timing(result.history),
    }


def _differences(before, after, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                found.append(f"{where}/{key}: only in {'after' if key in after else 'before'}")
            else:
                found += _differences(before[key], after[key], f"{where}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} entries before, {len(after)} after"]
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in _differences(b, a, f"{where}[{i}]")
        ]
    return [] if before == after else [f"{where}: {before!r} before, {after!r} after"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="write the fingerprints to this JSON file")
    mode.add_argument("--compare", type=Path, help="compare with fingerprints written before")
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prints = {name: fingerprint(name, Path(tmp) / name) for name in args.problems}
    prints = json.loads(json.dumps(prints))  # the same types as a file read back
    if args.write:
        args.write.write_text(json.dumps(prints, indent=1))
        print(f"wrote {args.write} ({', '.join(args.problems)})")
        return 0
    before = json.loads(args.compare.read_text())
    found = [d for name in args.problems for d in _differences(before[name], prints[name], name)]
    for line in found[:50]:
        print(line)
    print(
        f"{len(args.problems)} problem(s): "
        + ("identical" if not found else f"{len(found)} difference(s)")
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
