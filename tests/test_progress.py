"""Progress output: plain lines off a terminal, nothing when quiet, BBI quantities shown."""

import io

from pinnsolve.io.progress import Progress

ROW = {"step": 100, "phase": "bbi", "time_s": 1.5, "loss": 0.25, "phase_total": 1000,
       "phase_step": 100, "stage": "train",
       "dirichlet_boundary_max": 0.01, "bbi_v": 0.2, "bbi_energy": 3.0, "bbi_pi_norm": 4.0,
       "bbi_bounces": 2.0}  # fmt: skip


def test_plain_lines_when_not_a_tty():
    out = io.StringIO()
    p = Progress(stream=out, interval_s=0.0)
    p(ROW)
    p({**ROW, "step": 200, "phase_step": 200})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert "step 100/1000" in lines[0] and "step 200/1000" in lines[1]
    assert "max|bc| 1.00e-02" in lines[0] and "E 3.00e+00" in lines[0] and "bounces 2" in lines[0]


def test_quiet_prints_nothing():
    out = io.StringIO()
    Progress(stream=out, quiet=True)(ROW)
    assert out.getvalue() == ""


def test_phase_steps_restart_at_each_phase():
    out = io.StringIO()
    p = Progress(stream=out, interval_s=0.0)
    p({**ROW, "phase": "adam", "step": 50, "phase_step": 50})
    p({**ROW, "phase": "lbfgs", "step": 80, "phase_step": 30})
    assert "step 30/1000" in out.getvalue().splitlines()[1]


def test_the_explorer_s_phases_are_named_apart_and_never_count_past_their_total():
    """Training's Levenberg–Marquardt polish, then the explorer's polish of the same name, then
    one more polish: each counts its own steps (issue 24: it showed ``step 200/100``)."""
    out = io.StringIO()
    p = Progress(stream=out, interval_s=0.0)
    gn = {**ROW, "phase": "gauss_newton", "phase_total": 100}
    p({**gn, "step": 1100, "phase_step": 100})
    p({**gn, "step": 1200, "phase_step": 100, "stage": "explore"})
    p({**gn, "step": 1300, "phase_step": 100, "stage": "explore"})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("gauss_newton") and "step 100/100" in lines[0]
    assert lines[1].startswith("explore/gauss_newton") and "step 100/100" in lines[1]
    assert "step 100/100" in lines[2]


def test_a_resumed_phase_counts_on_from_where_it_stopped():
    """The row says how far its phase is (a checkpoint restores it), not the display's memory."""
    out = io.StringIO()
    p = Progress(stream=out, interval_s=0.0)
    p({**ROW, "phase": "adam", "step": 1006, "phase_step": 306, "phase_total": 700})
    assert "step 306/700" in out.getvalue()
