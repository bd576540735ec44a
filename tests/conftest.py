"""Shared fixtures: the shared benchmark data folder (tests that need it skip with a reason)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


def shared_data() -> Path | None:
    """The folder with FB15k-237/, UMLS/, ... : $JGRAPH_DATA, else ../shared/data beside the repo."""
    for cand in (os.environ.get("JGRAPH_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "UMLS" / "train.tsv.gz").is_file():
            return Path(cand)
    return None


@pytest.fixture
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("benchmark data not found: set JGRAPH_DATA to the folder holding UMLS/, FB15k-237/")
    return root
