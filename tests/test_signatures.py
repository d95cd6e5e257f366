"""Tests of cartrack.signatures, genesets and signature_stats on tiny synthetic cohorts built here.

The paired design: 6 patients, a baseline, D28 and M3 sample in blood each (patients sampled
on different days), a baseline bone-marrow sample, three cell types. An interferon programme
is high at baseline and drops after infusion in 5 of the 6 patients; BAFF genes drop in B
cells; B cells are nearly absent at D28 (aplasia).
"""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

from cartrack import genesets
from cartrack import pseudobulk as pbk
from cartrack import signature_stats as sigstats
from cartrack import signatures as sig
from cartrack.io import backed_counts
from cartrack.tables import write_tsv

IFN6 = ["IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1"]
ISG_MORE = ["MX1", "OAS1", "IFI6", "IFIT3", "ISG20", "STAT1"]
BAFF = ["TNFRSF13C", "TNFRSF13B", "NFKB2", "RELB", "MAP3K14", "TRAF1", "BIRC3", "BCL2"]
BAFF += ["BCL2L1", "BCL2A1", "MCL1", "PIM2"]
BACKGROUND = [f"GENE{i}" for i in range(1000)]
GENES = IFN6 + ISG_MORE + BAFF + BACKGROUND
GENE_SETS = {
    "IFN": IFN6,
    "IFN_WIDE": IFN6 + ISG_MORE,
    "BAFF": BAFF,
    "NULL_SET": BACKGROUND[:10],
}
CELL_TYPES = ["monocyte", "B_naive", "T_CD4"]
# timepoint label -> day offset per patient (patients are sampled on different days)
VISITS = {"screening": -7, "D12": 12, "D28": 28, "M3": 90}
PATIENTS = [f"P{i}" for i in range(1, 7)]
RESPONDERS = PATIENTS[:5]  # P6 keeps its interferon signature
#: score_cells settings of the tests (the schema's defaults, written out)
SCORING = {"min_genes": 3, "on_too_few": "warn", "ctrl_size": 50, "n_bins": 25}
#: signature_changes settings of the tests: a plain cut-off at day 28, blood
CHANGES = {"post_min_day": 28, "visit_window_days": 0, "tissue": "PB", "min_patients_test": 3}


def make_cohort(seed: int = 0, n_cells: int = 40) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    base_rate = rng.lognormal(mean=-0.5, sigma=1.0, size=len(GENES))
    idx = {g: i for i, g in enumerate(GENES)}
    blocks, obs = [], []
    for p_i, patient in enumerate(PATIENTS):
        for label, day in VISITS.items():
            tissues = ["PB", "BM"] if label == "screening" else ["PB"]
            for tissue in tissues:
                sample = f"{patient}_{label}_{tissue}"
                for cell_type in CELL_TYPES:
                    n = n_cells
                    if cell_type == "B_naive" and label in ("D12", "D28"):
                        n = 3  # B-cell aplasia
                    rate = np.tile(base_rate, (n, 1))
                    # cell-type identity genes, so cell types differ
                    rate[:, idx["GENE0"] + CELL_TYPES.index(cell_type)] += 5
                    ifn_high = day <= 0 or patient not in RESPONDERS
                    for g in IFN6 + ISG_MORE:
                        rate[:, idx[g]] += 3.0 if ifn_high else 0.5
                    if cell_type == "B_naive":
                        for g in BAFF:
                            rate[:, idx[g]] += 4.0 if day <= 0 else 0.5
                    blocks.append(rng.poisson(rate))
                    obs.append(
                        pd.DataFrame(
                            {
                                "sample": sample,
                                "patient": patient,
                                "day": day + p_i,  # a different day for every patient
                                "tissue": tissue,
                                "timepoint": label,
                                "batch": "b1",
                                "cell_type": cell_type,
                                "car_t": False,
                            },
                            index=[f"{sample}_{cell_type}_{k}" for k in range(n)],
                        )
                    )
    counts = sparse.csr_matrix(np.vstack(blocks).astype(np.float32))
    adata = ad.AnnData(X=counts.copy(), obs=pd.concat(obs), var=pd.DataFrame(index=GENES))
    adata.layers["counts"] = counts
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.fixture(scope="module")
def cohort() -> ad.AnnData:
    return make_cohort()


