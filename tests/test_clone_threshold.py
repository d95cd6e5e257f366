"""The data-driven clone cut-off, gene sets, V-region SHM and the real V(D)J files."""

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from cartrack import plots
from cartrack.airr_fields import mu_freq
from cartrack.bcr import index_chains, merge_bcr, read_bcr
from cartrack.clone_threshold import find_threshold
from cartrack.clones import define_clones, gene_set, nearest_distances, vjl_partitions

MELANOMA = "scirpy/10x/sc5p_v2_hs_melanoma_10k_b_filtered_contig_annotations.csv.gz"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def bimodal(rng, n_clonal=400, n_unrelated=1200, gap=(0.12, 0.2)):
    """Clonal distances below the gap, unrelated ones above it."""
    clonal = rng.gamma(2.0, 0.02, size=n_clonal)
    unrelated = rng.normal(0.38, 0.07, size=n_unrelated)
    d = np.r_[clonal[clonal < gap[0]], unrelated[unrelated > gap[1]]]
    return d


# ------------------------------------------------------------------ threshold
@pytest.mark.parametrize("method", ["density", "gmm"])
def test_threshold_found_in_the_valley(method):
    """Power: a bimodal distribution gives a cut inside its gap, for several draws."""
    for seed in range(20):
        t = find_threshold(bimodal(np.random.default_rng(seed)), method=method)
        assert t.method == method
        assert 0.1 <= t.threshold <= 0.22, (seed, t)


@pytest.mark.parametrize("method", ["density", "gmm"])
def test_unimodal_falls_back_and_says_so(method, caplog):
    """Null: unrelated sequences only (no clonal mode) give the fallback, logged."""
    for seed in range(20):
        d = np.random.default_rng(seed).normal(0.38, 0.07, size=1500)
        with caplog.at_level(logging.WARNING, logger="cartrack.clone_threshold"):
            t = find_threshold(d, method=method, fallback=0.12, label="P9")
        assert (t.method, t.threshold) == ("fallback", 0.12), (seed, t)
        assert t.note and "P9" in caplog.text and "falls back to 0.12" in caplog.text


def test_too_few_sequences_fall_back():
    t = find_threshold(bimodal(np.random.default_rng(0))[:20], min_sequences=50)
    assert t.method == "fallback" and t.n_sequences == 20 and "min_sequences" in t.note
    t = find_threshold([np.nan] * 100 + [0.2] * 60)
    assert t.method == "fallback" and t.n_sequences == 60


def test_dist_to_nearest_by_hand():
    from test_clones import airr_of, heavy

    root = "TGTGCGAGAGATGGCTACTGG"  # 21 nt
    one = root[:9] + "C" + root[10:]  # 1 of 21 from root
    far = root[:6] + "CCCCCC" + root[12:]  # 6 of 21 from root (5 from one)
    cells = [heavy("a", nt=root), heavy("b", nt=root), heavy("c", nt=one), heavy("d", nt=far)]
    cells += [heavy("alone", nt=root, v="IGHV1-2")]
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    thresholds = define_clones(airr)
    d = airr.obs["dist_nearest"]
    # identical junctions (a and b) are not each other's neighbour
    assert list(d[["S1_a", "S1_b", "S1_c", "S1_d"]]) == pytest.approx([1 / 21] * 3 + [5 / 21])
    assert np.isnan(d["S1_alone"])  # alone in its partition
    assert thresholds.loc[0, "n_sequences"] == 4


# ------------------------------------------------------------------ gene sets
@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("IGHV3-23*01", "IGHV3-23"),
        ("IGHV3-23*01,IGHV3-23D*01", "IGHV3-23"),
        ("IGKV1D-39*01", "IGKV1-39"),
        ("IGHV1-69D*01", "IGHV1-69"),
        ("IGHV3-30*18,IGHV3-30-5*01", "IGHV3-30"),
        ("IGHV3-33*01", "IGHV3-30"),
        ("IGHV1-2*02,IGHV1-46*01", "IGHV1-2,IGHV1-46"),
        ("IGHV3-9*01_T194C", "IGHV3-9"),
        ("Homsap IGHV1-2*02 F, or Homsap IGHV1-2*04 F", "IGHV1-2"),
        ("IGLV2-14", "IGLV2-14"),
        ("IGHD3-10*01", "IGHD3-10"),
        (None, ""),
        ("NA", ""),
    ],
)
def test_gene_set(call, expected):
    assert gene_set(call) == expected


