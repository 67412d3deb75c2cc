"""Problem-file validation: every error path names the file, the key and what was expected."""

import tomllib
from pathlib import Path

import pytest
import torch

from pinnsolve.errors import ConfigError
from pinnsolve.io.config import Config, from_dict, load_config, option_docs, to_toml

ROOT = Path(__file__).resolve().parents[1]
P = {"problem": {"name": "bratu1d"}}


@pytest.mark.parametrize(("data", "message"), [
    ({}, r"\[problem\] name: required"),
    ({**P, "trainig": {}}, r"\[trainig\]: unknown section \(did you mean \[training\]\?\)"),
    ({**P, "training": 3}, r"\[training\]: expected a table"),
    ({**P, "training": {"lrr": 1.0}}, r"\[training\] lrr: unknown key \(did you mean 'lr'\?\)"),
    ({**P, "training": {"lr": "fast"}}, r"\[training\] lr: expected a number, got 'fast'"),
    ({**P, "training": {"lr": 0}}, r"\[training\] lr: expected a value > 0, got 0"),
    ({**P, "training": {"steps": 1.5}}, r"\[training\] steps: expected an integer, got 1.5"),
    ({**P, "training": {"steps": True}}, r"\[training\] steps: expected an integer, got True"),
    ({**P, "training": {"steps": -1}}, r"\[training\] steps: expected a value >= 0, got -1"),
    ({**P, "training": {"optimizer": "adamw"}},
     r"\[training\] optimizer: expected one of 'adam', 'lbfgs', 'bbi', got 'adamw' "
     r"\(did you mean 'adam'\?\)"),
    ({**P, "training": {"lr": float("inf")}}, r"\[training\] lr: expected a finite number"),
    ({**P, "model": {"hidden": []}}, r"\[model\] hidden: expected at least one entry"),
    ({**P, "model": {"hidden": [16, 0]}}, r"\[model\] hidden: expected a value >= 1, got 0"),
    ({**P, "model": {"hidden": [16, "a"]}}, r"\[model\] hidden: expected a list of integers"),
    ({**P, "model": {"activation": "relu"}}, r"\[model\] activation: expected one of"),
    ({**P, "sampling": {"method": "sobel"}}, r"did you mean 'sobol'"),
    ({**P, "sampling": {"interior": -5}}, r"\[sampling\] interior: expected a value >= 0"),
    ({**P, "sampling": {"corner_share": 1}}, r"\[sampling\] corner_share: expected a value < 1"),
    ({**P, "sampling": {"corner_grading": 2.5}},
     r"\[sampling\] corner_grading: expected a value < 2, got 2.5"),
    ({**P, "sampling": {"corner_radius": 0}}, r"\[sampling\] corner_radius: expected a value > 0"),
    ({**P, "run": {"device": "gpu"}}, r"\[run\] device: expected one of 'auto', 'cpu', 'cuda'"),
    ({**P, "run": {"dtype": "float16"}}, r"\[run\] dtype: expected one of"),
    ({**P, "run": {"seed": -3}}, r"\[run\] seed: expected a value >= 0"),
    ({**P, "output": {"plots": "yes"}}, r"\[output\] plots: expected true or false"),
    ({**P, "output": {"resolution": 1}}, r"\[output\] resolution: expected a value >= 2"),
    ({"problem": {"name": 3}}, r"\[problem\] name: expected a string"),
    ({"problem": {"name": "x", "params": 1}}, r"\[problem\] params: expected a table"),
    ({"problem": {"nmae": "x"}}, r"\[problem\] nmae: unknown key \(did you mean 'name'\?\)"),
])  # fmt: skip
def test_config_errors_name_file_and_key(data, message):
    with pytest.raises(ConfigError, match=message) as err:
        from_dict(data, source="probs/x.toml")
    text = str(err.value)
    assert text.startswith("probs/x.toml: ") and "\n" not in text


def test_toml_syntax_error_has_line_number(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[problem]\nname = "bratu1d"\n[training]\nlr = = 3\n')
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 4"):
        load_config(f)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: file not found"):
        load_config(tmp_path / "nope.toml")
    f = tmp_path / "bin.toml"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="bin.toml: cannot read"):
        load_config(f)


