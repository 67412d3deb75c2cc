"""The README's picture: the solutions of a bratu1d run beside the closed form.

pinnsolve solve problems/bratu1d.toml
python docs/images/bratu1d.py outputs/bratu1d docs/images/bratu1d.png
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import meshio  # noqa: E402

run, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = json.loads((run / "summary.json").read_text())
fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
for s in summary["solutions"]:
    mesh = meshio.read(run / s["file"])
    x, u = mesh.points[:, 0], mesh.point_data["u"]
    how = s["provenance"]["strategy"]
    ax.plot(x, u, lw=2.5, label=f"{s['name']} ({how}), rel L2 {s['rel_l2_error']:.1e}")
    ax.plot(x, mesh.point_data["u_exact"], "k--", lw=1)
ax.plot([], [], "k--", lw=1, label="closed form")
lam = summary["params"]["lam"]
ax.set(xlabel="x", ylabel="u", title=f"u'' + λ exp(u) = 0, u(0) = u(1) = 0, λ = {lam:g}")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out)
