"""torchrun with two CPU processes (gloo): collocation sharding and explorer rounds split over the
ranks give what one process gives, and a failing rank ends the run instead of hanging it."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bratu_case import BRATU
from elastica_case import ELASTICA

from pinnsolve import solve
from pinnsolve.parallel.distributed import Communicator
from pinnsolve.problem.pdes.bratu import Bratu1D

#: a 2-process run of the small case (``both_ways``) on 2 idle cores, measured
QUIET_RUN_S = 20
#: the longest any torchrun here may take: the quiet time with room for a machine whose 2 cores
#: run other jobs too (load 6–9 made runs ~5× slower); beyond it, a run hangs
TORCHRUN_LIMIT_S = 15 * QUIET_RUN_S
#: the explorer's searches in the shared case (rounds of two)
EXPLORER_ATTEMPTS = 3


def torchrun_command(*args: str) -> list[str]:
    """``torchrun --standalone --nproc-per-node 2 -m pinnsolve ARGS``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "-m", "pinnsolve", *args]  # fmt: skip


#: one thread per rank (two ranks on CI's two cores)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(*args), capture_output=True, text=True, env=ENV,
                          timeout=TORCHRUN_LIMIT_S)  # fmt: skip


def torchrun_script(script: Path, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 SCRIPT ARGS``: a user's own script."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", str(script), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=ENV,
                          timeout=TORCHRUN_LIMIT_S)  # fmt: skip


#: Put first in a script under torchrun: registered before pinnsolve's exit hook, it runs after
#: it (atexit runs the last registered first) and says whether gloo's worker threads (torch
#: names them ``pt_gloo_runloop``) are still there when the interpreter starts finalizing, which
#: is what let a finished rank abort ("terminate called without an active exception") in some
#: runs only; this way every run shows it.
EXIT_PROBE = """
import atexit
import os

def _gloo_threads_left():
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm_file:
                names.append(comm_file.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    if "pt_gloo_runloop" in names:
        print("gloo's worker threads outlived the process group", flush=True)

atexit.register(_gloo_threads_left)
"""
THREADS_LEFT = "gloo's worker threads outlived the process group"


def _signal_tree(pid: int, sig: int) -> None:
    """``sig`` to torchrun's process group and to every rank's: torchrun starts each rank in a
    session of its own, so a signal to torchrun's group alone leaves the ranks running (they
    then finished the run behind the test's back, and ``--resume`` found nothing to resume)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    groups = set()
    for member in tree:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            groups.add(os.getpgid(member))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)


def _failure(run: subprocess.CompletedProcess) -> str:
    """What a failed torchrun said: pinnsolve's one-line errors first (a rank's ``error: …``
    line is otherwise pushed out of the tail by the other rank's traceback), then the tail."""
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    return "\n".join([*errors, run.stderr[-3000:]])


def test_shards_cover_every_row_once():
    for n in (0, 1, 2, 7, 64):
        for world in (1, 2, 3):
            parts = [Communicator(r, world).shard(n) for r in range(world)]
            rows = [i for p in parts for i in range(n)[p]]
            assert rows == list(range(n))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def _lower_branch_integral() -> float:
    x = torch.linspace(0, 1, 20001, dtype=torch.float64).reshape(-1, 1)
    from pinnsolve.derivatives.fields import Coords

    u = Bratu1D(lam=1.0).exact_solutions(Coords(x, ("x",)))[0]["u"].numpy()
    return float(np.trapezoid(u, x.numpy().ravel()))


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    """The same file run by one process and by two: Adam and the L-BFGS polish sharded (with an
    inequality on the interior points, sharded too, and an integral, evaluated whole), then
    restarts in rounds of two, one search per rank."""
    tmp = tmp_path_factory.mktemp("distributed")
    f = tmp / "bratu.toml"
    f.write_text(_case())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: the same arithmetic, so searches agree bit for bit
    try:
        one = solve(f, out=tmp / "one")
    finally:
        torch.set_num_threads(threads)
    run = torchrun("solve", str(f), "--out", str(tmp / "two"), "-q")
    assert run.returncode == 0, _failure(run)
    return one, json.loads((tmp / "two" / "summary.json").read_text())


