"""Tests for cartrack.clones: clone calling on tiny patients and the tracking tables."""

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cartrack.bcr import build_airr, clean_chains, index_chains, merge_bcr
from cartrack.clones import CloneParams, define_clones, isotype, shm_from_identity
from cartrack.design import InputError
from cartrack.double_positive import double_positive_cells, read_gex_cells
from cartrack.tracking import (
    b_cell_table,
    b_recovery,
    clone_status,
    clone_tables,
    elimination_table,
    p_missed,
    shannon_evenness,
    sheet_table,
    top_clone_fraction,
    track_clones,
)

AA_15 = CloneParams(sequence="aa", threshold=0.155)  # the old 85% amino-acid rule
AA = "ACDEFGHIKLMNPQRSTVWY"
ROOT = "CARDGYSSSWYPYYYGMDVW"  # 20 aa heavy junction
LIGHT = "CQQYGSSPWTF"
LIGHT2 = "CQQSYSTPLTF"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def substitute(seq: str, positions: list[int], alphabet: str = AA) -> str:
    """`seq` with a different letter at each (inner) position."""
    s = list(seq)
    for p in positions:
        s[p] = next(a for a in alphabet if a != s[p])
    return "".join(s)


def heavy(bc, junction=ROOT, v="IGHV3-23", j="IGHJ6", c="IGHG1", nt=None, **kw):
    return {
        "barcode": bc,
        "locus": "IGH",
        "v_call": v,
        "j_call": j,
        "c_call": c,
        "junction_aa": junction,
        "junction": nt,
        "productive": True,
        "umi_count": 10,
        **kw,
    }


def light(bc, junction=LIGHT, v="IGKV3-20", j="IGKJ1", locus="IGK", umi=5):
    return {
        "barcode": bc,
        "locus": locus,
        "v_call": v,
        "j_call": j,
        "c_call": locus + "C",
        "junction_aa": junction,
        "productive": True,
        "umi_count": umi,
    }


def airr_of(samples: dict[str, list[dict]], patients: dict[str, str]) -> ad.AnnData:
    """Merged, indexed BCR AnnData of several samples with obs `patient`."""
    parts = [build_airr(clean_chains(pd.DataFrame(rows)), sample=s) for s, rows in samples.items()]
    airr = merge_bcr(parts)
    airr.obs["patient"] = airr.obs["sample"].map(patients).to_numpy()
    index_chains(airr)
    return airr


def clones_of(airr: ad.AnnData) -> dict[str, str]:
    return airr.obs["clone_id"].to_dict()


# ------------------------------------------------------------------ annotations
@pytest.mark.parametrize(
    ("c_call", "expected"),
    [
        ("IGHM", "IgM"),
        ("IGHD", "IgD"),
        ("IGHG1", "IgG1"),
        ("IGHG4*01", "IgG4"),
        ("IGHA2", "IgA2"),
        ("IGHE", "IgE"),
        ("IGHG2C", "IgG2c"),
        ("IGHA", "IgA"),
        ("IGKC", None),
        ("IGHGP", None),
        (None, None),
        ("NA", None),
    ],
)
def test_isotype(c_call, expected):
    assert isotype(c_call) == expected


def test_shm_from_identity():
    shm = shm_from_identity(pd.Series([0.9, 95.0, None, "NA"]))
    assert shm.iloc[0] == pytest.approx(0.1) and shm.iloc[1] == pytest.approx(0.05)
    assert shm.iloc[2:].isna().all()


# --------------------------------------------------------------- clone calling
def test_substitutions_group_and_genes_separate():
    cells = [heavy("r"), light("r")]
    for i, pos in enumerate([[5], [5, 9], [3, 8, 14], [7, 11, 16]]):  # 1-3 aa substitutions
        cells += [heavy(f"m{i}", substitute(ROOT, pos)), light(f"m{i}")]
    cells += [heavy("ho", substitute(ROOT, [10]))]  # heavy chain only: still assigned
    # 4 of 20 = 20% > 15% from the root and >= 5 from every member (single linkage would
    # otherwise chain it in through a member)
    cells += [heavy("far", substitute(ROOT, [1, 2, 4, 6]))]
    cells += [heavy("v", v="IGHV3-30"), light("v")]  # other V gene, same junction
    cells += [heavy("j", j="IGHJ4"), light("j")]  # other J gene
    cells += [heavy("len", ROOT[:-2] + "W")]  # other length
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, AA_15)
    cl = clones_of(airr)
    group = {cl[f"S1_{b}"] for b in ["r", "m0", "m1", "m2", "m3", "ho"]}
    assert len(group) == 1
    (main,) = group
    assert main == "P1_C1"  # the largest clone is number 1
    others = [cl[f"S1_{b}"] for b in ["far", "v", "j", "len"]]
    assert main not in others and len(set(others)) == 4