@pytest.fixture(scope="module")
def scored(cohort):
    gene_sets = genesets.add_random_control(GENE_SETS, cohort, size=12, seed=0)
    scores = sig.score_cells(cohort, gene_sets, **SCORING, seed=0, inplace=False)
    summary = sig.summarise_scores(cohort.obs, scores, min_cells=10, groups=["B_cells"])
    usable = genesets.usable_gene_sets(gene_sets, cohort.var_names, min_genes=3, on_too_few="warn")
    matched = sigstats.matched_control_sets(cohort, usable, n_sets=100, n_bins=25, seed=0)
    controls = sigstats.control_summary(cohort, summary, usable, matched, groups=["B_cells"])
    changes = sigstats.signature_changes(summary, controls=controls, **CHANGES)
    return scores, summary, changes


# --------------------------------------------------------------------------------------------
# Gene sets
# --------------------------------------------------------------------------------------------
def test_shipped_gene_sets(repo):
    paths = sorted((repo / "resources" / "genesets").glob("*.gmt"))
    sets = genesets.read_gmt([p for p in paths if p.name != "HALLMARK.gmt"])
    hallmarks = genesets.read_gmt([repo / "resources" / "genesets" / "HALLMARK.gmt"])
    scored = {n: g for n, g in sets.items() if n not in hallmarks or n.endswith("_RESPONSE")}
    assert {
        "IFN": 6,
        "BAFF": 6,
        "NFKB2_NONCANONICAL": 10,
        "HALLMARK_INTERFERON_ALPHA_RESPONSE": 97,
        "HALLMARK_INTERFERON_GAMMA_RESPONSE": 200,
    } == {name: len(genes) for name, genes in scored.items()}
    assert sets["IFN"] == IFN6
    # the BAFF-R set carries no receptor / subset-identity genes; the broad set keeps them
    assert not {"TNFRSF13B", "TNFRSF13C", "TNFSF13B"} & set(sets["BAFF"])
    assert {"TNFRSF13B", "TNFRSF13C"} <= set(sets["NFKB2_NONCANONICAL"])


def test_read_gmt_rejects_duplicate_names(tmp_path):
    a, b = tmp_path / "a.gmt", tmp_path / "b.gmt"
    genesets.write_gmt({"IFN": ["ISG15", "MX1"]}, a)
    genesets.write_gmt({"IFN": ["IFI27"]}, b)
    assert genesets.read_gmt([a]) == {"IFN": ["ISG15", "MX1"]}
    with pytest.raises(ValueError, match="defined twice"):
        genesets.read_gmt([a, b])


def test_aliases_match_both_ways():
    assert genesets.resolve_genes(["DDX58", "MX1", "NOPE"], ["RIGI", "MX1"]) == (
        ["RIGI", "MX1"],
        ["NOPE"],
    )
    assert genesets.resolve_genes(["RIGI", "WARS1"], ["DDX58", "WARS"]) == (["DDX58", "WARS"], [])


def test_missing_genes_warn_with_count_and_small_sets_skip_or_fail(caplog):
    sets = {"OK": ["A", "B", "C", "X"], "SMALL": ["A", "Y", "Z"]}
    with caplog.at_level(logging.WARNING, logger="cartrack.genesets"):
        kept = genesets.usable_gene_sets(sets, ["A", "B", "C"], min_genes=3, on_too_few="warn")
    assert kept == {"OK": ["A", "B", "C"]}
    assert "signature OK: 1 of 4 genes not in the data" in caplog.text
    assert "SMALL: only 1 genes in the data, fewer than 3: skipped" in caplog.text
    with pytest.raises(ValueError, match="SMALL"):
        genesets.usable_gene_sets(sets, ["A", "B", "C"], min_genes=3, on_too_few="error")


