"""Shared pytest fixtures: the repository root and the real files in ../shared/data/real."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real() -> Path:
    """Folder of real Cell Ranger / AIRR files (see its PROVENANCE.md); skip when absent."""
    if not REAL.is_dir():
        pytest.skip(f"real test files not found at {REAL}")
    return REAL


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole workflow run once on the tiny simulated cohort; its working directory.

    Set CARTRACK_TINY_RUN=DIR to run it in DIR instead of a temp folder (while developing:
    Snakemake then only reruns what changed there).
    """
    import os

    from workflow_helpers import make_tiny_project, run_snakemake

    folder = os.environ.get("CARTRACK_TINY_RUN")
    workdir = make_tiny_project(Path(folder) if folder else tmp_path_factory.mktemp("tiny"))
    run_snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture(scope="session")
def truth(tiny_run):
    """The simulator's truth tables of the tiny cohort (cells, clones, patients, signatures;
    columns in cartrack.simulate's docstring). Empty text fields are "", numbers NaN."""
    import pandas as pd

    folder = tiny_run / "resources" / "demo" / "truth"
    text = ["clone", "isotype", "subtype", "doublet_type", "car_construct", "t_clonotype"]
    cells = pd.read_csv(folder / "truth_cells.tsv", sep="\t")
    cells[text] = cells[text].fillna("")
    cells.index = cells["sample"] + "_" + cells["barcode"]
    tables = {n: pd.read_csv(folder / f"truth_{n}.tsv", sep="\t")
              for n in ("clones", "patients", "signatures")}  # fmt: skip
    tables["clones"]["expected_status"] = tables["clones"]["expected_status"].fillna("")
    return {"cells": cells, **tables}
