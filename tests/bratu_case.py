"""The small bratu1d case the explorer and continuation tests share."""

import torch

from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.io.config import Config
from pinnsolve.objective import PinnObjective
from pinnsolve.problem.pdes.bratu import Bratu1D

F64 = torch.float64

BRATU = """
[problem]
name = "bratu1d"
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
strategy = "{strategy}"
attempts = {attempts}
patience = 2
[output]
plots = false
resolution = 51
"""


def bratu_setup(seed=0):
    problem = Bratu1D(lam=1.0)
    objective = PinnObjective.sampled(problem, 32, 1, "uniform", seed, F64, "cpu")
    constraints = build_constraints(Config(), objective, F64, "cpu")
    model = build_mlp(1, 1, [6, 6], "tanh", "xavier_normal", problem.geometry().bounds(), seed,
                      F64, "cpu")  # fmt: skip
    return objective, constraints, model
