"""Shared test setup: GPU tests skip without CUDA; a run that collects no test fails."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is false)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    # pytest exits 5 when it collected nothing; a test command that ran nothing must not pass.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder so default run folders (outputs/...) land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
