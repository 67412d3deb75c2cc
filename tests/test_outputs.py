"""What a run shows a scientist (issue 24): the history's error column and plot, the summary's
names and signed statistics, the plots, and the run folder's second-run behaviour."""

import csv
import json
import os
import signal
import types
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import meshio
import numpy as np
import pytest
import torch
from bratu_case import BRATU as BRATU_CASE
from click.testing import CliRunner

import pinnsolve as ps
from pinnsolve.build import build_network, build_problem
from pinnsolve.cli import _print_summary, main
from pinnsolve.errors import ConfigError
from pinnsolve.io.config import from_dict
from pinnsolve.io.evaluate import ExactError, evaluate_solution
from pinnsolve.io.plots import solutions_figure
from pinnsolve.io.progress import Progress
from pinnsolve.io.results import Solution, signed_stats
from pinnsolve.io.rundir import RunDir
from pinnsolve.objective import PinnObjective
from pinnsolve.problem.geometry import EvalMesh, Rectangle
from pinnsolve.problem.registry import get_problem
from pinnsolve.solver import _file_names, _named_attempts

ROOT = Path(__file__).resolve().parent.parent

BRATU = {
    "problem": {"name": "bratu1d", "params": {"lam": 1.0}},
    "model": {"hidden": [12, 12]},
    "sampling": {"interior": 48},
    "training": {"optimizer": "adam", "steps": 400, "lr": 3e-3, "log_every": 20},
    "polish": {"method": "lbfgs", "steps": 40},
    "output": {"plots": True, "resolution": 201, "checkpoint_every": 1000},
}


def _rows(path):
    with open(path / "history.csv") as f:
        return list(csv.DictReader(f))


class _StopAt(Progress):
    """Sends this process SIGINT once the history reaches ``step``: the run checkpoints at the
    next step boundary, with that row the last one of its history."""

    def __init__(self, step):
        super().__init__(quiet=True)
        self.step = step

    def __call__(self, row):
        if row["step"] == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_the_history_error_column_is_the_rel_l2_at_that_row(tmp_path):
    config = from_dict(BRATU)
    problem = build_problem(config)
    result = ps.solve(problem, config, out=tmp_path, progress=_StopAt(200))
    assert result.status == "interrupted"
    rows = _rows(tmp_path)
    assert rows[-1]["step"] == "200" and rows[-1]["rel_l2_error"]
    state = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=False)
    assert state["history"][-1]["step"] == 200
    model = build_network(config.model, problem, 0, torch.float64, torch.device("cpu"))
    model.load_state_dict(state["model"])
    objective = PinnObjective.sampled(problem, 48, 64, "halton", 0, torch.float64,
                                      torch.device("cpu"))  # fmt: skip
    sol = evaluate_solution("s00", model, objective, result.mesh, 0)
    assert float(rows[-1]["rel_l2_error"]) == pytest.approx(sol.rel_l2_error, rel=1e-9)
    assert sol.rel_l2_error > 1e-3  # mid-training: a value the row could get wrong
    errors = [float(r["rel_l2_error"]) for r in rows]
    assert errors[0] > 10 * errors[-1]  # it falls as training goes on


def test_a_finished_run_ends_its_error_column_at_the_reported_error(tmp_path):
    config = from_dict(BRATU)
    result = ps.solve(build_problem(config), config, out=tmp_path)
    rows = _rows(tmp_path)
    assert {r["phase"] for r in rows} == {"adam", "lbfgs"}
    assert all(r["rel_l2_error"] for r in rows)
    (sol,) = result.solutions
    assert float(rows[-1]["rel_l2_error"]) == pytest.approx(sol.rel_l2_error, rel=1e-9)
    assert (tmp_path / "plots" / "history.png").stat().st_size > 0
    (dataset,) = ElementTree.parse(tmp_path / "solutions.pvd").getroot().iter("DataSet")
    assert dataset.attrib == {"timestep": "0", "part": "0", "name": "s00",
                              "file": "solutions/s00.vtu"}  # fmt: skip
    listed = json.loads((tmp_path / "summary.json").read_text())["solutions"][0]
    assert listed["centre"] == {"x": 0.5}
    stats = listed["stats"]["u"]
    assert stats["centre"] == pytest.approx(sol.exact["u"].max(), rel=0.02)  # u peaks at 1/2
    assert stats["min"] == pytest.approx(0, abs=0.01)  # at the ends (a short, rough run)
    assert stats["max"] == pytest.approx(stats["centre"], rel=1e-3)
    assert 0 < stats["mean"] < stats["max"]


