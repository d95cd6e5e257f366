"""TCR ingest, chain QC and clonotypes on the real TCR files and on hand-built edge cases."""

import logging

import pandas as pd
import pytest

from cartrack.bcr import index_chains, merge_bcr, read_bcr
from cartrack.design import InputError
from cartrack.io import read_gex
from cartrack.tcr import chain_qc_table, combine_receptors, merge_tcr, prepare_tcr, read_tcr
from cartrack.tracking import sheet_table

LIAO = "scirpy/liao-2019-covid19/"
LIAO_TCR = LIAO + "GSM4385993_C144_filtered_contig_annotations.csv.gz"
LIAO_GEX = LIAO + "GSM4339772_C144_filtered_feature_bc_matrix.h5"
SCIRPY_JSON = "scirpy/10x/all_contig_annotations.json"
SCIRPY_CSV = "scirpy/10x/filtered_contig_annotations.csv"
DJVDJ = "djvdj/splen/{}_{}/"


def meta_for(samples: dict[str, str], day: int = 0) -> pd.DataFrame:
    """sheet_table of samples -> patient, all with a TCR file."""
    sheet = pd.DataFrame(
        {"sample": list(samples), "patient": list(samples.values()), "day": day, "tissue": "PB"}
    )
    meta = sheet_table(sheet, post_min_day=28, visit_window_days=3)
    meta["has_tcr"] = True
    return meta


def prepare(samples, meta: pd.DataFrame, **overrides):
    """:func:`prepare_tcr` with the schema's ``tcr`` defaults, changed by `overrides`."""
    kw = dict(productive_only=True, receptor_arms="all", dual_ir="any", include_multichain=False)
    return prepare_tcr(samples, meta, **{**kw, **overrides})


def partition(labels: pd.Series) -> set[frozenset]:
    """A clustering as a set of member sets (label names do not matter)."""
    return {frozenset(g.index) for _, g in labels.dropna().groupby(labels.dropna())}


def test_liao_tcr_with_its_gex(real):
    adata = read_tcr(real / LIAO_TCR, sample="C144", cells_only=True, productive_only=True)
    stats = adata.uns["tcr_ingest"]
    assert (stats["n_contigs"], stats["n_contigs_nonproductive"]) == (346, 78)
    assert adata.n_obs == 136 and stats["n_contigs_bcr"] == 0
    gex, _ = read_gex(real / LIAO_GEX, sample="C144")
    assert adata.obs_names.isin(gex.obs_names).sum() == 132  # PROVENANCE: 132 of 136


def test_liao_clonotypes_equal_cell_rangers(real):
    """Identical nucleotide CDR3s of all chains is Cell Ranger's clonotype definition too:
    on the Liao file the two partitions must coincide, dual-alpha and orphan cells included."""
    airr = prepare(
        [read_tcr(real / LIAO_TCR, sample="C144", cells_only=True, productive_only=True)],
        meta_for({"C144": "P"}),
    )
    raw = pd.read_csv(real / LIAO_TCR).groupby("barcode")["raw_clonotype_id"].first()
    cell_ranger = pd.Series(raw.reindex(airr.obs["barcode"]).to_numpy(), index=airr.obs_names)
    assert airr.obs["clonotype_id"].notna().all()
    assert partition(airr.obs["clonotype_id"]) == partition(cell_ranger)
    assert airr.obs["clonotype_id"].value_counts().iloc[0] == 17  # the expanded clonotype
    assert airr.obs["chain_pairing"].eq("extra VJ").sum() == 12  # dual-alpha cells


def test_scirpy_json_drops_ig_and_non_cells(real):
    adata = read_tcr(real / SCIRPY_JSON, sample="J", cells_only=True, productive_only=True)
    stats = adata.uns["tcr_ingest"]
    assert stats["n_contigs_bcr"] == 2 and stats["n_contigs_not_cell"] == 2
    assert adata.n_obs == 2


def test_scirpy_csv_multichain_only_when_asked(real):
    samples = [read_tcr(real / SCIRPY_CSV, sample="C", cells_only=True, productive_only=True)]
    airr = prepare(samples, meta_for({"C": "P"}))
    multi = airr.obs["chain_pairing"].eq("multichain")
    assert multi.sum() == 1 and airr.obs.loc[multi, "clonotype_id"].isna().all()
    airr = prepare(samples, meta_for({"C": "P"}), include_multichain=True)
    assert airr.obs.loc[multi, "clonotype_id"].notna().all()


