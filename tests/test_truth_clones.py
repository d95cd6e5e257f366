"""Clones, elimination and B-cell recovery on the tiny simulated cohort, against its truth."""

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import read_table

from cartrack.design import B_CELLS

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def called(tiny_run, truth):
    """Per cell: called clone and true clone (singletons get their own id)."""
    cells = pd.read_csv(
        tiny_run / "results" / "bcr" / "cell_clones.tsv", sep="\t", index_col="cell"
    )
    cells = cells[cells["clone_id"].notna()]
    t = truth["cells"].reindex(cells.index)
    cells = cells[t["sample"].notna()]
    t = t.loc[cells.index]
    cells["true_clone"] = np.where(t["clone"] != "", t["clone"], "single_" + t.index)
    cells["patient"] = t["patient"]
    cells["day"] = t["day"]
    return cells


def pairs(labels: pd.Series) -> int:
    n = labels.value_counts().to_numpy()
    return int((n * (n - 1) // 2).sum())


def test_pairwise_clone_precision_and_recall(called):
    both = pairs(called["clone_id"] + "|" + called["true_clone"])
    precision = both / pairs(called["clone_id"])
    recall = both / pairs(called["true_clone"])
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def majority_clone(called: pd.DataFrame, true_clone: str) -> str | None:
    members = called.loc[called["true_clone"] == true_clone, "clone_id"]
    return members.mode().iloc[0] if len(members) else None


def test_double_positive_clones_are_called_and_eliminated(tiny_run, truth, called):
    clones = read_table(tiny_run, "clones").set_index("clone_id")
    dp = truth["clones"][truth["clones"]["kind"] == "dp"]
    checked = 0
    for true_clone in dp["clone"]:
        seen = called[(called["true_clone"] == true_clone) & (called["day"] <= 0)]
        if len(seen) < 3:  # tracking.dp_min_baseline_cells: too small to call at all
            continue
        row = clones.loc[majority_clone(called, true_clone)]
        assert row["double_positive"], (true_clone, row.to_dict())
        assert row["status"] == "eliminated", (true_clone, row.to_dict())
        checked += 1
    assert checked >= 2 * dp["patient"].nunique() - 1, "too few DP clones sequenced to judge"
    elimination = read_table(tiny_run, "elimination").set_index("patient")
    assert (elimination["n_dp_clones"] >= 2).all()
    assert (elimination["n_dp_persistent"] == 0).all()


def test_persistent_clones_are_persistent_never_eliminated(tiny_run, truth, called):
    clones = read_table(tiny_run, "clones").set_index("clone_id")
    persistent = truth["clones"][truth["clones"]["expected_status"] == "persistent"]
    statuses = {}
    for true_clone in persistent["clone"]:
        cid = majority_clone(called, true_clone)
        if cid is not None:
            statuses[true_clone] = clones.loc[cid, "status"]
    assert "eliminated" not in statuses.values(), statuses
    memory = persistent.loc[persistent["kind"] == "persistent", "clone"]
    assert all(statuses.get(c) == "persistent" for c in memory), statuses


def test_b_recovery_day_matches_truth(tiny_run, truth):
    cells = truth["cells"]
    good = cells[~cells["low_quality"] & ~cells["doublet"] & (cells["tissue"] == "PB")]
    frac = good.groupby(["patient", "day"])["cell_type"].apply(lambda t: t.isin(B_CELLS).mean())
    elimination = read_table(tiny_run, "elimination").set_index("patient")
    for patient, series in frac.groupby(level="patient"):
        series = series.droplevel("patient")
        post = series[series.index > 0]
        nadir = post.idxmin()
        back = post[(post.index > nadir) & (post >= 0.01)]
        expected = back.index.min() if len(back) else np.nan
        assert elimination.loc[patient, "b_recovery_day"] == expected, patient
        assert elimination.loc[patient, "naive_fraction_at_recovery"] >= 0.8


def test_b_cell_table_tracks_reconstitution(tiny_run):
    b = read_table(tiny_run, "b_cells")
    blood = b[b["tissue"] == "PB"]
    base = blood[blood["day"] <= 0]
    late = blood[blood["day"] >= 170]
    assert (base["igm_igd_fraction"] < late["igm_igd_fraction"].min()).all()
    assert (late["naive_fraction"] >= 0.8).all()
    assert (base["top_clone_fraction"] > late["top_clone_fraction"].max()).all()
