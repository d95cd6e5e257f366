"""Tests for cartrack.clones: clone calling on tiny patients; the CD19+BCMA+ call.

The tracking tables are tested in test_tracking.py."""

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cartrack.bcr import build_airr, clean_chains, index_chains, merge_bcr
from cartrack.clones import define_clones, isotype, shm_from_identity
from cartrack.double_positive import read_gex_cells
from cartrack.params import CloneParams

AA_15 = CloneParams.from_config(sequence="aa", threshold=0.155)  # the old 85% amino-acid rule
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
    index_chains(airr, productive_only=True)
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
    define_clones(airr, CloneParams.from_config(threshold=0.15))
    cl = clones_of(airr)
    assert len({cl[f"S1_{b}"] for b in ["r", "m0", "m1", "m2"]}) == 1
    assert cl["S1_far"] != cl["S1_r"]
    define_clones(airr, CloneParams.from_config(threshold=0.0))  # exact matches only
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
    define_clones(airr, CloneParams.from_config(sequence="aa", threshold=0.155, split_light=False))
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
    define_clones(airr, CloneParams.from_config(sequence="aa", threshold=0.155, light_only=mode))
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
    no_iso = read_gex_cells(path, genes=[], proteins=["CD19"], isotype_pattern="isotype")
    assert "prot_technical" not in no_iso and "no isotype control" in caplog.text
    gex.obsm["prot_counts"]["Mouse IgG1 isotype Ctrl"] = [3.0, 0, 1]
    gex.write_h5ad(path)
    with_iso = read_gex_cells(path, genes=[], proteins=["CD19"], isotype_pattern="isotype")
    assert with_iso["prot_technical"].tolist() == pytest.approx(np.log1p([3, 0, 1]).tolist())