def test_djvdj_csv_and_airr_agree_and_share_barcodes_with_bcr(real):
    csv = read_tcr(
        real / DJVDJ.format("BL6", "TCR") / "filtered_contig_annotations.csv.gz",
        sample="BL6",
        cells_only=True,
        productive_only=True,
    )
    airr_file = real / DJVDJ.format("BL6", "TCR") / "airr_rearrangement.tsv.gz"
    tsv = read_tcr(airr_file, sample="BL6", cells_only=True, productive_only=True)
    assert csv.n_obs == tsv.n_obs == 65
    a = prepare([csv], meta_for({"BL6": "M1"}))
    b = prepare([tsv], meta_for({"BL6": "M1"}))
    assert partition(a.obs["clonotype_id"]) == partition(b.obs["clonotype_id"])
    gex, _ = read_gex(
        real / DJVDJ.format("BL6", "GEX") / "filtered_feature_bc_matrix", sample="BL6"
    )
    assert csv.obs_names.isin(gex.obs_names).all()
    bcr = merge_bcr(
        [
            read_bcr(
                real / DJVDJ.format("BL6", "BCR") / "filtered_contig_annotations.csv.gz",
                sample="BL6",
                cells_only=True,
                productive_only=True,
            )
        ]
    )
    index_chains(bcr, productive_only=True)
    both = combine_receptors(bcr, a, productive_only=True)
    shared = bcr.obs_names.intersection(a.obs_names)
    assert len(shared) == 27  # PROVENANCE: 27 BL6 cells have both
    assert both.n_obs == bcr.n_obs + a.n_obs - 27
    loci = both[shared].obsm["airr"]["locus"].to_list()
    assert all({x[:2] for x in cell} == {"IG", "TR"} for cell in loci)
    assert both.obs.loc[a.obs_names.difference(shared), "receptor_type"].eq("TCR").all()
    assert both.obs.loc[shared, "clonotype_id"].notna().all()


def test_two_mice_never_share_a_clonotype(real):
    samples = [
        read_tcr(
            real / DJVDJ.format(m, "TCR") / "filtered_contig_annotations.csv.gz",
            sample=m,
            cells_only=True,
            productive_only=True,
        )
        for m in ("BL6", "MD4")
    ]
    # the same file under two patients: identical receptors, but clonotypes stay per patient
    twice = [
        samples[0],
        read_tcr(
            real / DJVDJ.format("BL6", "TCR") / "filtered_contig_annotations.csv.gz",
            sample="copy",
            cells_only=True,
            productive_only=True,
        ),
    ]
    airr = prepare(twice, meta_for({"BL6": "M1", "copy": "M2"}))
    per_patient = airr.obs.groupby("clonotype_id", observed=True)["patient"].nunique()
    assert per_patient.max() == 1
    assert (
        airr.obs["clonotype_id"].nunique()
        == 2 * airr.obs.loc[airr.obs["patient"] == "M1", "clonotype_id"].nunique()
    )
    qc = chain_qc_table(
        prepare(samples, meta_for({"BL6": "M1", "MD4": "M1"})),
        pd.DataFrame(index=[]),
        meta_for({"BL6": "M1", "MD4": "M1"}),
    )
    assert list(qc["n_tcr_cells"]) == [65, 56]
    assert (qc["n_contigs"] == [114, 90]).all()


def _contig(barcode, chain, cdr3_nt, v):
    from cartrack.airr_fields import translate

    return {
        "barcode": barcode,
        "is_cell": True,
        "contig_id": f"{barcode}_{chain}_{cdr3_nt[:6]}",
        "high_confidence": True,
        "chain": chain,
        "v_gene": v,
        "d_gene": "None",
        "j_gene": "TRAJ33" if chain == "TRA" else "TRBJ2-7",
        "c_gene": "TRAC" if chain == "TRA" else "TRBC2",
        "full_length": True,
        "productive": True,
        "cdr3": translate(cdr3_nt),
        "cdr3_nt": cdr3_nt,
        "reads": 500,
        "umis": 10,
    }


A1, A2 = "TGTGCTGTGAGAGATAGCAACTATCAGTTATTTTTT", "TGTGCAGCAAGCGGGGGCTACAATAAGCTGATTTTT"
B1, B2 = "TGTGCCAGCAGTTTAGGGCAGGGCTACGAGCAGTACTTT", "TGTGCCAGCAGCCCCGGACTAGCGGGAGAGCAGTTCTTT"