def _case() -> str:
    return BRATU.format(strategy="restarts", attempts=EXPLORER_ATTEMPTS).replace(
        "patience = 2", "patience = 0\ntrajectories = 2"
    ).replace('method = "gauss_newton"', 'method = "lbfgs+gauss_newton"\nsteps = 40') + f"""
[[conditions]]
kind = "inequality"
op = ">="
quantity = "u"
target = 0
[[conditions]]
kind = "integral"
target = {_lower_branch_integral()!r}
"""  # fmt: skip


def test_two_processes_train_like_one(both_ways):
    """Sharded, only the order of the sums differs: Adam's 300 steps end equal to ~1e-16; L-BFGS's
    line searches amplify that rounding (measured 5e-8 after 40 iterations); the 100 Gauss–Newton
    steps (rows split over the ranks) end at the residual's floor, where such differences are
    relative 1e-5."""
    one, two = both_ways
    assert two["status"] == "finished"
    assert two["distributed"] == {"ranks": 2, "shard_collocation": True}
    phases_one = {p["phase"]: p for p in one.summary["phases"]}
    tolerance = {"adam": 1e-12, "lbfgs": 1e-6, "gauss_newton": 1e-3}
    assert [p["phase"] for p in two["phases"]] == ["adam", "lbfgs", "gauss_newton", "explore"]
    for phase in two["phases"][:3]:
        name = phase["phase"]
        assert phase["steps"] == phases_one[name]["steps"]
        expected = phases_one[name]["final_loss"]
        assert phase["final_loss"] == pytest.approx(expected, rel=tolerance[name])


def test_two_processes_explore_like_one(both_ways):
    """Restarts do not depend on the training: after attempt 0 (the training's result, equal to
    rounding), each search ran on one rank and equals the one process's bit for bit."""
    one, two = both_ways
    log_one = one.summary["explore"]["attempts"]
    log_two = two["explore"]["attempts"]
    assert [a["attempt"] for a in log_two] == [0, 1, 2, 3]
    assert [a["outcome"] for a in log_two] == [a["outcome"] for a in log_one]
    assert log_two[0]["residual_rms"] == pytest.approx(log_one[0]["residual_rms"], rel=1e-3)
    for a, b in zip(log_two[1:], log_one[1:], strict=True):
        assert a["residual_rms"] == b["residual_rms"]
    assert len(two["solutions"]) == len(one.solutions)
    for a, b in zip(two["solutions"], one.solutions, strict=True):
        assert a["rel_l2_error"] == pytest.approx(b.rel_l2_error, rel=1e-2)
        assert a["provenance"]["attempt"] == b.provenance["attempt"]


def test_bbi_training_on_shards_keeps_the_full_batch_energy(tmp_path):
    """BBI conserves the energy of the whole loss: every rank must see the same V. Sharded, with
    MDMM dual steps and two bounces in 300 steps, it ends where one process ends (measured
    5e-16 relative)."""
    f = tmp_path / "bbi.toml"
    f.write_text(BRATU.format(strategy="none", attempts=0).replace(
        "[training]", '[training]\noptimizer = "bbi"').replace(
        'method = "gauss_newton"', 'method = "none"') + "[bbi]\nthreshold0 = 100\n"
        "n_fixed_bounces = 2\n")  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = solve(f, out=tmp_path / "one").summary["phases"][0]
    finally:
        torch.set_num_threads(threads)
    run = torchrun("solve", str(f), "--out", str(tmp_path / "two"), "-q")
    assert run.returncode == 0, _failure(run)
    two = json.loads((tmp_path / "two" / "summary.json").read_text())["phases"][0]
    assert two["phase"] == one["phase"] == "bbi" and two["steps"] == one["steps"] == 300
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-12)