def test_alleles_and_ambiguous_calls_overlap():
    cells = [
        heavy("a", v="IGHV3-23*01,IGHV1-2*02", j="IGHJ6*02"),
        heavy("b", v="IGHV3-23*04", j="IGHJ6*03"),
        heavy("c", v="IGHV3-23*01_T194C", j="IGHJ6"),
        heavy("d", v="IGHV1-2*02", j="IGHJ6"),  # overlaps a's ambiguous call only
        heavy("e", v="IGHV4-34*01", j="IGHJ6"),
    ]
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, AA_15)
    cl = clones_of(airr)
    assert len({cl[f"S1_{b}"] for b in "abcd"}) == 1
    assert cl["S1_e"] != cl["S1_a"]


def test_nucleotide_mode():
    root = "TGTGCGAGAGATGGCTACAGCAGCAGCTGGTACCCCTACTACTACGGTATGGACGTCTGG"  # 20 codons
    cells = [heavy("r", nt=root)]
    for i, pos in enumerate([[10], [10, 30], [6, 25, 44]]):
        cells.append(heavy(f"m{i}", nt=substitute(root, pos, alphabet="ACGT")))
    cells.append(heavy("far", nt=substitute(root, list(range(6, 30, 2)), alphabet="ACGT")))
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, CloneParams(threshold=0.15))
    cl = clones_of(airr)
    assert len({cl[f"S1_{b}"] for b in ["r", "m0", "m1", "m2"]}) == 1
    assert cl["S1_far"] != cl["S1_r"]
    define_clones(airr, CloneParams(threshold=0.0))  # exact matches only
    assert airr.obs["clone_id"].nunique() == 5


def test_clones_within_patients_and_unique_ids():
    same = [heavy("a"), light("a"), heavy("b"), light("b")]
    airr = airr_of(
        {"P1_base": same, "P1_m6": [heavy("a"), light("a")], "P2_base": same},
        {"P1_base": "P1", "P1_m6": "P1", "P2_base": "P2"},
    )
    define_clones(airr, AA_15)
    cl = airr.obs["clone_id"]
    assert cl["P1_base_a"] == cl["P1_m6_a"] == "P1_C1"  # across samples of a patient
    assert cl["P2_base_a"] == "P2_C1"  # never across patients
    assert cl["P1_base_a"] != cl["P2_base_a"]


def test_light_chain_split_and_heavy_only():
    cells = []
    for i in range(3):
        cells += [heavy(f"k{i}"), light(f"k{i}")]
    lam = {"junction": LIGHT2, "v": "IGLV2-14", "j": "IGLJ2", "locus": "IGL"}
    cells += [heavy("l0"), light("l0", **lam)]
    cells += [heavy("h0")]  # heavy only: joins the larger light sub-clone
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, AA_15)
    cl = clones_of(airr)
    kappa = {cl[f"S1_k{i}"] for i in range(3)}
    assert len(kappa) == 1
    assert cl["S1_l0"] not in kappa
    assert cl["S1_h0"] in kappa
    define_clones(airr, CloneParams(sequence="aa", threshold=0.155, split_light=False))
    assert airr.obs["clone_id"].nunique() == 1
    # a cell with both light chains (isotypic inclusion) matches either: it bridges them
    cells += [heavy("dual"), light("dual", umi=9), light("dual", umi=2, **lam)]
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, AA_15)
    assert airr.obs["clone_id"].nunique() == 1


