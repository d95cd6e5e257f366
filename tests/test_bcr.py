"""Tests for cartrack.bcr: V(D)J ingest of every real file, cleaning rules and merging."""

import gzip
import json
import logging
import warnings
from pathlib import Path

import anndata as ad
import awkward as ak
import numpy as np
import pandas as pd
import pytest

from cartrack.airr_fields import gene_name, infer_locus, translate
from cartrack.bcr import (
    build_airr,
    clean_chains,
    detect_format,
    harmonise_airr,
    index_chains,
    merge_bcr,
    read_bcr,
)
from cartrack.design import InputError
from cartrack.io import read_gex

MELANOMA = "scirpy/10x/sc5p_v2_hs_melanoma_10k_b_filtered_contig_annotations.csv.gz"
SCIRPY_JSON = "scirpy/10x/all_contig_annotations.json"
SCIRPY_CSV = "scirpy/10x/filtered_contig_annotations.csv"
SCIRPY_AIRR = "scirpy/airr/rearrangement_ig.tsv"
LIAO_TCR = "scirpy/liao-2019-covid19/GSM4385993_C144_filtered_contig_annotations.csv.gz"
DANDELION = "dandelion/sample_test_10x/filtered_contig_annotations.csv"
DJVDJ_CSV = "djvdj/splen/{}_BCR/filtered_contig_annotations.csv.gz"
DJVDJ_AIRR = "djvdj/splen/{}_BCR/airr_rearrangement.tsv.gz"
DJVDJ_TCR_AIRR = "djvdj/splen/BL6_TCR/airr_rearrangement.tsv.gz"
DJVDJ_GEX = "djvdj/splen/{}_GEX/filtered_feature_bc_matrix"
FLU = "immunarch/flu.csv.gz"
AIRR_STANDARDS = [
    "airr_standards/rearrangement-example.tsv.gz",
    "airr_standards/good_rearrangement.tsv",
    "airr_standards/bad_rearrangement.tsv",
]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _chains(adata: ad.AnnData) -> pd.DataFrame:
    rows = []
    for cell, chains in zip(adata.obs_names, ak.to_list(adata.obsm["airr"]), strict=True):
        rows += [{**c, "cell": cell} for c in chains]
    return pd.DataFrame(rows)


def _assert_layout(adata: ad.AnnData, sample: str) -> None:
    assert adata.obs_names.is_unique
    assert (adata.obs["sample"] == sample).all()
    assert list(adata.obs_names) == [f"{sample}_{b}" for b in adata.obs["barcode"]]
    if adata.n_obs:
        assert set(_chains(adata)["locus"]) <= {"IGH", "IGK", "IGL"}


