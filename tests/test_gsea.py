"""Pseudobulk DE (PyDESeq2) and GSEA with sign-flip or gene-set permutation (issue 14),
and the not-testable rows that replace the old crash (issue 17)."""

import logging

import numpy as np
import pandas as pd
import pytest
from signature_cohort import BAFF, IFN, PATIENTS, make_cohort

from cartrack import gsea
from cartrack import pseudobulk as pbk
from cartrack.design import InputError
from cartrack.params import GseaParams, PhaseParams, SignatureCellsParams

# a family of sets for the FDR: the signatures, a random set and 20 sets of background genes
BACKGROUND_SETS = {f"BG{i}": [f"GENE{j}" for j in range(20 * i, 20 * i + 15)] for i in range(20)}
FAMILY = {"IFN": IFN, "BAFF": BAFF, "RANDOM_CONTROL": [f"GENE{j}" for j in range(3, 400, 19)]}
FAMILY |= BACKGROUND_SETS
FAST = {"per_timepoint": False, "permutations": 200}


def run_gsea(adata, cell_types, *, min_cells=20, tissue="PB", post_min_day=28, **gsea_keys):
    """gsea.run_gsea on FAMILY with the FAST settings, the schema's for the rest of section
    signatures.gsea (`gsea_keys` replace them) and a plain cut-off at `post_min_day`."""
    return gsea.run_gsea(
        adata,
        FAMILY,
        GseaParams.from_config(FAST | gsea_keys, cell_types=cell_types),
        SignatureCellsParams.from_config({"min_cells": min_cells, "tissue": tissue}),
        PhaseParams.from_config({"post_min_day": post_min_day, "visit_window_days": 0}),
        seed=0,
    )


@pytest.fixture(scope="module")
def fall_monocytes():
    return run_gsea(make_cohort("fall"), ["monocyte"])


def test_de_is_pydeseq2_post_over_baseline(fall_monocytes):
    _, de = fall_monocytes
    assert list(de.columns) == pbk.DE_COLUMNS
    de = de.set_index("gene")
    assert (de.loc[IFN, "log2_fold_change"] < -0.5).all()
    assert (de.loc[IFN, "padj"] < 0.01).all()
    assert (de["n_patients"] == 6).all() and set(de["comparison"]) == {"baseline_vs_post"}
    background = de.loc[de.index.str.startswith("GENE")]
    assert (background["padj"] < 0.05).mean() < 0.05


def test_with_one_visit_after_infusion_the_per_timepoint_test_is_the_pooled_one():
    """The per-time-point fit over every visit is the paired design when there is one visit."""
    table, de = run_gsea(make_cohort("fall"), ["monocyte"], per_timepoint=True)
    assert set(de["comparison"]) == {"baseline_vs_post", "baseline_vs_M3"}
    by = {c: d.set_index("gene") for c, d in de.groupby("comparison")}
    pooled, m3 = by["baseline_vs_post"], by["baseline_vs_M3"].loc[by["baseline_vs_post"].index]
    np.testing.assert_allclose(m3["stat"], pooled["stat"], rtol=1e-4, atol=1e-6)
    res = {c: t.set_index("term") for c, t in table.groupby("comparison")}
    for r in res.values():
        assert r["nes"].idxmax() == "IFN" and r.loc["IFN", "fdr"] < 0.1
        assert r.loc["RANDOM_CONTROL", "fdr"] > 0.1


def test_gsea_on_wald_statistics_finds_the_fall_and_not_the_controls(fall_monocytes, caplog):
    table, _ = fall_monocytes
    res = table.set_index("term")
    # 6 patients < sign_flip_min_patients (8): gene-set permutation
    assert set(res["permutation"]) == {"gene_set"}
    assert res["nes"].idxmax() == "IFN" and res.loc["IFN", "fdr"] < 0.1, res.loc["IFN"]
    assert set(res.loc["IFN", "leading_edge"].split(";")) <= set(IFN)
    assert res.loc["RANDOM_CONTROL", "fdr"] > 0.1
    assert (res.loc[list(BACKGROUND_SETS), "fdr"] > 0.1).mean() >= 0.9


def _rankings(rng, n_genes=300, n_null=63, planted=0.0):
    genes = [f"GENE{i}" for i in range(n_genes)]
    obs = pd.Series(rng.normal(size=n_genes), index=genes)
    obs.iloc[:15] += planted  # the first background set (BG0) shifted up
    nulls = pd.DataFrame(rng.normal(size=(n_genes, n_null)), index=genes)
    return obs, nulls


def test_sign_flip_significance_under_the_null_and_with_an_effect():
    rng = np.random.default_rng(3)
    sets = {k: v for k, v in BACKGROUND_SETS.items() if int(k[2:]) < 15}
    # null: the observed ranking is one more draw of the permutation distribution
    fdrs = []
    for _ in range(5):
        obs, nulls = _rankings(rng)
        res = gsea.sign_flip_prerank(obs, nulls, sets, min_size=5, max_size=500)
        fdrs.extend(res["fdr"])
        assert (res["p_value"] >= 1 / 64).all()
    assert np.mean(np.asarray(fdrs) < 0.1) < 0.05
    # power: a shifted set is found, the others are not
    obs, nulls = _rankings(rng, planted=1.5)
    res = gsea.sign_flip_prerank(obs, nulls, sets, min_size=5, max_size=500).set_index("term")
    assert res.loc["BG0", "nes"] > 0 and res.loc["BG0", "fdr"] < 0.05
    assert (res.drop(index="BG0")["fdr"] > 0.1).mean() >= 0.9


