"""From a config to the pieces of a run (the problem, its extra conditions, the constraints, the
network), and :func:`validate`: every check that can run before training, which is what
``pinnsolve check`` runs and what ``solve`` runs first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .ansatz import build_mlp, radial_image_error
from .constraints import ConstraintSet
from .errors import ConfigError, PinnsolveError, did_you_mean
from .explore.strategies import strategies, strategy_named
from .io.config import Config, ModelSection
from .objective import PinnObjective
from .optim.gauss_newton import GaussNewtonError, StackedResiduals
from .problem.base import Problem
from .problem.conditions import Condition, condition_from_table
from .problem.domain_table import domain_from_table
from .problem.registry import get_problem
from .problem.symmetry import rotations_about


def config_dir(config: Config) -> Path:
    """Where the file names of a config are relative to: its file's folder (else the current
    one)."""
    return Path(config.source).parent if config.source else Path.cwd()


def build_problem(config: Config) -> Problem:
    """Instantiate the problem a config names, with its parameters checked, on the file's
    ``[domain]`` when it has one."""
    try:
        cls = get_problem(config.problem.name, config_dir(config))
        problem = cls(**config.problem.params)
        if config.domain:
            space = problem.spatial_coords
            problem.use_domain(domain_from_table(config.domain, config_dir(config), space))
        return problem
    except ConfigError as err:
        raise err.located(file=config.source) from None
    except PinnsolveError as err:  # the class is declared wrongly, or keeps its own domain
        key = "[domain]" if config.domain else "[problem] name"
        raise ConfigError(str(err), file=config.source, key=key) from None


def validate(config: Config) -> tuple[Problem, list[Condition]]:
    """Everything that can be checked without training: the problem, its parameters, its own
    conditions, the ``[[conditions]]`` of the file and the ``[constraints.<name>]`` tables.
    ``pinnsolve check`` runs exactly this; ``solve`` runs it first."""
    problem = build_problem(config)
    try:
        own = problem.checked_conditions()
    except PinnsolveError as err:
        raise ConfigError(str(err), file=config.source, key="[problem] name") from None
    extra = extra_conditions(config, problem)
    labels = [c.label() for c, _ in own]
    for i, cond in enumerate(extra, start=1):
        try:
            problem.checked_conditions([cond])
        except PinnsolveError as err:
            raise ConfigError(str(err), file=config.source, key=f"[[conditions]] #{i}") from None
        if cond.label() in labels:
            raise ConfigError(
                f"a condition named {cond.label()!r} exists already; give this one a name",
                file=config.source, key=f"[[conditions]] #{i}",
            )  # fmt: skip
        labels.append(cond.label())
    for label in config.constraints.overrides:
        if label not in labels:
            raise ConfigError(
                f"no condition named {label!r}{did_you_mean(label, labels)}; "
                f"the conditions are: {', '.join(labels) or 'none'}",
                file=config.source, key=f"[constraints.{label}]",
            )  # fmt: skip
    if config.model.radial:
        _check_radial(config, problem)
    if "gauss_newton" in config.polish.method or config.explore.strategy != "none":
        _check_gauss_newton(config, problem, extra)
    if config.explore.strategy != "none":
        _check_strategy(config, problem)
    return problem, extra


def build_network(
    m: ModelSection,
    problem: Problem,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    hidden: list[int] | None = None,
) -> torch.nn.Module:
    """The ``[model]`` section's network for ``problem`` (``hidden`` overrides its widths)."""
    geom = problem.geometry()
    return build_mlp(geom.dim, len(problem.fields), m.hidden if hidden is None else hidden,
                     m.activation, m.init, geom.bounds(), seed, dtype, device,
                     m.fourier_features, m.fourier_scale, m.radial)  # fmt: skip


