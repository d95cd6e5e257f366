"""The per-clone CD19+BCMA+ call: power, the null, depth robustness, protein."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from blood_stress import downsample, make_blood

from cartrack.design import InputError
from cartrack.double_positive import clone_double_positive, technical_component

CONFIG = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text()
)
PATTERN = CONFIG["tracking"]["isotype_control_pattern"]  # the shipped default

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


def sticky_protein(raw, *, plasma: float, monocyte: float, seed: int = 5):
    """Cells with ADT counts scaled by a per-cell technical factor (nonspecific binding and
    capture: lognormal, `plasma` / `monocyte` times higher in plasma cells and monocytes,
    which bind antibodies through Fc receptors or die sticky), two isotype controls; CD19
    protein on B cells and plasmablasts only, BCMA on plasmablasts and plasma cells."""
    cells, clones = cells_table(raw)
    rng = np.random.default_rng(seed)
    types = cells["cell_type"]
    sticky = np.where(types.eq("plasma_cell"), plasma, np.where(types.eq("monocyte"), monocyte, 1))
    factor = rng.lognormal(0, 0.5, len(cells)) * sticky
    cd19_pos = types.isin(["plasmablast", "B_memory", "B_naive"])
    bcma_pos = types.isin(["plasmablast", "plasma_cell"])
    prot = pd.DataFrame(
        {
            "CD19": rng.poisson(factor * np.where(cd19_pos, 80, 10)),
            "BCMA": rng.poisson(factor * np.where(bcma_pos, 60, 8)),
            "Mouse IgG1, k isotype Ctrl": rng.poisson(factor * 6),
            "IgG2a_control": rng.poisson(factor * 4),
        },
        index=cells.index,
    )
    cells["rna_TNFRSF17"] = 0.0  # RNA says nothing; protein must carry the call
    cells["prot_CD19"], cells["prot_BCMA"] = prot["CD19"], prot["BCMA"]
    return cells, clones, prot


# sticky plasma cells alone: they look CD19+ (40-65 % of their clones called DP without the
# correction); sticky monocytes too: the negatives' spread hides true CD19 (15 % power)
@pytest.mark.parametrize(("plasma", "monocyte"), [(6.0, 1.0), (4.0, 4.0)])
def test_isotype_controls_remove_nonspecific_binding(raw, plasma, monocyte):
    """Null and power with known truth: plasma-cell clones (BCMA+, CD19-) that bind every
    antibody more are not called CD19+ (so not double positive) once the isotype controls'
    per-cell technical component is removed; plasmablast clones are."""
    cells, clones, prot = sticky_protein(raw, plasma=plasma, monocyte=monocyte)
    cells["prot_technical"] = technical_component(prot, PATTERN)
    result = clone_double_positive(cells, clones, cd19_protein="CD19", bcma_protein="BCMA")
    assert set(result["cd19_source"]) == {"protein"}
    rate = called(result)
    assert rate["plasmablast"] >= 0.9  # power
    assert rate[["B_memory", "plasma_cell", "B_naive"]].max() <= 0.05  # null


def test_technical_component_needs_isotype_controls(caplog):
    """Only isotype controls make the technical component (not an anti-human IgG); without
    any the log says that the negative cells alone correct."""
    prot = pd.DataFrame({"CD19": [1, 2], "IgG": [5, 1], "Rat_IgG2b_kappa_Iso": [3, 7]})
    technical = technical_component(prot, PATTERN)
    assert technical.tolist() == pytest.approx(np.log1p([3, 7]).tolist())
    assert technical_component(prot[["CD19", "IgG"]], PATTERN) is None
    assert "no isotype control" in caplog.text
