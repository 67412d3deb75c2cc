"""Problem files: TOML → frozen, validated dataclasses, and back (``config.resolved.toml``).

Each section is a dataclass whose fields carry their documentation and valid range in metadata, so
one generic validator checks every key, ``docs/reference.md`` is generated from the same
schema, and an error always names the file, the key and what was expected::

    problems/x.toml: [training] lr: expected a number > 0, got -1
    problems/x.toml: [trainig]: unknown section (did you mean [training]?)

Every mistake in a file is reported, one line each, not only the first.

One module (about 650 lines) on purpose: it is the schema, every section in one place, with the
one reader, validator and writer that work on it; the docs' reference is generated from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError, did_you_mean, gathered
from ..optim.bbi import BBIConfig


def option(default: Any, doc: str, *, choices=None, min=None, max=None, above=None, below=None,
           toml_key=None):  # fmt: skip
    """A config key: default, one-line meaning, and the constraints the validator enforces."""
    meta = {"doc": doc, "choices": choices, "min": min, "max": max, "above": above,
            "below": below, "toml_key": toml_key}  # fmt: skip
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ProblemSection:
    name: str = option("", "registered problem name, or 'file.py:ClassName' relative to this file")
    params: dict = option({}, "table of the problem's parameters (see `pinnsolve problems`)")


@dataclass(frozen=True)
class ModelSection:
    hidden: list = option([32, 32], "widths of the hidden layers", min=1)
    activation: str = option(
        "tanh",
        "activation function",
        choices=("tanh", "sin", "silu", "gelu", "softplus", "sigmoid"),
    )
    init: str = option(
        "xavier_normal", "weight initialisation", choices=("xavier_normal", "xavier_uniform")
    )
    fourier_features: int = option(
        0, "random Fourier features before the first layer: sin and cos of this many fixed "
        "Gaussian frequencies of the coordinates (0: off); for oscillating solutions", min=0,
    )  # fmt: skip
    fourier_scale: float = option(
        1.0, "standard deviation of those frequencies, in radians per unit of the coordinates "
        "rescaled to [-1, 1]",
        above=0,
    )  # fmt: skip
    radial: bool = option(
        False, "the network sees only the squared distance from the domain's centre: a radially "
        "symmetric ansatz, for radial solutions on a disk, an annulus or a ball (the domain must "
        "be invariant under rotations about its centre)",
    )  # fmt: skip
    derivatives: str = option(
        "auto",
        "derivative engine: forward jets or nested autograd (auto: forward on CUDA, autograd "
        "on CPU, where both measured about equally fast)",
        choices=("auto", "forward", "autograd"),
    )  # fmt: skip


@dataclass(frozen=True)
class SamplingSection:
    interior: int = option(
        0, "collocation points in the interior (0: chosen from the domain's dimension, time "
        "included: 128 on an interval, 2048 in 2D, 4096 in 3D)", min=0,
    )  # fmt: skip
    boundary: int = option(
        100, "points on each boundary part, not in all: a 2D box (4 parts) gets 4× this, a 3D box "
        "6×, a space-time domain one set per spatial part plus one for `initial`, a disk one "
        "(`circle`); an interval's end is one point",
        min=1,
    )  # fmt: skip
    method: str = option(
        "sobol", "how points are drawn", choices=("sobol", "halton", "uniform", "grid")
    )
    corner_layer: float = option(
        0.0, "weight the PDE residual by min(1, d / corner_layer) at interior points within this "
        "distance d of a corner (2D) or edge (3D) of a box, a polygon's vertex or a corner of a "
        "set operation, where the solution is singular and the residual cannot vanish; the "
        "weights enter training, the acceptance and the reported residual RMS (0: off)", min=0,
    )  # fmt: skip
    corner_share: float = option(
        0.0, "the fraction of the interior points drawn near the domain's corners (a polygon's "
        "vertices, a rectangle's corners, a set operation's), within corner_radius of them and "
        "denser toward them (density ∝ d^(-corner_grading)), where a re-entrant corner makes the "
        "solution singular; integrals keep the even points; domains without corners ignore it "
        "(0: off)", min=0, below=1,
    )  # fmt: skip
    corner_radius: float = option(
        0.25, "the radius around each corner within which the corner_share points lie", above=0
    )
    corner_grading: float = option(
        1.0, "the exponent a of their density ∝ d^(-a) in the distance d to the corner (0: even "
        "within corner_radius)", min=0, below=2,
    )  # fmt: skip


@dataclass(frozen=True)
class TrainingSection:
    optimizer: str = option("adam", "main optimizer", choices=("adam", "lbfgs", "bbi"))
    steps: int = option(2000, "maximum steps of the main optimizer", min=0)
    lr: float = option(1e-3, "learning rate of the main optimizer (BBI: the time step dt)",
                       above=0)  # fmt: skip
    loss_threshold: float = option(0.0, "stop once the loss is at or below this (0: off)", min=0)
    patience: int = option(
        0, "stop when the loss improved by less than min_improvement over this many steps (0: off)",
        min=0,
    )  # fmt: skip
    min_improvement: float = option(1e-4, "relative improvement that counts (with patience)", min=0)
    max_time_s: float = option(
        0.0, "deprecated: the limit bounds the whole run; write it as [run] max_time_s", min=0
    )
    log_every: int = option(50, "steps between history rows and progress updates", min=1)


@dataclass(frozen=True)
class PolishSection:
    method: str = option(
        "lbfgs", "second stage after the main optimizer",
        choices=("lbfgs", "gauss_newton", "lbfgs+gauss_newton", "none"),
    )  # fmt: skip
    dtype: str = option("float64", "precision of the polish (same: the run's dtype)",
                        choices=("float64", "same"))  # fmt: skip
    steps: int = option(1000, "maximum L-BFGS iterations", min=0)
    lr: float = option(1.0, "L-BFGS step scale (1 with the strong-Wolfe line search)", above=0)
    history: int = option(50, "L-BFGS memory (pairs of vectors kept)", min=1)
    tolerance_grad: float = option(
        1e-11, "stop when the largest gradient entry falls below this", min=0
    )
    tolerance_change: float = option(1e-14, "stop when loss or step change less than this", min=0)
    patience: int = option(
        200, "stop the L-BFGS polish once its loss changed by less than 1% (either way) over this "
        "many iterations (0: off); a rising loss goes on (the multipliers are still moving)",
        min=0,
    )  # fmt: skip
    gauss_newton_steps: int = option(100, "maximum Levenberg–Marquardt steps", min=0)
    damping: float = option(1e-3, "initial Levenberg–Marquardt damping μ (relative to the mean "
                            "diagonal of the Gauss–Newton matrix)", above=0)  # fmt: skip
    linear_solver: str = option(
        "auto", "how a Levenberg–Marquardt step is solved (dense: forms the Jacobian; cg: "
        "matrix-free conjugate gradients, for networks whose Jacobian is too large; auto: dense "
        "while the Jacobian's smaller side is at most 4000 and it fits in 2 GiB)",
        choices=("auto", "dense", "cg"),
    )  # fmt: skip
    cg_iterations: int = option(
        100, "most conjugate-gradient iterations per trial step (linear_solver cg)", min=1
    )
    tolerance_residual: float = option(
        1e-10, "Gauss–Newton stops when the residual RMS and the infeasibility are both at or "
        "below their tolerances (0: that test off)", min=0,
    )  # fmt: skip
    tolerance_infeasibility: float = option(
        1e-10, "largest constraint violation that counts as converged (with tolerance_residual)",
        min=0,
    )  # fmt: skip
    tolerance_step: float = option(1e-12, "Gauss–Newton stops when ‖Δθ‖/‖θ‖ is at or below this",
                                   min=0)  # fmt: skip
    constraint_damping: float = option(
        0.0, "MDMM damping δ from the polish on (its L-BFGS and Levenberg–Marquardt steps and the "
        "explorer): every condition's δ is raised to at least this. Second-order steps take a "
        "stiff δ that first-order ones cannot, and the multipliers then converge in fewer steps "
        "(0: keep [constraints] damping)", min=0,
    )  # fmt: skip


@dataclass(frozen=True)
class ExploreSection:
    strategy: str = option(
        "none", "search for more solutions after the first: none; deflation (Newton-type steps "
        "on the deflated residual from the same initialization); restarts (fresh random "
        "initializations, the baseline); bbi (bounce streams from the same initialization); "
        "continuation (follow the solution in `parameter` around folds, onto the branches met at "
        "bifurcations, and back); kick (BBI from each solution found with a large energy in a "
        "random direction); the name a user's strategy was registered under; or 'file.py:Class' "
        "for one in a file of your own (docs/strategies.md)",
    )  # fmt: skip
    attempts: int = option(8, "search trajectories after the main training", min=0)
    trajectories: int = option(
        1, "searches run side by side in one round, all from the state the round began with; "
        "bbi and kick searches of a round run as one batched ensemble; deflation searches "
        "advance in lockstep, each deflated by the current fields of the round's searches "
        "before it; under torchrun a round's searches are split over the ranks",
        min=1,
    )  # fmt: skip
    patience: int = option(
        3, "stop exploring after this many attempts in a row found nothing new (0: off)", min=0
    )
    search_steps: int = option(
        200, "Levenberg–Marquardt steps of one search (bbi: [training] steps)", min=1
    )
    search_patience: int = option(
        40, "end a search (or a candidate's polish) whose energy fell by less than 1e-3 "
        "(relative) over this many steps",
        min=0,
    )  # fmt: skip
    power: float = option(3.0, "deflation power p in M = Π (‖u − u_i‖^−p + σ)", above=0)
    shift: float = option(1.0, "deflation shift σ (keeps M away from 0 far from known solutions)",
                          min=0)  # fmt: skip
    symmetries: bool = option(
        True, "polish and judge the image of every solution found under each of the problem's "
        "symmetries (Problem.symmetries: u -> -u, mirror images), and of the images found, until "
        "no new one appears; false: searches only (e.g. to measure a strategy by itself)",
    )  # fmt: skip
    deflate_failures: bool = option(
        True, "also deflate where a failed search ended, so the next one goes elsewhere"
    )
    accept_residual: float = option(
        1e-3, "a candidate is a solution when its residual RMS on the collocation points is at "
        "or below this: absolute, in the equation's units, unless the problem declares `terms`; "
        "then relative to the RMS of the largest term where that exceeds 1",
        above=0,
    )  # fmt: skip
    accept_infeasibility: float = option(
        1e-3, "... and its largest constraint violation |g| (in the condition's units) is at or "
        "below this",
        above=0,
    )  # fmt: skip
    distance: float = option(
        1e-3, "two solutions are the same when ‖u_a − u_b‖ / max(‖u_a‖, ‖u_b‖, floor) ≤ this",
        above=0,
    )  # fmt: skip
    distance_floor: float = option(
        1e-2,
        "the floor of that denominator, an RMS in the fields' units: two solutions both smaller "
        "than this are the same when they differ by at most distance × floor",
        above=0,
    )
    init_scale: float = option(
        1.0, "restarts: scale of the fresh initial weights (> 1: wide initializations)", above=0
    )
    spread: float = option(
        0.05, "deflation with trajectories > 1: the round's searches after the first start from "
        "θ₀ plus Gaussian noise of this size, relative to the mean abs(θ₀)", above=0
    )  # fmt: skip
    start: str = option(
        "initial", "deflation: where a search starts: the run's initial network θ₀ (initial), or "
        "the solution found last plus `spread` noise (found; measured better on Bratu and "
        "Allen–Cahn in 2D: Bratu's second solution lies beside the first near the fold, and from "
        "θ₀ most Allen–Cahn searches slid back to u = 0)", choices=("initial", "found"),
    )  # fmt: skip
    kick_energy: float = option(
        1000.0, "kick: energy given at a solution, in units of V at the initialization", above=0
    )
    parameter: str = option("", "continuation: the problem parameter the path follows")
    parameter_span: float = option(
        10.0, "continuation: the path stays within λ* ± span·max(abs(λ*), 1) (and the parameter's "
        "declared range)",
        above=0,
    )  # fmt: skip
    arclength_step: float = option(
        0.05, "continuation: first arclength step, in (fields' RMS, λ/max(abs(λ*), 1))", above=0
    )
    path_steps: int = option(200, "continuation: path points one attempt may take", min=1)
    corrector_steps: int = option(
        10, "continuation: Levenberg–Marquardt steps a path point may take before the step is "
        "halved",
        min=1,
    )  # fmt: skip
    branch_switching: bool = option(
        True, "continuation: watch for bifurcations (an eigenvalue of the linearized problem "
        "crossing zero) and follow the branches met there as well"
    )  # fmt: skip


@dataclass(frozen=True)
class SweepSection:
    parameter: str = option(
        "", "a bifurcation diagram: the problem parameter swept (empty: no sweep); at each value "
        "every branch known at the previous one is continued, then [explore] searches for new "
        "ones (docs/sweep.md)",
    )  # fmt: skip
    values: tuple = option((), "the values, in order (or start, stop and count)")
    start: float = option(0.0, "first value of a range (with stop and count)")
    stop: float = option(0.0, "last value of a range")
    count: int = option(0, "values in the range, start and stop included (0: use values)", min=0)
    spacing: str = option("linear", "spacing of the range", choices=("linear", "log"))
    refine_folds: int = option(
        8, "where a branch ends between two values, bisections of that interval that locate its "
        "fold (0: off)", min=0,
    )  # fmt: skip


@dataclass(frozen=True)
class BBISection:
    delta_energy: float = option(0.0, "energy above the start's V (0: start at rest)", min=0)
    threshold0: int = option(1000, "steps between fixed bounces", min=1)
    n_fixed_bounces: int = option(1, "number of fixed bounces", min=0)
    threshold: int = option(3000, "bounce after this many steps without a new best (0: off)",
                            min=0)  # fmt: skip
    conserve_energy: bool = option(True, "rescale the momentum every step so E stays exact")
    eta: float = option(1.0, "potential g(V) = V^eta (eta > 1: slower near minima)", above=0)
    v0: float = option(0.0, "offset V = loss − v0 (lowered automatically if set too high)")
    v_stop: float = option(1e-12, "a trajectory with V at or below this is solved and stops",
                           min=0)  # fmt: skip

    def optimizer_config(self, lr: float) -> BBIConfig:
        """The optimizer's hyper-parameters with time step ``lr``."""
        values = dataclasses.asdict(self)
        values["threshold"] = values["threshold"] or None
        return BBIConfig(lr=lr, **values)