def _check_radial(config: Config, problem: Problem) -> None:
    """A radial network suits a domain in space that rotations about its centre map onto
    itself; with the explorer's symmetries on, each must keep the distance from that centre
    (a radial network has no other images)."""
    if problem.spatial_coords != problem.geometry().coords:
        raise ConfigError(
            f"a radial network depends on the distance in space only; this problem has the "
            f"coordinates {', '.join(problem.geometry().coords)}",
            file=config.source, key="[model] radial",
        )  # fmt: skip
    geometry = problem.geometry()
    lo, hi = geometry.bounds()
    center = (np.asarray(lo, dtype=float) + np.asarray(hi, dtype=float)) / 2
    try:
        for rotation in rotations_about(center):
            rotation.check(geometry, problem.fields, "the domain")
    except PinnsolveError as err:
        raise ConfigError(f"{err}: it is not symmetric under rotations about its centre "
                          f"{center.round(6).tolist()}", file=config.source,
                          key="[model] radial") from None  # fmt: skip
    if config.explore.strategy == "none" or not config.explore.symmetries:
        return
    for symmetry in problem.symmetries(problem.p):
        a, c = symmetry.point_map(len(center))
        why = radial_image_error(a, a @ center + c - center)
        if why:
            raise ConfigError(f"symmetry {symmetry.name!r}: {why}; set symmetries = "
                              f"false", file=config.source,
                              key="[explore] symmetries")  # fmt: skip


def _check_gauss_newton(config: Config, problem: Problem, extra: list[Condition]) -> None:
    """Gauss–Newton needs the residual as a function of forward jets (derivatives up to second
    order): try it on a few points with a tiny network before any training."""
    f64, cpu = torch.float64, torch.device("cpu")
    objective = PinnObjective.sampled(problem, 4, 2, "uniform", 0, f64, cpu, extra)
    constraints = build_constraints(config, objective, f64, cpu)
    model = build_network(config.model, problem, 0, f64, cpu, hidden=[4])
    try:
        StackedResiduals(objective, constraints, model)
    except GaussNewtonError as err:
        raise ConfigError(
            f"Levenberg–Marquardt (the Gauss–Newton polish and the explorer) cannot run on "
            f"this problem: {err}",
            file=config.source,
            key="[explore] strategy" if config.explore.strategy != "none" else "[polish] method",
        ) from None  # fmt: skip


def _check_strategy(config: Config, problem: Problem) -> None:
    """The ``[explore]`` strategy exists, can run on ``problem``, and can share a round when
    ``trajectories`` asks for that."""
    try:
        strategy = strategy_named(config.explore.strategy, config_dir(config))
    except ConfigError as err:
        raise err.located(file=config.source) from None
    strategy.check(config, problem)
    if config.explore.symmetries:
        try:
            problem.checked_symmetries()
        except PinnsolveError as err:
            raise ConfigError(f"{err}; set symmetries = false to explore without them",
                              file=config.source, key="[explore] symmetries") from None  # fmt: skip
    if config.explore.trajectories > 1 and strategy.sequential:
        batched = [name for name, s in strategies().items() if not s.sequential]
        raise ConfigError(
            f"{config.explore.strategy} {strategy.sequential}; side by side searches suit "
            f"{', '.join(batched)}: set trajectories = 1 or change the strategy",
            file=config.source, key="[explore] trajectories",
        )  # fmt: skip


def extra_conditions(config: Config, problem: Problem) -> list[Condition]:
    """The ``[[conditions]]`` of a problem file, with their expressions parsed."""
    file = f"{config.source}: " if config.source else ""
    coords = problem.geometry().coords
    return [
        condition_from_table(
            entry, coords, problem.fields, problem.p, f"{file}[[conditions]] #{i}"
        )  # fmt: skip
        for i, entry in enumerate(config.conditions, start=1)
    ]


def build_constraints(config: Config, objective: PinnObjective, dtype, device) -> ConstraintSet:
    """MDMM constraints (or penalties) for the objective's conditions, as the config sets them."""
    section = config.constraints
    specs = objective.constraint_specs(section.for_condition)
    return ConstraintSet(specs, dual_lr=section.dual_lr, device=device, dtype=dtype)


def default_run_dir(config: Config, problem: Problem) -> Path:
    """``outputs/<the TOML file's stem>`` (the problem's name without a file)."""
    stem = Path(config.source).stem if config.source else problem.label()
    return Path("outputs") / stem