@pytest.mark.parametrize("mode", ["exclude", "attach", "separate"])
def test_light_only_cells(mode):
    cells = [heavy("a"), light("a"), heavy("b"), light("b")]
    cells += [heavy("x", substitute(ROOT, [3, 6, 9, 12, 15]), v="IGHV1-2"), light("x", LIGHT2)]
    cells += [light("pc1"), light("pc2"), light("pc3", LIGHT2), light("solo", "CQQHHHHHHTF")]
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, CloneParams(sequence="aa", threshold=0.155, light_only=mode))
    cl = airr.obs["clone_id"]
    chain = airr.obs["clone_id_chain"]
    if mode == "exclude":
        assert cl[["S1_pc1", "S1_pc2", "S1_pc3", "S1_solo"]].isna().all()
    elif mode == "attach":
        assert cl["S1_pc1"] == cl["S1_pc2"] == cl["S1_a"]
        assert cl["S1_pc3"] == cl["S1_x"]
        assert pd.isna(cl["S1_solo"])  # matches no clone's light chain
        assert chain["S1_pc1"] == "light" and chain["S1_a"] == "heavy"
    else:
        assert cl["S1_pc1"] == cl["S1_pc2"] == "P1_L1"
        assert cl["S1_pc3"].startswith("P1_L") and cl["S1_solo"].startswith("P1_L")
        assert cl["S1_a"] == "P1_C1"
    assert cl.dropna().str.startswith("P1_").all()


def test_cells_without_v_call_are_not_clustered():
    cells = [heavy("a", v=None), heavy("b", v=None), heavy("c")]
    airr = airr_of({"S1": cells}, {"S1": "P1"})
    define_clones(airr, AA_15)
    cl = clones_of(airr)
    assert pd.isna(cl["S1_a"]) and pd.isna(cl["S1_b"]) and cl["S1_c"] == "P1_C1"


# --------------------------------------------------------------- tracking math
def test_p_missed_and_status():
    assert p_missed(0.1, 10) == pytest.approx(0.9**10)
    assert p_missed(0.0, 1000) == 1.0
    assert p_missed(0.5, 0) == 1.0
    status = clone_status(
        n_baseline=[5, 5, 1, 0, 3, 0],
        n_post=[2, 0, 0, 4, 0, 0],
        p_miss=p_missed([0.1, 0.1, 0.001, 0.0, 0.2, 0.0], [50, 50, 50, 50, 5, 50]),
        alpha=0.05,
    )
    assert list(status) == [
        "persistent",
        "eliminated",
        "not_assessable",
        "emergent",
        "not_assessable",
        "not_assessable",
    ]


def test_diversity_metrics():
    assert shannon_evenness([3, 3, 3, 3]) == pytest.approx(1.0)
    h = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    assert shannon_evenness([2, 1, 1]) == pytest.approx(h / np.log(3))
    assert np.isnan(shannon_evenness([7])) and np.isnan(shannon_evenness([]))
    assert top_clone_fraction([2, 1, 1]) == pytest.approx(0.5)
    assert np.isnan(top_clone_fraction([]))


def _samples():
    return pd.DataFrame(
        {
            "patient": ["P1"] * 4,
            "day": [-7, 14, 28, 90],
            "tissue": "PB",
            "timepoint": ["baseline", "D14", "D28", "M3"],
            "has_bcr": True,
        },
        index=pd.Index(["base", "d14", "d28", "m3"], name="sample"),
    )