#: Keys a ``[constraints]`` table and each ``[constraints.<condition>]`` override may set.
CONSTRAINT_KEYS = ("method", "multipliers", "damping", "scale", "dual_lr", "weight")


@dataclass(frozen=True)
class ConstraintsSection:
    method: str = option(
        "mdmm", "how conditions are enforced: MDMM constraints or a plain penalty",
        choices=("mdmm", "penalty"),
    )  # fmt: skip
    multipliers: str = option(
        "pointwise", "MDMM multipliers: one per point, or one per condition (its signed mean)",
        choices=("pointwise", "scalar"),
    )  # fmt: skip
    damping: float = option(100.0, "MDMM damping δ (the rate of convergence, not the solution)",
                            above=0)  # fmt: skip
    scale: float = option(1.0, "MDMM scale s of each condition's term", above=0)
    dual_lr: float = option(1e-3, "MDMM multiplier ascent rate η_λ (first-order phases)",
                            above=0)  # fmt: skip
    weight: float = option(10.0, "penalty weight w (method = penalty): w · mean g²", above=0)
    overrides: dict = option(
        {}, "a table [constraints.<condition name>] with any of the keys above, for that condition",
        toml_key="<condition name>",
    )  # fmt: skip

    def for_condition(self, label: str) -> dict[str, Any]:
        """The settings of one condition: the defaults with its override applied."""
        base = {k: getattr(self, k) for k in CONSTRAINT_KEYS}
        return {**base, **self.overrides.get(label, {})}


