"""Explorer strategies as objects: the registry, a user's own strategy from a file (the one
docs/strategies.md walks through, run as written), and the checks on a strategy's name."""

import re
from pathlib import Path

import pytest
from bratu_case import BRATU

import pinnsolve as ps
from pinnsolve.explore.strategies import strategies
from pinnsolve.explore.strategy import Strategy, register_strategy, strategy_named
from pinnsolve.train import PhaseOutcome

DOCS = Path(__file__).resolve().parent.parent / "docs" / "strategies.md"


def _docs_strategy() -> str:
    """The Python block of docs/strategies.md (the toy strategy)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_bundled_strategies_are_registered():
    assert set(strategies()) == {"deflation", "restarts", "bbi", "kick", "continuation"}
    assert strategies()["continuation"].sequential
    assert not strategies()["deflation"].sequential


def test_the_docs_strategy_from_a_file_finds_the_upper_branch(tmp_path):
    (tmp_path / "my_strategies.py").write_text(_docs_strategy())
    toml = BRATU.format(strategy="my_strategies.py:Scaled", attempts=1)
    (tmp_path / "bratu.toml").write_text(toml)
    result = ps.solve(tmp_path / "bratu.toml", out=tmp_path / "out")
    attempts = result.summary["explore"]["attempts"]
    assert [(a["strategy"], a["outcome"]) for a in attempts] == [
        ("training", "new"), ("my_strategies.py:Scaled", "new"),
    ]  # fmt: skip
    # both branches, each against its own closed form
    assert sorted(s.exact_branch for s in result.solutions) == [0, 1]
    assert max(s.rel_l2_error for s in result.solutions) < 1e-4


def test_a_registered_strategy_is_named_from_the_file(tmp_path):
    calls = []

    @register_strategy("test_from_theta0")
    class FromTheta0(Strategy):
        """θ₀ and the undeflated search: it can only find what training found."""

        def start(self, k):
            run = self.explorer.run
            run.model.load_state_dict(run.start_state)
            run.constraints.load_state_dict(self.explorer.initial_multipliers)

        def search(self, k, resume) -> PhaseOutcome:
            calls.append(k)
            e = self.explorer
            return e.run.trainer.gauss_newton(
                e.run.stacked_residuals(), e.search_rule, e.search_tolerances, e.damping,
                resume=resume, name="again", update_multipliers=False,
            )  # fmt: skip

    assert strategy_named("test_from_theta0") is FromTheta0
    (tmp_path / "bratu.toml").write_text(BRATU.format(strategy="test_from_theta0", attempts=2))
    result = ps.solve(tmp_path / "bratu.toml", out=tmp_path / "out")
    assert calls == [1, 2]
    outcomes = [a["outcome"] for a in result.summary["explore"]["attempts"]]
    assert outcomes == ["new", "duplicate", "duplicate"]


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("deflate", r"\[explore\] strategy: expected one of 'none', .*'deflation'.*got 'deflate' "
                    r"\(did you mean 'deflation'\?\)"),
        ("nowhere.py:Scaled", r"\[explore\] strategy: strategy file '.*nowhere.py' does not exist"),
        ("my_strategies.txt:Scaled", r"expected 'file.py:ClassName' with a Python file"),
        ("my_strategies.py:Scale", r"has no class 'Scale' \(did you mean 'Scaled'\?\)"),
        ("my_strategies.py:torch", r"'torch' in my_strategies.py is not a Strategy subclass"),
    ],
)  # fmt: skip
def test_a_wrong_strategy_name_is_one_line_naming_the_key(tmp_path, strategy, message):
    (tmp_path / "my_strategies.py").write_text(_docs_strategy())
    (tmp_path / "my_strategies.txt").write_text("")
    f = tmp_path / "bratu.toml"
    f.write_text(BRATU.format(strategy=strategy, attempts=1))
    with pytest.raises(ps.ConfigError, match=message) as caught:
        ps.solve(f, out=tmp_path / "out")
    assert str(f) in str(caught.value) and "\n" not in str(caught.value)


def test_a_sequential_strategy_refuses_a_round_of_several(tmp_path):
    f = tmp_path / "bratu.toml"
    text = BRATU.format(strategy="continuation", attempts=2)
    f.write_text(text.replace("patience = 2", 'patience = 2\nparameter = "lam"\ntrajectories = 2'))
    with pytest.raises(ps.ConfigError, match=r"\[explore\] trajectories: continuation follows one"):
        ps.solve(f, out=tmp_path / "out")


def test_a_problem_named_by_a_file_that_is_not_python_is_one_line(tmp_path):
    """A path that is not a ``.py`` file was a traceback (``'NoneType' object has no attribute
    'loader'``)."""
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    f = tmp_path / "p.toml"
    f.write_text('[problem]\nname = "passwd:X"\n')
    with pytest.raises(ps.ConfigError, match=r"\[problem\] name: expected 'file.py:ClassName'"):
        ps.solve(f, out=tmp_path / "out")


def test_a_round_cut_by_the_time_limit_is_recorded_and_judged(tmp_path):
    """The time limit cuts attempt 2's search (simulated: its outcome says so): attempt 1 stays
    in the catalogue, attempt 2 is logged with what it reached, and the run ends there."""

    @register_strategy("test_cut")
    class CutSecond(Strategy):
        def start(self, k):
            run = self.explorer.run
            run.model.load_state_dict(run.start_state)
            run.constraints.load_state_dict(self.explorer.initial_multipliers)

        def search(self, k, resume) -> PhaseOutcome:
            e = self.explorer
            outcome = e.run.trainer.gauss_newton(
                e.run.stacked_residuals(), e.search_rule, e.search_tolerances, e.damping,
                resume=resume, name="cut", update_multipliers=False,
            )  # fmt: skip
            if k == 2:
                outcome.stop_reason, outcome.converged = "time_limit", False
            return outcome

    (tmp_path / "bratu.toml").write_text(
        BRATU.format(strategy="test_cut", attempts=4).replace("patience = 2", "patience = 0")
    )
    result = ps.solve(tmp_path / "bratu.toml", out=tmp_path / "out")
    attempts = result.summary["explore"]["attempts"]
    assert [a["attempt"] for a in attempts] == [0, 1, 2]
    assert attempts[1]["outcome"] == "duplicate"
    # from θ₀ undeflated, the search met the tolerances before the simulated cut: judged as is
    assert attempts[2]["outcome"] == "duplicate" and attempts[2]["polish_steps"] == 0
    assert attempts[2]["search_stop"] == "time_limit"
    assert result.summary["phases"][-1]["stop_reason"] == "time_limit"
    assert len(result.solutions) == 1
