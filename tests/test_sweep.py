"""Bifurcation diagrams (``[sweep]``, ``pinnsolve.sweep``): bratu1d's branch counts per value
against the closed form (two solutions below the fold λc = 3.51383, none above), the diagram's
files, the fold bracketed, resume after an interruption, and one-line errors for bad specs."""

import csv
import json

import pytest
from bratu_case import BRATU
from click.testing import CliRunner

import pinnsolve
from pinnsolve.cli import main
from pinnsolve.errors import ConfigError
from pinnsolve.io.config import from_dict
from pinnsolve.problem.pdes.bratu import LAMBDA_CRITICAL, Bratu1D, bratu_thetas
from pinnsolve.sweep import Sweep, parse_sweep_option, sweep_values

SWEEP = BRATU.format(strategy="deflation", attempts=2).replace("plots = false", "plots = true")
SWEEP += """
[sweep]
parameter = "lam"
values = [2.0, 3.6]
refine_folds = 3
"""


def write(tmp_path, text):
    f = tmp_path / "p.toml"
    f.write_text(text)
    return f


def rows(run_dir):
    with open(run_dir / "diagram.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def bratu_diagram(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "run"
    return pinnsolve.sweep(write(tmp, SWEEP), out=out), out


def test_bratu_branch_counts_follow_the_closed_form(bratu_diagram):
    diagram, out = bratu_diagram
    assert diagram.status == "finished"
    assert diagram.values == [2.0, 3.6]
    expected = [len(bratu_thetas(v)) for v in diagram.values]
    assert expected == [2, 0]
    table = rows(out)
    assert [sum(float(r["value"]) == v for r in table) for v in diagram.values] == expected
    assert sorted(int(r["branch"]) for r in table) == [0, 1]
    for r in table:  # every solution is one of the closed-form ones
        assert float(r["rel_l2_error"]) < 1e-4
        assert (out / r["file"]).stat().st_size > 0
    # lower branch first (max |u| smaller), then the upper one
    assert float(table[0]["max_abs_u"]) < float(table[1]["max_abs_u"])


def test_both_branches_end_in_a_bracket_around_the_fold(bratu_diagram):
    diagram, _ = bratu_diagram
    assert sorted(e["branch"] for e in diagram.ends) == [0, 1]
    for end in diagram.ends:
        # 3 bisections of [2, 3.6]: a bracket 0.2 wide that holds λc
        assert end["missing"] - end["found"] == pytest.approx(1.6 / 8)
        assert end["found"] <= LAMBDA_CRITICAL <= end["missing"]


def test_the_diagram_files(bratu_diagram):
    diagram, out = bratu_diagram
    png = out / "diagram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["diagram"]["counts"] == [2, 0]
    assert [b["id"] for b in summary["diagram"]["branches"]] == [0, 1]
    pvd = (out / "sweep" / "branch_01.pvd").read_text()
    assert 'timestep="2.0"' in pvd and 'file="2/s01.vtu"' in pvd
    assert (out / "sweep" / "2" / "s01.vtu").exists()
    assert json.loads((out / "status.json").read_text())["status"] == "finished"


def test_resume_after_an_interruption_gives_the_same_diagram(bratu_diagram, tmp_path,
                                                            monkeypatch):  # fmt: skip
    diagram, _ = bratu_diagram
    f = write(tmp_path, SWEEP)
    out = tmp_path / "run"
    original = Sweep._continue_all

    def stopped(self, value):  # Ctrl-C during the second value
        self.run.trainer.stop_requested = True
        return original(self, value)

    monkeypatch.setattr(Sweep, "_continue_all", stopped)
    cut = pinnsolve.sweep(f, out=out)
    assert cut.status == "interrupted" and cut.values == [2.0]
    assert len(rows(out)) == 2  # the diagram so far is kept
    assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(Sweep, "_continue_all", original)
    resumed = pinnsolve.sweep(f, out=out, resume=True)
    assert resumed.status == "finished" and resumed.values == diagram.values
    assert resumed.ends == diagram.ends
    got = [(p.value, p.branch, p.functional) for p in resumed.points]
    want = [(p.value, p.branch, p.functional) for p in diagram.points]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert [g[2] for g in got] == pytest.approx([w[2] for w in want], rel=1e-9)


ELASTICA = """
[problem]
name = "elastica1d"
[model]
hidden = [16, 16]
[sampling]
interior = 64
[training]
steps = 300
lr = 3e-3
log_every = 50
[polish]
method = "gauss_newton"
[explore]
strategy = "deflation"
attempts = 4
trajectories = 4
patience = 4
[sweep]
parameter = "lam"
values = [5.0, 20.0]
refine_folds = 3
[output]
plots = false
resolution = 51
"""


def test_elastica_pitchfork_one_solution_then_three(tmp_path):
    """u'' + λ sin u = 0: u = 0 alone below π², then ± a one-hump solution (closed form). The
    pair, found by the searches at λ = 20, is continued back towards λ = 5 and ends at the
    pitchfork on u = 0, which the bisections bracket."""
    diagram = pinnsolve.sweep(write(tmp_path, ELASTICA), out=tmp_path / "run")
    assert diagram.counts() == [1, 3]
    table = rows(tmp_path / "run")
    assert [(float(r["value"]), int(r["branch"])) for r in table] == [(5, 0), (20, 0), (20, 1),
                                                                      (20, 2)]  # fmt: skip
    assert float(table[1]["max_abs_u"]) < 1e-6  # the trivial branch
    for r in table[2:]:  # ± one hump: max |u| 2.1907 at λ = 20 (closed form)
        assert float(r["rel_l2_error"]) < 1e-4
    assert sorted(e["branch"] for e in diagram.ends) == [1, 2]
    for end in diagram.ends:  # 3 bisections of [5, 20] from above
        assert end["missing"] == 8.75 and end["found"] == 10.625  # around π² = 9.87


def config_with(sweep_table: str):
    return load_config_text(BRATU.format(strategy="deflation", attempts=1) + sweep_table)


def load_config_text(text):
    import tomllib

    return from_dict(tomllib.loads(text), source="p.toml")


@pytest.mark.parametrize(("table", "message"), [
    ('parameter = "lambda"\nvalues = [1.0]',
     "p.toml: [sweep] parameter: 'bratu1d' has no parameter 'lambda' (did you mean 'lam'?)"),
    ('parameter = "lam"\nvalues = [1.0, -2.0]',
     "p.toml: [sweep] values: -2 is outside lam's declared range [0, inf]"),
    ('parameter = "lam"', "p.toml: [sweep] values: expected a list of values, or start, stop"),
    ('parameter = "lam"\nvalues = [1.0]\ncount = 3', "p.toml: [sweep] values: give either"),
    ('parameter = "lam"\nstart = 0.0\nstop = 1.0\ncount = 3\nspacing = "log"',
     "p.toml: [sweep] spacing: log spacing needs start and stop > 0"),
    ('parameter = "lam"\nvalues = [1.0, 1.0]', "p.toml: [sweep] values: expected distinct"),
])  # fmt: skip
def test_bad_sweep_sections_are_one_line_errors(table, message):
    config = config_with("[sweep]\n" + table)
    with pytest.raises(ConfigError) as err:
        sweep_values(config, Bratu1D(**config.problem.params))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_list_must_hold_numbers():
    with pytest.raises(ConfigError, match=r"\[sweep\] values: expected a list of numbers"):
        config_with('[sweep]\nparameter = "lam"\nvalues = ["a"]')


def test_ranges_linear_and_log():
    config = config_with('[sweep]\nparameter = "lam"\nstart = 1.0\nstop = 100.0\ncount = 3\n'
                         'spacing = "log"')  # fmt: skip
    assert sweep_values(config, Bratu1D()) == ("lam", pytest.approx([1.0, 10.0, 100.0]))
    spec = parse_sweep_option("lam=0.1:3.6:30")
    assert spec == {"parameter": "lam", "values": [], "start": 0.1, "stop": 3.6, "count": 30,
                    "spacing": "linear"}  # fmt: skip
    assert parse_sweep_option("lam=1e-2:1:5:log")["spacing"] == "log"
    assert parse_sweep_option("lam=0.5,1,2")["values"] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("spec", ["lam", "lam=", "lam=1:2", "lam=1:2:x", "=1:2:3", "lam=1;2"])
def test_bad_sweep_options_are_one_line_errors(spec, tmp_path):
    f = write(tmp_path, BRATU.format(strategy="deflation", attempts=1))
    result = CliRunner().invoke(main, ["solve", str(f), "--sweep", spec])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "--sweep: expected NAME=START:STOP:COUNT[:log] or NAME=V1,V2,..." in result.output


def test_the_cli_names_an_unknown_parameter_and_check_reads_the_sweep(tmp_path):
    f = write(tmp_path, BRATU.format(strategy="deflation", attempts=1))
    result = CliRunner().invoke(main, ["solve", str(f), "--sweep", "mu=1:2:3"])
    assert result.exit_code == 2
    assert "[sweep] parameter: 'bratu1d' has no parameter 'mu'" in result.output
    g = write(tmp_path, SWEEP.replace("values = [2.0, 3.6]", "values = [2.0, 36, -1]"))
    result = CliRunner().invoke(main, ["check", str(g)])
    assert result.exit_code == 2 and "-1 is outside lam's declared range" in result.output