# ----------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(
    ("call", "gene"),
    [
        ("IGHV3-23", "IGHV3-23"),
        ("IGHV3-23*01", "IGHV3-23"),
        ("IGHV3-23*01,IGHV3-30*02", "IGHV3-23"),
        ("IGHV3-9*01_T194C", "IGHV3-9"),
        ("Homsap IGHV1-2*02 F, or Homsap IGHV1-2*04 F", "IGHV1-2"),
        ("IGHG1*03", "IGHG1"),
        ("TRAV29DV5", "TRAV29DV5"),
        ("NA", None),
        ("None", None),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_gene_name(call, gene):
    assert gene_name(call) == gene


def test_infer_locus_and_translate():
    assert infer_locus(["IGHV1-2", None, "IGHJ4", "IGHG1"]) == "IGH"
    assert infer_locus(["IGLV2-23", "IGKJ4", "IGLC2"]) is None  # Cell Ranger "Multi"
    assert infer_locus([None, None]) is None
    assert translate("TGTGCGAGATGG") == "CARW"
    assert translate("TGTGC") is None


def test_detect_format(tmp_path):
    assert detect_format("x/filtered_contig_annotations.csv.gz") == "10x_csv"
    assert detect_format("all_contig_annotations.json") == "10x_json"
    assert detect_format("airr_rearrangement.TSV.gz") == "airr"
    with pytest.raises(InputError, match="unknown format"):
        detect_format("contigs.txt")
    with pytest.raises(InputError, match="does not exist"):
        read_bcr(tmp_path / "missing.csv", sample="S1", cells_only=True, productive_only=True)


# ----------------------------------------------------------------------- real files
def test_melanoma_10x_csv(real):
    a = read_bcr(real / MELANOMA, sample="mel", cells_only=True, productive_only=True)
    _assert_layout(a, "mel")
    assert a.n_obs == 5644
    s = a.uns["bcr_ingest"]
    assert s["n_contigs"] == 15079
    assert s["n_contigs_nonproductive"] == 3058  # includes the 4 `Multi` contigs
    assert s["n_contigs_kept"] == 15079 - 3058
    assert s["n_contigs_no_locus"] == 0 and s["n_contigs_tcr"] == 0


def test_melanoma_multi_locus_without_productive_filter(real):
    a = read_bcr(real / MELANOMA, sample="mel", productive_only=False, cells_only=True)
    # the 4 `Multi` contigs mix IGLV/IGKJ genes: no locus can be inferred, so they go
    assert a.uns["bcr_ingest"]["n_contigs_no_locus"] == 4
    assert a.uns["bcr_ingest"]["n_contigs_kept"] == 15079 - 4


def test_scirpy_json(real):
    a = read_bcr(real / SCIRPY_JSON, sample="js", cells_only=True, productive_only=True)
    _assert_layout(a, "js")
    # 3 barcodes; one is is_cell=false, one holds only TCR chains; the B cell keeps its
    # productive IGK and IGHA2 chains (two non-productive contigs dropped)
    assert list(a.obs["barcode"]) == ["CAGGTGCTCGTGGTCG-1"]
    s = a.uns["bcr_ingest"]
    assert (s["n_contigs"], s["n_contigs_not_cell"], s["n_contigs_tcr"]) == (9, 2, 3)
    chains = _chains(a)
    assert sorted(chains["locus"]) == ["IGH", "IGK"]
    assert set(chains["c_call"]) == {"IGHA2", "IGKC"}


def test_scirpy_csv_mixed_tcr_bcr(real):
    a = read_bcr(real / SCIRPY_CSV, sample="s5", cells_only=True, productive_only=True)
    assert list(a.obs["barcode"]) == ["AAACTTGGTCCGTTAA-1"]
    assert a.uns["bcr_ingest"]["n_contigs_tcr"] == 14


def test_dandelion_pbmc(real):
    a = read_bcr(real / DANDELION, sample="pbmc", cells_only=True, productive_only=True)
    _assert_layout(a, "pbmc")
    assert a.n_obs == 772
    assert a.uns["bcr_ingest"]["n_contigs"] == 2059


@pytest.mark.parametrize(("name", "n_cells", "n_contigs"), [("BL6", 170, 251), ("MD4", 159, 166)])
def test_djvdj_csv_and_airr_agree(real, name, n_cells, n_contigs):
    csv = read_bcr(
        real / DJVDJ_CSV.format(name), sample=name, cells_only=True, productive_only=True
    )
    tsv = read_bcr(
        real / DJVDJ_AIRR.format(name), sample=name, cells_only=True, productive_only=True
    )
    for a in (csv, tsv):
        _assert_layout(a, name)
        assert a.n_obs == n_cells
        assert a.uns["bcr_ingest"]["n_contigs_kept"] == n_contigs  # no locus lost to "NA"
    assert list(csv.obs_names) == list(tsv.obs_names)
    c, t = _chains(csv), _chains(tsv)
    assert (c["v_call"].to_numpy() == t["v_call"].to_numpy()).all()
    assert t["d_call"].isna().any() and not (t["d_call"] == "NA").any()


def test_djvdj_na_strings_break_plain_scirpy(real):
    """Why read_bcr pre-reads AIRR files: scirpy keeps R's "NA" and loses most loci."""
    import scirpy as ir

    raw = ir.io.read_airr(real / DJVDJ_AIRR.format("BL6"))
    loci = [c["locus"] for cell in ak.to_list(raw.obsm["airr"]) for c in cell]
    assert sum(locus is None for locus in loci) > 200
    ours = _chains(
        read_bcr(
            real / DJVDJ_AIRR.format("BL6"), sample="BL6", cells_only=True, productive_only=True
        )
    )
    assert ours["locus"].notna().all()


def test_djvdj_bcr_cells_match_gex_cells(real):
    """GEX and BCR of one sample share barcodes, so their cell names must be identical."""
    gex, _ = read_gex(real / DJVDJ_GEX.format("BL6"), sample="BL6")
    bcr = read_bcr(
        real / DJVDJ_CSV.format("BL6"), sample="BL6", cells_only=True, productive_only=True
    )
    assert set(bcr.obs_names) <= set(gex.obs_names)


def test_immunarch_two_lanes_in_one_file(real):
    with pytest.raises(InputError, match=r"flu\.csv\.gz.*2 samples.*`sample`"):
        read_bcr(real / FLU, sample="flu", cells_only=True, productive_only=True)
    lanes = {
        s: read_bcr(real / FLU, sample=s, cells_only=True, productive_only=True)
        for s in ("023-002_D7_Lane1", "023-002_D7_Lane10")
    }
    for sample, a in lanes.items():
        _assert_layout(a, sample)
    assert lanes["023-002_D7_Lane10"].n_obs == 2918
    assert lanes["023-002_D7_Lane10"].uns["bcr_ingest"]["n_contigs_not_cell"] == 78
    # 30 barcodes occur in both lanes: they stay two cells each after merging
    shared = set(lanes["023-002_D7_Lane1"].obs["barcode"]) & set(
        lanes["023-002_D7_Lane10"].obs["barcode"]
    )
    assert len(shared) == 30
    merged = merge_bcr(lanes)
    assert merged.n_obs == sum(a.n_obs for a in lanes.values())
    assert merged.obs_names.is_unique


@pytest.mark.parametrize(
    "path", [LIAO_TCR, DJVDJ_TCR_AIRR, "djvdj/splen/MD4_TCR/filtered_contig_annotations.csv.gz"]
)
def test_tcr_only_file_gives_zero_cells(real, path, caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="cartrack.bcr"):
        a = read_bcr(real / path, sample="aplastic", cells_only=True, productive_only=True)
    assert a.n_obs == 0
    assert a.uns["bcr_ingest"]["n_contigs_tcr"] > 0
    assert "T-cell receptor" in caplog.text
    a.write_h5ad(tmp_path / "x.h5ad")
    assert ad.read_h5ad(tmp_path / "x.h5ad").n_obs == 0


def test_scirpy_airr_without_locus_column(real):
    a = read_bcr(real / SCIRPY_AIRR, sample="ig", cells_only=True, productive_only=True)
    assert a.n_obs == 2
    assert sorted(_chains(a)["locus"]) == ["IGH", "IGH", "IGK", "IGL"]  # inferred from genes


@pytest.mark.parametrize("path", AIRR_STANDARDS)
def test_bulk_airr_files_fail_clearly(real, path):
    with pytest.raises(InputError, match=rf"{Path(path).name}.*without a `cell_id`.*[Bb]ulk"):
        read_bcr(real / path, sample="bulk", cells_only=True, productive_only=True)


def test_bad_rearrangement_with_cell_id_still_fails(real, tmp_path):
    """The validator's bad file fails on its own defects once cell_id is there."""
    table = pd.read_csv(real / AIRR_STANDARDS[2], sep="\t", dtype=str, keep_default_na=False)
    table.insert(0, "cell_id", [f"cell{i}" for i in range(len(table))])
    path = tmp_path / "bad_with_cells.tsv"
    table.to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match=r"bad_with_cells\.tsv.*`productive`.*'yes'"):
        read_bcr(path, sample="bad", cells_only=True, productive_only=True)