SHARDED_ROWS = (
    EXIT_PROBE
    + """
import sys
import torch
from pinnsolve.ansatz import build_mlp
from pinnsolve.problem.conditions import Inequality, Integral
from pinnsolve.io.config import Config
from pinnsolve.parallel.distributed import communicator
from pinnsolve.optim.gauss_newton import StackedResiduals
from pinnsolve.objective import PinnObjective
from pinnsolve.problem.pdes.bratu import Bratu1D
from pinnsolve.parallel.sharding import ShardedStackedResiduals
from pinnsolve.build import build_constraints

comm = communicator()
F64 = torch.float64
problem = Bratu1D(lam=1.0)
extra = [Integral(target=0.1), Inequality(part="interior", op=">=", target=0.0)]
objective = PinnObjective.sampled(problem, 33, 1, "uniform", 0, F64, "cpu", extra)
constraints = build_constraints(Config(), objective, F64, "cpu")
for lam in constraints.multipliers.values():  # nonzero multipliers enter the energy rows
    lam.copy_(torch.linspace(-0.5, 0.5, len(lam), dtype=F64))
model = build_mlp(1, 1, [5, 5], "tanh", "xavier_normal", problem.geometry().bounds(), 0, F64,
                  "cpu")
whole = StackedResiduals(objective, constraints, model)
mine = ShardedStackedResiduals(objective, constraints, model, comm)
r, ev = whole.residual()
r_mine, ev_gathered = mine.residual()
j, j_mine = whole.jacobian(), mine.jacobian()
checks = {
    "energy": abs(float(mine.total(r_mine @ r_mine) - r @ r)) / float(r @ r),
    "JtJ": float((mine.total(j_mine.T @ j_mine) - j.T @ j).abs().max() / (j.T @ j).abs().max()),
    "Jtr": float((mine.total(j_mine.T @ r_mine) - j.T @ r).abs().max() / (j.T @ r).abs().max()),
    "g": max(float((ev_gathered.g[k] - ev.g[k]).abs().max()) for k in ev.g),
    "objective": abs(float(ev_gathered.objective - ev.objective)),
}
print(comm.rank, checks)
# a plain exit: pinnsolve's exit hook must leave no gloo thread to race finalization
sys.exit(0 if all(v < 1e-12 for v in checks.values()) and comm.world == 2 else 1)
"""
)


def test_the_gauss_newton_rows_split_over_ranks_sum_to_the_whole(tmp_path):
    """Each rank's rows of R (interior share, pointwise condition shares with their multipliers,
    the integral's row on rank 0): ‖R‖², JᵀJ and Jᵀr summed over two ranks equal one process's,
    and the gathered evaluation is the whole one."""
    script = tmp_path / "rows.py"
    script.write_text(SHARDED_ROWS)
    run = torchrun_script(script)
    assert run.returncode == 0 and THREADS_LEFT not in run.stdout, run.stdout + _failure(run)


USER_SCRIPT = (
    EXIT_PROBE
    + """
import sys
import pinnsolve as ps

result = ps.solve(sys.argv[1], out=sys.argv[2])
if result.solutions:  # rank 0
    print("rel_l2_error", result.solutions[0].rel_l2_error)
"""
)


def test_a_users_script_under_torchrun_just_ends(tmp_path):
    """A script that calls ``solve`` and ends, nothing more (as docs/torchrun.md shows): every rank
    exits 0, with gloo's threads joined before finalization. The Gauss–Newton polish's
    ``torch.func`` imports ``torch._dynamo`` after the process group is up, which is what kept
    the group alive past ``destroy_process_group``
    (``pinnsolve.parallel.distributed._bind_torch_defaults_first``)."""
    script, f = tmp_path / "user.py", tmp_path / "bratu.toml"
    script.write_text(USER_SCRIPT)
    f.write_text(BRATU.format(strategy="none", attempts=0))
    run = torchrun_script(script, str(f), str(tmp_path / "out"))
    assert run.returncode == 0 and THREADS_LEFT not in run.stdout, run.stdout + _failure(run)
    assert "rel_l2_error" in run.stdout


