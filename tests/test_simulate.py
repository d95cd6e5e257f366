"""The demo-cohort simulator: real formats, determinism, the story it tells."""

import filecmp

import pandas as pd
import pytest

from cartrack.io import read_gex
from cartrack.simulate import Cohort, interpolate, mutate, simulate_cohort, translate

IFN = ["IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1"]
BAFF = ["TNFRSF13C", "TNFRSF13B", "NFKB2", "RELB", "TNFSF13B"]


def sheet(tmp_path, rows):
    df = pd.DataFrame(rows, columns=["sample", "patient", "day", "tissue", "gex", "bcr"])
    df["gex"] = [str(tmp_path / g) for g in df["gex"]]
    df["bcr"] = [str(tmp_path / b) if b else "" for b in df["bcr"]]
    return df


ROWS = [
    ("A_base", "P1", -3, "PB", "A_base/m.h5", "A_base/filtered_contig_annotations.csv"),
    ("A_d14", "P1", 14, "PB", "A_d14/mtx", "A_d14/airr.tsv"),
    ("B_base", "P2", -1, "BM", "B_base/m.h5", ""),
]


@pytest.fixture
def cohort_dir(tmp_path):
    simulate_cohort(
        sheet(tmp_path, ROWS),
        ifn_genes=IFN,
        baff_genes=BAFF,
        truth_dir=tmp_path / "truth",
        cells_per_sample=120,
        seed=3,
    )
    return tmp_path


def test_files_are_real_cell_ranger_formats(cohort_dir):
    truth = pd.read_csv(cohort_dir / "truth" / "truth_cells.tsv", sep="\t")
    for sample, path in [("A_base", "A_base/m.h5"), ("A_d14", "A_d14/mtx")]:
        gex, prot = read_gex(cohort_dir / path, sample=sample)
        assert prot is None
        assert list(gex.obs["barcode"]) == list(truth.loc[truth["sample"] == sample, "barcode"])
        assert {"CAR_CD19", "CAR_BCMA", "CD19", "TNFRSF17", "MT-ND1"} <= set(gex.var_names)
    contigs = pd.read_csv(cohort_dir / "A_base" / "filtered_contig_annotations.csv")
    assert {"barcode", "chain", "v_gene", "cdr3", "cdr3_nt", "productive", "umis"} <= set(contigs)
    airr = pd.read_csv(cohort_dir / "A_d14" / "airr.tsv", sep="\t")
    assert {"cell_id", "locus", "v_call", "junction_aa", "v_identity"} <= set(airr)


def test_same_seed_same_files(cohort_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("again")
    simulate_cohort(
        sheet(other, ROWS),
        ifn_genes=IFN,
        baff_genes=BAFF,
        truth_dir=other / "truth",
        cells_per_sample=120,
        seed=3,
    )
    for rel in ["A_base/m.h5", "A_base/filtered_contig_annotations.csv", "truth/truth_cells.tsv"]:
        assert filecmp.cmp(cohort_dir / rel, other / rel, shallow=False), rel


def test_story_aplasia_car_t_and_injected_cells(cohort_dir):
    truth = pd.read_csv(cohort_dir / "truth" / "truth_cells.tsv", sep="\t")
    base, d14 = truth[truth["sample"] == "A_base"], truth[truth["sample"] == "A_d14"]
    assert (base["lineage"] == "B").mean() > 0.05
    assert (d14["lineage"] == "B").sum() == 0  # aplasia
    assert d14["car_t"].sum() > 0 and base["car_t"].sum() == 0
    assert truth["low_quality"].any() and truth["doublet"].any()
    marrow = truth[truth["sample"] == "B_base"]
    assert (marrow["cell_type"] == "plasma_cell").any()


def test_clones_have_roles_and_mutated_members(cohort_dir):
    clones = pd.read_csv(cohort_dir / "truth" / "truth_clones.tsv", sep="\t")
    assert set(clones["kind"]) >= {"dp", "memory", "llpc"}
    assert "persistent" in set(clones.loc[clones["patient"] == "P2", "kind"])
    assert clones.loc[clones["kind"] == "dp", "double_positive"].all()


def test_mutate_keeps_the_chain_productive():
    import numpy as np

    rng = np.random.default_rng(0)
    cdr3 = "TGC" + "GCCAGCAGC" * 5 + "TGG"
    for n in range(4):
        mutated = mutate(rng, cdr3, n)
        assert sum(a != b for a, b in zip(cdr3, mutated, strict=True)) == n
        assert "*" not in translate(mutated) and mutated[:3] == "TGC"


def test_interpolate_and_recovery_schedule():
    assert interpolate(7, [(0, 1.0), (14, 3.0)]) == 2.0
    assert interpolate(100, [(0, 1.0), (14, 3.0)]) == 3.0
    df = pd.DataFrame({"patient": ["P1", "P2"], "day": [0, 0], "tissue": ["PB", "PB"]})
    cohort = Cohort(df, ifn_genes=IFN, baff_genes=BAFF)
    assert cohort.composition("P1", 14, "PB")["B_naive"] == 0
    assert cohort.composition("P1", 180, "PB")["B_naive"] > 0