def test_defaults_resolved_round_trip():
    c = from_dict({**P, "training": {"lr": 0.01}, "model": {"hidden": [8, 8, 8]}})
    text = to_toml(c.to_dict())
    again = from_dict(tomllib.loads(text))
    assert again == c and again.digest() == c.digest()
    assert again.training.lr == 0.01 and again.training.steps == Config().training.steps


def test_overrides_are_validated():
    c = from_dict(P, source="f.toml")
    assert c.with_overrides(run={"seed": 7}).run.seed == 7
    with pytest.raises(ConfigError, match=r"f.toml: \[run\] seed: expected a value >= 0"):
        c.with_overrides(run={"seed": -1})


def test_every_bundled_problem_file_is_valid():
    """What ``pinnsolve check`` runs, on every file in ``problems/``."""
    from pinnsolve.build import validate

    files = sorted((ROOT / "problems").glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        validate(load_config(f))


def test_the_reference_is_generated_from_the_schema():
    from pinnsolve.io.reference import reference_markdown

    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), (
        "docs/reference.md is stale: python -m pinnsolve.io.reference > docs/reference.md"
    )
    for row in option_docs():
        assert f"[{row.section}] {row.key}`" in committed or row.key == "<condition name>"
    # item 2 of #24: the boundary count is per part, said where the key is documented
    assert "points on each boundary part, not in all: a 2D box (4 parts) gets 4× this" in committed


def test_the_time_limit_moved_to_run_and_the_old_key_still_works_with_a_note():
    new = from_dict({**P, "run": {"max_time_s": 60.0}})
    assert new.run.max_time_s == 60.0 and new.notes == ()
    old = from_dict({**P, "training": {"max_time_s": 60.0}}, source="x.toml")
    assert old.run.max_time_s == 60.0 and old.training.max_time_s == 0.0
    assert old.digest() == new.digest()
    assert len(old.notes) == 1 and "write it as [run] max_time_s" in old.notes[0]
    both = {**P, "training": {"max_time_s": 5.0}, "run": {"max_time_s": 6.0}}
    with pytest.raises(ConfigError, match=r"x.toml: \[training\] max_time_s: set in \[run\] too"):
        from_dict(both, source="x.toml")


def test_the_run_time_limit_is_the_runs_deadline(tmp_path):
    from pinnsolve.build import validate
    from pinnsolve.io.progress import Progress
    from pinnsolve.parallel.distributed import SINGLE
    from pinnsolve.run import Run

    config = from_dict({**P, "run": {"max_time_s": 60.0}})
    problem, extra = validate(config)
    run = Run(problem, extra, config, torch.device("cpu"), torch.float64, None,
              Progress(quiet=True), SINGLE)  # fmt: skip
    assert run.rule.deadline == pytest.approx(run.started + 60.0)


def test_the_polish_constraint_damping_stiffens_the_conditions_from_the_polish_on():
    from pinnsolve.build import validate
    from pinnsolve.io.progress import Progress
    from pinnsolve.parallel.distributed import SINGLE
    from pinnsolve.run import Run

    config = from_dict({**P, "polish": {"constraint_damping": 1e4}})
    problem, extra = validate(config)
    run = Run(problem, extra, config, torch.device("cpu"), torch.float32, None,
              Progress(quiet=True), SINGLE)  # fmt: skip
    trained = {s.damping for s in run.constraints.specs}
    assert trained == {config.constraints.damping}
    run.to_polish_settings()
    assert {s.damping for s in run.constraints.specs} == {1e4}
    with pytest.raises(ConfigError, match=r"constraint_damping"):
        from_dict({**P, "polish": {"constraint_damping": -1.0}})


@pytest.mark.parametrize(("name", "points"), [("bratu1d", 128), ("bratu2d", 2048),
                                              ("heat1d", 2048)])  # fmt: skip
def test_interior_points_default_to_the_domains_dimension(name, points):
    from pinnsolve.build import build_problem
    from pinnsolve.run import default_interior

    config = from_dict({"problem": {"name": name}})
    assert config.sampling.interior == 0
    assert default_interior(build_problem(config)) == points  # heat1d: x and t