def test_no_exact_solution_no_error_column(tmp_path):
    data = {**BRATU, "training": {**BRATU["training"], "steps": 40}, "polish": {"method": "none"}}
    config = from_dict(data)
    problem = build_problem(config)
    problem.exact = lambda x, p: None  # as a user's class without exact()
    ps.solve(problem, config, out=tmp_path)
    assert "rel_l2_error" not in _rows(tmp_path)[0]


def test_the_history_plot_gives_the_explorer_its_own_panel_and_says_what_it_cannot_draw():
    from pinnsolve.io.plots import history_figure

    row = {"loss": 1e-3, "residual_mse": 1e-3, "bc_max": 1e-4, "time_s": 0.0, "phase_step": 1}
    rows = [{**row, "step": 10 * i, "stage": "train", "phase": "adam", "time_s": 0.1 * i,
             "rel_l2_error": 1e-2 / (i + 1)} for i in range(1, 6)]  # fmt: skip
    rows[2]["loss"] = -1.4e-8  # the MDMM Lagrangian below zero
    rows += [{**row, "step": 60 + i, "stage": "explore", "phase": "deflation", "loss": 1e6,
              "time_s": 1.0 + i, "phase_step": i} for i in range(1, 4)]  # fmt: skip
    attempts = [{"attempt": 1, "outcome": "new", "step": 62},
                {"attempt": 2, "outcome": "search did not converge", "step": 63},
                {"attempt": 3, "outcome": "duplicate", "step": 63}]  # fmt: skip
    fig = history_figure(rows, ["bc"], "bratu1d (lam = 1)", attempts)
    train, explore = [ax for ax in fig.axes if ax.get_title()]
    assert train.get_title() == "training and polish: bratu1d (lam = 1)"
    assert explore.get_title() == "explorer"
    legend = [t.get_text() for t in train.get_legend().get_texts()]
    assert "loss (1 rows ≤ 0 not drawn: the MDMM Lagrangian)" in legend
    assert "rel L2 error (vs exact)" in legend and "phase: adam" in legend
    curves = [line for line in train.get_lines() if not line.get_label().startswith("_")]
    assert max(np.nanmax(line.get_ydata()) for line in curves) < 1  # the 1e6 only below
    assert [ax.get_xlabel() for ax in train.child_axes] == ["wall time [s]"]
    assert [t.get_text() for t in explore.texts] == ["a1 new", "a2 –, a3 dup"]
    assert not train.texts


def test_signed_statistics_tell_a_plus_minus_pair_apart():
    x = np.linspace(0, 1, 11)[:, None]
    u = np.sin(np.pi * x[:, 0]) + 0.1
    plus, centre = signed_stats({"u": u}, x, ("x",))
    minus, _ = signed_stats({"u": -u}, x, ("x",))
    assert centre == {"x": 0.5}
    assert plus["u"]["centre"] == pytest.approx(1.1) and minus["u"]["centre"] == pytest.approx(-1.1)
    assert plus["u"]["min"] == pytest.approx(-minus["u"]["max"])
    assert plus["u"]["mean"] == pytest.approx(-minus["u"]["mean"]) and plus["u"]["mean"] > 0


def test_the_attempt_log_names_solutions_as_their_files():
    """Found in the order A, B, C (attempts 0, 1, 2) and reported sorted as C, A, B: attempt 1's
    solution is s02, and attempt 3, a duplicate of C (catalogue index 2), duplicates s00."""
    a, b, c = (types.SimpleNamespace(name=n) for n in "ABC")
    names = _file_names([a, b, c], [c, a, b])
    assert names == {0: "s01", 1: "s02", 2: "s00"}
    log = [{"attempt": 0, "outcome": "new", "solution": 0},
           {"attempt": 1, "outcome": "new", "solution": 1},
           {"attempt": 2, "outcome": "new", "solution": 2},
           {"attempt": 3, "outcome": "duplicate", "solution": None, "duplicate_of": 2}]  # fmt: skip
    named = _named_attempts(log, names)
    assert [r["solution"] for r in named] == ["s01", "s02", "s00", None]
    assert named[3]["duplicate_of"] == "s00"
    assert log[3]["duplicate_of"] == 2  # the explorer's own log is left as it is


