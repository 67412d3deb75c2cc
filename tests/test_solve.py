"""End-to-end accuracy against closed forms, and the run folder's contract."""

import json
import math

import meshio
import numpy as np
import pytest
import torch

import pinnsolve as ps
from pinnsolve.build import build_problem
from pinnsolve.errors import PinnsolveError
from pinnsolve.io.config import from_dict

SMALL_OUTPUT = {"plots": False, "resolution": 41}


def run(data, out, **kw):
    config = from_dict(data)
    return ps.solve(build_problem(config), config, out=out, **kw)


@pytest.fixture(scope="module")
def bratu(tmp_path_factory):
    out = tmp_path_factory.mktemp("bratu")
    data = {
        "problem": {"name": "bratu1d", "params": {"lam": 1.0}},
        "model": {"hidden": [16, 16]},
        "sampling": {"interior": 64},
        "training": {"optimizer": "lbfgs", "steps": 400},
        "polish": {"method": "none"},
        "output": {"plots": True},
    }
    return run(data, out), out


def test_bratu_converges_to_the_lower_branch(bratu):
    result, _ = bratu
    (sol,) = result.solutions
    assert sol.exact_branch == 0
    assert sol.rel_l2_error <= 1e-4
    assert sol.rel_l2_to_exact[1] > 0.5  # far from the upper branch: the two are distinct
    assert sol.max_infeasibility <= 1e-5


def test_poisson2d_lbfgs_float64(tmp_path):
    data = {
        "problem": {"name": "poisson2d"},
        "model": {"hidden": [20, 20]},
        "sampling": {"interior": 400, "boundary": 32},
        "training": {"optimizer": "lbfgs", "steps": 600},
        "constraints": {"method": "penalty", "weight": 100.0},
        "polish": {"method": "none"},
        "output": SMALL_OUTPUT,
    }
    (sol,) = run(data, tmp_path).solutions
    assert sol.rel_l2_error <= 1e-3


def test_heat1d_and_its_time_series(tmp_path):
    data = {
        "problem": {"name": "heat1d"},
        "model": {"hidden": [20, 20]},
        "sampling": {"interior": 400, "boundary": 32},
        "training": {"optimizer": "lbfgs", "steps": 500},
        "polish": {"method": "none"},
        "output": {"resolution": 21, "time_slices": 6, "plots": True},
    }
    result = run(data, tmp_path)
    (sol,) = result.solutions
    assert sol.rel_l2_error <= 1e-2
    assert sol.file == "solutions/s00.xdmf"
    with meshio.xdmf.TimeSeriesReader(tmp_path / sol.file) as reader:
        points, _ = reader.read_points_cells()
        assert reader.num_steps == 6 and len(points) == 21
        t, data_last, _ = reader.read_data(5)
    assert t == pytest.approx(1.0)
    exact = math.exp(-(math.pi**2)) * np.sin(math.pi * points[:, 0])
    np.testing.assert_allclose(data_last["u_exact"], exact, atol=1e-12)
    assert {"u", "residual", "u_error"} <= set(data_last)
    assert (tmp_path / "plots" / "solutions.png").stat().st_size > 0


def test_vtu_round_trip(bratu):
    result, out = bratu
    mesh = meshio.read(out / "solutions" / "s00.vtu")
    assert len(mesh.points) == len(result.mesh.points) == 1001  # the default on a line
    assert mesh.cells[0].type == "line"
    assert {"u", "residual", "u_exact", "u_error"} <= set(mesh.point_data)
    np.testing.assert_allclose(mesh.point_data["u"], result.solutions[0].values["u"])


def test_summary_and_run_folder(bratu):
    result, out = bratu
    summary = json.loads((out / "summary.json").read_text())
    for key in ("problem", "params", "device", "dtype", "seed", "wall_time_s", "steps", "solutions",
                "status", "config_hash", "stop_reason", "phases"):  # fmt: skip
        assert key in summary, key
    assert summary["problem"] == "bratu1d" and summary["params"] == {"lam": 1.0}
    assert summary["status"] == "finished" and summary["dtype"] == "float64"
    (sol,) = summary["solutions"]
    for key in ("name", "file", "residual_rms", "max_infeasibility", "rel_l2_error"):
        assert key in sol, key
    assert sol["rel_l2_error"] == pytest.approx(result.solutions[0].rel_l2_error)
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    resolved = ps.load_config(out / "config.resolved.toml")
    assert resolved.problem.name == "bratu1d" and resolved.training.steps == 400
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["step", "phase", "time_s", "loss", "residual_mse"]
    assert "dirichlet_boundary_max" in header
    assert (out / "plots" / "history.png").stat().st_size > 0
    ckpt = torch.load(out / "checkpoints" / "latest.pt", weights_only=False)
    assert ckpt["history_step"] == summary["steps"] and "model" in ckpt
    assert ckpt["phase_state"] is None and ckpt["phase_index"] == 1  # after the last phase
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"