def test_run_gsea_uses_sign_flip_from_enough_patients():
    # plumbing of the permutation path (7 relabellings keep it fast; power needs more)
    table, _ = run_gsea(
        make_cohort("fall", patients=PATIENTS[:5]),
        ["monocyte"],
        sign_flip_min_patients=5,
        max_flips=7,
    )
    res = table.set_index("term")
    assert set(res["permutation"]) == {"sign_flip"} and set(res["n_permutations"]) == {7}
    assert res["es"].idxmax() == "IFN" and res.loc["IFN", "es"] > 0.5
    assert res["p_value"].min() >= 1 / 8 - 1e-9  # a permutation p-value cannot beat 1/(7+1)


def test_composition_only_gives_no_gsea_change_within_cell_types():
    table, _ = run_gsea(make_cohort("composition"), ["monocyte", "B_naive"])
    res = table.set_index(["cell_type", "term"])
    assert res.loc[("monocyte", "IFN"), "fdr"] > 0.1
    assert res.loc[("B_naive", "BAFF"), "fdr"] > 0.1
    assert res.loc[("B_naive", "IFN"), "fdr"] > 0.1


def test_few_patients_fall_back_to_gene_set_permutation_with_a_warning(caplog):
    adata = make_cohort("fall", patients=PATIENTS[:3])
    with caplog.at_level(logging.WARNING, logger="cartrack.gsea"):
        table, _ = run_gsea(adata, ["monocyte"])
    assert "3 patients, fewer than 8 for patient-wise sign-flip permutation" in caplog.text
    assert set(table["permutation"]) == {"gene_set"}
    assert table.set_index("term").loc["IFN", "nes"] > 0


def test_flip_patterns_cover_every_relabelling_or_a_seeded_sample():
    three = pbk.flip_patterns(["P1", "P2", "P3"], max_flips=31, seed=0)
    assert len(three) == 7 and len(set(three)) == 7 and () not in three
    six = pbk.flip_patterns(PATIENTS, max_flips=15, seed=0)
    assert len(set(six)) == 15 and six == pbk.flip_patterns(PATIENTS, max_flips=15, seed=0)


@pytest.mark.parametrize(
    ("scenario", "kwargs", "why"),
    [
        ("no monocytes at baseline", {}, "0 patients with >= 20 monocyte cells"),
        ("marrow-only study", {"tissue": "BM"}, "in tissue BM"),
        ("nothing after post_min_day", {"post_min_day": 400}, "after day 400"),
    ],
)
def test_untestable_cell_types_are_reported_not_fatal(scenario, kwargs, why):
    # issue 17: these used to crash signatures_gsea
    adata = make_cohort("fall", patients=PATIENTS[:3])
    if scenario == "no monocytes at baseline":
        drop = (adata.obs["cell_type"] == "monocyte") & (adata.obs["timepoint"] == "baseline")
        adata = adata[~drop.to_numpy()].copy()
    if scenario == "marrow-only study":
        adata.obs["tissue"] = "BM"
        adata.obs.loc[adata.obs["cell_type"] == "monocyte", "tissue"] = "PB"
    table, de = run_gsea(adata, ["monocyte", "NK"], **kwargs)
    assert list(table.columns) == gsea.GSEA_COLUMNS
    untestable = table[~table["testable"].astype(bool)]
    assert {"monocyte", "NK"} <= set(untestable["cell_type"])
    mono = untestable[untestable["cell_type"] == "monocyte"].iloc[0]
    assert why in mono["note"] and np.isnan(mono["nes"])
    assert (de["cell_type"] != "monocyte").all()


def test_merge_gene_sets_rejects_conflicting_definitions():
    merged = gsea.merge_gene_sets({"A": ["X", "Y"]}, {"A": ["Y", "X"], "B": ["Z"]})
    assert merged == {"A": ["X", "Y"], "B": ["Z"]}
    with pytest.raises(InputError, match="'A' is defined twice"):
        gsea.merge_gene_sets({"A": ["X"]}, {"A": ["Z"]})


def test_shipped_hallmarks_are_the_50_and_agree_with_the_scored_interferon_sets(repo):
    from cartrack.genesets import read_gmt

    folder = repo / "resources" / "genesets"
    hallmarks = read_gmt([folder / "HALLMARK.gmt"])
    assert len(hallmarks) == 50 and all(n.startswith("HALLMARK_") for n in hallmarks)
    scored = read_gmt(sorted(p for p in folder.glob("*.gmt") if p.name != "HALLMARK.gmt"))
    merged = gsea.merge_gene_sets(hallmarks, scored)
    assert len(merged) == 50 + len(scored) - 2
    assert isinstance(pd.Series(merged["HALLMARK_INTERFERON_ALPHA_RESPONSE"]), pd.Series)