#: Keys of one ``[[conditions]]`` entry, by kind (``kind`` itself is always required).
CONDITION_KEYS: dict[str, tuple[str, ...]] = {
    "dirichlet": ("part", "field", "name", "target"),
    "neumann": ("part", "field", "name", "target"),
    "robin": ("part", "field", "name", "target", "a", "b"),
    "periodic": ("part", "other", "field", "name", "derivative"),
    "initial": ("field", "name", "target", "derivative"),
    "integral": ("field", "name", "target"),
    "inequality": ("part", "field", "name", "target", "op", "quantity"),
}
_CONDITION_TYPES = {"part": str, "other": str, "field": str, "name": str, "op": str,
                    "quantity": str, "a": float, "b": float, "derivative": int}  # fmt: skip


@dataclass(frozen=True)
class RunSection:
    seed: int = option(0, "seed of the network initialisation and of the point sets", min=0)
    device: str = option("auto", "where to compute (auto: cuda when available)",
                         choices=("auto", "cpu", "cuda"))  # fmt: skip
    dtype: str = option("float64", "floating-point precision", choices=("float64", "float32"))
    max_time_s: float = option(
        0.0, "wall-time limit of the whole run in seconds (0: none); what the phase under way "
        "has reached is kept: the explorer's round is recorded and judged", min=0,
    )  # fmt: skip


