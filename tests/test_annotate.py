"""Cell types from markers, CAR-T calls, the composition table."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cartrack.annotate import (
    annotate_cell_types,
    call_car_t,
    cell_type_table,
    read_markers,
)
from cartrack.design import CELL_TYPES

MARKERS = pd.DataFrame(
    {
        "cell_type": [
            "B_naive",
            "B_naive",
            "T_CD4",
            "T_CD4",
            "monocyte",
            "monocyte",
            "T_CD8",
            "T_CD8",
            "T_CD4",
        ],
        "gene": ["MS4A1", "IGHD", "CD3E", "CD4", "CD14", "LYZ", "CD8A", "CD3E", "CD8A"],
        "direction": ["up", "up", "up", "up", "up", "up", "up", "up", "down"],
        "source": "test",
    }
)


def toy(n_per_type: int = 30, seed: int = 0) -> tuple[ad.AnnData, list[str]]:
    rng = np.random.default_rng(seed)
    genes = ["MS4A1", "IGHD", "CD3E", "CD4", "CD14", "LYZ", "CD8A", "CAR_CD19", "X1", "X2"]
    truth, rows = [], []
    types = [("B_naive", [0, 1]), ("T_CD4", [2, 3]), ("monocyte", [4, 5]), ("T_CD8", [2, 6])]
    for t, on in types:
        for _ in range(n_per_type):
            mean = np.full(len(genes), 0.2)
            mean[on] = 5
            rows.append(rng.poisson(mean))
            truth.append(t)
    counts = np.array(rows, dtype=np.float32)
    a = ad.AnnData(sp.csr_matrix(np.log1p(counts)), var=pd.DataFrame(index=genes))
    a.layers["counts"] = sp.csr_matrix(counts)
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    return a, truth


def test_markers_give_the_planted_types():
    a, truth = toy()
    annotate_cell_types(a, MARKERS)
    assert (a.obs["cell_type"].astype(str).to_numpy() == np.array(truth)).mean() > 0.95
    assert tuple(a.obs["cell_type"].cat.categories) == CELL_TYPES


def test_cluster_majority_smooths_noisy_calls():
    a, truth = toy()
    a.obs["leiden"] = pd.Categorical([t for t in truth])
    x = a.X.toarray()
    x[0] = x[40]  # one B cell that looks like a T cell, inside the B cluster
    a.X = sp.csr_matrix(x)
    annotate_cell_types(a, MARKERS, cluster_majority=0.9)
    assert a.obs["cell_type"].iloc[0] == "B_naive"
    annotate_cell_types(a, MARKERS, cluster_majority=1.0)
    assert a.obs["cell_type"].iloc[0] == "T_CD4"


def test_marker_table_vocabulary_is_checked(tmp_path):
    path = tmp_path / "m.tsv"
    MARKERS.assign(cell_type="B_cell").to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        read_markers(str(path))


def test_shipped_marker_table(repo):
    markers = read_markers(str(repo / "resources" / "markers.tsv"))
    assert set(markers["cell_type"]) == set(CELL_TYPES)
    assert markers["source"].notna().all()


def test_car_t_only_in_t_cells():
    a, truth = toy()
    annotate_cell_types(a, MARKERS)
    counts = a.layers["counts"].toarray()
    counts[:, 7] = 0
    counts[[0, 35, 36], 7] = 2  # a B cell (ambient CAR RNA) and two T cells
    a.layers["counts"] = sp.csr_matrix(counts)
    call_car_t(a, car_features=["CAR_CD19", "CAR_BCMA"], min_umis=1)
    assert a.obs["car_t"].sum() == 2 and a.obs["car_t"].iloc[35]


def test_no_car_features_warns(caplog):
    a, _ = toy()
    annotate_cell_types(a, MARKERS)
    call_car_t(a, car_features=["CAR_X"])
    assert not a.obs["car_t"].any()
    assert "no CAR features" in caplog.text


def test_cell_type_table_has_every_type_and_fractions_sum_to_one():
    obs = pd.DataFrame(
        {"sample": ["S1"] * 3 + ["S2"], "cell_type": ["T_CD4", "T_CD4", "NK", "monocyte"]}
    )
    sheet = pd.DataFrame(
        {"patient": ["P", "P", "P"], "day": [0, 14, 28], "tissue": ["PB"] * 3},
        index=pd.Index(["S1", "S2", "S3"], name="sample"),
    )
    table = cell_type_table(obs, sheet)
    assert len(table) == 3 * len(CELL_TYPES)
    s1 = table[table["sample"] == "S1"].set_index("cell_type")
    assert s1.loc["T_CD4", "n_cells"] == 2 and s1.loc["T_CD4", "fraction"] == pytest.approx(2 / 3)
    assert table.groupby("sample")["fraction"].sum().loc[["S1", "S2"]].tolist() == [1.0, 1.0]
    assert table.loc[table["sample"] == "S3", "fraction"].isna().all()