def test_equivalences_are_configurable():
    assert gene_set("IGHV3-33*01", equivalent_genes=()) == "IGHV3-33"
    assert gene_set("IGHV4-31*01", equivalent_genes=[["IGHV4-30-4", "IGHV4-31"]]) == "IGHV4-30-4"


def test_partitions_join_through_ambiguous_calls_within_a_patient():
    parts = vjl_partitions(
        pd.Series(["P1", "P1", "P1", "P2", "P1"]),
        pd.Series(["IGHV1-2", "IGHV1-2,IGHV1-46", "IGHV1-46", "IGHV1-2", "IGHV1-46"]),
        pd.Series(["IGHJ4", "IGHJ4", "IGHJ4", "IGHJ4", "IGHJ4,IGHJ6"]),
        pd.Series([45, 45, 45, 45, 48]),
    )
    assert parts[0] == parts[1] == parts[2]
    assert parts[3] != parts[0]  # other patient
    assert parts[4] != parts[2]  # other length


# ------------------------------------------------------------------ SHM
GERM = "CAGGTGCAGCTGGTGCAGTCTGGGGCTGAGGTGAAGAAGCCTGGGGCCTCAGTGAAGGTC"


def _with_mutations(seq: str, positions) -> str:
    s = list(seq)
    for p in positions:
        s[p] = "A" if s[p] != "A" else "C"
    return "".join(s)


def test_mu_freq_from_airr_alignment_coordinates():
    seq = _with_mutations(GERM, [3, 10, 20])
    chain = {
        "sequence_alignment": seq + "TTTTTT",
        "germline_alignment": GERM + "NNNNNN",
        "v_alignment_start": 0,
        "v_alignment_end": len(GERM),
    }
    assert mu_freq(chain) == pytest.approx(3 / len(GERM))


def test_mu_freq_imgt_gapped_and_masked_positions():
    germ = GERM[:30] + "..." + GERM[30:]
    seq = _with_mutations(GERM, [5])[:30] + "..." + GERM[30:]
    seq = seq[:40] + "N" + seq[41:]  # an N is not a mutation and not counted
    assert mu_freq({"sequence_alignment": seq, "germline_alignment": germ}) == pytest.approx(
        1 / (len(GERM) - 1)
    )


def test_mu_freq_cell_ranger_layout():
    """Cell Ranger: the contig (with a 5' UTR) and the concatenated reference segments."""
    utr, ref_utr = "GGGACTCTTT", "ATGA"
    contig = utr + _with_mutations(GERM, [7, 33]) + "GGGGCC"
    germline = ref_utr + GERM + "TACTACTGG"
    chain = {
        "sequence": contig,
        "sequence_alignment": contig,
        "germline_alignment": germline,
        "v_sequence_start": len(utr),  # 0-based, as scirpy hands it on
        "v_sequence_end": len(utr) + len(GERM),
    }
    assert mu_freq(chain) == pytest.approx(2 / len(GERM))


def test_mu_freq_missing_without_alignment():
    assert mu_freq({"sequence_alignment": None, "germline_alignment": GERM}) is None
    assert mu_freq({"sequence_alignment": GERM + "A", "germline_alignment": GERM}) is None


# ------------------------------------------------------------------ real files
def _real(path, samples: list[str], patient: str):
    airr = merge_bcr(
        [read_bcr(path, sample=s, cells_only=True, productive_only=True) for s in samples]
    )
    airr.obs["patient"] = patient
    index_chains(airr, productive_only=True)
    return airr