@dataclass(frozen=True)
class OutputSection:
    dir: str = option("", "run folder (empty: outputs/<toml file stem>)")
    resolution: int = option(
        0, "evaluation-mesh points per axis (0: 1001 on a line, 101 per axis in 2-D and 3-D)",
        min=0,
    )  # fmt: skip
    time_slices: int = option(11, "time slices exported for time-dependent problems", min=2)
    plots: bool = option(True, "write PNG plots")
    checkpoint_every: int = option(1000, "steps between checkpoints (0: only at the end)", min=0)

    def __post_init__(self):
        if self.resolution == 1:
            raise ConfigError(
                "expected a value >= 2 (or 0: chosen from the domain), got 1",
                key="[output] resolution",
            )


@dataclass(frozen=True)
class DistributedSection:
    shard_collocation: bool = option(
        True, "under torchrun, the main training and the L-BFGS polish split the collocation "
        "points over the ranks (false: every rank computes them whole)",
    )  # fmt: skip
    timeout_s: float = option(
        1800.0, "under torchrun, the longest a rank waits for the others at a collective (a "
        "round of explorer searches included) before the run fails",
        above=0,
    )  # fmt: skip


SECTIONS: dict[str, type] = {
    "problem": ProblemSection,
    "model": ModelSection,
    "sampling": SamplingSection,
    "training": TrainingSection,
    "polish": PolishSection,
    "explore": ExploreSection,
    "sweep": SweepSection,
    "bbi": BBISection,
    "constraints": ConstraintsSection,
    "run": RunSection,
    "output": OutputSection,
    "distributed": DistributedSection,
}


