"""The per-clone CD19+BCMA+ call: power, the null, depth robustness, protein."""

import numpy as np
import pandas as pd
import pytest
from blood_stress import downsample, make_blood

from cartrack.design import InputError
from cartrack.double_positive import clone_double_positive

# plasmablast profile: CD19 and TNFRSF17 (double positive); memory B: CD19 only;
# plasma cells: TNFRSF17 only; naive B: neither (BCMA background); T/mono: CD19 background
COMPOSITION = {"B_naive": 300, "B_memory": 120, "plasmablast": 120, "plasma_cell": 120,
               "T_CD4": 300, "monocyte": 200}  # fmt: skip
CLONED = ("B_memory", "plasmablast", "plasma_cell", "B_naive")


def cells_table(a, clone_size=6):
    x = a.X.toarray()
    cells = pd.DataFrame(
        {
            "patient": "P1",
            "cell_type": a.obs["truth"].to_numpy(),
            "total_counts": x.sum(axis=1),
            "rna_CD19": x[:, a.var_names.get_loc("CD19")],
            "rna_TNFRSF17": x[:, a.var_names.get_loc("TNFRSF17")],
        },
        index=a.obs_names,
    )
    clones = {}
    for t in CLONED:
        names = cells.index[cells["cell_type"] == t][: 20 * clone_size]
        for i, name in enumerate(names):
            clones[name] = f"{t}_{i // clone_size}"
    return cells, pd.Series(clones)


@pytest.fixture(scope="module")
def raw():
    return make_blood(COMPOSITION, seed=7)


def called(result):
    kind = result["clone_id"].str.rsplit("_", n=1).str[0]
    return result.assign(kind=kind).groupby("kind")["double_positive"].mean()


def test_double_positive_clones_are_found_and_others_are_not(raw):
    cells, clones = cells_table(raw)
    result = clone_double_positive(cells, clones)
    rate = called(result)
    assert rate["plasmablast"] >= 0.9  # power
    assert rate[["B_memory", "plasma_cell", "B_naive"]].max() <= 0.05  # single positives
    assert result["dp_confidence"].between(0, 1).all()
    dp = result[result["double_positive"]]
    assert (dp["cd19_rate"] >= 4 * dp["cd19_background"]).all()
    assert set(result["cd19_source"]) == {"rna"}


def test_calls_hold_when_umis_are_halved(raw):
    full = clone_double_positive(*cells_table(raw)).set_index("clone_id")
    half = clone_double_positive(*cells_table(downsample(raw, 0.5, seed=1))).set_index("clone_id")
    agree = (full["double_positive"] == half.loc[full.index, "double_positive"]).mean()
    assert agree >= 0.9


def test_the_old_per_cell_fraction_follows_depth_but_the_call_does_not(raw):
    """cd19_bcma_fraction is descriptive: halving the UMIs lowers it, the call stays."""
    full = clone_double_positive(*cells_table(raw))
    half = clone_double_positive(*cells_table(downsample(raw, 0.5, seed=1)))
    pb = full["clone_id"].str.startswith("plasmablast")
    assert half.loc[pb, "cd19_bcma_fraction"].mean() < full.loc[pb, "cd19_bcma_fraction"].mean()
    assert half.loc[pb, "double_positive"].mean() >= 0.9


def test_null_no_clone_expresses_bcma(raw):
    """Null: BCMA only at the ambient level everywhere -> no double-positive clone."""
    cells, clones = cells_table(raw)
    rng = np.random.default_rng(3)
    cells["rna_TNFRSF17"] = rng.poisson(0.05 * cells["total_counts"] / 2500)
    result = clone_double_positive(cells, clones)
    assert result["double_positive"].mean() <= 0.02


def test_protein_decides_when_present(raw):
    cells, clones = cells_table(raw)
    rng = np.random.default_rng(4)
    bcma_pos = cells["cell_type"].isin(["plasmablast", "plasma_cell"])
    cd19_pos = cells["cell_type"].isin(["plasmablast", "B_memory", "B_naive"])
    cells["prot_BCMA"] = rng.poisson(np.where(bcma_pos, 60, 8))  # background of 8 counts
    cells["prot_CD19"] = rng.poisson(np.where(cd19_pos, 80, 10))
    cells["rna_TNFRSF17"] = 0.0  # RNA says nothing; protein must carry the call
    result = clone_double_positive(cells, clones, cd19_protein="CD19", bcma_protein="BCMA")
    assert set(result["bcma_source"]) == {"protein"}
    rate = called(result)
    assert rate["plasmablast"] >= 0.9 and rate[["B_memory", "plasma_cell", "B_naive"]].max() == 0


def test_missing_columns_are_named():
    cells = pd.DataFrame({"patient": ["P"], "cell_type": ["B_naive"]}, index=["c1"])
    with pytest.raises(InputError, match="total_counts"):
        clone_double_positive(cells, pd.Series({"c1": "x"}))
