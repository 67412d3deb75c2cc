"""The training loop's stopping rules, history and L-BFGS stop reasons, on tiny problems."""

import copy
import math

import pytest
import torch
from torch import nn

from pinnsolve.objective import Evaluation
from pinnsolve.train import StopRule, Trainer, flat


def quadratic_trainer(target=3.0, **kw):
    """min (w − target)² as a 'PDE' with one constraint value g = w − target."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False).double()
    w = model.weight

    def loss_fn():
        g = (w - target).reshape(1)
        ev = Evaluation(objective=g.square().sum(), residuals=[g], g={"c": g})
        return ev.objective, ev

    return Trainer(model, loss_fn, **kw), w


def test_adam_runs_its_budget_and_logs_every_n():
    rows = []
    trainer, _ = quadratic_trainer(progress=rows.append)
    out = trainer.adam(0.01, StopRule(max_steps=95, log_every=10))
    assert out.steps == 95 and out.stop_reason == "max_steps"
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    assert {"loss", "residual_mse", "c_rms", "c_max", "time_s", "phase"} <= set(rows[0])


def test_loss_threshold_stops():
    trainer, w = quadratic_trainer()
    out = trainer.adam(0.1, StopRule(max_steps=10_000, loss_threshold=1e-6, log_every=5))
    assert out.stop_reason == "loss_threshold" and out.steps < 10_000
    assert out.final_loss <= 1e-6


def test_no_improvement_stops():
    trainer, _ = quadratic_trainer(target=0.0)
    with torch.no_grad():
        trainer.model.weight.zero_()  # already at the minimum: nothing to improve
    out = trainer.adam(1e-3, StopRule(max_steps=10_000, patience=100, log_every=10))
    assert out.stop_reason == "no_improvement" and out.steps <= 120


def test_a_flat_loss_stops_and_a_rising_one_goes_on():
    trainer, _ = quadratic_trainer(target=0.0)
    with torch.no_grad():
        trainer.model.weight.zero_()  # already at the minimum: the loss stays 0
    out = trainer.adam(1e-3, StopRule(max_steps=10_000, flat_steps=100, log_every=10))
    assert out.stop_reason == "loss_flat" and out.steps == 110  # 100 steps after the first row
    assert flat([(0, 1.0), (100, 1.005)], 100, 1e-2)
    assert not flat([(0, 1.0), (100, 1.5)], 100, 1e-2)  # rising: the multipliers still move
    assert not flat([(0, 1.0), (99, 1.0)], 100, 1e-2)  # not yet that many steps


def test_time_limit_stops():
    trainer, _ = quadratic_trainer()
    out = trainer.adam(1e-6, StopRule(max_steps=10**7, deadline=0.0, log_every=10))
    assert out.stop_reason == "time_limit" and out.steps == 10


def test_non_finite_loss_stops():
    trainer, _ = quadratic_trainer(target=math.inf)
    out = trainer.adam(1e-3, StopRule(max_steps=100, log_every=10))
    assert out.stop_reason == "non_finite_loss"


def test_lbfgs_converges_and_says_why():
    trainer, w = quadratic_trainer()
    out = trainer.lbfgs(1.0, StopRule(max_steps=500, log_every=50))
    assert out.stop_reason.startswith("lbfgs: ")
    assert out.steps < 500
    assert abs(w.item() - 3.0) < 1e-8


def test_checkpoints_every_n_steps():
    saved = []
    trainer, _ = quadratic_trainer(
        checkpoint=lambda state: saved.append((state["phase"], state["step"])), checkpoint_every=20
    )
    trainer.adam(0.01, StopRule(max_steps=60, log_every=10))
    assert saved == [("adam", 20), ("adam", 40), ("adam", 60)]


def test_history_steps_continue_across_phases():
    trainer, _ = quadratic_trainer()
    trainer.adam(0.01, StopRule(max_steps=30, log_every=10))
    trainer.lbfgs(1.0, StopRule(max_steps=5, log_every=5))
    phases = [(r["phase"], r["step"]) for r in trainer.history.rows]
    assert phases[:3] == [("adam", 10), ("adam", 20), ("adam", 30)]
    assert phases[3][0] == "lbfgs" and phases[3][1] > 30


def test_bbi_phase_descends_and_logs_its_state():
    from pinnsolve.optim.bbi import BBIConfig

    trainer, w = quadratic_trainer()
    out = trainer.bbi(BBIConfig(lr=0.05, n_fixed_bounces=0, threshold=None), 0,
                      StopRule(max_steps=2000, log_every=100))  # fmt: skip
    assert out.phase == "bbi" and out.final_loss < 1e-6
    row = trainer.history.rows[-1]
    assert {"bbi_v", "bbi_energy", "bbi_pi_norm", "bbi_speed", "bbi_bounces"} <= set(row)


def test_dual_step_after_every_primal_step_and_outer_step_after_each_chunk():
    dual, outer = [], []
    trainer, _ = quadratic_trainer(dual_step=dual.append, outer_step=outer.append)
    trainer.adam(0.01, StopRule(max_steps=25, log_every=10))
    assert len(dual) == 25 and set(dual[0]) == {"c"}
    assert not dual[0]["c"].requires_grad
    trainer.lbfgs(1.0, StopRule(max_steps=3, log_every=1))
    assert 1 <= len(outer) <= 3


def resumable(phase_call, steps, every, stop_at=None):
    """Run a phase with checkpoints (model state captured too); optionally request a stop."""
    saved = []
    trainer, w = quadratic_trainer(checkpoint_every=every)
    # a deep copy, as torch.save makes: optimizer state tensors change in place afterwards
    trainer.checkpoint = lambda state: saved.append((copy.deepcopy(state), w.detach().clone(),
                                                     list(trainer.history.rows),
                                                     trainer.history.step))  # fmt: skip
    if stop_at is not None:
        trainer.progress = lambda row: setattr(
            trainer, "stop_requested", trainer.stop_requested or row["step"] >= stop_at
        )
    out = phase_call(trainer, None)
    return trainer, w, out, saved


@pytest.mark.parametrize("phase", ["adam", "lbfgs", "bbi"])
def test_resume_from_a_checkpoint_continues_exactly(phase):
    from pinnsolve.optim.bbi import BBIConfig

    rule = StopRule(max_steps=60, log_every=5)
    calls = {
        "adam": lambda t, r: t.adam(0.05, rule, resume=r),
        "lbfgs": lambda t, r: t.lbfgs(0.1, StopRule(max_steps=12, log_every=2), resume=r),
        "bbi": lambda t, r: t.bbi(BBIConfig(lr=0.02, threshold0=7, n_fixed_bounces=3), 3, rule,
                                  resume=r),
    }  # fmt: skip
    _, w_full, full, saved = resumable(calls[phase], 60, every=10 if phase != "lbfgs" else 4)
    state, w_saved, rows, step = saved[0]
    trainer, w = quadratic_trainer()
    with torch.no_grad():
        w.copy_(w_saved)
    trainer.history.rows, trainer.history.step = rows, step
    out = calls[phase](trainer, state)
    assert out.steps == full.steps
    assert torch.equal(w, w_full)


def test_stop_request_ends_at_a_step_boundary_with_a_checkpoint():
    rule = StopRule(max_steps=1000, log_every=10)
    trainer, w, out, saved = resumable(lambda t, r: t.adam(0.01, rule), 1000, every=0, stop_at=30)
    assert out.stop_reason == "interrupted" and out.steps == 30
    ((state, w_saved, _, _),) = saved
    assert state["step"] == 30 and torch.equal(w_saved, w.detach())


def flaky_trainer(bad_steps):
    """The quadratic, with a NaN injected into the loss at the given evaluation counts."""
    trainer, w = quadratic_trainer()
    inner, calls = trainer.loss_fn, {"n": 0}

    def loss_fn():
        calls["n"] += 1
        loss, ev = inner()
        if calls["n"] in bad_steps:
            loss = loss * math.nan
        return loss, ev

    trainer.loss_fn = loss_fn
    return trainer, w


def test_nan_rolls_back_with_a_smaller_step_and_recovers():
    trainer, w = flaky_trainer({25})
    out = trainer.adam(0.05, StopRule(max_steps=400, log_every=10))
    assert out.stop_reason == "max_steps" and math.isfinite(out.final_loss)
    ((event),) = trainer.events
    assert event["step"] == 20 and event["lost_steps"] == 10 and "halved to 0.025" in event["event"]
    assert abs(w.item() - 3.0) < 1e-3
    assert trainer.history.rows[-1]["rollbacks"] == 1
    assert all(math.isfinite(r["loss"]) for r in trainer.history.rows)


def test_persistent_nan_gives_up_as_diverged_at_the_last_good_state():
    trainer, w = flaky_trainer(set(range(15, 10_000)))
    out = trainer.adam(0.05, StopRule(max_steps=400, log_every=10))
    assert out.stop_reason == "non_finite_loss" and len(trainer.events) == 3
    assert math.isfinite(w.item()) and trainer.history.step == 10