# ----------------------------------------------------------------- synthetic inputs
AIRR_COLUMNS = [
    "cell_id",
    "sequence_id",
    "locus",
    "v_call",
    "j_call",
    "c_call",
    "junction",
    "junction_aa",
    "productive",
    "is_cell",
    "umi_count",
    "v_identity",
]


def _write_airr(path: Path, rows: list[list]) -> Path:
    pd.DataFrame(rows, columns=AIRR_COLUMNS).to_csv(path, sep="\t", index=False)
    return path


def test_airr_cleaning_rules(tmp_path):
    heavy_nt = "TGTGCGAGAGATTACTGG"  # C A R D Y W
    path = _write_airr(
        tmp_path / "cells.tsv",
        [
            [
                "c1",
                "c1_1",
                "",
                "IGHV3-23*01,IGHV3-30*02",
                "IGHJ4*02",
                "IGHG1*01",
                heavy_nt,
                "",
                "T",
                "T",
                "5",
                "0.95",
            ],
            [
                "c1",
                "c1_2",
                "NA",
                "IGKV1-5*01_A23G",
                "IGKJ1*01",
                "IGKC",
                "",
                "CQQYW",
                "TRUE",
                "T",
                "3",
                "NA",
            ],
            ["c2", "c2_1", "IGH", "IGHV4-34*01", "IGHJ6", "IGHM", "", "CARGGW", "F", "T", "4", ""],
            ["c3", "c3_1", "IGH", "IGHV1-2", "IGHJ4", "IGHM", "", "CARW", "T", "F", "9", ""],
        ],
    )
    a = read_bcr(path, sample="S1", cells_only=True, productive_only=True)
    assert list(a.obs_names) == ["S1_c1"]  # c2 non-productive, c3 not a cell
    s = a.uns["bcr_ingest"]
    assert (s["n_contigs_nonproductive"], s["n_contigs_not_cell"]) == (1, 1)
    chains = _chains(a).set_index("sequence_id")
    assert chains.loc["c1_1", "v_call"] == "IGHV3-23"
    assert chains.loc["c1_1", "v_call_raw"] == "IGHV3-23*01,IGHV3-30*02"
    assert chains.loc["c1_1", "locus"] == "IGH"  # inferred: empty locus
    assert chains.loc["c1_1", "junction_aa"] == "CARDYW"  # translated
    assert chains.loc["c1_1", "cdr3_aa"] == "ARDY"
    assert chains.loc["c1_2", "v_call"] == "IGKV1-5"
    assert chains.loc["c1_2", "locus"] == "IGK"  # "NA" is missing, then inferred
    assert chains.loc["c1_1", "v_identity"] == pytest.approx(0.95)
    assert np.isnan(chains.loc["c1_2", "v_identity"]) or chains.loc["c1_2", "v_identity"] is None
    everything = read_bcr(path, sample="S1", cells_only=False, productive_only=False)
    assert everything.n_obs == 3


