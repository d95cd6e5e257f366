"""The V(D)J parser that avoids importing scirpy gives exactly scirpy's chain records."""

import sys

import pandas as pd
import pytest

from cartrack.bcr import _chains_of, _parse_chains, _pre_read, _scirpy_read, detect_format
from cartrack.simulate import Cohort, contig_records, write_contigs_10x, write_contigs_airr

REAL_FILES = [
    "scirpy/10x/sc5p_v2_hs_melanoma_10k_b_filtered_contig_annotations.csv.gz",
    "scirpy/10x/filtered_contig_annotations.csv",
    "scirpy/airr/rearrangement_ig.tsv",
    "scirpy/liao-2019-covid19/GSM4385993_C144_filtered_contig_annotations.csv.gz",
    "djvdj/splen/BL6_BCR/filtered_contig_annotations.csv.gz",
    "djvdj/splen/BL6_BCR/airr_rearrangement.tsv.gz",
    "djvdj/splen/BL6_TCR/airr_rearrangement.tsv.gz",
    "djvdj/splen/MD4_TCR/filtered_contig_annotations.csv.gz",
    "dandelion/sample_test_10x/filtered_contig_annotations.csv",
]


def both(path):
    """Chain tables of one file by scirpy and by the parser, columns and rows aligned."""
    fmt = detect_format(path)
    table, subset = _pre_read(path, fmt, sample="S", productive_only=False)
    ours = _parse_chains(fmt, table)
    theirs = _chains_of(_scirpy_read(path, fmt, table, subset=subset))
    return ours, theirs


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame):
    assert len(ours) == len(theirs) > 0
    # scirpy fills cdr3/cdr3_aa from the junction; clean_chains fills the same (tested below)
    derived = {"cdr3", "cdr3_aa"}
    assert set(ours.columns) - derived == set(theirs.columns) - derived
    for col in sorted(set(ours.columns) - derived):
        a, b = ours[col].tolist(), theirs[col].tolist()
        norm = [[None if pd.isna(x) else (float(x) if isinstance(x, int) else x) for x in v]
                for v in (a, b)]  # fmt: skip
        assert norm[0] == norm[1], f"field {col} differs"


@pytest.mark.parametrize("name", REAL_FILES)
def test_parser_matches_scirpy_on_real_files(real, name):
    assert_same(*both(real / name))


@pytest.mark.parametrize("airr", [False, True], ids=["10x_csv", "airr"])
def test_parser_matches_scirpy_on_simulated_files(tmp_path, airr):
    df = pd.DataFrame({"sample": ["S"], "patient": ["P1"], "day": [-5], "tissue": ["PB"]})
    cohort = Cohort(df, ifn_genes=["IFI27", "ISG15"], baff_genes=["TNFRSF13C", "RELB"])
    _, truth, chains = cohort.sample(df.iloc[0], 300, low_quality_rate=0.05, doublet_rate=0.04)
    rows = contig_records(truth, chains, cohort.rng, airr=airr)
    path = tmp_path / ("rearrangement.tsv" if airr else "contigs.csv")
    (write_contigs_airr if airr else write_contigs_10x)(path, rows)
    assert_same(*both(path))


def test_cleaned_chains_identical(real):
    """After clean_chains (what read_bcr keeps), derived CDR3s included, nothing differs."""
    from cartrack.bcr import clean_chains

    for name in REAL_FILES:
        ours, theirs = (clean_chains(t) for t in both(real / name))
        cols = sorted(theirs.columns)
        pd.testing.assert_frame_equal(ours[cols], theirs[cols], check_dtype=False, obj=name)


def test_read_bcr_does_not_import_scanpy(real, tmp_path):
    import subprocess

    code = (
        "import sys; from cartrack.bcr import read_bcr; "
        f"read_bcr({str(real / REAL_FILES[1])!r}, sample='S'); "
        f"read_bcr({str(real / REAL_FILES[2])!r}, sample='S', productive_only=False); "
        "assert 'scanpy' not in sys.modules and 'scirpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                   env={"PYTHONPATH": str(__import__("cartrack").__path__[0] + "/..")})  # fmt: skip