def test_random_control_is_deterministic_and_avoids_signature_genes(cohort):
    a = genesets.add_random_control(GENE_SETS, cohort, size=12, seed=0)[genesets.RANDOM_CONTROL]
    b = genesets.add_random_control(GENE_SETS, cohort, size=12, seed=0)[genesets.RANDOM_CONTROL]
    c = genesets.add_random_control(GENE_SETS, cohort, size=12, seed=1)[genesets.RANDOM_CONTROL]
    assert a == b != c
    assert len(set(a)) == 12
    assert not set(a) & {g for genes in GENE_SETS.values() for g in genes}
    assert genesets.RANDOM_CONTROL not in genesets.add_random_control(
        GENE_SETS, cohort, size=0, seed=0
    )


# --------------------------------------------------------------------------------------------
# Scores and tables
# --------------------------------------------------------------------------------------------
def test_score_cells_adds_one_obs_column_per_signature(cohort):
    adata = cohort.copy()
    scores = sig.score_cells(
        adata, {"IFN": IFN6, "TOO_SMALL": ["IFI27", "NOPE"]}, **SCORING, seed=0
    )
    assert list(scores.columns) == ["IFN_score"]
    assert "IFN_score" in adata.obs and "TOO_SMALL_score" not in adata.obs
    base = adata.obs["day"] <= 0
    post = (adata.obs["day"] >= 28) & adata.obs["patient"].isin(RESPONDERS)
    assert scores.loc[base, "IFN_score"].mean() > scores.loc[post, "IFN_score"].mean() + 0.5
    again = sig.score_cells(cohort, {"IFN": IFN6}, **SCORING, seed=0, inplace=False)
    pd.testing.assert_frame_equal(scores, again)
    assert "IFN_score" not in cohort.obs  # inplace=False leaves the object alone
    table = sig.scores_table(scores)
    assert list(table.columns) == ["cell", "IFN_score"]


def test_a_strong_programme_does_not_leak_into_other_scores_through_controls():
    # interferon genes on in half of the cells, at the same mean level as the background, so
    # scanpy would otherwise pick them as control genes of the other set
    rng = np.random.default_rng(1)
    genes = IFN6 + ISG_MORE + BACKGROUND[:200]
    on = np.arange(400) < 200
    rate = np.ones((400, len(genes)))
    rate[:, : len(IFN6 + ISG_MORE)] = np.where(on, 2.0, 0.3)[:, None]
    adata = ad.AnnData(X=np.log1p(rng.poisson(rate).astype(float)), var=pd.DataFrame(index=genes))
    scores = sig.score_cells(
        adata, {"IFN": IFN6 + ISG_MORE, "NULL_SET": BACKGROUND[:10]}, **SCORING, seed=0
    )
    ifn, null = scores["IFN_score"], scores["NULL_SET_score"]
    assert ifn[on].mean() - ifn[~on].mean() > 0.5
    assert abs(null[on].mean() - null[~on].mean()) < 0.03


def test_summary_leaves_out_small_cell_types(cohort, scored):
    scores, summary, _ = scored
    assert list(summary.columns[:8]) == ["sample", "patient", "day", "tissue"] + [
        "timepoint",
        "cell_type",
        "signature",
        "n_cells",
    ]
    ifn = summary[summary["signature"] == "IFN"]
    aplastic = ifn[ifn["timepoint"].isin(["D12", "D28"])]
    assert not aplastic["cell_type"].isin(["B_naive", "B_cells"]).any()
    assert set(ifn["cell_type"]) == {"all", "B_cells", *CELL_TYPES}
    one = ifn[(ifn["sample"] == "P1_screening_PB") & (ifn["cell_type"] == "all")].iloc[0]
    cells = cohort.obs["sample"] == "P1_screening_PB"
    assert one["n_cells"] == cells.sum() == 3 * 40
    assert one["mean_score"] == pytest.approx(scores.loc[cells, "IFN_score"].mean())


