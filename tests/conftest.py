"""Shared fixtures: the benchmark data folder (tests that need it skip with a reason) and the tiny
trained runs that several modules only read. Helper functions live in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import shared_data, tiny_run


@pytest.fixture
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("benchmark data not found: set JGRAPH_DATA to the folder holding UMLS/, FB15k-237/")
    return root


@pytest.fixture(scope="session")
def tiny_runs_root(tmp_path_factory) -> Path:
    """Where the session's tiny runs (helpers.tiny_run) are trained, once per setting."""
    return tmp_path_factory.getbasetemp() / "tiny-runs"


@pytest.fixture(scope="session")
def run_dir(tiny_runs_root) -> Path:
    """The tiny reciprocal ComplEx run over 2 partitions (read only: export, predict, neighbours)."""
    return tiny_run(tiny_runs_root, parts=2)


# Modules whose tests train runs, start processes or build wheels, without a module-level
# `pytestmark = pytest.mark.integration` of their own: marked here so the quick tier
# (pytest -m "not slow and not integration") leaves them out. A new end-to-end module: mark it
# itself (preferred) or add it here.
INTEGRATION_MODULES = {
    "test_api", "test_checkpoint_processes", "test_cli_errors", "test_cluster_faults", "test_early_stop",
    "test_eval_report", "test_import_pbg", "test_readout", "test_train_guards", "test_wheel",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)