def test_clone_tables_by_hand():
    """Baseline: A 10, B 2, C 8 (DP) of 20 cells; D14: A 1; D28: A 3, E 7 of 10."""
    samples = _samples()
    rows = []

    def add(clone, sample, n, dp=False):
        for _ in range(n):
            rows.append({"clone_id": clone, "sample": sample, "double_positive": dp})

    add("A", "base", 10)
    add("B", "base", 2)
    add("C", "base", 6, dp=True)
    add("C", "base", 2)
    add("A", "d14", 1)
    add("X", "d14", 4)
    add("A", "d28", 3)
    add("E", "m3", 7)
    cells = pd.DataFrame(rows)
    cells.index = [f"c{i}" for i in range(len(cells))]
    cells["patient"] = "P1"
    cells["day"] = samples.loc[cells["sample"], "day"].to_numpy()
    cells["tissue"] = "PB"
    cells["timepoint"] = samples.loc[cells["sample"], "timepoint"].to_numpy()
    cells["heavy_v_gene"] = np.where(cells["clone_id"] == "C", "IGHV4-34", "IGHV1-2")
    cells["heavy_j_gene"] = "IGHJ4"
    cells["heavy_cdr3_aa"] = "ARDY"
    cells["isotype"] = np.where(cells["clone_id"] == "E", "IgM", "IgG1")
    cells["shm"] = 0.05
    clones, timeline = clone_tables(
        cells, samples, post_min_day=28, alpha=0.05, dp_min_fraction=0.5, dp_min_baseline_cells=3
    )
    c = clones.set_index("clone_id")
    assert list(c.loc["A", ["n_cells", "n_cells_baseline", "n_cells_post"]]) == [14, 10, 3]
    assert (c.loc["A", "first_day"], c.loc["A", "last_day"]) == (-7, 28)
    assert c.loc["A", "status"] == "persistent"
    # N = 10 cells at or after day 28 (D14 does not count either way)
    assert c.loc["C", "p_missed"] == pytest.approx((1 - 8 / 20) ** 10)
    assert c.loc["C", "status"] == "eliminated"
    assert c.loc["B", "p_missed"] == pytest.approx((1 - 2 / 20) ** 10)  # 0.349
    assert c.loc["B", "status"] == "not_assessable"
    assert c.loc["E", "status"] == "emergent" and c.loc["E", "p_missed"] == 1.0
    assert c.loc["X", "status"] == "not_assessable"  # seen only at D14
    assert c.loc["C", "cd19_bcma_fraction"] == pytest.approx(0.75)
    assert bool(c.loc["C", "double_positive"]) and not bool(c.loc["B", "double_positive"])
    assert bool(c.loc["C", "ighv4_34"]) and not bool(c.loc["A", "ighv4_34"])
    assert np.isnan(c.loc["E", "cd19_bcma_fraction"])
    t = timeline.set_index(["clone_id", "sample"])
    assert t.loc[("A", "d28"), "clone_fraction"] == pytest.approx(3 / 3)
    assert t.loc[("A", "base"), "clone_fraction"] == pytest.approx(10 / 20)
    assert list(timeline.columns[:7]) == [
        "patient",
        "clone_id",
        "sample",
        "day",
        "tissue",
        "timepoint",
        "n_cells",
    ]
    b_cells = pd.DataFrame(
        {
            "patient": ["P1"],
            "sample": ["base"],
            "tissue": ["PB"],
            "day": [-7],
            "b_fraction": [0.1],
            "naive_fraction": [0.5],
        }
    )
    elim = elimination_table(clones, b_cells).iloc[0]
    assert (elim["n_dp_clones"], elim["n_dp_eliminated"], elim["n_dp_persistent"]) == (1, 1, 0)
    assert pd.isna(elim["b_recovery_day"])


def test_b_recovery_by_hand():
    b = pd.DataFrame(
        {
            "patient": "P1",
            "sample": [f"s{i}" for i in range(7)],
            "tissue": ["PB", "PB", "PB", "PB", "BM", "PB", "PB"],
            "day": [-5, 14, 28, 90, 100, 120, 180],
            "b_fraction": [0.10, 0.0, 0.002, 0.005, 0.5, 0.02, 0.05],
            "naive_fraction": [0.2, np.nan, 0.9, 0.8, 0.1, 0.85, 0.7],
        }
    )
    rec = b_recovery(b, level=0.01).loc["P1"]
    assert rec["nadir_day"] == 14
    assert rec["b_recovery_day"] == 120  # BM at day 100 does not count
    assert rec["naive_fraction_at_recovery"] == pytest.approx(0.85)
    never = b.assign(b_fraction=np.where(b["day"] > 0, 0.001, 0.1))
    assert pd.isna(b_recovery(never, level=0.01).loc["P1", "b_recovery_day"])
    # the nadir's own day is excluded even when it is above the level
    flat = b.assign(b_fraction=np.where(b["day"] > 0, 0.2, 0.1))
    assert b_recovery(flat, level=0.01).loc["P1", "b_recovery_day"] == 28


