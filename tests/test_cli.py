"""The CLI through click's runner: solve, check, problems, and one-line errors with exit code 2."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinnsolve.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[problem]
name = "bratu1d"
[training]
steps = 20
log_every = 10
[polish]
method = "none"
[output]
plots = false
resolution = 11
"""


@pytest.fixture
def runner():
    return CliRunner()


def write(tmp_path, text, name="p.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_solve_writes_the_run_folder(runner, tmp_path):
    f = write(tmp_path, TINY)
    out = tmp_path / "run"
    result = runner.invoke(main, ["solve", str(f), "--out", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "finished: bratu1d on cpu (float64), 20 steps" in result.output
    assert "s00: residual rms" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 2 and summary["steps"] == 20
    again = runner.invoke(main, ["solve", str(f), "--out", str(out)])
    assert again.exit_code == 2 and "pass --force" in again.output
    forced = runner.invoke(main, ["solve", str(f), "--out", str(out), "--force", "--quiet"])
    assert forced.exit_code == 0 and forced.output == ""


def test_python_dash_m(tmp_path):
    """``python -m pinnsolve`` goes through ``cli.run`` (the console entry): exit codes and the
    one-line error survive it."""
    import subprocess
    import sys

    def pinnsolve(*args):
        return subprocess.run([sys.executable, "-m", "pinnsolve", *args], capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    proc = pinnsolve("problems")
    assert proc.returncode == 0 and "bratu1d" in proc.stdout
    missing = pinnsolve("solve", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "none.toml" in missing.stderr


def test_check_and_problems(runner):
    result = runner.invoke(main, ["check", str(ROOT / "problems" / "my_pde.toml")])
    assert result.exit_code == 0 and "ok:" in result.output and "'kappa': 2.0" in result.output
    result = runner.invoke(main, ["problems"])
    assert result.exit_code == 0
    for name in ("poisson2d", "bratu1d", "heat1d"):
        assert f"{name}: " in result.output
    assert "lam = 1  [0, inf]" in result.output


@pytest.mark.parametrize(("text", "message"), [
    ("[problem]\nname = 'bratu9d'\n", "[problem] name: unknown problem 'bratu9d'"),
    ("[problem]\nname = 'bratu1d'\n[problem.params]\nlamda = 2\n",
     "[problem.params] lamda: problem 'bratu1d' has no parameter 'lamda' (did you mean 'lam'?)"),
    ("[problem]\nname = 'bratu1d'\n[problem.params]\nlam = 'x'\n",
     "[problem.params] lam: expected a number, got 'x'"),
    ("[problem]\nname = 'gone.py:X'\n", "[problem] name: problem file"),
    ("[problem\n", "invalid TOML"),
    ("[problem]\nname = 'bratu1d'\n[training]\nlr = -1\n", "[training] lr: expected a value > 0"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["check", "solve"])
def test_errors_are_one_line_exit_2(runner, tmp_path, text, message, command):
    f = write(tmp_path, text)
    result = runner.invoke(
        main, [command, str(f), "--out", str(tmp_path / "o")][: 2 if command == "check" else 4]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_cuda_without_cuda_is_a_clear_error(runner, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = runner.invoke(main, ["solve", str(write(tmp_path, TINY)), "--device", "cuda",
                                  "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2
    assert (
        "p.toml: [run] device: 'cuda' was asked for but torch sees no CUDA device" in result.output
    )


def test_missing_file(runner, tmp_path):
    result = runner.invoke(main, ["check", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "nope.toml: file not found" in result.output


def test_debug_shows_the_traceback(runner, tmp_path):
    f = write(tmp_path, "[problem]\nname = 'nope'\n")
    result = runner.invoke(main, ["--debug", "check", str(f)])
    assert result.exit_code != 2 and result.exception is not None