def test_changes_detect_planted_ifn_drop(scored):
    _, _, changes = scored
    ifn = changes[(changes["signature"] == "IFN") & (changes["timepoint"].isin(["D28", "M3"]))]
    for cell_type in ("all", "monocyte", "T_CD4"):
        rows = ifn[ifn["cell_type"] == cell_type]
        assert len(rows) == 2
        assert (rows["delta"] < 0).all()
        assert (rows["fdr"] < 0.05).all(), rows
        assert (rows["n_patients"] == 6).all()
        assert (rows["test"] == sigstats.CONTROL_TEST).all() and not rows["low_n"].any()
    # delta is post_mean - baseline_mean
    assert np.allclose(changes["delta"], changes["post_mean"] - changes["baseline_mean"])
    # day is the median day of the label over patients (days 28..33 -> 30.5 -> 30)
    assert set(changes.loc[changes["timepoint"] == "D28", "day"]) == {30}
    # D12 (before post_min_day) is not a post time point
    assert "D12" not in set(changes["timepoint"])


def test_changes_baff_falls_in_b_cells_once_back(scored):
    _, _, changes = scored
    baff = changes[(changes["signature"] == "BAFF") & (changes["cell_type"] == "B_cells")]
    assert list(baff["timepoint"]) == ["M3"]  # no B cells to compare at D28
    assert baff["delta"].iloc[0] < 0 and baff["fdr"].iloc[0] < 0.05


def test_random_control_shows_no_change(scored):
    _, _, changes = scored
    control = changes[changes["signature"] == genesets.RANDOM_CONTROL]
    assert len(control) > 0 and control["p_value"].notna().all()
    assert (control["fdr"] >= 0.05).all(), control
    null_set = changes[changes["signature"] == "NULL_SET"]
    assert (null_set["fdr"] >= 0.05).all()


def test_changes_with_few_patients_have_no_p_value(scored):
    _, summary, _ = scored
    two = summary[summary["patient"].isin(["P1", "P2"])]
    changes = sigstats.signature_changes(two, **CHANGES)
    assert changes["p_value"].isna().all() and changes["fdr"].isna().all()
    assert (changes["test"] == "none").all() and changes["low_n"].all()
    four = sigstats.signature_changes(summary[summary["patient"].isin(PATIENTS[:4])], **CHANGES)
    assert four["p_value"].notna().all() and four["low_n"].all()


def test_changes_table_is_written_per_contract(scored, tmp_path):
    _, _, changes = scored
    two = sigstats.signature_changes(
        pd.concat([scored[1][scored[1]["patient"].isin(["P1", "P2"])]]), **CHANGES
    )
    out = tmp_path / "signature_changes.tsv"
    write_tsv(pd.concat([changes, two]), out)
    back = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    for col in "signature cell_type timepoint day n_patients baseline_mean post_mean".split():
        assert col in back.columns
    assert {"delta", "p_value", "fdr"} <= set(back.columns)
    assert set(back["low_n"]) == {"true", "false"}
    assert (back["p_value"] == "").any()  # missing p-values are empty fields


def test_fdr_is_a_family_per_signature(scored):
    # the random control must not borrow the interferon set's discoveries
    _, _, changes = scored
    for _, rows in changes.groupby("signature"):
        np.testing.assert_allclose(rows["fdr"], sigstats.bh_fdr(rows["p_value"]), equal_nan=True)
    pooled = sigstats.bh_fdr(changes["p_value"])
    control = (changes["signature"] == genesets.RANDOM_CONTROL).to_numpy()
    # where it matters, at its most significant row (BH over a larger family can raise a large
    # p-value's adjusted value, so the rows are not compared one by one)
    assert changes.loc[control, "fdr"].min() >= pooled[control].min()