def test_double_positive_from_counts():
    gex = pd.DataFrame(
        {
            "rna_CD19": [1, 0, 3, 2, 0],
            "rna_TNFRSF17": [2, 4, 0, 1, 0],
            "prot_CD19": [np.nan, 50, np.nan, 1, np.nan],
            "prot_CD269": [np.nan, 40, np.nan, 60, np.nan],
        }
    )
    rna_only = double_positive_cells(gex)
    assert list(rna_only) == [True, False, False, True, False]
    with_prot = double_positive_cells(
        gex, cd19_protein="CD19", bcma_protein="CD269", cd19_min_protein=10, bcma_min_protein=10
    )
    assert list(with_prot) == [True, True, False, False, False]
    strict = double_positive_cells(gex, cd19_min_counts=1, bcma_min_counts=1)
    assert list(strict) == [False, False, False, False, False]


def test_read_gex_cells(tmp_path, caplog):
    counts = sp.csr_matrix(np.array([[1, 0, 5], [0, 2, 0], [3, 0, 1]], dtype=np.float32))
    gex = ad.AnnData(
        X=counts.copy(),
        obs=pd.DataFrame(
            {"sample": ["S1", "S1", "S2"], "cell_type": ["B_naive", "T_CD4", "plasma_cell"]},
            index=["S1_a", "S1_b", "S2_a"],
        ),
        var=pd.DataFrame(index=["CD19", "MS4A1", "TNFRSF17"]),
    )
    gex.layers["counts"] = counts
    gex.obsm["prot_counts"] = pd.DataFrame({"CD19": [5.0, 0, 7]}, index=gex.obs_names)
    path = tmp_path / "annotated.h5ad"
    gex.write_h5ad(path)
    with caplog.at_level(logging.WARNING, logger="cartrack.clones"):
        cells = read_gex_cells(
            path, genes=["CD19", "TNFRSF17", "NOPE"], proteins=["CD19", "CD269"], chunk=2
        )
    assert list(cells.index) == ["S1_a", "S1_b", "S2_a"]
    assert list(cells["rna_CD19"]) == [1, 0, 3]
    assert list(cells["rna_TNFRSF17"]) == [5, 0, 1]
    assert cells["rna_NOPE"].isna().all() and "NOPE" in caplog.text
    assert list(cells["prot_CD19"]) == [5, 0, 7]
    assert cells["prot_CD269"].isna().all()
    mouse = read_gex_cells(path, genes=["Cd19", "Tnfrsf17"])  # symbols differ in case only
    assert list(mouse["rna_Cd19"]) == [1, 0, 3] and list(mouse["rna_Tnfrsf17"]) == [5, 0, 1]