def test_real_10x_melanoma(real, caplog):
    """10x 5' melanoma B cells: the calls run, and contain Cell Ranger's clonotypes."""
    airr = _real(real / MELANOMA, ["mel"], "mel")
    with caplog.at_level(logging.INFO, logger="cartrack.clone_threshold"):
        thresholds = define_clones(airr)
    (row,) = thresholds.to_dict("records")
    assert row["method"] in ("density", "fallback") and 0 < row["threshold"] <= 0.3
    if row["method"] == "fallback":  # few expanded clones: often no clonal mode
        assert "not bimodal" in caplog.text and row["threshold"] == 0.15
    assert row["n_sequences"] > 1000
    contigs = pd.read_csv(real / MELANOMA).drop_duplicates("barcode").set_index("barcode")
    called = airr.obs["clone_id"].dropna()
    cr = contigs["raw_clonotype_id"].reindex(airr.obs.loc[called.index, "barcode"]).to_numpy()
    frame = pd.DataFrame({"ours": called.to_numpy(), "cr": cr})
    pairs = lambda g: float((g * (g - 1) / 2).sum())  # noqa: E731
    recall = pairs(frame.groupby(["ours", "cr"]).size()) / pairs(frame.groupby("cr").size())
    assert recall >= 0.95  # Cell Ranger clonotypes (exact junctions) are not split
    dist = nearest_distances(airr)
    assert len(dist) == row["n_sequences"] and dist["dist_nearest"].between(0, 1).all()


@pytest.mark.parametrize(
    ("path", "samples"),
    [
        ("immunarch/flu.csv.gz", ["023-002_D7_Lane1", "023-002_D7_Lane10"]),
        ("dandelion/sample_test_10x/filtered_contig_annotations.csv", ["S1"]),
    ],
)
def test_real_10x_threshold_is_bimodal_or_falls_back(real, path, samples, caplog):
    airr = _real(real / path, samples, "P1")
    with caplog.at_level(logging.INFO, logger="cartrack.clone_threshold"):
        thresholds = define_clones(airr)
    (row,) = thresholds.to_dict("records")
    assert row["method"] in ("density", "fallback")
    assert f"{row['method'] if row['method'] == 'density' else 'falls back'}" in caplog.text
    assert 0 < row["threshold"] <= 0.3
    assert airr.obs["clone_id"].notna().mean() > 0.8


def test_real_cell_ranger_airr_gets_mu_freq(real):
    """djvdj's Cell Ranger airr_rearrangement.tsv: every chain gets a V-region SHM."""
    airr = _real(real / "djvdj/splen/MD4_BCR/airr_rearrangement.tsv.gz", ["MD4"], "m")
    from cartrack.clones import cell_annotations

    ann = cell_annotations(airr, sequence="nt")
    heavy = ann.loc[ann["has_heavy"], "mu_freq"]
    assert len(heavy) and heavy.notna().all() and heavy.between(0, 0.2).all()
    assert ann["shm"].equals(ann["mu_freq"].fillna(ann["shm"]))


# ------------------------------------------------------------------ figure
def test_dist_to_nearest_figure(tmp_path):
    rng = np.random.default_rng(0)
    distances = pd.DataFrame(
        {"patient": ["P1"] * 300 + ["P2"] * 5, "dist_nearest": np.r_[bimodal(rng)[:300], [0.3] * 5]}
    )
    thresholds = pd.DataFrame(
        {"patient": ["P1", "P2", "P3"], "method": ["density", "fallback", "fallback"]}
    ).assign(threshold=[0.14, 0.15, 0.15], n_sequences=[300, 5, 0])
    fig = plots.dist_to_nearest(distances, thresholds)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in axes] == ["P1", "P2", "P3"]
    assert axes[0].lines[0].get_xdata()[0] == pytest.approx(0.14)  # the cut-off line
    assert any("density" in t.get_text() for t in axes[0].texts)
    pdf, png = plots.save(fig, tmp_path / "dist", dpi=50)
    assert pdf.stat().st_size > 0 and png.stat().st_size > 0
    empty = plots.dist_to_nearest(pd.DataFrame(), pd.DataFrame())
    assert any(t.get_text() for ax in empty.axes for t in ax.texts)