def test_the_terminal_says_where_each_solution_came_from_and_what_a_duplicate_duplicates(
    capsys, tmp_path
):
    sol = types.SimpleNamespace(name="s01", rel_l2_error=1.6e-7, residual_rms=1e-9,
                                max_infeasibility=1e-10, file="solutions/s01.vtu",
                                provenance={"strategy": "deflation", "attempt": 1})  # fmt: skip
    summary = {"status": "finished", "problem": "bratu1d", "device": "cpu", "dtype": "float64",
               "steps": 10, "wall_time_s": 1.0, "stop_reason": "explored all attempts",
               "explore": {"attempts": [{"attempt": 2, "strategy": "deflation",
                                         "duplicate_of": "s00"}]}}  # fmt: skip
    (tmp_path / "solutions.pvd").write_text("")
    result = types.SimpleNamespace(summary=summary, solutions=[sol], run_dir=tmp_path)
    _print_summary(result)
    text = capsys.readouterr().out
    assert "  s01 (deflation, attempt 1): residual rms 1.00e-09 (evaluation mesh)" in text
    assert "  attempt 2 (deflation): a duplicate of s00" in text
    assert f"run folder: {tmp_path} (ParaView: {tmp_path / 'solutions.pvd'})" in text


SHORT = {"training": {"steps": 20}, "polish": {"method": "none"},
         "output": {"plots": False, "resolution": 21}}  # fmt: skip


@pytest.fixture
def user_file(tmp_path):
    (tmp_path / "my_pdes.py").write_text((ROOT / "problems" / "my_pdes.py").read_text())
    return tmp_path


def test_the_summary_names_a_user_class_as_file_and_class(user_file):
    toml = user_file / "mine.toml"
    toml.write_text(
        '[problem]\nname = "my_pdes.py:CubicPoisson"\n[training]\nsteps = 20\n'
        '[polish]\nmethod = "none"\n[output]\nplots = false\nresolution = 21\n'
    )
    summary = ps.solve(toml, out=user_file / "out").summary
    assert summary["problem"] == summary["problem_class"] == "my_pdes.py:CubicPoisson"


def test_solving_an_instance_names_its_class_not_the_config_s_problem(user_file):
    cls = get_problem("my_pdes.py:CubicPoisson", user_file)
    config = from_dict({"problem": {"name": "bratu1d"}, **SHORT}, source=str(user_file / "x.toml"))
    messages = []
    progress = Progress(quiet=True)
    progress.message = messages.append
    result = ps.solve(cls(kappa=2.0), config, out=user_file / "out", progress=progress)
    assert result.summary["problem"] == "my_pdes.py:CubicPoisson"
    assert result.summary["params"] == {"kappa": 2.0}
    resolved = ps.load_config(user_file / "out" / "config.resolved.toml")
    assert resolved.problem.name == "my_pdes.py:CubicPoisson"
    assert resolved.problem.params == {"kappa": 2.0}
    assert any("[problem] name 'bratu1d' is not used" in m for m in messages)


@pytest.mark.parametrize("params", [{"lam": 1.0}, {"kappa": 3.0}])
def test_config_params_an_instance_does_not_have_are_an_error(user_file, params):
    cls = get_problem("my_pdes.py:CubicPoisson", user_file)
    config = from_dict({"problem": {"name": "bratu1d", "params": params}, **SHORT})
    with pytest.raises(ConfigError) as err:
        ps.solve(cls(kappa=2.0), config, out=user_file / "out")
    ((key, value),) = params.items()
    text = str(err.value)
    assert f"the config sets {key} = {value:g} but the CubicPoisson instance has kappa = 2" in text
    assert "\n" not in text and "[problem.params]" in text


def test_config_params_an_instance_has_with_those_values_are_fine(user_file):
    cls = get_problem("my_pdes.py:CubicPoisson", user_file)
    config = from_dict({"problem": {"name": "x", "params": {"kappa": 2}}, **SHORT})
    assert ps.solve(cls(kappa=2.0), config, out=user_file / "out").status == "finished"


@pytest.mark.parametrize(("name", "points"), [("bratu1d", 1001), ("heat1d", 1001 * 11),
                                              ("poisson2d", 101 * 101)])  # fmt: skip