# ------------------------------------------------------------------- end to end
def test_track_clones_end_to_end(tmp_path):
    base = [
        heavy("a"),
        light("a"),
        heavy("b"),
        light("b"),
        heavy("c"),
        light("c"),
        heavy("d", v="IGHV4-34", c="IGHM"),
        heavy("nogex"),
        heavy("tcell"),
        light("lo"),  # a plasma cell with a light chain only: BCR+, but no clone
    ]
    post = [
        heavy("n1", v="IGHV1-2", c="IGHM"),
        heavy("n2", v="IGHV1-3", c="IGHD"),
        heavy("n3", v="IGHV1-8", c="IGHG2"),
    ]
    parts = [
        build_airr(clean_chains(pd.DataFrame(base)), sample="P1_base"),
        build_airr(clean_chains(pd.DataFrame(post)), sample="P1_m3"),
        build_airr(pd.DataFrame(columns=["barcode"]), sample="P1_d14"),
    ]
    sheet = pd.DataFrame(
        {
            "sample": ["P1_base", "P1_d14", "P1_m3", "P1_m6"],
            "patient": "P1",
            "day": [-3, 14, 90, 180],
            "tissue": "PB",
            "bcr": ["x.csv", "y.csv", "z.csv", ""],
        }
    )
    gex_rows = {
        "P1_base_a": ("plasmablast", 2, 3),
        "P1_base_b": ("plasmablast", 1, 1),
        "P1_base_c": ("B_memory", 3, 0),
        "P1_base_d": ("B_naive", 1, 0),
        "P1_base_lo": ("plasma_cell", 0, 5),
        "P1_base_tcell": ("T_CD4", 0, 0),
        "P1_base_x": ("B_naive", 0, 0),
        "P1_d14_t": ("T_CD8", 0, 0),
        "P1_m3_n1": ("B_transitional", 0, 0),
        "P1_m3_n2": ("B_naive", 0, 0),
        "P1_m3_n3": ("B_naive", 0, 0),
        "P1_m3_t": ("monocyte", 0, 0),
        "P1_m6_t": ("NK", 0, 0),
    }
    gex = pd.DataFrame.from_dict(
        gex_rows, orient="index", columns=["cell_type", "rna_CD19", "rna_TNFRSF17"]
    )
    gex["sample"] = [i.rsplit("_", 1)[0] for i in gex.index]
    res = track_clones(
        parts, gex, sheet, dp_min_fraction=0.5, dp_min_baseline_cells=3, post_min_day=28
    )
    clones = res.clones.set_index("clone_id")
    big = clones.loc["P1_C1"]
    assert big["n_cells"] == 3  # a, b, c; nogex and tcell are not B-lineage GEX cells
    assert big["cd19_bcma_fraction"] == pytest.approx(2 / 3) and bool(big["double_positive"])
    assert big["status"] == "eliminated"
    assert big["p_missed"] == pytest.approx((1 - 3 / 4) ** 3)
    assert clones["ighv4_34"].sum() == 1
    qc = res.chain_qc.set_index("sample")
    assert qc.loc["P1_base", "n_bcr_without_gex"] == 1
    assert qc.loc["P1_base", "n_bcr_non_b_lineage"] == 1
    assert qc.loc["P1_d14", "n_bcr_cells"] == 0
    b = res.b_cells.set_index("sample")
    assert list(b.index) == ["P1_base", "P1_d14", "P1_m3", "P1_m6"]
    assert b.loc["P1_base", "n_b_cells"] == 3 and b.loc["P1_base", "n_cells"] == 7
    assert b.loc["P1_base", "naive_fraction"] == pytest.approx(2 / 3)
    assert b.loc["P1_base", "n_bcr_cells"] == 5 and b.loc["P1_base", "n_bcr_with_clone"] == 4
    assert b.loc["P1_base", "igm_igd_fraction"] == pytest.approx(1 / 4)  # heavy chains only
    assert qc.loc["P1_base", "n_orphan_vj"] == 1
    assert b.loc["P1_m3", "igm_igd_fraction"] == pytest.approx(2 / 3)
    assert b.loc["P1_m3", "shannon_evenness"] == pytest.approx(1.0)
    assert b.loc["P1_base", "top_clone_fraction"] == pytest.approx(3 / 4)
    assert b.loc["P1_m6", "n_bcr_cells"] == 0 and pd.isna(b.loc["P1_m6", "n_clones"])
    assert b.loc["P1_d14", "n_clones"] == 0 and pd.isna(b.loc["P1_d14", "shannon_evenness"])
    elim = res.elimination.set_index("patient").loc["P1"]
    assert elim["n_dp_clones"] == 1 and elim["n_dp_eliminated"] == 1
    assert elim["b_recovery_day"] == 90  # nadir D14 (0 B cells), M3 all B cells
    assert list(res.cell_clones.columns) == ["cell", "clone_id", "isotype", "shm", "ighv4_34"]
    assert res.cell_clones.set_index("cell").loc["P1_base_d", "ighv4_34"]
    res.airr.write_h5ad(tmp_path / "airr.h5ad")
    back = ad.read_h5ad(tmp_path / "airr.h5ad")
    assert back.obs["clone_id"].notna().sum() == res.airr.obs["clone_id"].notna().sum()
    no_bcr = b_cell_table(gex, res.airr.obs.iloc[:0], res.airr.obs.iloc[:0], sheet_table(sheet))
    assert (no_bcr["n_bcr_cells"] == 0).all() and no_bcr["igm_igd_fraction"].isna().all()


def test_track_clones_rejects_unknown_samples():
    part = build_airr(clean_chains(pd.DataFrame([heavy("a")])), sample="ghost")
    sheet = pd.DataFrame({"sample": ["S1"], "patient": "P1", "day": [0], "tissue": "PB"})
    gex = pd.DataFrame({"sample": ["S1"], "cell_type": ["B_naive"]}, index=["S1_a"])
    with pytest.raises(InputError, match="ghost"):
        track_clones([part], gex, sheet)
