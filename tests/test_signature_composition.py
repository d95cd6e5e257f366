"""Signature changes within cell types, composition adjustment and matched controls (issue 14).

Cohorts from tests/signature_cohort.py: ``composition`` changes only the cell-type mix,
``fall`` keeps the mix and lowers interferon genes in monocytes and T cells and BAFF-R
response genes in naive B cells.
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from signature_cohort import BAFF, GENE_SETS, IDENTITY, IFN, make_cohort

from cartrack import genesets
from cartrack import signature_stats as sigstats
from cartrack import signatures as sig

SINGLE_TYPES = ["monocyte", "B_naive", "B_memory", "T_CD4"]
#: score_cells settings of the tests (the schema's defaults, written out)
SCORING = {"min_genes": 3, "on_too_few": "warn", "ctrl_size": 50, "n_bins": 25}
#: signature_changes settings of the tests: a plain cut-off at day 28, blood
CHANGES = {"post_min_day": 28, "visit_window_days": 0, "tissue": "PB", "min_patients_test": 3}


def run_changes(adata, *, n_sets=200, seed=0):
    gene_sets = genesets.add_random_control(GENE_SETS, adata, size=12, seed=seed)
    usable = genesets.usable_gene_sets(gene_sets, adata.var_names, min_genes=3, on_too_few="warn")
    scores = sig.score_cells(adata, usable, **SCORING, seed=seed, inplace=False)
    summary = sig.summarise_scores(adata.obs, scores, min_cells=20, groups=["B_cells"])
    matched = sigstats.matched_control_sets(adata, usable, n_sets=n_sets, n_bins=25, seed=seed)
    controls = sigstats.control_summary(adata, summary, usable, matched, groups=["B_cells"])
    changes = sigstats.signature_changes(summary, controls=controls, **CHANGES)
    return changes.set_index(["signature", "cell_type"]), matched, summary, controls


@pytest.fixture(scope="module")
def composition():
    return run_changes(make_cohort("composition"))


@pytest.fixture(scope="module")
def fall():
    return run_changes(make_cohort("fall"))


def test_composition_only_gives_no_change_within_cell_types(composition):
    changes = composition[0]
    for signature in ("IFN", "BAFF"):
        types = [t for t in SINGLE_TYPES if (signature, t) in changes.index]
        assert len(types) >= (4 if signature == "IFN" else 2)
        within = changes.loc[[(signature, t) for t in types]]
        assert (within["fdr"] > 0.1).all(), within
        assert not within["composition_dependent"].any()


def test_composition_moves_pooled_rows_and_the_adjusted_estimate_removes_it(composition):
    changes = composition[0]
    for signature, pooled in (("IFN", "all"), ("BAFF", "B_cells")):
        row = changes.loc[(signature, pooled)]
        assert row["composition_dependent"]
        # the pooled mean moves (more monocytes; naive instead of memory B cells) ...
        assert abs(row["delta"]) > 0.15, row
        # ... the per-type changes weighted by the baseline mix do not
        assert abs(row["adjusted_delta"]) < abs(row["delta"]) / 4, row
        assert row["adjusted_p_value"] > 0.05


def test_true_fall_within_cell_types_is_found(fall):
    changes = fall[0]
    for signature, cell_type in (("IFN", "monocyte"), ("IFN", "T_CD4"), ("BAFF", "B_naive")):
        row = changes.loc[(signature, cell_type)]
        assert row["delta"] < 0 and row["delta_vs_control"] < 0, row
        assert row["fdr"] < 0.1, row
        assert row["p_empirical"] < 0.05, row
        assert row["test"] == sigstats.CONTROL_TEST
    # where nothing fell, nothing is found
    for signature, cell_type in (("IFN", "B_memory"), ("BAFF", "B_memory")):
        assert changes.loc[(signature, cell_type), "fdr"] > 0.1


@pytest.mark.parametrize("scenario", ["composition", "fall"])
def test_random_control_has_no_change(scenario, composition, fall):
    changes = {"composition": composition, "fall": fall}[scenario][0]
    control = changes.loc[genesets.RANDOM_CONTROL]
    assert len(control) >= 5 and control["p_value"].notna().all()
    assert (control["fdr"] > 0.1).all(), control


def test_matched_controls_follow_level_and_cell_type(composition):
    _, matched, _, _ = composition
    adata = make_cohort("composition")
    strata = sigstats._gene_strata(adata, n_bins=25)
    ifn = matched["IFN"]
    assert len(ifn) == 200 and all(len(s) == len(IFN) for s in ifn)
    drawn = {g for s in ifn for g in s}
    assert not drawn & set(IFN + BAFF + [genesets.RANDOM_CONTROL])
    # gene by gene: same expression bin; same top cell type where the stratum allows
    level = strata["level"]
    assert all(level[c] == level[g] for draw in ifn for g, c in zip(IFN, draw, strict=True))
    # seeded: same draw again, another with another seed
    usable = genesets.usable_gene_sets(
        genesets.add_random_control(GENE_SETS, adata, size=12, seed=0),
        adata.var_names,
        min_genes=3,
        on_too_few="warn",
    )
    again = sigstats.matched_control_sets(adata, usable, n_sets=200, n_bins=25, seed=0)
    other = sigstats.matched_control_sets(adata, usable, n_sets=200, n_bins=25, seed=1)
    assert again["IFN"] == ifn != other["IFN"]
    assert sigstats.matched_control_sets(adata, usable, n_sets=0, n_bins=25, seed=0) == {}


def test_matched_controls_share_the_cell_type_specificity():
    # 1,200 genes, a third highest in each of three cell types; a set of monocyte genes gets
    # monocyte-specific controls of the same level, a set of T-cell genes T-cell ones
    rng = np.random.default_rng(0)
    types = np.repeat(["monocyte", "T_CD4", "NK"], 100)
    genes = [f"G{i}" for i in range(1200)]
    home = np.repeat(["monocyte", "T_CD4", "NK", "none"], 300)
    level = rng.lognormal(0, 1, size=1200)
    rate = np.tile(level, (300, 1)) * np.where(home[None, :] == types[:, None], 4.0, 1.0)
    adata = ad.AnnData(
        X=np.log1p(rng.poisson(rate)).astype(np.float32),
        obs=pd.DataFrame({"cell_type": types}, index=[f"c{i}" for i in range(300)]),
        var=pd.DataFrame(index=genes),
    )
    sets = {"MONO": genes[:10], "TCELL": genes[300:310]}
    matched = sigstats.matched_control_sets(adata, sets, n_sets=50, n_bins=25, seed=0)
    strata = sigstats._gene_strata(adata, n_bins=10)
    for name, expected in (("MONO", "monocyte"), ("TCELL", "T_CD4")):
        drawn = [g for draw in matched[name] for g in draw]
        assert (strata.loc[drawn, "top"] == expected).mean() > 0.95, name
        assert not set(drawn) & set(sets["MONO"] + sets["TCELL"])


def test_control_scores_equal_scanpy_scores_with_the_signatures_control_genes(composition):
    # a control set's mean score = the signature's mean score + (control genes' mean -
    # signature genes' mean), checked on one sample x cell type by hand
    _, matched, summary, controls = composition
    adata = make_cohort("composition")
    row = summary[(summary["signature"] == "IFN") & (summary["cell_type"] == "monocyte")].iloc[0]
    cells = (
        (adata.obs["sample"] == row["sample"]) & (adata.obs["cell_type"] == "monocyte")
    ).to_numpy()
    x = pd.DataFrame(adata.X[cells].toarray(), columns=adata.var_names)
    expected = (
        row["mean_score"] + x[matched["IFN"][3]].mean(axis=1).mean() - x[IFN].mean(axis=1).mean()
    )
    assert controls.loc[(row["sample"], "monocyte", "IFN"), 3] == pytest.approx(expected, rel=1e-5)


def test_changes_without_controls_keep_the_paired_test(composition):
    _, _, summary, _ = composition
    plain = sigstats.signature_changes(summary, **CHANGES)
    assert set(plain["test"]) == {"paired_t"}
    assert plain["delta_vs_control"].isna().all() and plain["p_empirical"].isna().all()
    assert IDENTITY  # the identity genes are part of the data the strata are built from