def test_bh_fdr_skips_missing():
    fdr = sigstats.bh_fdr(pd.Series([0.01, np.nan, 0.04, 0.03]))
    assert np.isnan(fdr[1])
    assert fdr[[0, 2, 3]].tolist() == pytest.approx([0.03, 0.04, 0.04])


# --------------------------------------------------------------------------------------------
# Pseudobulk
# --------------------------------------------------------------------------------------------
def test_pseudobulk_sums_counts(cohort):
    pb = pbk.pseudobulk(
        cohort,
        cell_types=["all", "monocyte", "B_cells"],
        min_cells=10,
        post_min_day=28,
        visit_window_days=0,
        tissue="PB",
    )
    assert set(pb.obs["condition"]) == {"baseline", "D28", "M3"}  # D12 < post_min_day
    assert set(pb.obs["cell_type"]) == {"all", "monocyte", "B_cells"}
    # no B-cell pseudobulk during aplasia
    b = pb.obs[pb.obs["cell_type"] == "B_cells"]
    assert "D28" not in set(b["condition"])
    row = pb.obs_names.get_loc("P1|baseline|monocyte")
    cells = (
        (cohort.obs["sample"] == "P1_screening_PB") & (cohort.obs["cell_type"] == "monocyte")
    ).to_numpy()  # the BM baseline sample is left out (tissue PB)
    expected = np.asarray(cohort.layers["counts"][cells].sum(axis=0)).ravel()
    np.testing.assert_allclose(pb.X[row].toarray().ravel(), expected)
    assert pb.obs.loc["P1|baseline|monocyte", "n_cells"] == 40
    counts, meta = pbk.paired_counts(pb, cell_type="B_cells", post=["D28", "M3"], min_counts=10)
    assert list(meta["condition"].unique()) == ["baseline", "post"]
    assert meta["patient"].nunique() == 6 and len(counts) == 12
    empty, none = pbk.paired_counts(pb, cell_type="B_cells", post=["D28"], min_counts=10)
    assert empty.empty and none.empty


def test_per_timepoint_contrasts_come_from_one_pydeseq2_fit_over_every_visit(cohort):
    pb = pbk.pseudobulk(
        cohort,
        cell_types=["monocyte", "B_naive"],
        min_cells=10,
        post_min_day=28,
        visit_window_days=0,
        tissue="PB",
    )
    kwargs = dict(timepoints=["D28", "M3"], min_counts=10)
    counts, meta = pbk.timepoint_counts(pb, cell_type="monocyte", **kwargs)
    visits = meta.groupby("patient")["condition"].agg(tuple)
    assert list(visits.index) == PATIENTS and set(visits) == {("baseline", "D28", "M3")}
    assert list(counts.index) == list(meta.index) and (counts.to_numpy() >= 0).all()
    # a patient without a baseline, or with nothing after it, is left out
    no_base = pb[~((pb.obs["patient"] == "P1") & (pb.obs["condition"] == "baseline")).to_numpy()]
    base_only = pb[~((pb.obs["patient"] == "P2") & (pb.obs["condition"] != "baseline")).to_numpy()]
    for sub, gone in ((no_base, "P1"), (base_only, "P2")):
        _, m = pbk.timepoint_counts(sub, cell_type="monocyte", **kwargs)
        assert gone not in set(m["patient"]) and m["patient"].nunique() == 5
    _, naive = pbk.timepoint_counts(pb, cell_type="B_naive", **kwargs)  # aplasia at D28
    assert set(naive["condition"]) == {"baseline", "M3"}

    d28, fit = pbk.deseq_wald(counts, meta, post="D28")
    m3, _ = pbk.deseq_wald(counts, meta, post="M3", fit=fit)
    # reusing the fit for the second contrast is PyDESeq2's own contrast on a new fit
    pd.testing.assert_frame_equal(m3, pbk.deseq_wald(counts, meta, post="M3")[0])
    # power: the responders' interferon genes fall at both visits; calibration: background
    for de in (d28, m3):
        assert (de.loc[IFN6, "log2_fold_change"] < -0.5).all() and (
            de.loc[IFN6, "padj"] < 0.05
        ).all()
        assert (de.loc[de.index.str.startswith("GENE"), "padj"] < 0.05).mean() < 0.05
    # sign flips exchange baseline and that visit only: all patients flipped negate M3's test
    flipped = pbk.sign_flip_statistics(counts, meta, [tuple(PATIENTS)], fit, post="M3")[0]
    ok = m3["stat"].notna()
    np.testing.assert_allclose(flipped[ok], -m3.loc[ok, "stat"], rtol=1e-3, atol=1e-3)


