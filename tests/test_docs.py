"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one file run in order in one namespace, so a later block may use what an earlier
one defined (a class, a result). The working directory is a fresh temporary folder holding a copy
of ``problems/``, so ``problems/bratu1d.toml`` and ``outputs/...`` mean what they mean in a
checkout. Blocks keep their sizes small enough to run in seconds.

A block that must not run is marked by an HTML comment, with the reason, on the line right
before its opening fence (markdown viewers do not show it)::

    <!-- not-run: a whole bundled run (15 s); the tour's command runs the same -->
    ```python
    ...

Shell, TOML and text blocks are not run. Every relative link between these files must lead to a
file that exists and, with ``#anchor``, to a heading in it (GitHub's anchors).
"""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, reason not to run or None)`` of each ```python block of a markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            marker = MARKER.fullmatch(lines[i - 1].strip()) if i else None
            blocks.append((start, "\n".join(lines[start:end]) + "\n",
                           marker.group(1) if marker else None))  # fmt: skip
            i = end
        i += 1
    return blocks


def test_every_not_run_marker_says_why_and_stands_before_a_python_block():
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if line.lstrip().startswith("<!--") and "not-run" in line:
                marker = MARKER.fullmatch(line.strip())
                assert marker and marker.group(1), f"{path.name}:{n + 1}: <!-- not-run: why -->"
                assert n + 1 < len(lines) and lines[n + 1].strip() == "```python", (
                    f"{path.name}:{n + 1}: a not-run marker must be right before a ```python fence"
                )


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_the_python_blocks_run(path, tmp_path, monkeypatch):
    blocks = python_blocks(path)
    shutil.copytree(ROOT / "problems", tmp_path / "problems")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for line, code, reason in blocks:
        if reason is None:
            exec(compile(code, f"{path.name}, block at line {line}", "exec"), namespace)


def _outside_code(path: Path) -> list[str]:
    """The lines of a markdown file that are not inside a fenced block."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to '-'."""
    headings = [line.lstrip("#").strip() for line in _outside_code(path) if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_link_between_the_docs_leads_somewhere():
    broken = []
    for path in FILES:
        for line in _outside_code(path):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto: not checked here
                file, _, anchor = target.partition("#")
                dest = (path.parent / file).resolve() if file else path
                if not dest.exists():
                    broken.append(f"{path.name}: {target} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                    broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_test_command_is_the_one_ci_runs():
    command = "pip install torch==2.13.0 -e '.[test]' && python -m pytest -q"
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
