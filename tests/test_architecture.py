"""The package's layers (docs/architecture.md): a module imports only from its own layer or
below, and no import circle exists. Read from the source with ``ast`` (function-level and
``TYPE_CHECKING`` imports count too), so a wrong import fails here before it tangles the tree."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pinnsolve"

#: bottom to top; a module belongs to the first layer one of whose prefixes it starts with
LAYERS = [
    ("pinnsolve.errors", "pinnsolve.version", "pinnsolve.devices", "pinnsolve.user_code"),
    ("pinnsolve.derivatives",),
    ("pinnsolve.problem",),
    ("pinnsolve.ansatz", "pinnsolve.constraints", "pinnsolve.objective"),
    ("pinnsolve.optim",),
    ("pinnsolve.parallel", "pinnsolve.io"),
    ("pinnsolve.train",),
    ("pinnsolve.explore",),
    ("pinnsolve.build", "pinnsolve.run", "pinnsolve.solver", "pinnsolve.sweep", "pinnsolve.cli",
     "pinnsolve.__main__", "pinnsolve"),
]  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = f
    return found


def _layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "pinnsolve"):
            return i
    assert module == "pinnsolve", f"{module} is in no layer: add it to LAYERS and the docs"
    return len(LAYERS) - 1


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the pinnsolve modules it imports (a name imported from a package counts as the
    submodule when it is one, else as the package)."""
    edges = {}
    for name, f in modules.items():
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        edges[name] = {t for t in targets if t in modules and t != name}
    return edges


def test_every_import_goes_to_the_same_layer_or_below():
    modules = _modules()
    upward = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in _imports(modules).items()
        for t in targets
        if _layer(t) > _layer(m)
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circles():
    edges = _imports(_modules())
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges[m]):
            if t == "pinnsolve":  # the re-export hub: nothing inside imports it back
                continue
            assert state.get(t) != 1, "import circle: " + " -> ".join([*path, m, t])
            if t not in state:
                visit(t, [*path, m])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_the_layer_table_holds_a_real_import():
    """The checks above read imports at all: the solver imports the run, the run the build."""
    edges = _imports(_modules())
    assert "pinnsolve.run" in edges["pinnsolve.solver"]
    assert "pinnsolve.explore.explorer" in edges["pinnsolve.run"]
    assert _layer("pinnsolve.explore.strategies.deflation") == 7