def test_finished_run_is_not_overwritten_without_force(bratu):
    _, out = bratu
    data = {"problem": {"name": "bratu1d"}, "training": {"steps": 1}, "polish": {"method": "none"}}
    with pytest.raises(PinnsolveError, match="holds a finished run; pass force=True"):
        run(data, out)


def test_force_replaces_the_run(tmp_path):
    data = {"problem": {"name": "bratu1d"}, "training": {"steps": 5, "log_every": 5},
            "polish": {"method": "none"}, "output": SMALL_OUTPUT}  # fmt: skip
    run(data, tmp_path)
    result = run(data, tmp_path, force=True)
    assert result.summary["steps"] == 5


def test_same_seed_same_result(tmp_path):
    data = {"problem": {"name": "bratu1d"}, "training": {"steps": 30, "log_every": 10},
            "polish": {"method": "none"}, "output": SMALL_OUTPUT}  # fmt: skip
    a = run(data, tmp_path / "a").solutions[0].values["u"]
    b = run(data, tmp_path / "b").solutions[0].values["u"]
    np.testing.assert_array_equal(a, b)
    data["run"] = {"seed": 1}
    c = run(data, tmp_path / "c").solutions[0].values["u"]
    assert not np.array_equal(a, c)


def test_default_run_folder_is_outputs_stem(in_tmp):
    f = in_tmp / "tiny.toml"
    f.write_text('[problem]\nname = "bratu1d"\n[training]\nsteps = 2\nlog_every = 1\n'
                 '[polish]\nmethod = "none"\n[output]\nplots = false\n')  # fmt: skip
    result = ps.solve(f)
    assert result.run_dir == in_tmp.joinpath("outputs", "tiny").relative_to(in_tmp)
    assert (in_tmp / "outputs" / "tiny" / "summary.json").exists()


@pytest.mark.gpu
def test_poisson2d_on_cuda(tmp_path):
    data = {
        "problem": {"name": "poisson2d"},
        "model": {"hidden": [20, 20]},
        "sampling": {"interior": 400, "boundary": 32},
        "training": {"optimizer": "lbfgs", "steps": 600},
        "constraints": {"method": "penalty", "weight": 100.0},
        "polish": {"method": "none"},
        "run": {"device": "cuda"},
        "output": SMALL_OUTPUT,
    }
    result = run(data, tmp_path)
    assert result.summary["device"].startswith("cuda")
    assert result.solutions[0].rel_l2_error <= 1e-3


def test_bbi_solves_poisson2d_before_polish(tmp_path):
    """optimizer = "bbi" (with MDMM constraints, energy re-synchronised after every multiplier
    update) reaches rel L2 ≤ 1e-2 with no polish stage."""
    data = {
        "problem": {"name": "poisson2d"},
        "model": {"hidden": [20, 20]},
        "sampling": {"interior": 400, "boundary": 32},
        "training": {"optimizer": "bbi", "steps": 3000, "lr": 1e-2, "log_every": 100},
        "bbi": {"threshold0": 500, "n_fixed_bounces": 2},
        "polish": {"method": "none"},
        "output": SMALL_OUTPUT,
    }
    result = run(data, tmp_path)
    assert result.summary["phases"][0]["phase"] == "bbi"
    assert result.solutions[0].rel_l2_error <= 1e-2
    last = result.history[-1]
    assert last["bbi_bounces"] == 2 and last["bbi_resyncs"] > 0
    assert last["bbi_energy"] >= last["bbi_v"] > 0


def test_a_diverging_run_is_reported_not_exported(tmp_path):
    class Broken(ps.Problem):
        """A residual that is NaN everywhere: nothing can be learned."""

        domain = ps.Interval(0.0, 1.0)

        def residual(self, x, f, p):
            return f.u * math.nan

    config = from_dict({"problem": {"name": "broken"}, "training": {"steps": 100, "log_every": 10},
                        "polish": {"method": "none"}, "output": SMALL_OUTPUT})  # fmt: skip
    result = ps.solve(Broken(), config, out=tmp_path)
    assert result.status == "diverged" and result.solutions == []
    assert len(result.summary["numerical_faults"]) == 3
    assert result.summary["stop_reason"] == "non_finite_loss"
    assert not (tmp_path / "solutions").exists()