def test_airr_without_productive(tmp_path):
    path = tmp_path / "noprod.tsv"
    pd.DataFrame(
        {"cell_id": ["a"], "v_call": ["IGHV1-2"], "j_call": ["IGHJ4"], "junction_aa": ["CARW"]}
    ).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match="no `productive` column"):
        read_bcr(path, sample="S1", cells_only=True, productive_only=True)
    assert read_bcr(path, sample="S1", productive_only=False, cells_only=True).n_obs == 1


def test_airr_missing_cell_ids(tmp_path):
    path = _write_airr(
        tmp_path / "x.tsv",
        [
            ["", "s1", "IGH", "IGHV1-2", "IGHJ4", "IGHM", "", "CARW", "T", "T", "1", ""],
        ],
    )
    with pytest.raises(InputError, match="lack cell_id"):
        read_bcr(path, sample="S1", cells_only=True, productive_only=True)


def test_empty_inputs(tmp_path, real):
    header = pd.read_csv(real / SCIRPY_CSV, nrows=0)
    csv = tmp_path / "filtered_contig_annotations.csv"
    header.to_csv(csv, index=False)
    js = tmp_path / "all_contig_annotations.json"
    js.write_text("[]")
    tsv = tmp_path / "airr.tsv.gz"
    with gzip.open(tsv, "wt") as fh:
        fh.write("\t".join(AIRR_COLUMNS) + "\n")
    empties = {
        p.name: read_bcr(p, sample="aplastic", cells_only=True, productive_only=True)
        for p in (csv, js, tsv)
    }
    for a in empties.values():
        assert a.n_obs == 0
        assert a.uns["bcr_ingest"]["n_contigs"] == 0
    merged = merge_bcr(
        [
            *empties.values(),
            read_bcr(real / SCIRPY_AIRR, sample="ig", cells_only=True, productive_only=True),
        ]
    )
    index_chains(merged, productive_only=True)
    assert merged.n_obs == 2