@pytest.fixture
def edge_cases(tmp_path):
    """Cells: a (A1,B1), b (A1,A2,B1: dual alpha), c (A2,B1), d (B1 only), e (A1,B2),
    f (A1 aa-identical but other nt), g (IG chain only)."""
    rows = [
        _contig("a-1", "TRA", A1, "TRAV1-2"),
        _contig("a-1", "TRB", B1, "TRBV20-1"),
        _contig("b-1", "TRA", A1, "TRAV1-2"),
        {**_contig("b-1", "TRA", A2, "TRAV12-1"), "umis": 3},
        _contig("b-1", "TRB", B1, "TRBV20-1"),
        _contig("c-1", "TRA", A2, "TRAV12-1"),
        _contig("c-1", "TRB", B1, "TRBV20-1"),
        _contig("d-1", "TRB", B1, "TRBV20-1"),
        _contig("e-1", "TRA", A1, "TRAV1-2"),
        _contig("e-1", "TRB", B2, "TRBV7-9"),
        _contig("f-1", "TRA", A1[:-3] + "TTC", "TRAV1-2"),  # TTT -> TTC: same amino acids
        _contig("f-1", "TRB", B1, "TRBV20-1"),
        {**_contig("g-1", "IGH", B2, "IGHV3-23"), "j_gene": "IGHJ4", "c_gene": "IGHM"},
    ]
    path = tmp_path / "filtered_contig_annotations.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_dual_alpha_single_chain_and_nucleotide_identity(edge_cases):
    sample = read_tcr(edge_cases, sample="S", cells_only=True, productive_only=True)
    assert sample.uns["tcr_ingest"]["n_contigs_bcr"] == 1 and "S_g-1" not in sample.obs_names
    airr = prepare([sample], meta_for({"S": "P"}))
    ct = airr.obs["clonotype_id"]
    # dual_ir="any": the dual-alpha cell b joins a (via A1) and c (via A2)
    assert ct["S_a-1"] == ct["S_b-1"] == ct["S_c-1"]
    # receptor_arms="all": the orphan beta d does not join the paired cells
    assert ct["S_d-1"] != ct["S_a-1"]
    # both arms must match, in nucleotides: e (other beta) and f (synonymous alpha) stay apart
    assert len({ct["S_a-1"], ct["S_e-1"], ct["S_f-1"]}) == 3
    assert airr.obs.loc["S_b-1", "chain_pairing"] == "extra VJ"
    strict = prepare([sample], meta_for({"S": "P"}), dual_ir="primary_only")
    assert strict.obs["clonotype_id"]["S_c-1"] != strict.obs["clonotype_id"]["S_a-1"]
    anyarm = prepare([sample], meta_for({"S": "P"}), receptor_arms="any")
    assert anyarm.obs["clonotype_id"]["S_d-1"] == anyarm.obs["clonotype_id"]["S_a-1"]


def test_amino_acid_only_airr_gets_no_clonotype(tmp_path):
    """Without nucleotide junctions scirpy would compare missing values as equal strings."""
    rows = pd.DataFrame(
        {
            "cell_id": ["x", "x", "y", "y"],
            "sequence_id": ["x1", "x2", "y1", "y2"],
            "locus": ["TRA", "TRB", "TRA", "TRB"],
            "v_call": ["TRAV1-2", "TRBV20-1", "TRAV8-4", "TRBV7-9"],
            "j_call": ["TRAJ33", "TRBJ2-7", "TRAJ20", "TRBJ1-1"],
            "junction_aa": ["CAVRDSNYQLF", "CASSLGQGYEQYF", "CAASGGYNKLIF", "CASSPGLAGEQFF"],
            "productive": ["T"] * 4,
        }
    )
    path = tmp_path / "aa_only.tsv"
    rows.to_csv(path, sep="\t", index=False)
    airr = prepare(
        [read_tcr(path, sample="S", cells_only=True, productive_only=True)], meta_for({"S": "P"})
    )
    assert airr.n_obs == 2 and airr.obs["clonotype_id"].isna().all()


def test_errors_name_the_tcr_file(real, tmp_path):
    with pytest.raises(InputError, match="TCR file .*cell_id"):
        read_tcr(
            real / "airr_standards/good_rearrangement.tsv",
            sample="S",
            cells_only=True,
            productive_only=True,
        )
    with pytest.raises(InputError, match="TCR file .*does not exist"):
        read_tcr(tmp_path / "missing.csv", sample="S", cells_only=True, productive_only=True)


def test_bcr_file_as_tcr_gives_zero_cells_and_a_warning(real, caplog):
    with caplog.at_level(logging.WARNING):
        adata = read_tcr(
            real / DJVDJ.format("BL6", "BCR") / "filtered_contig_annotations.csv.gz",
            sample="S",
            cells_only=True,
            productive_only=True,
        )
    assert adata.n_obs == 0 and adata.uns["tcr_ingest"]["n_contigs_bcr"] == 251
    assert "TCR file" in caplog.text and "B-cell receptor file?" in caplog.text


def test_no_tcr_at_all():
    airr = prepare([], meta_for({"S": "P"}))
    assert airr.n_obs == 0 and "clonotype_id" in airr.obs
    assert merge_tcr([]).n_obs == 0