def test_pseudobulk_of_counts_left_on_disk_is_the_in_memory_one(cohort, tmp_path, monkeypatch):
    """signatures_gsea sums the counts 10,000 cells at a time from the file: same sums."""
    kwargs = dict(
        cell_types=["all", "monocyte", "B_cells"],
        min_cells=10,
        post_min_day=28,
        visit_window_days=0,
        tissue="PB",
    )
    expected = pbk.pseudobulk(cohort, **kwargs)
    path = tmp_path / "cohort.h5ad"
    cohort.write_h5ad(path)
    monkeypatch.setattr(pbk, "SUM_BLOCK_ROWS", 7)  # many blocks, a short last one
    assert cohort.n_obs % 7
    with backed_counts(path, x="counts") as backed:
        assert not sparse.issparse(backed.X)  # rows read from the file, block by block
        got = pbk.pseudobulk(backed, layer=None, **kwargs)
    pd.testing.assert_frame_equal(got.obs, expected.obs)
    assert (got.X != expected.X).nnz == 0


# --------------------------------------------------------------------------------------------
# Rule adapters, run with a stand-in for Snakemake's `snakemake` object
# --------------------------------------------------------------------------------------------
class _Named(list):
    """A list whose named items are attributes too, like Snakemake's Namedlist."""

    def __init__(self, **named):
        super().__init__(named.values())
        self.__dict__.update(named)


@pytest.fixture
def restore_logging():
    import sys

    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    sys.excepthook = hook
    logging.captureWarnings(False)


