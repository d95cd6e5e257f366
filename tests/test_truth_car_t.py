"""The tiny demo run against the simulated TCR truth: clonotypes, CAR-T kinetics, h5mu."""

import mudata as md
import pandas as pd
import pytest
from workflow_helpers import read_table

from cartrack.car_t import CAR_T_STATUSES


@pytest.fixture(scope="module")
def tcr_truth(tiny_run):
    folder = tiny_run / "resources" / "demo" / "truth"
    cells = pd.read_csv(folder / "truth_tcr_cells.tsv", sep="\t")
    cells.index = cells["sample"] + "_" + cells["barcode"]
    return cells, pd.read_csv(folder / "truth_car_t_clonotypes.tsv", sep="\t")


def test_called_clonotypes_never_mix_simulated_ones(tiny_run, tcr_truth):
    cells, _ = tcr_truth
    called = pd.read_csv(tiny_run / "results" / "tcr" / "cell_clonotypes.tsv", sep="\t")
    called = called.dropna().set_index("cell")
    called["truth"] = cells["clonotype"].reindex(called.index)
    assert called["truth"].notna().all()
    assert called.groupby("clonotype_id")["truth"].nunique().max() == 1
    assert len(called) >= 0.95 * len(cells)  # nearly every simulated T cell gets a clonotype


def test_no_false_loss_and_contract_columns(tiny_run, tcr_truth):
    cells, truth = tcr_truth
    clones = read_table(tiny_run, "car_t_clones")
    assert list(clones.columns[:8]) == [
        "patient", "clonotype_id", "n_cells", "n_car_t", "first_day", "last_day", "in_product",
        "status",
    ]  # fmt: skip
    assert set(clones["status"]) <= set(CAR_T_STATUSES)
    called = pd.read_csv(tiny_run / "results" / "tcr" / "cell_clonotypes.tsv", sep="\t")
    called = called.dropna().set_index("cell")
    main = called.assign(truth=cells["clonotype"].reindex(called.index))
    main = main.groupby("clonotype_id")["truth"].first()
    kind = clones["clonotype_id"].map(main).map(truth.set_index("clonotype")["kind"])
    assert kind.notna().all()
    assert not clones.loc[kind.isin(["persistent", "small"]), "status"].eq("lost").any()


def test_car_t_kinetics_follow_the_simulation(tiny_run):
    car_t = read_table(tiny_run, "car_t")
    blood = car_t[car_t["tissue"] == "PB"]
    assert (blood.loc[blood["day"] <= 0, "n_car_t"] == 0).all()
    peak = blood.loc[blood.groupby("patient")["car_t_fraction"].idxmax(), "timepoint"]
    assert set(peak) <= {"D14", "D28"}  # the simulated CAR-T share peaks at D14
    with_tcr = car_t["n_car_t_tcr"] > 0
    assert (car_t.loc[with_tcr, "n_car_t_clonotypes"] > 0).all()
    assert (car_t["n_car_t_tcr"] <= car_t["n_car_t"]).all()
    assert car_t["n_car_t_tcr"].sum() >= 0.95 * car_t["n_car_t"].sum()


def test_cohort_airr_holds_both_receptors(tiny_run):
    mdata = md.read_h5mu(tiny_run / "results" / "cohort.h5mu")
    types = set(mdata.mod["airr"].obs["receptor_type"].astype(str))
    assert {"BCR", "TCR"} <= types
    obs = mdata.mod["gex"].obs
    t_cells = obs["cell_type"].isin(["T_CD4", "T_CD8"])
    assert (obs.loc[t_cells, "clonotype_id"] != "").mean() > 0.9
