"""A cheap elastica1d explorer run (λ = 15: u = 0 and one ± pair), shared by the symmetry tests
and their torchrun twin. ``{symmetries}``: "true" or "false"."""

ELASTICA = """
[problem]
name = "elastica1d"
[problem.params]
lam = 15.0
[model]
hidden = [16, 16]
[sampling]
interior = 64
[training]
optimizer = "adam"
steps = 300
lr = 3e-3
[polish]
method = "lbfgs+gauss_newton"
steps = 200
gauss_newton_steps = 100
[explore]
strategy = "deflation"
attempts = 1
patience = 1
symmetries = {symmetries}
"""