def test_the_default_resolution_is_fine_on_a_line(tmp_path, name, points):
    config = from_dict({"problem": {"name": name}, **SHORT, "output": {"plots": False}})
    assert config.output.resolution == 0
    result = ps.solve(build_problem(config), config, out=tmp_path)
    assert len(result.mesh.points) == points


def test_a_line_of_1001_points_interpolates_a_boundary_layer_a_hundred_times_better():
    """Why 1001: u = 1 − e^{−x/ε} with ε = 0.01, linearly interpolated from the exported line
    onto a fine one (what a plot or ParaView does with it): 6e-3 rel L2 from 101 points, 7e-5
    from 1001 (the error goes as the spacing squared)."""
    fine = np.linspace(0, 1, 20001)
    u = 1 - np.exp(-fine / 0.01)
    errors = {}
    for n in (101, 1001):
        line = np.linspace(0, 1, n)
        diff = np.interp(fine, line, 1 - np.exp(-line / 0.01)) - u
        errors[n] = np.linalg.norm(diff) / np.linalg.norm(u)
    assert errors[101] > 5e-3 and errors[1001] < 1e-4


TINY = ('[problem]\nname = "bratu1d"\n[training]\nsteps = 2\nlog_every = 1\n'
        '[polish]\nmethod = "none"\n[output]\nplots = false\nresolution = 11\n')  # fmt: skip


def test_a_second_run_of_a_file_goes_to_a_new_numbered_folder(in_tmp):
    (in_tmp / "tiny.toml").write_text(TINY)
    messages = []
    progress = Progress(quiet=True)
    progress.message = messages.append
    first = ps.solve("tiny.toml")
    second = ps.solve("tiny.toml", progress=progress)
    third = ps.solve("tiny.toml")
    assert [first.run_dir, second.run_dir, third.run_dir] == [
        Path("outputs/tiny"), Path("outputs/tiny-2"), Path("outputs/tiny-3")]  # fmt: skip
    assert messages[0] == "outputs/tiny holds a finished run: this run goes to outputs/tiny-2"
    assert ps.solve("tiny.toml", force=True).run_dir == Path("outputs/tiny")  # overwritten


def test_a_taken_folder_is_refused_in_the_caller_s_terms(in_tmp):
    (in_tmp / "tiny.toml").write_text(TINY)
    ps.solve("tiny.toml", out="here")
    with pytest.raises(ConfigError) as err:
        ps.solve("tiny.toml", out="here")
    assert str(err.value) == ("here: holds a finished run; pass force=True to overwrite it or "
                              "out=... to write elsewhere")  # fmt: skip
    cli = CliRunner().invoke(main, ["solve", "tiny.toml", "--out", "here"])
    assert cli.exit_code == 2
    assert cli.output.strip() == ("error: here: holds a finished run; pass --force to overwrite "
                                  "it or --out to write elsewhere")  # fmt: skip


def test_an_interrupted_run_in_a_taken_folder_is_offered_a_resume(in_tmp):
    (in_tmp / "tiny.toml").write_text(TINY)
    ps.solve("tiny.toml", out="here")
    RunDir(Path("here")).set_status("interrupted")
    cli = CliRunner().invoke(main, ["solve", "tiny.toml", "--out", "here"])
    assert (
        "here: holds an interrupted run; pass --resume to continue it, pass --force to overwrite it"
        in cli.output
    )


class _Recorder(Progress):
    """Keeps the messages and the progress lines (as a terminal would show them)."""

    def __init__(self):
        super().__init__(quiet=True)
        self.messages, self.lines = [], []

    def __call__(self, row):
        self.lines.append(self._format(row))

    def message(self, text):
        self.messages.append(text)


def test_a_run_prints_its_header_first(tmp_path):
    config = from_dict({"problem": {"name": "poisson2d"}, "model": {"hidden": [8]},
                        "sampling": {"interior": 50, "boundary": 16}, **SHORT,
                        "polish": {"method": "lbfgs", "steps": 5}})  # fmt: skip
    progress = _Recorder()
    ps.solve(build_problem(config), config, out=tmp_path, progress=progress)
    first, network, points, phases = progress.messages[:4]
    assert first == "poisson2d on cpu (float64), seed 0"
    assert network == "  network: 2 inputs → hidden [8] (tanh) → 1 field(s); 33 parameters"
    assert points == (
        "  points: 50 interior; 16 points on each of 4 boundary parts (xmin, xmax, ymin, ymax; "
        "[sampling] boundary = 16 per part); conditions: dirichlet_boundary 64; 114 in all"
    )
    assert phases == "  phases: adam (20 steps) → lbfgs polish (up to 5 steps, float64)"