FAULTY = '''
import os
from pinnsolve.problem.pdes.bratu import Bratu1D


class Faulty(Bratu1D):
    """Bratu, except that rank 1 fails in its first residual evaluation."""

    def residual(self, x, f, p):
        if os.environ.get("RANK") == "1":
            raise RuntimeError("rank 1 fails here on purpose")
        return super().residual(x, f, p)
'''


def test_a_failing_rank_ends_the_run_with_its_error(tmp_path):
    """torchrun stops rank 0 once rank 1 fails: a rank 0 left waiting at its collective would
    wait out the group's timeout (1800 s) and run into the torchrun limit (TimeoutExpired)."""
    (tmp_path / "faulty.py").write_text(FAULTY)
    f = tmp_path / "faulty.toml"
    f.write_text(BRATU.format(strategy="none", attempts=0).replace(
        'name = "bratu1d"', 'name = "faulty.py:Faulty"'))  # fmt: skip
    run = torchrun("solve", str(f), "--out", str(tmp_path / "out"), "-q")
    assert run.returncode != 0
    assert "rank 1 fails here on purpose" in run.stdout + run.stderr


def test_killed_inside_the_explorer_then_resumed_under_torchrun(both_ways, tmp_path):
    """SIGKILL to torchrun and both ranks once the first round is catalogued; ``--resume`` under
    torchrun repeats the interrupted round and ends with the uninterrupted run's catalogue."""
    one, _ = both_ways
    f = tmp_path / "bratu.toml"
    f.write_text(_case().replace("[output]", "[output]\ncheckpoint_every = 5"))
    out, log = tmp_path / "out", tmp_path / "killed.log"
    with log.open("w") as stderr:  # a file, not a pipe nobody reads while the run goes on
        proc = subprocess.Popen(torchrun_command("solve", str(f), "--out", str(out), "-q"),
                                env=ENV, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)  # fmt: skip
    ckpt, deadline = out / "checkpoints" / "latest.pt", time.monotonic() + TORCHRUN_LIMIT_S
    seen = None
    try:
        while True:
            assert proc.poll() is None, f"the run ended first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint inside the explorer appeared"
            stamp = ckpt.stat().st_mtime_ns if ckpt.exists() else None
            if stamp is not None and stamp != seen:
                # every new checkpoint is read with the run frozen, so the kill lands right
                # after it, however fast the run goes on
                _signal_tree(proc.pid, signal.SIGSTOP)
                seen = stamp
                explorer = torch.load(ckpt, weights_only=False).get("explorer")
                if explorer and 1 <= explorer["attempt"] <= EXPLORER_ATTEMPTS:
                    break
                _signal_tree(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
    finally:
        _signal_tree(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TORCHRUN_LIMIT_S)
    run = torchrun("solve", str(f), "--out", str(out), "--resume", "-q")
    assert run.returncode == 0, _failure(run)
    resumed = json.loads((out / "summary.json").read_text())
    assert [a["outcome"] for a in resumed["explore"]["attempts"]] == [
        a["outcome"] for a in one.summary["explore"]["attempts"]
    ]
    for a, b in zip(resumed["solutions"], one.summary["solutions"], strict=True):
        assert a["residual_rms"] == pytest.approx(b["residual_rms"], rel=1e-3)


def test_the_images_of_solutions_are_found_under_torchrun(tmp_path):
    """The symmetry images are split over the ranks like a round and judged in the same order:
    two processes find what one finds (u = 0, the searched member of the ± pair, and its image
    under u -> -u)."""
    f = tmp_path / "elastica.toml"
    f.write_text(ELASTICA.format(symmetries="true"))
    run = torchrun("solve", str(f), "--out", str(tmp_path / "two"), "-q")
    assert run.returncode == 0, _failure(run)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    log = summary["explore"]["attempts"]
    assert [a["strategy"] for a in log] == ["training", "deflation", "symmetry"]
    assert [a["outcome"] for a in log] == ["new", "new", "new"]
    errors = [s["rel_l2_error"] for s in summary["solutions"]]
    assert len(errors) == 3 and max(errors) <= 1e-5
