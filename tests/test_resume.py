"""Interrupted runs: SIGKILL then --resume, and SIGINT, end with the uninterrupted run's result."""

import json
import os
import signal
import subprocess
import sys
import time
import types

import meshio
import numpy as np
import pytest
from click.testing import CliRunner

from pinnsolve import solver
from pinnsolve.cli import main
from pinnsolve.errors import PinnsolveError
from pinnsolve.io.progress import Progress
from pinnsolve.io.rundir import RunDir

TOML = """
[problem]
name = "bratu1d"
[model]
hidden = [16, 16]
[sampling]
interior = 64
[training]
optimizer = "adam"
steps = 1500
lr = 3e-3
log_every = 10
[polish]
steps = 60
[output]
plots = false
resolution = 21
checkpoint_every = 100
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    f = tmp / "p.toml"
    f.write_text(TOML)
    result = CliRunner().invoke(main, ["solve", str(f), "--out", str(tmp / "full"), "-q"])
    assert result.exit_code == 0, result.output
    return tmp, f, meshio.read(tmp / "full" / "solutions" / "s00.vtu").point_data["u"]


def start(f, out):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "pinnsolve", "solve", str(f), "--out", str(out), "-q"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoint(out, proc, timeout=120):
    ckpt = out / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + timeout
    while not ckpt.exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def resume(f, out):
    result = CliRunner().invoke(main, ["solve", str(f), "--out", str(out), "--resume", "-q"])
    assert result.exit_code == 0, result.output
    return meshio.read(out / "solutions" / "s00.vtu").point_data["u"]


def test_sigkill_then_resume_matches_the_uninterrupted_run(setup):
    tmp, f, expected = setup
    out = tmp / "killed"
    proc = start(f, out)
    wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((out / "status.json").read_text())["status"] == "running"
    np.testing.assert_allclose(resume(f, out), expected, rtol=0, atol=1e-10)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"


def test_sigint_checkpoints_exports_and_resumes(setup):
    tmp, f, expected = setup
    out = tmp / "interrupted"
    proc = start(f, out)
    wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "interrupted"
    assert (out / "solutions" / "s00.vtu").exists()  # what it had is exported
    assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
    np.testing.assert_allclose(resume(f, out), expected, rtol=0, atol=1e-10)


def test_resume_refusals(setup, tmp_path):
    tmp, f, _ = setup
    runner = CliRunner()
    finished = runner.invoke(main, ["solve", str(f), "--out", str(tmp / "full"), "--resume"])
    assert finished.exit_code == 2 and "has finished; nothing to resume" in finished.output
    empty = runner.invoke(main, ["solve", str(f), "--out", str(tmp_path / "none"), "--resume"])
    assert empty.exit_code == 2 and "no run to resume" in empty.output
    both = runner.invoke(main, ["solve", str(f), "--resume", "--force"])
    assert both.exit_code == 2 and "choose one" in both.output


def test_a_checkpoint_with_other_settings_is_refused_in_one_line(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.set_status("interrupted")
    run.save_checkpoint({"config_hash": "written-by-other-settings"})
    with pytest.raises(PinnsolveError, match="resolved settings changed since this run started"):
        run.load_checkpoint("the-current-settings", "cpu")
    assert run.load_checkpoint("written-by-other-settings", "cpu")["config_hash"]


def test_a_signal_delivered_twice_is_one_stop_request_and_a_later_one_aborts(monkeypatch):
    """Under torchrun Ctrl-C reaches a rank twice (terminal and torchrun): the copy within
    SAME_SIGNAL_S must not turn the graceful stop into an abort; a real second Ctrl-C does."""
    trainer = types.SimpleNamespace(stop_requested=False)
    monkeypatch.setattr(solver, "SAME_SIGNAL_S", 0.5)
    with solver.graceful_stop(trainer, Progress(quiet=True)):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert trainer.stop_requested
        time.sleep(0.6)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)  # the handler runs between bytecodes of this thread