def test_adapters_write_the_contract_tables(repo, tmp_path, restore_logging):
    import runpy

    h5ad = tmp_path / "annotated.h5ad"
    make_cohort(n_cells=25).write_h5ad(h5ad)
    folder = repo / "resources" / "genesets"
    family = [str(folder / "HALLMARK.gmt")]
    gmts = [str(p) for p in sorted(folder.glob("*.gmt")) if str(p) not in family]
    cells = {"min_cells": 10, "tissue": "PB"}
    common = {"phases": {"post_min_day": 28, "visit_window_days": 3}, "seed": 0}
    control = _Named(
        input=_Named(h5ad=str(h5ad), gmt=gmts),
        output=_Named(control_gmt=str(tmp_path / "random_control.gmt")),
        params=_Named(signatures={"random_control_size": 20}, seed=0),
        log=[str(tmp_path / "control.log")],
    )
    runpy.run_path(str(repo / "scripts" / "signatures_control.py"), {"snakemake": control})
    score = _Named(
        input=_Named(h5ad=str(h5ad), gmt=gmts, control_gmt=control.output.control_gmt),
        output=_Named(
            scores=str(tmp_path / "scores.tsv"),
            summary=str(tmp_path / "signatures.tsv"),
            changes=str(tmp_path / "signature_changes.tsv"),
        ),
        params=_Named(
            signatures={
                "min_genes": 3,
                "on_too_few": "warn",
                "ctrl_size": 50,
                "n_bins": 25,
                "matched_controls": 50,
                "cell_type_groups": ["B_cells"],
                "min_patients_test": 3,
                **cells,
            },
            **common,
        ),
        log=[str(tmp_path / "score.log")],
    )
    runpy.run_path(str(repo / "scripts" / "signatures_score.py"), {"snakemake": score})
    gsea = _Named(
        input=_Named(
            h5ad=str(h5ad), gmt=gmts, control_gmt=control.output.control_gmt, family_gmt=family
        ),
        output=_Named(gsea=str(tmp_path / "gsea.tsv"), de=str(tmp_path / "pseudobulk_de.tsv")),
        params=_Named(
            gsea={
                "cell_types": ["all", "monocyte", "B_cells"],
                "per_timepoint": False,
                "min_counts": 10,
                "permutations": 100,
                "sign_flip_min_patients": 7,
                "max_flips": 7,
                "min_size": 5,
                "max_size": 500,
            },
            cells=cells,
            **common,
        ),
        log=[str(tmp_path / "gsea.log")],
    )
    runpy.run_path(str(repo / "scripts" / "signatures_gsea.py"), {"snakemake": gsea})

    def read(name):
        return pd.read_csv(tmp_path / name, sep="\t", dtype=str, keep_default_na=False)

    contract = {
        "signatures.tsv": "sample patient day tissue cell_type signature n_cells mean_score",
        "signature_changes.tsv": "signature cell_type timepoint day n_patients baseline_mean "
        "post_mean delta p_value fdr",
        "gsea.tsv": "cell_type comparison term nes p_value fdr leading_edge",
        "pseudobulk_de.tsv": "cell_type comparison gene log2_fold_change stat p_value padj",
    }
    for name, cols in contract.items():
        table = read(name)
        assert set(cols.split()) <= set(table.columns), name
        assert len(table) > 0, name
    assert {"IFN", "BAFF", genesets.RANDOM_CONTROL} <= set(read("signatures.tsv")["signature"])
    gsea = read("gsea.tsv")
    assert set(gsea["comparison"]) == {"baseline_vs_post"}
    # the family (50 hallmarks, most without genes in this small cohort) joins the signatures
    assert {"IFN", "BAFF", "HALLMARK_INTERFERON_ALPHA_RESPONSE"} <= set(gsea["term"])
    log_text = (tmp_path / "gsea.log").read_text()
    assert "gene sets with genes in the ranking outside 5-500 left out: " in log_text
    assert "HALLMARK_HYPOXIA (2)" in log_text
    changes = read("signature_changes.tsv")
    assert {"delta_vs_control", "p_empirical", "adjusted_delta"} <= set(changes.columns)
    assert set(changes.loc[changes["cell_type"] == "all", "composition_dependent"]) == {"true"}
    scores = read("scores.tsv")
    assert scores.columns[0] == "cell" and "IFN_score" in scores.columns
    assert (
        "signature HALLMARK_INTERFERON_ALPHA_RESPONSE: 89 of 97 genes not in the data"
        in (tmp_path / "score.log").read_text()
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_lean_score_genes_mean_is_scanpys_to_the_bit(fmt):
    """The copy-free sparse mean (workarounds.lean_score_genes_mean) gives exactly scanpy
    1.11's ``_sparse_nanmean`` without NaNs, and is scanpy's own with them."""
    import scipy.sparse as sp
    from scanpy.tools import _score_genes

    from cartrack.workarounds import lean_score_genes_mean

    original = _score_genes._sparse_nanmean
    x = sp.random(300, 40, density=0.3, format=fmt, random_state=0, dtype=np.float32)
    with_nan = x.copy()
    with_nan.data[::7] = np.nan
    cases = [(m, a, original(m, axis=a)) for m in (x, with_nan) for a in (0, 1)]
    lean_score_genes_mean()
    try:
        for m, a, want in cases:
            got = _score_genes._sparse_nanmean(m, axis=a)
            assert np.array_equal(np.asarray(got), np.asarray(want), equal_nan=True)
    finally:
        _score_genes._sparse_nanmean = original