def test_not_a_contig_table(tmp_path):
    path = tmp_path / "contigs.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="not a Cell Ranger contig table"):
        read_bcr(path, sample="S1", cells_only=True, productive_only=True)
    bad_json = tmp_path / "all_contig_annotations.json"
    bad_json.write_text(json.dumps({"barcode": "x"}))
    with pytest.raises(InputError, match="all_contig_annotations.json"):
        read_bcr(bad_json, sample="S1", cells_only=True, productive_only=True)


def test_h5ad_round_trip(real, tmp_path):
    a = read_bcr(
        real / DJVDJ_CSV.format("BL6"), sample="BL6", cells_only=True, productive_only=True
    )
    a.write_h5ad(tmp_path / "bl6.h5ad")
    b = ad.read_h5ad(tmp_path / "bl6.h5ad")
    assert b.obsm["airr"].type == a.obsm["airr"].type
    assert ak.to_list(b.obsm["airr"]) == ak.to_list(a.obsm["airr"])
    assert b.uns["bcr_ingest"]["n_cells"] == 170


# ---------------------------------------------------------------------- merging
def test_mixed_format_merge_indexes_chains(real, tmp_path):
    """10x CSV + AIRR TSV: scirpy's own objects concatenate to a union type; ours do not."""
    import scirpy as ir

    raw_csv = ir.io.read_10x_vdj(real / DANDELION)
    raw_airr = ir.io.read_airr(real / DJVDJ_AIRR.format("BL6"))
    naive = ak.concatenate([raw_csv.obsm["airr"], raw_airr.obsm["airr"]])
    assert "union" in str(naive.type)  # is_cell: bool in one, string in the other

    csv = read_bcr(real / DANDELION, sample="A", cells_only=True, productive_only=True)
    tsv = read_bcr(
        real / DJVDJ_AIRR.format("BL6"), sample="B", cells_only=True, productive_only=True
    )
    for a in (csv, tsv):
        a.write_h5ad(tmp_path / f"{a.obs['sample'].iloc[0]}.h5ad")
    back = [ad.read_h5ad(tmp_path / f"{s}.h5ad") for s in "AB"]
    merged = merge_bcr(back)
    assert "union" not in str(merged.obsm["airr"].type)
    index_chains(merged, productive_only=True)
    assert merged.n_obs == 772 + 170
    assert set(merged.obs["receptor_type"]) <= {"BCR", "multichain", "no IR"}
    assert list(merged.uns["bcr_ingest"]["sample"]) == ["A", "B"]
    merged.write_h5ad(tmp_path / "merged.h5ad")
    # rule bcr_read writes the merged reads; bcr_clones and gex_annotate merge them again
    again = merge_bcr([ad.read_h5ad(tmp_path / "merged.h5ad")])
    assert again.obs_names.equals(merged.obs_names)
    # h5ad gives strings back as categoricals; merged again they are plain strings, as after
    # merging the per-sample reads (a categorical barcode made CAR-T tables 8x slower)
    fresh = merge_bcr(back).obs
    pd.testing.assert_frame_equal(again.obs[fresh.columns], fresh)
    assert ak.to_list(again.obsm["airr"]) == ak.to_list(merge_bcr(back).obsm["airr"])
    pd.testing.assert_frame_equal(again.uns["bcr_ingest"], merged.uns["bcr_ingest"])


