"""Every malformed problem file or command line: one ``error: `` line, exit code 2, no traceback.

Table-driven over the CLI (``check`` and ``solve`` through click's runner). Each case writes its
files into ``tmp_path``, runs one command, and checks that the whole output is exactly one
non-empty line on stderr, that it starts with ``error: ``, that it names what the user has to fix
(the file, the key, what was expected), and that no traceback leaked out.

Placeholders in a case: ``{tmp}`` is ``tmp_path`` (in TOML text, arguments and fragments), ``{f}``
the problem-file argument as passed (in fragments). ``solve`` always gets ``--out {tmp}/out``
unless the case gives its own ``--out``; files that would train are tiny (a couple of steps, no
polish, no plots), so the whole file runs in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pinnsolve.cli import main

BOTH = ("check", "solve")
SOLVE = ("solve",)

# Defaults that keep a solve tiny; a case's own section of the same name replaces the default.
_TINY = {
    "sampling": "interior = 16\nboundary = 4",
    "training": "steps = 2\nlog_every = 1",
    "polish": 'method = "none"',
    "output": "plots = false\nresolution = 5\ntime_slices = 2",
}


def toml(extra: str = "", problem: str = "bratu1d") -> str:
    """A problem file for ``problem`` with ``extra`` TOML and tiny defaults for untouched
    sections."""
    parts = [f'[problem]\nname = "{problem}"', extra.strip()]
    for section, body in _TINY.items():
        if f"[{section}]" not in extra:
            parts.append(f"[{section}]\n{body}")
    return "\n".join(p for p in parts if p) + "\n"


# A user problem file with one well-formed problem (and a few things that are not problems).
GOOD_PY = '''\
from pinnsolve import Dirichlet, Interval, Problem


class Plain(Problem):
    """u'' = 0 on (0, 1), u = 0 at both ends."""

    domain = Interval(0.0, 1.0)
    fields = ("u",)

    def residual(self, x, f, p):
        return f.d("u", "x", "x")

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]


class NotAProblem:
    pass


not_a_class = 3
'''

NO_DOMAIN_PY = '''\
from pinnsolve import Problem


class NoDomain(Problem):
    """A problem that forgot its domain."""

    def residual(self, x, f, p):
        return f.u
'''


def _finished_run(tmp: Path) -> None:
    """A real (tiny) run into {tmp}/out, so a second solve meets a finished run folder."""
    f = tmp / "first.toml"
    f.write_text(toml(), encoding="utf-8")
    result = CliRunner().invoke(main, ["solve", str(f), "--out", str(tmp / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp / "out" / "status.json").read_text())["status"] == "finished"


def _interrupted_run(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "status.json").write_text('{"status": "interrupted", "time": 0}')


def _regular_file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder\n")


def case(
    case_id: str,
    text: str | bytes | None,
    *expect: str,
    commands: tuple[str, ...] = BOTH,
    files: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    path: str = "p.toml",
    setup: Callable[[Path], None] | None = None,
    skipif_cuda: bool = False,
    default_out: bool = True,
) -> list:
    """One malformed input, as one pytest param per command it is run with.

    ``text`` is written to ``path`` (bytes as they are; None: nothing is written), ``files`` are
    written next to it, ``expect`` are fragments the error line must contain.
    ``default_out=False``: ``solve`` gets no ``--out``, so the file's ``[output] dir`` chooses the
    run folder.
    """
    spec = {"text": text, "expect": expect, "files": files or {}, "args": args, "path": path,
            "setup": setup, "default_out": default_out}  # fmt: skip
    params = []
    for command in commands:
        marks = []
        if skipif_cuda:
            marks.append(pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"))
        params.append(pytest.param(command, spec, id=f"{command}-{case_id}", marks=marks))
    return params


# The table: one entry per malformed input, compact on purpose (one or two lines per case).
# fmt: off
CASES = [
    # --- reading the file --------------------------------------------------------------------
    *case("missing-file", None, "{f}", "file not found", path="nope.toml", commands=SOLVE),
    *case("missing-folder", None, "{f}", "file not found", path="no/such/dir/p.toml"),
    *case("directory-as-file", None, "{f}", "cannot read", path="adir",
          setup=lambda tmp: (tmp / "adir").mkdir()),
    *case("not-utf8-binary", b"\xff\xfe[\x00p\x00]\x00", "{f}", "cannot read", "utf-8"),
    *case("not-utf8-latin1", 'name = "café"\n'.encode("latin-1"), "{f}", "cannot read", "utf-8"),
    *case("empty-file", "", "{f}", "[problem] name", "required"),
    # --- TOML syntax (with the line number) ----------------------------------------------------
    *case("toml-unclosed-string", '[problem]\nname = "bratu1d\n', "{f}", "invalid TOML",
          "line 2"),
    *case("toml-duplicate-key", '[problem]\nname = "bratu1d"\nname = "poisson2d"\n', "{f}",
          "invalid TOML", "line 3"),
    *case("toml-table-twice", toml("[training]\nsteps = 2\n[training]\nlr = 0.1"), "{f}",
          "invalid TOML", "line 5"),
    *case("toml-bad-value", toml("[training]\nsteps = 2_"), "{f}", "invalid TOML", "line 4"),
    # --- sections and keys -------------------------------------------------------------------
    *case("unknown-section", toml("[polsh]\nsteps = 3"), "{f}", "[polsh]", "unknown section",
          "did you mean [polish]?"),
    *case("singular-conditions", toml('[condition]\nkind = "dirichlet"'), "{f}", "[condition]",
          "did you mean [conditions]?"),
    *case("top-level-key", "steps = 10\n" + toml(), "{f}", "[steps]", "unknown section"),
    *case("section-not-table", 'model = "big"\n' + toml(), "{f}", "[model]", "expected a table"),
    *case("unknown-key-problem", '[problem]\nname = "bratu1d"\nparms = 1\n', "{f}",
          "[problem] parms", "did you mean 'params'?"),
    *case("unknown-key-bbi", toml("[bbi]\ntreshold = 10"), "{f}", "[bbi] treshold",
          "did you mean 'threshold'?"),
    *case("unknown-key-output", toml("[output]\nresolutoin = 11"), "{f}", "[output] resolutoin",
          "did you mean 'resolution'?"),
    *case("unknown-key-model-no-match", toml("[model]\nlayers = 3"), "{f}", "[model] layers",
          "unknown key", "keys of [model]: hidden, activation, init"),
    *case("unknown-key-constraints-overrides", toml("[constraints]\noverrides = 1"), "{f}",
          "[constraints] overrides", "unknown key"),
    # --- [problem] ---------------------------------------------------------------------------
    *case("problem-name-empty", '[problem]\nname = ""\n', "{f}", "[problem] name", "required"),
    *case("problem-section-without-name", "[problem.params]\nlam = 1.0\n", "{f}",
          "[problem] name", "required"),
    *case("unknown-problem", toml(problem="poisson3d"), "{f}", "[problem] name",
          "unknown problem 'poisson3d'", "did you mean 'poisson2d'?"),
    *case("problem-file-missing", toml(problem="nowhere/pdes.py:Plain"), "{f}", "[problem] name",
          "pdes.py", "does not exist"),
    *case("problem-class-missing", toml(problem="pdes.py:Plian"), "{f}", "[problem] name",
          "has no class 'Plian'", "did you mean 'Plain'?", files={"pdes.py": GOOD_PY}),
    *case("problem-py-raises", toml(problem="pdes.py:Plain"), "{f}", "[problem] name",
          "importing pdes.py failed: RuntimeError: boom",
          files={"pdes.py": "raise RuntimeError('boom')\n"}),
    *case("problem-py-syntax-error", toml(problem="pdes.py:Plain"), "{f}", "[problem] name",
          "importing pdes.py failed: SyntaxError",
          files={"pdes.py": "def broken(:\n    pass\n"}),
    *case("problem-py-missing-import", toml(problem="pdes.py:Plain"), "{f}", "[problem] name",
          "ModuleNotFoundError", "no_such_module_xyz",
          files={"pdes.py": "import no_such_module_xyz\n"}),
    *case("problem-py-raises-multiline", toml(problem="pdes.py:Plain"), "{f}", "[problem] name",
          "importing pdes.py failed: ValueError: first line",
          files={"pdes.py": "raise ValueError('first line\\nsecond line')\n"}),
    *case("class-not-a-problem", toml(problem="pdes.py:NotAProblem"), "{f}", "[problem] name",
          "'NotAProblem' in pdes.py is not a Problem subclass", files={"pdes.py": GOOD_PY}),
    *case("attribute-not-a-class", toml(problem="pdes.py:not_a_class"), "{f}", "[problem] name",
          "is not a Problem subclass", files={"pdes.py": GOOD_PY}),
    *case("problem-base-class", toml(problem="pdes.py:Problem"), "{f}", "[problem] name",
          "is not a Problem subclass", files={"pdes.py": GOOD_PY}),
    *case("problem-without-domain", toml(problem="pdes.py:NoDomain"), "{f}", "[problem] name",
          "'domain' must be a Geometry", files={"pdes.py": NO_DOMAIN_PY}),
    # --- [problem.params] --------------------------------------------------------------------
    *case("param-undeclared-none-declared", toml("[problem.params]\nk = 1", "pdes.py:Plain"),
          "{f}", "[problem.params] k", "has no parameter 'k'", "its parameters are: none",
          files={"pdes.py": GOOD_PY}),
    *case("param-undeclared-typo", toml("[problem.params]\nLam = 1"), "{f}",
          "[problem.params] Lam", "did you mean 'lam'?"),
    *case("param-bool", toml("[problem.params]\nlam = true"), "{f}", "[problem.params] lam",
          "expected a number, got True"),
    *case("param-array", toml("[problem.params]\nlam = [1.0]"), "{f}", "[problem.params] lam",
          "expected a number"),
    *case("param-out-of-range", toml("[problem.params]\nlam = -1"), "{f}",
          "[problem.params] lam", "expected a number in [0, inf], got -1"),
    *case("param-nan", toml("[problem.params]\nlam = nan"), "{f}", "[problem.params] lam",
          "expected a number in [0, inf], got nan"),
    *case("params-not-a-table", '[problem]\nname = "bratu1d"\nparams = [1]\n', "{f}",
          "[problem] params", "expected a table"),
    # --- [model] -----------------------------------------------------------------------------
    *case("model-hidden-int", toml("[model]\nhidden = 32"), "{f}", "[model] hidden",
          "expected a list of integers, got 32"),
    *case("model-hidden-bool", toml("[model]\nhidden = [true]"), "{f}", "[model] hidden",
          "expected a list of integers"),
    *case("model-hidden-negative", toml("[model]\nhidden = [8, -4]"), "{f}", "[model] hidden",
          "expected a value >= 1, got -4"),
    *case("model-init", toml('[model]\ninit = "xavier"'), "{f}", "[model] init",
          "expected one of 'xavier_normal', 'xavier_uniform', got 'xavier'"),
    *case("model-activation-type", toml("[model]\nactivation = 1"), "{f}", "[model] activation",
          "expected a string, got 1"),
    # --- [sampling] --------------------------------------------------------------------------
    *case("sampling-boundary-zero", toml("[sampling]\nboundary = 0"), "{f}",
          "[sampling] boundary", "expected a value >= 1, got 0"),
    *case("sampling-interior-string", toml('[sampling]\ninterior = "1000"'), "{f}",
          "[sampling] interior", "expected an integer, got '1000'"),
    *case("sampling-interior-float", toml("[sampling]\ninterior = 1e3"), "{f}",
          "[sampling] interior", "expected an integer, got 1000.0"),
    *case("sampling-method", toml('[sampling]\nmethod = "random"'), "{f}", "[sampling] method",
          "expected one of 'sobol', 'halton', 'uniform', 'grid'"),
    # --- [training] --------------------------------------------------------------------------
    *case("training-optimizer", toml('[training]\noptimizer = "sgd"'), "{f}",
          "[training] optimizer", "expected one of 'adam', 'lbfgs', 'bbi', got 'sgd'"),
    *case("training-log-every-zero", toml("[training]\nlog_every = 0"), "{f}",
          "[training] log_every", "expected a value >= 1, got 0"),
    *case("training-patience-negative", toml("[training]\npatience = -5"), "{f}",
          "[training] patience", "expected a value >= 0, got -5"),
    *case("training-max-time-negative", toml("[training]\nmax_time_s = -1.5"), "{f}",
          "[training] max_time_s", "expected a value >= 0, got -1.5"),
    *case("training-loss-threshold-nan", toml("[training]\nloss_threshold = nan"), "{f}",
          "[training] loss_threshold", "expected a finite number, got nan"),
    *case("training-lr-string", toml('[training]\nlr = "1e-3"'), "{f}", "[training] lr",
          "expected a number, got '1e-3'"),
    # --- [polish] ----------------------------------------------------------------------------
    *case("polish-method", toml('[polish]\nmethod = "adam"'), "{f}", "[polish] method",
          "expected one of 'lbfgs', 'gauss_newton', 'lbfgs+gauss_newton', 'none', got 'adam'"),
    *case("polish-history-zero", toml("[polish]\nhistory = 0"), "{f}", "[polish] history",
          "expected a value >= 1, got 0"),
    *case("polish-lr-zero", toml("[polish]\nlr = 0.0"), "{f}", "[polish] lr",
          "expected a value > 0, got 0.0"),
    *case("polish-tolerance-negative", toml("[polish]\ntolerance_grad = -1e-9"), "{f}",
          "[polish] tolerance_grad", "expected a value >= 0"),
    *case("polish-steps-float", toml("[polish]\nsteps = 10.0"), "{f}", "[polish] steps",
          "expected an integer, got 10.0"),
    # --- [bbi] -------------------------------------------------------------------------------
    *case("bbi-eta-zero", toml("[bbi]\neta = 0"), "{f}", "[bbi] eta",
          "expected a value > 0, got 0.0"),
    *case("bbi-conserve-energy-int", toml("[bbi]\nconserve_energy = 1"), "{f}",
          "[bbi] conserve_energy", "expected true or false, got 1"),
    *case("bbi-threshold0-zero", toml("[bbi]\nthreshold0 = 0"), "{f}", "[bbi] threshold0",
          "expected a value >= 1, got 0"),
    *case("bbi-v-stop-negative", toml("[bbi]\nv_stop = -1e-3"), "{f}", "[bbi] v_stop",
          "expected a value >= 0"),
    *case("bbi-v0-string", toml('[bbi]\nv0 = "low"'), "{f}", "[bbi] v0",
          "expected a number, got 'low'"),
    *case("bbi-v0-inf", toml("[bbi]\nv0 = -inf"), "{f}", "[bbi] v0",
          "expected a finite number, got -inf"),
    # --- [constraints] -----------------------------------------------------------------------
    *case("constraints-method", toml('[constraints]\nmethod = "lagrange"'), "{f}",
          "[constraints] method", "expected one of 'mdmm', 'penalty', got 'lagrange'"),
    *case("constraints-multipliers", toml('[constraints]\nmultipliers = "global"'), "{f}",
          "[constraints] multipliers", "expected one of 'pointwise', 'scalar'"),
    *case("constraints-damping-zero", toml("[constraints]\ndamping = 0"), "{f}",
          "[constraints] damping", "expected a value > 0, got 0.0"),
    *case("constraints-weight-negative", toml("[constraints]\nweight = -10"), "{f}",
          "[constraints] weight", "expected a value > 0, got -10.0"),
    *case("constraints-dual-lr-bool", toml("[constraints]\ndual_lr = false"), "{f}",
          "[constraints] dual_lr", "expected a number, got False"),
    *case("constraints-override-unknown-key",
          toml("[constraints.dirichlet_boundary]\ndampning = 1.0"), "{f}",
          "[constraints.dirichlet_boundary] dampning", "did you mean 'damping'?"),
    *case("constraints-override-bad-method",
          toml('[constraints.dirichlet_boundary]\nmethod = "lagrange"'), "{f}",
          "[constraints.dirichlet_boundary] method", "expected one of 'mdmm', 'penalty'"),
    *case("constraints-override-damping-negative",
          toml("[constraints.dirichlet_boundary]\ndamping = -1"), "{f}",
          "[constraints.dirichlet_boundary] damping", "expected a value > 0"),
    *case("constraints-override-no-such-condition", toml("[constraints.nope]\ndamping = 10.0"),
          "{f}", "[constraints.nope]", "no condition named 'nope'",
          "the conditions are: dirichlet_boundary"),
    *case("constraints-override-typo-condition",
          toml("[constraints.dirichlet_boundry]\nweight = 5.0"), "{f}",
          "[constraints.dirichlet_boundry]", "did you mean 'dirichlet_boundary'?",
          commands=SOLVE),
    # --- [run] -------------------------------------------------------------------------------
    *case("run-seed-float", toml("[run]\nseed = 1.5"), "{f}", "[run] seed",
          "expected an integer, got 1.5"),
    *case("run-seed-string", toml('[run]\nseed = "1"'), "{f}", "[run] seed",
          "expected an integer, got '1'"),
    *case("run-device", toml('[run]\ndevice = "tpu"'), "{f}", "[run] device",
          "expected one of 'auto', 'cpu', 'cuda', got 'tpu'"),
    *case("run-dtype-type", toml("[run]\ndtype = 64"), "{f}", "[run] dtype",
          "expected a string, got 64"),
    *case("run-device-cuda-in-file", toml('[run]\ndevice = "cuda"'), "{f}", "[run] device",
          "'cuda' was asked for but torch sees no CUDA device", commands=SOLVE,
          skipif_cuda=True),
    # --- [output] ----------------------------------------------------------------------------
    *case("output-dir-int", toml("[output]\ndir = 3"), "{f}", "[output] dir",
          "expected a string, got 3"),
    *case("output-time-slices", toml("[output]\ntime_slices = 1"), "{f}",
          "[output] time_slices", "expected a value >= 2, got 1"),
    *case("output-checkpoint-every", toml("[output]\ncheckpoint_every = -1"), "{f}",
          "[output] checkpoint_every", "expected a value >= 0, got -1"),
    *case("output-plots-int", toml("[output]\nplots = 0"), "{f}", "[output] plots",
          "expected true or false, got 0"),
    *case("output-resolution-float", toml("[output]\nresolution = 11.0"), "{f}",
          "[output] resolution", "expected an integer, got 11.0"),
    # --- [[conditions]]: checked with the file ------------------------------------------------
    *case("conditions-not-array", "conditions = 3\n" + toml(), "{f}", "conditions",
          "expected an array of tables"),
    *case("condition-kind-unknown", toml('[[conditions]]\nkind = "dirchlet"\npart = "xmin"'),
          "{f}", "[[conditions]] #1 kind", "got 'dirchlet'", "did you mean 'dirichlet'?"),
    *case("condition-kind-missing", toml('[[conditions]]\npart = "xmin"'), "{f}",
          "[[conditions]] #1 kind", "got None"),
    *case("condition-key-for-kind", toml('[[conditions]]\nkind = "integral"\npart = "xmin"'),
          "{f}", "[[conditions]] #1 part", "unknown key for a integral condition",
          "it takes field, name, target"),
    *case("condition-key-typo-second-entry",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\n'
               '[[conditions]]\nkind = "robin"\npart = "xmax"\nalpha = 1.0'),
          "{f}", "[[conditions]] #2 alpha", "unknown key for a robin condition"),
    *case("condition-op", toml('[[conditions]]\nkind = "inequality"\nop = ">"\ntarget = 0'),
          "{f}", "[[conditions]] #1 op", "expected one of '>=', '<=', got '>'"),
    *case("condition-derivative-range",
          toml('[[conditions]]\nkind = "periodic"\npart = "xmin"\nother = "xmax"\n'
               "derivative = 2"),
          "{f}", "[[conditions]] #1 derivative", "expected a value <= 1, got 2"),
    *case("condition-robin-a-string",
          toml('[[conditions]]\nkind = "robin"\npart = "xmax"\na = "one"'), "{f}",
          "[[conditions]] #1 a", "expected a number, got 'one'"),
    *case("condition-target-bool", toml('[[conditions]]\nkind = "integral"\ntarget = true'),
          "{f}", "[[conditions]] #1 target", "expected a number or an expression string"),
    *case("condition-periodic-without-other",
          toml('[[conditions]]\nkind = "periodic"\npart = "xmin"'), "{f}", "[[conditions]] #1",
          "needs 'part' and 'other'"),
    *case("condition-dirichlet-without-part", toml('[[conditions]]\nkind = "dirichlet"'),
          "{f}", "[[conditions]] #1", "needs 'part'"),
    # --- [[conditions]]: checked against the problem (solve; check where it should) ------------
    *case("condition-unknown-part",
          toml('[[conditions]]\nkind = "neumann"\npart = "left"\ntarget = 1'), "{f}",
          "[[conditions]] #1", "unknown boundary part 'left'", commands=SOLVE),
    *case("condition-periodic-not-opposite",
          toml('[[conditions]]\nkind = "periodic"\npart = "xmin"\nother = "ymax"', "poisson2d"),
          "{f}", "[[conditions]] #1", "periodic faces must be opposite", commands=SOLVE),
    *case("condition-unknown-field",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\nfield = "v"'), "{f}",
          "[[conditions]] #1", "unknown field 'v'", commands=SOLVE),
    *case("condition-duplicate-name",
          toml('[[conditions]]\nkind = "dirichlet"\npart = "boundary"\ntarget = 1'), "{f}",
          "[[conditions]] #1", "two conditions share this name", commands=SOLVE),
    *case("expression-unknown-name",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "sin(pi*x) * lamda"'),
          "{f}", "[[conditions]] #1 target", "unknown name 'lamda'", "did you mean 'lam'?"),
    *case("expression-field-in-target",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "u + 1"'), "{f}",
          "[[conditions]] #1 target", "unknown name 'u'", commands=SOLVE),
    *case("expression-attribute",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "x.__class__"'),
          "{f}", "[[conditions]] #1 target", "attribute access is not allowed", commands=SOLVE),
    *case("expression-call-not-whitelisted",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "open(x)"'), "{f}",
          "[[conditions]] #1 target", "unknown function 'open'", commands=SOLVE),
    *case("expression-call-on-attribute",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\n'
               "target = \"__import__('os').system('true')\""),
          "{f}", "[[conditions]] #1 target", "is not allowed", commands=SOLVE),
    *case("expression-string",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "\'abc\'"'), "{f}",
          "[[conditions]] #1 target", "a string is not allowed", commands=SOLVE),
    *case("expression-syntax",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = "2*(x"'), "{f}",
          "[[conditions]] #1 target", "syntax error", commands=SOLVE),
    *case("expression-multiline-syntax",
          toml('[[conditions]]\nkind = "neumann"\npart = "xmin"\ntarget = """1 +\n\nx +"""'),
          "{f}", "[[conditions]] #1 target", "syntax error", commands=SOLVE),
    *case("expression-quantity-unknown-field",
          toml('[[conditions]]\nkind = "inequality"\nquantity = "v"\ntarget = 0'), "{f}",
          "[[conditions]] #1 quantity", "unknown name 'v'", commands=SOLVE),
    # --- the command line and the run folder -------------------------------------------------
    *case("device-cuda-flag", toml(), "{f}", "[run] device",
          "'cuda' was asked for but torch sees no CUDA device",
          args=("--device", "cuda", "--dtype", "float32"), commands=SOLVE, skipif_cuda=True),
    *case("out-under-regular-file", toml(), "{tmp}/afile/run", "cannot write the run folder",
          args=("--out", "{tmp}/afile/run"), commands=SOLVE, setup=_regular_file),
    *case("out-is-regular-file", toml(), "{tmp}/afile", "cannot write the run folder",
          args=("--out", "{tmp}/afile"), commands=SOLVE, setup=_regular_file),
    *case("output-dir-under-regular-file", toml('[output]\ndir = "{tmp}/afile/run"'), "{f}",
          "[output] dir", "cannot write the run folder", commands=SOLVE, setup=_regular_file,
          default_out=False),
    *case("second-solve-finished", toml(), "{tmp}/out", "holds a finished run", "--force",
          commands=SOLVE, setup=_finished_run),
    *case("second-solve-interrupted", toml(), "{tmp}/out", "interrupted run", "--force",
          commands=SOLVE, setup=_interrupted_run),
    *case("cli-seed-negative", toml(), "--seed", args=("--seed", "-1"), commands=SOLVE),
    *case("cli-dtype-choice", toml(), "--dtype", "float16", args=("--dtype", "float16"),
          commands=SOLVE),
    *case("cli-unknown-option", toml(), "--steps", args=("--steps", "3"), commands=SOLVE),
]
# fmt: on


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.parametrize(("command", "spec"), CASES)
def test_malformed_input_gives_one_line_and_exit_2(runner, tmp_path, command, spec):
    tmp = tmp_path.as_posix()

    def fill(s: str) -> str:
        return s.replace("{tmp}", tmp)

    if spec["setup"]:
        spec["setup"](tmp_path)
    for name, text in spec["files"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    f = tmp_path / spec["path"]
    text = spec["text"]
    if isinstance(text, bytes):
        f.write_bytes(text)
    elif text is not None:
        f.write_text(fill(text), encoding="utf-8")

    argv = [command, str(f)]
    args = [fill(a) for a in spec["args"]]
    if command == "solve" and spec["default_out"] and "--out" not in args:
        argv += ["--out", f"{tmp}/out"]
    result = runner.invoke(main, argv + args)

    everything = f"{result.output}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    assert "Traceback" not in everything
    assert result.exception is None or isinstance(result.exception, SystemExit), everything
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output!r}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert [line for line in result.stderr.splitlines() if line.strip()] == lines, "not stderr"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in spec["expect"]:
        fragment = fill(fragment).replace("{f}", str(f))
        assert fragment in line, f"{fragment!r} not in {line!r}"


def test_the_table_is_big_enough_and_ids_are_unique():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids))
    assert len({i.split("-", 1)[1] for i in ids}) >= 35