def test_resume_says_where_it_resumes_and_its_bar_stays_within_the_phase(tmp_path):
    config = from_dict(BRATU)
    problem = build_problem(config)
    ps.solve(problem, config, out=tmp_path, progress=_StopAt(200))
    progress = _Recorder()
    result = ps.solve(problem, config, out=tmp_path, resume=True, progress=progress)
    assert result.status == "finished"
    assert progress.messages[4] == (
        f"resuming {tmp_path} from its checkpoint: phase 1 of 2, adam (400 steps), at its step "
        "200 (run step 200, 10 history rows kept)"
    )
    assert "step 220/400" in progress.lines[0]
    for line in progress.lines:
        done, total = line.split("step ")[1].split()[0].split("/")
        assert int(done) <= int(total), line


def _solution(name, values, exact=None, provenance=None, error=None):
    return Solution(name=name, values=values, residuals={"residual": values["u"] * 1e-6},
                    residual_rms=1e-6, max_infeasibility=0.0, conditions={},
                    rel_l2_to_exact=[] if error is None else [error], exact=exact,
                    provenance=provenance)  # fmt: skip


def test_the_1d_plot_names_each_solution_and_shows_its_error_on_a_log_scale():
    x = np.linspace(0, 1, 51)
    mesh = EvalMesh(x[:, None], [], ("x",))
    u = np.sin(np.pi * x)
    sols = [_solution("s00", {"u": u + 1e-8}, {"u": u}, {"strategy": "training", "attempt": 0},
                      4e-8),
            _solution("s01", {"u": 3 * u - 2e-7}, {"u": 3 * u},
                      {"strategy": "deflation", "attempt": 1}, 1.6e-7)]  # fmt: skip
    top, bottom = solutions_figure(mesh, sols, ("u",), "bratu1d (lam = 1)").axes
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend == ["s00 (training, attempt 0), rel L2 4.0e-08", "exact",
                      "s01 (deflation, attempt 1), rel L2 1.6e-07"]  # fmt: skip
    assert top.get_title() == "bratu1d (lam = 1)" and top.get_xlabel() == "x"
    assert bottom.get_yscale() == "log" and bottom.get_ylabel() == "|u − u_exact|"
    np.testing.assert_allclose(bottom.get_lines()[1].get_ydata(), 2e-7, rtol=1e-6)


def test_the_2d_plot_puts_each_field_beside_its_error_with_colour_bars():
    grid = Rectangle((0, 1), (0, 1)).eval_mesh(11)
    u = grid.points[:, 0] * grid.points[:, 1]
    sols = [_solution("s00", {"u": u + 0.01}, {"u": u}, None, 0.04),
            _solution("s01", {"u": -u}, None, {"strategy": "deflation", "attempt": 2})]  # fmt: skip
    fig = solutions_figure(grid, sols, ("u",), "mine")
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["s00: u", "s00: u − u_exact (rel L2 4.0e-02)",
                      "s01 (deflation, attempt 2): u",
                      "s01: residual (residual RMS 1.0e-06 (evaluation mesh))"]  # fmt: skip
    assert len(fig.axes) == 8  # four panels, four colour bars
    assert fig._suptitle.get_text() == "mine"


def test_one_paraview_file_opens_every_solution_and_time_slice(tmp_path):
    output = {"plots": False, "resolution": 11, "time_slices": 3}
    config = from_dict({"problem": {"name": "heat1d"}, **SHORT, "output": output})
    ps.solve(build_problem(config), config, out=tmp_path)
    root = ElementTree.parse(tmp_path / "solutions.pvd").getroot()
    datasets = [d.attrib for d in root.iter("DataSet")]
    assert [(d["timestep"], d["part"], d["name"]) for d in datasets] == [
        ("0", "0", "s00"), ("0.5", "0", "s00"), ("1", "0", "s00")]  # fmt: skip
    with meshio.xdmf.TimeSeriesReader(tmp_path / "solutions" / "s00.xdmf") as reader:
        reader.read_points_cells()
        for j, d in enumerate(datasets):
            _, data, _ = reader.read_data(j)
            np.testing.assert_array_equal(meshio.read(tmp_path / d["file"]).point_data["u"],
                                          data["u"])  # fmt: skip


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """bratu1d explored by two deflated searches side by side (one round)."""
    tmp = tmp_path_factory.mktemp("explored")
    toml = tmp / "bratu.toml"
    text = BRATU_CASE.format(strategy="deflation", attempts=2)
    toml.write_text(text.replace("patience = 2", "patience = 2\ntrajectories = 2"))
    return ps.solve(toml, out=tmp / "out")