@pytest.mark.parametrize("productive_only", [True, False])
def test_index_chains_without_numba_gives_scirpy_s_indices(real, productive_only):
    """The numba-free helpers (workarounds) index the same chains as scirpy's own, on real
    BCR and TCR files, with non-productive chains and with missing loci."""
    import scirpy as ir

    from cartrack.tcr import read_tcr
    from cartrack.workarounds import index_chains_without_numba

    kw = {"cells_only": True, "productive_only": False}
    bcr = [
        read_bcr(real / MELANOMA, sample="mel", **kw),
        read_bcr(real / DANDELION, sample="dan", **kw),
    ]
    merged = merge_bcr([*bcr, read_tcr(real / LIAO_TCR, sample="tcr", **kw)])
    airr = merged.obsm["airr"]
    no_igk = merged.copy()  # every IGK locus missing
    loci = [[None if x == "IGK" else x for x in row] for row in ak.to_list(airr["locus"])]
    no_igk.obsm["airr"] = ak.with_field(airr, ak.Array(loci), "locus")
    filters = ["productive", "require_junction_aa"] if productive_only else ["require_junction_aa"]
    for adata in (merged, no_igk):
        ours = adata.copy()
        index_chains_without_numba(ours, filter=filters)
        ir.pp.index_chains(adata, filter=filters)
        theirs = adata.obsm["chain_indices"]
        assert str(ours.obsm["chain_indices"].type) == str(theirs.type)
        assert ak.to_list(ours.obsm["chain_indices"]) == ak.to_list(theirs)
        assert ak.sum(ak.num(theirs["VJ"], axis=1)) > 0  # IGL and TRA chains left
        # cells with more than two chains of a type exist (scirpy's "multichain")
        assert productive_only or ak.any(theirs["multichain"])


def test_harmonise_raw_scirpy_arrays(real):
    """The slow path converts arrays not written by read_bcr (e.g. plain scirpy objects)."""
    import scirpy as ir

    raw_csv = ir.io.read_10x_vdj(real / SCIRPY_CSV)
    raw_airr = ir.io.read_airr(real / SCIRPY_AIRR)
    arrays = harmonise_airr([raw_csv.obsm["airr"], raw_airr.obsm["airr"]])
    assert arrays[0].type.content == arrays[1].type.content
    assert "union" not in str(ak.concatenate(arrays).type)


def test_merge_views_and_duplicates(real):
    a = read_bcr(
        real / DJVDJ_CSV.format("MD4"), sample="MD4", cells_only=True, productive_only=True
    )
    view = a[:10]
    merged = merge_bcr([view, a[10:20]])
    assert "union" not in str(merged.obsm["airr"].type)
    with pytest.raises(InputError, match="share cell names"):
        merge_bcr([a, a])


def test_build_airr_groups_chains_by_barcode():
    chains = clean_chains(
        pd.DataFrame(
            [
                {"barcode": "b", "locus": "IGK", "v_call": "IGKV1-5", "junction_aa": "CQQW"},
                {"barcode": "a", "locus": "IGH", "v_call": "IGHV1-2*01", "junction_aa": "CARW"},
                {"barcode": "b", "locus": "IGH", "v_call": "IGHV1-3", "junction_aa": "CAKW"},
            ]
        )
    )
    a = build_airr(chains, sample="S")
    assert list(a.obs_names) == ["S_b", "S_a"]
    assert [len(c) for c in ak.to_list(a.obsm["airr"])] == [2, 1]
    assert ak.to_list(a.obsm["airr"]["v_call"]) == [["IGKV1-5", "IGHV1-3"], ["IGHV1-2"]]