@dataclass(frozen=True)
class Config:
    """A validated problem file. ``source`` is the TOML path (None when built in Python)."""

    problem: ProblemSection = field(default_factory=ProblemSection)
    model: ModelSection = field(default_factory=ModelSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    polish: PolishSection = field(default_factory=PolishSection)
    explore: ExploreSection = field(default_factory=ExploreSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    bbi: BBISection = field(default_factory=BBISection)
    constraints: ConstraintsSection = field(default_factory=ConstraintsSection)
    conditions: tuple[dict[str, Any], ...] = ()
    #: the ``[domain]`` table as written (checked against the problem when it is built)
    domain: dict[str, Any] = field(default_factory=dict)
    run: RunSection = field(default_factory=RunSection)
    output: OutputSection = field(default_factory=OutputSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)
    source: str | None = None
    #: one-line notes about the file (deprecated keys), for the caller to show
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Every key with its value (defaults filled in), as written to ``config.resolved.toml``."""
        data: dict[str, Any] = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        data["constraints"].update(data["constraints"].pop("overrides"))
        if self.conditions:
            data["conditions"] = [dict(c) for c in self.conditions]
        if self.domain:
            data["domain"] = dict(self.domain)
        return data

    def digest(self) -> str:
        """A short hash of the resolved configuration (identifies a run's settings)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys replaced, validated like the file: ``run={"seed": 3}``."""
        data = self.to_dict()
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return from_dict(data, source=self.source)


def load_config(path: str | Path) -> Config:
    """Read and validate a problem file."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=where) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", file=where) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", file=where) from None
    return from_dict(data, source=where)


def from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Validate a nested dict (as parsed from TOML) into a :class:`Config`. Every mistake found
    is reported (:class:`~pinnsolve.errors.ConfigErrors`, one line each), not only the first."""
    sections: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for name, values in data.items():
        try:
            sections[name] = _top_level(name, values)
        except ConfigError as err:
            errors.append(err)
    named = "problem" in sections and sections["problem"].name
    if not named and not any((e.key or "").startswith("[problem]") for e in errors):
        errors.append(ConfigError(
            "required: the problem to solve (a registered name or 'file.py:ClassName')",
            key="[problem] name",
        ))  # fmt: skip
    try:
        if errors:
            raise gathered(errors)
        notes = _moved_time_limit(data, sections)
        return Config(**sections, source=source, notes=notes)
    except ConfigError as err:
        raise err.located(file=source) from None


def _top_level(name: str, values: Any) -> Any:
    """One top-level table (a section, or the ``[[conditions]]`` array) validated."""
    if name == "conditions":
        return _conditions(values)
    if name == "domain":  # checked against the problem when it is built
        if not isinstance(values, dict) or not values:
            raise ConfigError("expected a table with a domain's keys", key="[domain]")
        return dict(values)
    if name not in SECTIONS:
        raise ConfigError(
            f"unknown section{did_you_mean(name, [*SECTIONS, 'conditions', 'domain'], '[{}]')}; "
            "sections are " + ", ".join(f"[{s}]" for s in SECTIONS) + ", [domain], [[conditions]]",
            key=f"[{name}]",
        )
    if not isinstance(values, dict):
        raise ConfigError("expected a table (a [section] header)", key=f"[{name}]")
    return _section(name, SECTIONS[name], values)


def _moved_time_limit(data: dict[str, Any], sections: dict[str, Any]) -> tuple[str, ...]:
    """``[training] max_time_s`` bounds the whole run, so it belongs to ``[run]``: the old key is
    still read, moved there, with a note (both set is an error)."""
    if not sections.get("training", TrainingSection()).max_time_s:
        return ()  # not set (or 0, as config.resolved.toml writes it)
    if sections.get("run", RunSection()).max_time_s:
        raise ConfigError(
            "set in [run] too; keep [run] max_time_s (the limit of the whole run)",
            key="[training] max_time_s",
        )
    limit = sections["training"].max_time_s
    sections["training"] = dataclasses.replace(sections["training"], max_time_s=0.0)
    sections["run"] = dataclasses.replace(sections.get("run", RunSection()), max_time_s=limit)
    return ("[training] max_time_s is deprecated: it bounds the whole run; write it as "
            "[run] max_time_s",)  # fmt: skip


def _section(name: str, cls: type, values: dict[str, Any]):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    checked: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for key, value in values.items():
        where = f"[{name}] {key}"
        try:
            if cls is ConstraintsSection and isinstance(value, dict):
                checked.setdefault("overrides", {})[key] = _constraint_override(key, value)
                continue
            if key not in fields or fields[key].metadata["toml_key"]:
                raise ConfigError(
                    f"unknown key{did_you_mean(key, fields)}; keys of [{name}]: "
                    + ", ".join(fields),
                    key=where,
                )
            checked[key] = _check_value(value, hints[key], fields[key].metadata, where)
        except ConfigError as err:
            errors.append(err)
    if errors:
        raise gathered(errors)
    return cls(**checked)


def _constraint_override(label: str, values: dict[str, Any]) -> dict[str, Any]:
    """One ``[constraints.<condition>]`` table (which conditions exist is checked at solve time)."""
    fields = {f.name: f for f in dataclasses.fields(ConstraintsSection)}
    hints = typing.get_type_hints(ConstraintsSection)
    out = {}
    for key, value in values.items():
        where = f"[constraints.{label}] {key}"
        if key not in CONSTRAINT_KEYS:
            raise ConfigError(
                f"unknown key{did_you_mean(key, CONSTRAINT_KEYS)}; a per-condition table takes "
                + ", ".join(CONSTRAINT_KEYS),
                key=where,
            )
        out[key] = _check_value(value, hints[key], fields[key].metadata, where)
    return out


def _conditions(entries: Any) -> tuple[dict[str, Any], ...]:
    """``[[conditions]]``: check each entry's kind, keys and value types (expressions and
    names are checked against the problem at solve time)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("expected an array of tables ([[conditions]] entries)", key="conditions")
    checked = []
    for i, entry in enumerate(entries, start=1):
        where = f"[[conditions]] #{i}"
        kind = entry.get("kind")
        if kind not in CONDITION_KEYS:
            raise ConfigError(
                f"expected kind = one of {', '.join(map(repr, CONDITION_KEYS))}, got {kind!r}"
                + did_you_mean(str(kind), CONDITION_KEYS),
                key=f"{where} kind",
            )
        allowed = CONDITION_KEYS[kind]
        for key, value in entry.items():
            if key == "kind":
                continue
            if key not in allowed:
                raise ConfigError(
                    f"unknown key for a {kind} condition{did_you_mean(key, allowed)}; it takes "
                    + ", ".join(allowed),
                    key=f"{where} {key}",
                )
            if key == "target":
                ok = isinstance(value, int | float | str) and not isinstance(value, bool)
                if not ok:
                    raise ConfigError(
                        f"expected a number or an expression string, got {value!r}",
                        key=f"{where} target",
                    )
                continue
            meta = {"choices": None, "min": None, "max": None, "above": None, "below": None}
            if key == "op":
                meta["choices"] = (">=", "<=")
            if key == "derivative":
                meta.update(min=0, max=1)
            _check_value(value, _CONDITION_TYPES[key], meta, f"{where} {key}")
        if kind == "periodic" and not {"part", "other"} <= set(entry):
            raise ConfigError("a periodic condition needs 'part' and 'other'", key=where)
        if kind in ("dirichlet", "neumann", "robin") and "part" not in entry:
            raise ConfigError(f"a {kind} condition needs 'part'", key=where)
        checked.append(dict(entry))
    return tuple(checked)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list of integers", tuple: "a list of numbers",
               dict: "a table"}  # fmt: skip


def _check_value(value: Any, kind: type, meta: types.MappingProxyType, where: str) -> Any:
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        list: isinstance(value, list)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        tuple: isinstance(value, list | tuple)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
        dict: isinstance(value, dict),
    }[kind]
    if not ok:
        raise ConfigError(f"expected {_TYPE_NAMES[kind]}, got {value!r}", key=where)
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {value}", key=where)
    if kind is tuple:
        value = tuple(float(v) for v in value)
        if not all(math.isfinite(v) for v in value):
            raise ConfigError(f"expected finite numbers, got {list(value)}", key=where)
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(
            f"expected one of {', '.join(map(repr, meta['choices']))}, got {value!r}"
            + did_you_mean(str(value), meta["choices"]),
            key=where,
        )
    items = value if kind is list else [value] if kind in (int, float) else []
    for v in items:
        if meta["min"] is not None and v < meta["min"]:
            raise ConfigError(f"expected a value >= {meta['min']}, got {v}", key=where)
        if meta["max"] is not None and v > meta["max"]:
            raise ConfigError(f"expected a value <= {meta['max']}, got {v}", key=where)
        if meta["above"] is not None and v <= meta["above"]:
            raise ConfigError(f"expected a value > {meta['above']}, got {v}", key=where)
        if meta["below"] is not None and v >= meta["below"]:
            raise ConfigError(f"expected a value < {meta['below']}, got {v}", key=where)
    if kind is list and not value:
        raise ConfigError("expected at least one entry", key=where)
    return value


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """Sections (with nested tables) as TOML text that ``tomllib`` reads back."""
    lines: list[str] = []

    def emit(header: str, table: dict[str, Any]) -> None:
        if header == "conditions":  # an array of tables
            for entry in table:
                lines.append("[[conditions]]")
                lines.extend(f"{k} = {toml_value(v)}" for k, v in entry.items())
                lines.append("")
            return
        lines.append(f"[{header}]")
        nested = []
        for key, value in table.items():
            if isinstance(value, dict):
                nested.append((f"{header}.{key}", value))
            else:
                lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
        for sub_header, sub in nested:
            emit(sub_header, sub)

    for name, table in data.items():
        emit(name, table)
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """One value as TOML writes it (``config.resolved.toml``, the docs' reference)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


class OptionDoc(NamedTuple):
    """One key of the schema as the docs show it: where it is, its default, its one-line meaning
    and the values the validator accepts."""

    section: str
    key: str
    default: Any
    doc: str
    choices: tuple[str, ...] | None
    min: float | None
    max: float | None
    above: float | None
    below: float | None = None


def option_docs() -> list[OptionDoc]:
    """Every key of every section, in schema order: ``docs/reference.md`` is generated from this
    list (:mod:`pinnsolve.io.reference`)."""
    rows = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            m = f.metadata
            rows.append(OptionDoc(name, m["toml_key"] or f.name, default, m["doc"], m["choices"],
                                  m["min"], m["max"], m["above"], m["below"]))  # fmt: skip
    return rows