def test_the_summary_says_where_each_residual_was_measured(explored):
    summary = json.loads((explored.run_dir / "summary.json").read_text())
    for listed in summary["solutions"]:
        assert listed["measured_on"]["residual_rms"].startswith("evaluation mesh")
        assert listed["measured_on"]["max_infeasibility"].startswith("validation points")
    assert summary["explore"]["measured"]["residual_rms"].startswith("collocation points")


def test_a_round_s_searches_are_timed_once_for_the_round(explored):
    attempts = explored.summary["explore"]["attempts"]
    assert [(a["attempt"], a["round"]) for a in attempts] == [(0, 0), (1, 1), (2, 1)]
    assert attempts[0]["round_search_s"] == 0.0  # no search: the trained network's polish
    shared = attempts[1]["round_search_s"]
    assert shared > 0 and attempts[2]["round_search_s"] == shared
    explore = explored.summary["phases"][-1]
    assert explore["phase"] == "explore"
    # the round's search and the attempts' own work account for most of the phase
    spent = shared + sum(a["wall_time_s"] for a in attempts)
    assert 0.5 * explore["wall_time_s"] < spent <= explore["wall_time_s"]


def test_a_file_with_several_mistakes_reports_each_on_its_own_line(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text('[problem]\nnam = "bratu1d"\n[training]\nsteps = -1\nlrr = 1\n'
                    '[sampling]\ninterior = "many"\n[trainig]\n')  # fmt: skip
    with pytest.raises(ConfigError) as err:
        ps.load_config(toml)
    lines = str(err.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "[problem] nam", "[training] steps", "[training] lrr", "[sampling] interior",
        "[trainig]"]  # fmt: skip
    assert all(line.startswith(f"{toml}: ") for line in lines)
    cli = CliRunner().invoke(main, ["check", str(toml)])
    assert cli.exit_code == 2
    assert cli.output.splitlines() == [f"error: {line}" for line in lines]


def test_problems_lists_plain_numbers_and_the_boundary_parts():
    out = CliRunner().invoke(main, ["problems"]).output
    assert "np.float64" not in out and "Disk(center=(0, 0), radius=1)" in out
    assert "    boundary parts: xmin, xmax, ymin, ymax" in out
    assert "    boundary parts: xmin, xmax, initial" in out  # heat1d


def test_status_json_says_its_time_in_iso_too(tmp_path):
    RunDir(tmp_path).set_status("running")
    status = json.loads((tmp_path / "status.json").read_text())
    when = datetime.fromisoformat(status["time_iso"])
    assert when.tzinfo is not None and abs(when.timestamp() - status["time"]) < 1


def test_the_error_column_of_a_large_mesh_is_measured_on_a_strided_subset():
    problem = build_problem(from_dict({"problem": {"name": "poisson2d"}}))
    mesh = problem.geometry().eval_mesh(301)  # 90 601 points
    probe = ExactError.of(problem, mesh)
    assert len(probe.points) == 45301 and probe.points.tolist() == mesh.points[::2].tolist()
    model = build_network(from_dict({"problem": {"name": "poisson2d"}}).model, problem, 0,
                          torch.float64, torch.device("cpu"))  # fmt: skip
    sol = evaluate_solution("s00", model, PinnObjective.sampled(
        problem, 16, 4, "halton", 0, torch.float64, torch.device("cpu")), mesh, 0)  # fmt: skip
    assert float(probe(model)) == pytest.approx(sol.rel_l2_error, rel=1e-2)  # a fair sample


def test_rows_of_a_batched_search_leave_the_error_out(explored):
    """Side by side, the searches step a stack of members, not the run's network: their rows
    have no error to give; the polish's rows (of the network) have."""
    rows = [r for r in explored.history if r["stage"] == "explore"]
    searched = [r for r in rows if r["phase"] == "deflation"]
    polished = [r for r in rows if r["phase"] == "gauss_newton"]
    assert searched and not any("rel_l2_error" in r for r in searched)
    assert polished and all("rel_l2_error" in r for r in polished)
