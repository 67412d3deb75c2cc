"""The ``pinnsolve`` command: thin glue from arguments to :func:`pinnsolve.solve`.

User errors (:class:`~pinnsolve.errors.PinnsolveError`) print one line on stderr and exit with code
2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import PinnsolveError
from .io.config import load_config
from .io.progress import Progress
from .io.rundir import CLI_TERMS, RunFolderTaken
from .problem.registry import registered

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """Turns user errors, and click's own usage errors, into one line and exit code 2 (unless
    --debug)."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as err:  # a bare `pinnsolve`
            click.echo(err.ctx.get_help())
            sys.exit(0)
        except click.UsageError as err:
            where = f"{err.ctx.command_path}: " if err.ctx else ""
            click.echo(f"error: {where}{' '.join(err.format_message().split())}", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as err:
            click.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PinnsolveError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            for line in str(err).splitlines():  # several mistakes: one line each
                click.echo(f"error: {line}", err=True)
            sys.exit(EXIT_USAGE)


@click.group(cls=_Group)
@click.version_option(package_name="pinnsolve")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """pinnsolve: physics-informed PDE solving that looks for all the solutions."""
    ctx.obj = {"debug": debug}


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run folder (default: outputs/<stem>)."
)
@click.option("--force", is_flag=True, help="Overwrite an earlier run in the run folder.")
@click.option("--resume", is_flag=True, help="Continue an unfinished run from its checkpoint.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Override [run] device.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help="Override [run] dtype.")
@click.option("--seed", type=click.IntRange(min=0), help="Override [run] seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option(
    "--sweep",
    "sweep_spec",
    metavar="NAME=START:STOP:COUNT[:log]|NAME=V1,V2,...",
    help="A bifurcation diagram over this parameter (sets [sweep]; docs/sweep.md).",
)
def solve(file, out, force, resume, device, dtype, seed, quiet, sweep_spec) -> None:
    """Train on FILE (a problem TOML), export every solution, print a summary.

    Ctrl-C (or SIGTERM) stops at the next step, writes a checkpoint and exports what was found;
    `--resume` continues from there.
    """
    from .solver import solve as run_solve

    if force and resume:
        raise PinnsolveError("--force starts over and --resume continues: choose one")
    config = load_config(file)
    overrides = {
        k: v for k, v in (("device", device), ("dtype", dtype), ("seed", seed)) if v is not None
    }
    if overrides:
        config = config.with_overrides(run=overrides)
    progress = Progress(quiet=quiet)
    try:
        if sweep_spec is not None or config.sweep.parameter:
            _sweep(file, config, sweep_spec, out, force, resume, progress, quiet)
            return
        result = run_solve(file, config, out=out, force=force, resume=resume, progress=progress)
    except RunFolderTaken as err:  # say it in flags, not keywords
        raise err.in_terms(CLI_TERMS) from None
    if not quiet and result.run_dir is not None:  # under torchrun, rank 0 reports
        _print_summary(result)
    if result.status == "interrupted":
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "finished":
        sys.exit(1)


def _sweep(file, config, spec, out, force, resume, progress, quiet) -> None:
    """``solve`` with ``[sweep]`` (or ``--sweep``): the bifurcation diagram."""
    from .sweep import parse_sweep_option, sweep

    if spec is not None:
        config = config.with_overrides(sweep=parse_sweep_option(spec))
    diagram = sweep(file, config, out=out, force=force, resume=resume, progress=progress)
    if not quiet:
        counts = ", ".join(f"{v:g}: {n}" for v, n in zip(diagram.values, diagram.counts(),
                                                          strict=True))  # fmt: skip
        click.echo(f"{diagram.status}: {len(diagram.branches())} branch(es) over "
                   f"{len(diagram.values)} value(s) of {diagram.parameter} (solutions per value: "
                   f"{counts})")  # fmt: skip
        for end in diagram.ends:
            click.echo(
                f"  branch {end['branch']} ends at {diagram.parameter} ≈ "
                f"{end['estimate']:.6g} (found at {end['found']:.6g}, not at {end['missing']:.6g})"
            )
        click.echo(f"run folder: {diagram.run_dir}")
    if diagram.status == "interrupted":
        sys.exit(EXIT_INTERRUPTED)


def _print_summary(result) -> None:
    s = result.summary
    click.echo(
        f"{s['status']}: {s['problem']} on {s['device']} ({s['dtype']}), {s['steps']} steps in "
        f"{s['wall_time_s']:.1f} s; stopped: {s['stop_reason']}"
    )
    for sol in result.solutions:
        err = "" if sol.rel_l2_error is None else f"  rel L2 {sol.rel_l2_error:.2e}"
        click.echo(
            f"  {sol.name}{_found_by(sol.provenance)}: residual rms {sol.residual_rms:.2e} "
            f"(evaluation mesh)  max |bc| {sol.max_infeasibility:.2e}{err}  -> "
            f"{result.run_dir / sol.file}"
        )
    for attempt in s.get("explore", {}).get("attempts", []):
        if attempt.get("duplicate_of") is not None:
            click.echo(
                f"  attempt {attempt['attempt']} ({attempt['strategy']}): a duplicate of "
                f"{attempt['duplicate_of']}"
            )
    for rejected in s.get("rejected", []):
        err = rejected["rel_l2_error"]
        err = "" if err is None else f"  rel L2 {err:.2e}"
        click.echo(
            f"  {rejected['name']} (rejected: {rejected['provenance']['why']}){err}  -> "
            f"{result.run_dir / rejected['file']}"
        )
    pvd = result.run_dir / "solutions.pvd"
    click.echo(f"run folder: {result.run_dir}" + (f" (ParaView: {pvd})" if pvd.exists() else ""))


def _found_by(provenance: dict | None) -> str:
    """`` (deflation, attempt 1)``: where the explorer found a solution (empty without one)."""
    if not provenance:
        return ""
    return f" ({provenance['strategy']}, attempt {provenance['attempt']})"


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def check(file) -> None:
    """Validate FILE (config keys, problem, parameters) without running it."""
    from .build import validate
    from .sweep import check_sweep

    config = load_config(file)
    problem, _ = validate(config)
    swept = check_sweep(config, problem)
    click.echo(f"ok: {file} ({problem.label()}, params {dict(problem.p)}{swept})")


@main.command()
def problems() -> None:
    """List the registered problems with their fields, parameters and defaults."""
    for name, cls in registered().items():
        click.echo(f"{name}: {cls.description()}")
        click.echo(f"    domain: {cls.domain!r}; fields: {', '.join(cls.fields)}")
        click.echo(f"    boundary parts: {', '.join(cls.domain.parts)}")
        for key, spec in cls.params.items():
            doc = f" — {spec.doc}" if spec.doc else ""
            click.echo(f"    {key} = {spec.default:g}  {spec.range_text()}{doc}")
