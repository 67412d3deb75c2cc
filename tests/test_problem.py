"""Problems: declaration checks, parameters, conditions, registry and file:Class loading."""

import math
import textwrap

import pytest
import torch

from pinnsolve import ConfigError, Dirichlet, Interval, Param, PinnsolveError, Problem
from pinnsolve.derivatives.fields import Coords
from pinnsolve.problem.pdes.bratu import LAMBDA_CRITICAL, Bratu1D, bratu_thetas
from pinnsolve.problem.registry import get_problem, register, registered


def test_bundled_problems_are_registered():
    names = registered()
    assert {"poisson2d", "bratu1d", "heat1d"} <= set(names)
    for cls in names.values():
        assert cls.description()  # `pinnsolve problems` shows it


def test_params_default_override_and_validation():
    assert Bratu1D().p.lam == 1.0
    assert Bratu1D(lam=2.5).p.lam == 2.5
    with pytest.raises(ConfigError, match=r"\[problem.params\] lamda: .*did you mean 'lam'"):
        Bratu1D(lamda=2.0)
    with pytest.raises(ConfigError, match=r"expected a number in \[0, inf\], got -1"):
        Bratu1D(lam=-1.0)
    with pytest.raises(ConfigError, match="expected a number, got 'big'"):
        Bratu1D(lam="big")
    with pytest.raises(ConfigError, match="expected a number, got True"):
        Bratu1D(lam=True)


@pytest.mark.parametrize(("lam", "thetas"), [(1.0, [1.5171645990507545, 10.938702772122106])])
def test_bratu_closed_form_roots(lam, thetas):
    got = bratu_thetas(lam)
    assert got == pytest.approx(thetas, rel=1e-12)
    for t in got:  # θ = √(2λ) cosh(θ/4)
        assert t == pytest.approx(math.sqrt(2 * lam) * math.cosh(t / 4), rel=1e-13)


def test_bratu_branch_count_around_the_fold():
    assert len(bratu_thetas(LAMBDA_CRITICAL - 1e-6)) == 2
    assert bratu_thetas(LAMBDA_CRITICAL + 1e-6) == []


def test_bratu_exact_solutions_solve_the_equation():
    """Both closed-form branches satisfy u'' + λeᵘ = 0 (checked by finite differences)."""
    p = Bratu1D(lam=1.0)
    h = 1e-4
    x = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    u = lambda s: p.exact_solutions(Coords(s[:, None], ("x",)))  # noqa: E731
    for lo, mid, hi in zip(u(x - h), u(x), u(x + h), strict=True):
        upp = (hi["u"] - 2 * mid["u"] + lo["u"]) / h**2
        torch.testing.assert_close(upp, -torch.exp(mid["u"]), rtol=1e-6, atol=1e-6)
    ends = p.exact_solutions(Coords(torch.tensor([[0.0], [1.0]], dtype=torch.float64), ("x",)))
    for branch in ends:
        assert torch.allclose(branch["u"], torch.zeros(2, dtype=torch.float64), atol=1e-14)


def test_bad_declarations_are_clear():
    class NoDomain(Problem):
        pass

    with pytest.raises(PinnsolveError, match="'domain' must be a Geometry"):
        NoDomain()

    class Clash(Problem):
        domain = Interval(0, 1)
        fields = ("x",)

    with pytest.raises(PinnsolveError, match="clash with coordinates"):
        Clash()


def test_condition_checks():
    class BadPart(Problem):
        domain = Interval(0, 1)

        def conditions(self, p):
            return [Dirichlet("left", 0.0)]

    with pytest.raises(PinnsolveError, match="unknown boundary part 'left'.*xmin, xmax, boundary"):
        BadPart().checked_conditions()

    class Twice(Problem):
        domain = Interval(0, 1)

        def conditions(self, p):
            return [Dirichlet("xmin", 0.0), Dirichlet("xmin", 1.0)]

    with pytest.raises(PinnsolveError, match="share this name"):
        Twice().checked_conditions()


def test_register_rejects_duplicates_and_non_problems():
    with pytest.raises(TypeError):
        register("not-a-problem")(int)

    class Other(Problem):
        domain = Interval(0, 1)

    with pytest.raises(ValueError, match="already registered"):
        register("bratu1d")(Other)


def test_unknown_problem_name_suggests():
    with pytest.raises(ConfigError, match="unknown problem 'bratu1' .*did you mean 'bratu1d'"):
        get_problem("bratu1")


def write(tmp_path, name, text):
    (tmp_path / name).write_text(textwrap.dedent(text))


def test_load_problem_from_file(tmp_path):
    write(
        tmp_path,
        "mine.py",
        """
        import torch
        from pinnsolve import Problem, Interval, Param, Dirichlet

        class Decay(Problem):
            \"\"\"u' + k u = 0.\"\"\"
            domain = Interval(0.0, 1.0)
            params = {"k": Param(2.0, "rate")}

            def residual(self, x, f, p):
                return f.d("u", "x") + p.k * f.u
    """,
    )
    cls = get_problem("mine.py:Decay", tmp_path)
    assert cls.description() == "u' + k u = 0." and cls(k=3.0).p.k == 3.0


@pytest.mark.parametrize(("spec", "source", "message"), [
    ("missing.py:X", None, "problem file .*missing.py' does not exist"),
    ("boom.py:X", "raise RuntimeError('kaput')", "importing boom.py failed: RuntimeError: kaput"),
    ("empty.py:Gelfand", "x = 1", "has no class 'Gelfand'; problem classes there: none"),
    ("notp.py:Thing", "class Thing: pass", "'Thing' in notp.py is not a Problem subclass"),
])  # fmt: skip
def test_problem_file_errors(tmp_path, spec, source, message):
    if source is not None:
        write(tmp_path, spec.split(":")[0], source)
    with pytest.raises(ConfigError, match=message):
        get_problem(spec, tmp_path)


def test_param_type():
    assert Param(1.0, min=0.0).range_text() == "[0, inf]"


class _Layer(Problem):
    """A boundary layer ε u'' = u', ε > 0 (an exclusive bound: ε = 0 is another equation)."""

    domain = Interval(0.0, 1.0)
    params = {"eps": Param(0.1, "layer width ε", above=0.0, below=1.0)}

    def residual(self, x, f, p):
        return p.eps * f.u_xx - f.u_x


def test_exclusive_parameter_bounds():
    assert _Layer.params["eps"].range_text() == "(0, 1)"
    assert _Layer(eps=1e-300).p.eps == 1e-300 and _Layer(eps=0.999).p.eps == 0.999
    for bad in (0.0, -1.0, 1.0, math.nan):
        with pytest.raises(ConfigError, match=r"\[problem.params\] eps: expected a number in "
                                              r"\(0, 1\), got"):  # fmt: skip
            _Layer(eps=bad)
    assert Param(1.0, min=0.0, below=2.0).range_text() == "[0, 2)"
    with pytest.raises(TypeError, match="min .* or above .*, not both"):
        Param(1.0, min=0.0, above=0.0)
