"""A catalogue of malformed inputs: each must be refused (or warned about) with a message
naming sample, file, column and value and saying what to do, before any result is written.

Every case builds a small project in a temp folder from ../shared/data/real (mouse djvdj
GEX + BCR with shared barcodes, the human Liao GEX, scirpy/AIRR reference files) and runs
the workflow's pre-flight in-process, in the order ``rules/common.smk`` and rule
``check_inputs`` run it. A few cases at the end go through Snakemake itself, to show that
the same messages reach the user without a traceback and nothing lands under results/.
"""

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate
from workflow_helpers import REPO, run_snakemake

from cartrack.bcr import read_bcr
from cartrack.checks import check_config, check_config_files, check_inputs, check_yaml_syntax
from cartrack.design import InputError
from cartrack.io import read_gex
from cartrack.params import QcParams
from cartrack.qc import run_qc
from cartrack.sheet import design_checks, load_sheet, require_column

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DJVDJ = "djvdj/splen"
LIAO_H5 = "scirpy/liao-2019-covid19/GSM4339772_C144_filtered_feature_bc_matrix.h5"
MELANOMA_BCR = "scirpy/10x/sc5p_v2_hs_melanoma_10k_b_filtered_contig_annotations.csv.gz"
LIAO_TCR = "scirpy/liao-2019-covid19/GSM4385993_C144_filtered_contig_annotations.csv.gz"
BL6_TCR = f"{DJVDJ}/BL6_TCR/filtered_contig_annotations.csv.gz"
HEADER = "sample\tpatient\tday\ttissue\tgex\tbcr\n"
S1 = "S1\tP1\t-5\tPB\t../data/BL6_GEX\t../data/BL6_BCR.csv.gz"
S2 = "S2\tP1\t60\tPB\t../data/MD4_GEX\t../data/MD4_BCR.csv.gz"


# --------------------------------------------------------------------------------------
# the project and the pre-flight
# --------------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path, real) -> Path:
    """Working folder: config/, a two-sample sheet of mouse spleen (GEX + BCR), data/."""
    data = tmp_path / "data"
    data.mkdir()
    for s in ("BL6", "MD4"):
        shutil.copytree(real / DJVDJ / f"{s}_GEX" / "filtered_feature_bc_matrix", data / f"{s}_GEX")
        shutil.copy(
            real / DJVDJ / f"{s}_BCR" / "filtered_contig_annotations.csv.gz",
            data / f"{s}_BCR.csv.gz",
        )
    (tmp_path / "config").mkdir()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["samples"] = "config/samples.tsv"
    write_config(tmp_path, config)
    write_sheet(tmp_path, [S1, S2])
    return tmp_path


def write_sheet(wd: Path, rows: list[str], header: str = HEADER) -> Path:
    path = wd / "config" / "samples.tsv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def write_config(wd: Path, config: dict) -> None:
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def edit_config(wd: Path, **changes) -> None:
    """Set dotted keys: edit_config(wd, **{"qc.nmad": 3})."""
    config = yaml.safe_load((wd / "config" / "config.yaml").read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    write_config(wd, config)


def preflight(wd: Path) -> pd.DataFrame:
    """What Snakemake runs before any analysis job: common.smk, then rule check_inputs."""
    cfg_path = wd / "config" / "config.yaml"
    check_yaml_syntax(cfg_path)
    config = yaml.safe_load(cfg_path.read_text())
    check_config(config, yaml.safe_load(SCHEMA.read_text()), files=[cfg_path])
    validate(config, schema=str(SCHEMA))
    check_config_files(config, repo=REPO)
    sheet = load_sheet(wd / config["samples"])
    require_column(sheet, config["integration"]["batch_key"], config_key="integration.batch_key")
    design = design_checks(sheet, post_min_day=config["tracking"]["post_min_day"])
    return check_inputs(
        sheet,
        genes={f"tracking.{k}": config["tracking"][k] for k in ("cd19_gene", "bcma_gene")},
        gene_sets=[REPO / p for p in config["signatures"]["gmt"]],
        min_barcode_overlap=config["checks"]["min_barcode_overlap"],
        warn_barcode_overlap=config["checks"]["warn_barcode_overlap"],
        design=design,
    )


def gz_write(path: Path, text: str) -> None:
    with gzip.open(path, "wt") as fh:
        fh.write(text)


def gz_read(path: Path) -> str:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt").read() if gz else path.read_text()


# --------------------------------------------------------------------------------------
# malformed inputs: (name, how to build it, fragments the message must hold)
# --------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    build: Callable[[Path, Path], None]  # (project, real)
    expect: tuple[str, ...]


def rows(*r):
    return lambda wd, real: write_sheet(wd, list(r))


def raw_sheet(data: bytes):
    return lambda wd, real: (wd / "config" / "samples.tsv").write_bytes(data)


def yaml_text(text: str):
    return lambda wd, real: (wd / "config" / "config.yaml").write_text(text)


def config(**changes):
    return lambda wd, real: edit_config(wd, **changes)


def gex_file(name: str, make: Callable[[Path, Path], None]):
    """Sample S1's gex replaced by data/<name>, built by make(path, real)."""

    def build(wd, real):
        make(wd / "data" / name, real)
        write_sheet(wd, [f"S1\tP1\t-5\tPB\t../data/{name}\t../data/BL6_BCR.csv.gz", S2])

    return build


def bcr_file(name: str, make: Callable[[Path, Path], None]):
    """Sample S1's bcr replaced by data/<name>, built by make(path, real)."""

    def build(wd, real):
        make(wd / "data" / name, real)
        write_sheet(wd, [f"S1\tP1\t-5\tPB\t../data/BL6_GEX\t../data/{name}", S2])

    return build


def tcr_file(name: str, make: Callable[[Path, Path], None]):
    """Sample S1 given a tcr column naming data/<name>, built by make(path, real)."""

    def build(wd, real):
        make(wd / "data" / name, real)
        write_sheet(wd, [f"{S1}\t../data/{name}", f"{S2}\t"], HEADER.rstrip("\n") + "\ttcr\n")

    return build


def mtx_variant(edit: Callable[[Path], None]):
    def make(path, real):
        shutil.copytree(real / DJVDJ / "BL6_GEX" / "filtered_feature_bc_matrix", path)
        edit(path)

    return make


def truncate(src: str, keep: float):
    def make(path, real):
        data = (real / src).read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return make


def copy(src: str):
    return lambda path, real: shutil.copy(real / src, path)


def bl6_bcr_text(real: Path) -> str:
    return gz_read(real / DJVDJ / "BL6_BCR" / "filtered_contig_annotations.csv.gz")


def zero_cells(folder: Path) -> None:
    (folder / "matrix.mtx.gz").write_text(
        "%%MatrixMarket matrix coordinate integer general\n1000 0 0\n"
    )
    gz_write(folder / "barcodes.tsv.gz", "")


def duplicated_barcode(folder: Path) -> None:
    codes = gz_read(folder / "barcodes.tsv.gz").splitlines()
    codes[1] = codes[0]
    gz_write(folder / "barcodes.tsv.gz", "\n".join(codes) + "\n")


def ensembl_only(folder: Path) -> None:
    lines = [r.split("\t") for r in gz_read(folder / "features.tsv.gz").splitlines()]
    gz_write(folder / "features.tsv.gz", "".join(f"{i}\t{i}\t{t}\n" for i, _, t in lines))


def foreign_barcodes(folder: Path) -> None:
    codes = gz_read(folder / "barcodes.tsv.gz").splitlines()
    gz_write(folder / "barcodes.tsv.gz", "\n".join(codes[:-10]) + "\n")


def normalised_h5ad(path: Path, real: Path) -> None:
    gex, _ = read_gex(real / DJVDJ / "BL6_GEX" / "filtered_feature_bc_matrix", sample="x")
    x = gex.X.copy()
    x.data = np.log1p(x.data)
    ad.AnnData(X=x, obs=pd.DataFrame(index=gex.obs["barcode"].to_numpy()), var=gex.var).write_h5ad(
        path
    )


def cut_csv(path: Path, real: Path) -> None:
    path.write_text(bl6_bcr_text(real)[:-60])


def cut_tcr_csv(path: Path, real: Path) -> None:
    path.write_text(gz_read(real / BL6_TCR)[:-60])


def csv_named_tsv(path: Path, real: Path) -> None:
    path.write_text(bl6_bcr_text(real))


def non_productive(path: Path, real: Path) -> None:
    table = pd.read_csv(real / DJVDJ / "BL6_BCR" / "filtered_contig_annotations.csv.gz")
    table["productive"] = False
    table.to_csv(path, index=False)


def liao_sample(wd: Path, real: Path) -> None:
    shutil.copy(real / LIAO_H5, wd / "data" / "liao.h5")
    write_sheet(wd, [S1, S2, "S3\tP2\t-1\tPB\t../data/liao.h5\t"])


SHEET_CASES = [
    Case("empty sheet", raw_sheet(b""), ("samples.tsv' is empty", "give a header row")),
    Case(
        "binary sheet (xlsx)",
        raw_sheet(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200)),
        (
            "samples.tsv' is a binary file",
            "save it from your spreadsheet as 'Text (tab-delimited)'",
        ),
    ),
    Case(
        "not UTF-8",
        raw_sheet(HEADER.encode() + "S\xe91\tP1\t0\tPB\tx\t\n".encode("latin-1")),
        ("is not UTF-8", "save the sheet as UTF-8 text"),
    ),  # fmt: skip
    Case("header only", rows(), ("has a header but no samples", "add one row per sample")),
    Case(
        "comma-separated sheet",
        raw_sheet(HEADER.replace("\t", ",").encode() + S1.replace("\t", ",").encode() + b"\n"),
        ("missing required column(s)", "it looks comma-separated: save it tab-separated"),
    ),
    Case(
        "missing column",
        lambda wd, real: write_sheet(
            wd, ["S1\tP1\t-5\t../data/BL6_GEX"], "sample\tpatient\tday\tgex\n"
        ),
        ("missing required column(s) ['tissue']",),
    ),
    Case(
        "duplicate ids", rows(S1, S1), ("rows 2, 3, column 'sample', value 'S1'", "must be unique")
    ),
    Case(
        "day not a number",
        rows(S1.replace("-5", "day-5")),
        ("row 2 (sample 'S1'), column 'day', value 'day-5'", "integer number of days"),
    ),  # fmt: skip
    Case("R NA day", rows(S1.replace("-5", "NA")), ("column 'day', value 'NA'", "integer number")),
    Case("fractional day", rows(S1.replace("-5", "7.5")), ("column 'day', value '7.5'",)),
    Case(
        "unknown tissue",
        rows(S1.replace("PB", "blood")),
        ("column 'tissue', value 'blood'", "must be one of"),
    ),  # fmt: skip
    Case("no patient", rows(S1.replace("P1", "")), ("column 'patient', value ''", "is required")),
    Case(
        "unicode id",
        rows(S1.replace("S1", "Sé1")),
        ("column 'sample', value 'Sé1'", "use only letters, digits"),
    ),  # fmt: skip
    Case(
        "$(...) in id",
        rows(S1.replace("S1", "$(touch PWNED)")),
        ("value '$(touch PWNED)'", "use only letters"),
    ),  # fmt: skip
    Case(
        "backticks in id",
        rows(S1.replace("S1", "`touch PWNED`")),
        ("value '`touch PWNED`'", "use only letters"),
    ),  # fmt: skip
    Case("; in id", rows(S1.replace("S1", "S1;rm -rf x")), ("value 'S1;rm -rf x'", "use only")),
    Case("../ id", rows(S1.replace("S1", "../../S1")), ("value '../../S1'", "use only letters")),
    Case(
        "missing gex",
        rows(S1.replace("BL6_GEX", "nope")),
        ("column 'gex', value '../data/nope': does not exist (resolved to",),
    ),  # fmt: skip
    Case(
        "gex .. into system folder",
        rows(S1.replace("../data/BL6_GEX", "../../../../../etc")),
        ("column 'gex', value '../../../../../etc'", "folder holds no matrix"),
    ),  # fmt: skip
    Case(
        "absolute gex to a system file",
        rows(S1.replace("../data/BL6_GEX", "/etc/passwd")),
        ("column 'gex', value '/etc/passwd': unsupported file type",),
    ),  # fmt: skip
    Case(
        "gex names one file of an MTX folder",
        rows(S1.replace("BL6_GEX", "BL6_GEX/matrix.mtx.gz")),
        ("value '../data/BL6_GEX/matrix.mtx.gz'", "give the folder that holds it"),
    ),  # fmt: skip
    Case(
        "missing bcr",
        rows(S1.replace("BL6_BCR", "nope")),
        ("column 'bcr', value '../data/nope.csv.gz': file not found",),
    ),  # fmt: skip
    Case(
        "bcr fasta",
        rows(S1.replace("BL6_BCR.csv.gz", "contigs.fasta")),
        ("column 'bcr', value '../data/contigs.fasta'", "expected filtered_contig_annotations"),
    ),  # fmt: skip
    Case(
        "$(...) in a path",
        rows(S1.replace("../data/BL6_BCR.csv.gz", "$(touch PWNED).csv")),
        ("value '$(touch PWNED).csv': file not found",),
    ),  # fmt: skip
    Case(
        "values past the header",
        lambda wd, real: write_sheet(wd, [S1 + "\textra", S2]),
        ("row 2 has 7 fields, the header 6 (extra value 'extra')", "add the column's name"),
    ),
    Case(
        "a column twice",
        lambda wd, real: write_sheet(wd, [S1 + "\t", S2 + "\t"], HEADER.replace("bcr", "bcr\tday")),
        ("column(s) ['day'] appear twice; keep one",),
    ),
    Case(
        "values in a nameless column",
        lambda wd, real: write_sheet(wd, [S1 + "\textra", S2 + "\t"], HEADER.rstrip("\n") + "\t\n"),
        ("a column without a name holds values (e.g. 'extra')", "name it or remove it"),
    ),
]

CONFIG_CASES = [
    Case(
        "misspelt key",
        config(**{"qc.nmad": 3}),
        ("'qc.nmad' is not known: did you mean 'qc.nmads'?",),
    ),  # fmt: skip
    Case(
        "misspelt section",
        config(trackng={"alpha": 0.1}),
        ("'trackng' is not known: did you mean 'tracking'?",),
    ),  # fmt: skip
    Case(
        "misspelt nested key",
        config(**{"signatures.gsea.permutation": 10}),
        (
            "'signatures.gsea.permutation' is not known: "
            "did you mean 'signatures.gsea.permutations'?",
        ),
    ),
    Case(
        "unknown key, no close match",
        config(**{"qc.zzz": 1}),
        ("'qc.zzz' is not known: valid keys: nmads",),
    ),  # fmt: skip
    Case(
        "nan threshold",
        config(**{"qc.max_pct_mito": float("nan")}),
        ("config key 'qc.max_pct_mito' is nan: give a finite number",),
    ),  # fmt: skip
    Case(
        "infinite threshold",
        config(**{"tracking.alpha": float("inf")}),
        ("config key 'tracking.alpha' is inf",),
    ),  # fmt: skip
    Case(
        "yaml syntax error",
        yaml_text("samples: config/samples.tsv\nqc: {nmads: 3\n  min_genes: [\n"),
        ("config.yaml', line 3, column", "not valid YAML", "fix the syntax there"),
    ),  # fmt: skip
    Case("yaml list at top", yaml_text("- samples\n"), ("expected `key: value` lines",)),
    # security: the config's path keys (samples, annotation.markers, signatures.gmt,
    # signatures.extra_gmt, signatures.gsea.family_gmt: all read, none written) and shell
    # syntax in them are refused as missing files; nothing runs them
    Case(
        "sheet path .. into a system folder",
        config(samples="../../etc/x.tsv"),
        ("etc/x.tsv' does not exist: set config key 'samples' to the sheet's path",),
    ),  # fmt: skip
    Case(
        "sheet path a folder",
        config(samples="/etc"),
        ("sample sheet '/etc' is a folder, not a file: set config key 'samples'",),
    ),  # fmt: skip
    Case(
        "sheet path a system file",
        config(samples="/etc/passwd"),
        ("sample sheet '/etc/passwd': missing required column(s)",),
    ),  # fmt: skip
    Case(
        "$(...) in the sheet path",
        config(samples="$(touch PWNED).tsv"),
        ("$(touch PWNED).tsv' does not exist: set config key 'samples'",),
    ),  # fmt: skip
    Case(
        "$(...) in annotation.markers",
        config(**{"annotation.markers": "$(touch PWNED)"}),
        ("config key 'annotation.markers' is '$(touch PWNED)': no such file in the working",),
    ),  # fmt: skip
    Case(
        "backticks in signatures.extra_gmt",
        config(**{"signatures.extra_gmt": ["`touch PWNED`.gmt"]}),
        ("config key 'signatures.extra_gmt[0]' is '`touch PWNED`.gmt': no such file",),
    ),  # fmt: skip
    Case(
        "; in signatures.gsea.family_gmt",
        config(**{"signatures.gsea.family_gmt": ["h.gmt; touch PWNED.gmt"]}),
        ("'signatures.gsea.family_gmt[0]' is 'h.gmt; touch PWNED.gmt': no such file",),
    ),  # fmt: skip
    Case(
        ".. gene-set path",
        config(**{"signatures.gmt": ["../../../../../../etc/x.gmt"]}),
        ("config key 'signatures.gmt[0]' is '../../../../../../etc/x.gmt': no such file",),
    ),  # fmt: skip
    Case(
        "absolute gene-set path outside",
        config(**{"signatures.extra_gmt": ["/nonexistent/sets.gmt"]}),
        ("config key 'signatures.extra_gmt[0]' is '/nonexistent/sets.gmt': no such file",),
    ),  # fmt: skip
    Case(
        "$(...) in integration.batch_key",
        config(**{"integration.batch_key": "$(touch PWNED)"}),
        ("integration.batch_key is '$(touch PWNED)', which is not a column",),
    ),  # fmt: skip
    Case(
        "batch_key names no column",
        config(**{"integration.batch_key": "lane"}),
        (
            "integration.batch_key is 'lane', which is not a column of the sample sheet",
            "name one of them or add the column",
        ),
    ),  # fmt: skip
]

INPUT_CASES = [
    Case(
        "zero-byte h5",
        gex_file("empty.h5", lambda p, r: p.write_bytes(b"")),
        ("column 'gex', value '../data/empty.h5': is empty",),
    ),  # fmt: skip
    Case(
        "h5 that is not HDF5",
        gex_file("fake.h5", lambda p, r: p.write_text("hello")),
        ("value '../data/fake.h5': is not an HDF5 file",),
    ),  # fmt: skip
    Case(
        "truncated h5",
        gex_file("cut.h5", truncate(LIAO_H5, 0.5)),
        ("sample 'S1', column 'gex', file '", "cut.h5': cannot be read as a Cell Ranger HDF5"),
    ),  # fmt: skip
    Case(
        "truncated features.tsv.gz",
        gex_file(
            "cut_mtx",
            mtx_variant(
                lambda f: (f / "features.tsv.gz").write_bytes(
                    (f / "features.tsv.gz").read_bytes()[:3000]
                )
            ),
        ),
        ("column 'gex'", "'features.tsv.gz' cannot be read", "truncated?"),
    ),  # fmt: skip
    Case(
        "zero-cell matrix",
        gex_file("empty_mtx", mtx_variant(zero_cells)),
        ("sample 'S1', column 'gex'", "empty_mtx': holds zero cells", "remove the row"),
    ),  # fmt: skip
    Case(
        "duplicated barcodes",
        gex_file("dup_mtx", mtx_variant(duplicated_barcode)),
        ("sample 'S1', column 'gex'", "1 duplicated barcodes (e.g. 'AAACGGGGTTCTGTTT-1')"),
    ),  # fmt: skip
    Case(
        "matrix and barcodes of different samples",
        gex_file("mixed_mtx", mtx_variant(foreign_barcodes)),
        ("is 1000 x 269 but there are 1000 features and 259 barcodes", "do not belong together"),
    ),  # fmt: skip
    Case(
        "normalised h5ad",
        gex_file("norm.h5ad", normalised_h5ad),
        ("sample 'S1', column 'gex'", "non-integer or negative values", "give raw counts"),
    ),  # fmt: skip
    Case(
        "Ensembl-only features",
        gex_file("ens_mtx", mtx_variant(ensembl_only)),
        (
            "sample 'S1', column 'gex'",
            "feature names are Ensembl ids (e.g. 'ENSMUSG",
            "give gene symbols",
        ),
    ),  # fmt: skip
    Case(
        "mixed human and mouse samples",
        liao_sample,
        (
            "samples of two species in one cohort: "
            "human-style symbols in S3, mouse-style in S1, S2",
            "analyse each species with its own sheet",
        ),
    ),  # fmt: skip
    Case(
        "BCR CSV cut off mid-row",
        bcr_file("cut.csv", cut_csv),
        (
            "sample 'S1', column 'bcr', file '",
            "cut.csv': line 252 has",
            "the file is cut off there",
        ),
    ),  # fmt: skip
    Case(
        "BCR of another experiment",
        bcr_file("melanoma.csv.gz", copy(MELANOMA_BCR)),
        (
            "sample 'S1', column 'bcr'",
            "only 1 of its 5644 barcodes",
            "are both from the same library?",
        ),
    ),  # fmt: skip
    Case(
        "TCR file in the bcr column",
        bcr_file("tcr.csv.gz", copy(f"{DJVDJ}/BL6_TCR/filtered_contig_annotations.csv.gz")),
        ("sample 'S1', column 'bcr'", "holds only T-cell receptor chains", "is it the TCR file?"),
    ),  # fmt: skip
    Case(
        "10x CSV named .tsv",
        bcr_file("contigs.tsv", csv_named_tsv),
        (
            "sample 'S1', column 'bcr'",
            "comma-separated Cell Ranger contig table named .tsv",
            "rename it to .csv",
        ),
    ),  # fmt: skip
    Case(
        "bulk AIRR without cell_id",
        bcr_file("bulk.tsv", copy("airr_standards/good_rearrangement.tsv")),
        ("sample 'S1', column 'bcr'", "without a 'cell_id' column", "give single-cell data"),
    ),  # fmt: skip
    Case(
        "invalid AIRR (validator's negative file)",
        bcr_file("bad.tsv", copy("airr_standards/bad_rearrangement.tsv")),
        ("sample 'S1', column 'bcr'", "bad.tsv': AIRR table without a 'cell_id' column"),
    ),  # fmt: skip
    Case(
        "zero-byte BCR",
        bcr_file("empty.csv", lambda p, r: p.write_bytes(b"")),
        ("sample 'S1', column 'bcr'", "empty.csv': is empty (0 bytes)"),
    ),  # fmt: skip
    Case(
        "broken JSON",
        bcr_file("all_contig_annotations.json", lambda p, r: p.write_text("[{")),
        ("sample 'S1', column 'bcr'", "not readable as JSON"),
    ),  # fmt: skip
    Case(
        "10x CSV without barcode column",
        bcr_file("nobc.csv", lambda p, r: p.write_text("a,b\n1,2\n")),
        ("sample 'S1', column 'bcr'", "not a Cell Ranger contig table: no column 'barcode'"),
    ),  # fmt: skip
    Case(
        "TCR CSV cut off mid-row",
        tcr_file("cut_tcr.csv", cut_tcr_csv),
        (
            "sample 'S1', column 'tcr', file '",
            "cut_tcr.csv': line 115 has",
            "the file is cut off there; copy it again",
        ),
    ),  # fmt: skip
    Case(
        "TCR of another experiment",
        tcr_file("liao_tcr.csv.gz", copy(LIAO_TCR)),
        (
            "sample 'S1', column 'tcr', file '",
            "only 1 of its 136 barcodes",
            "below checks.min_barcode_overlap (0.05): are both from the same library?",
        ),
    ),  # fmt: skip
    Case(
        "BCR file in the tcr column",
        tcr_file("bcr.csv.gz", copy(f"{DJVDJ}/BL6_BCR/filtered_contig_annotations.csv.gz")),
        (
            "sample 'S1', column 'tcr', file '",
            "holds only B-cell receptor chains (251 IGH/IGK/IGL contigs",
            "is it the BCR file? Put the T-cell V(D)J file in 'tcr'",
        ),
    ),  # fmt: skip
    Case(
        "zero-byte TCR",
        tcr_file("empty_tcr.csv", lambda p, r: p.write_bytes(b"")),
        ("sample 'S1', column 'tcr'", "empty_tcr.csv': is empty (0 bytes)"),
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", SHEET_CASES + CONFIG_CASES + INPUT_CASES, ids=lambda c: c.name)
def test_refused_before_any_job(project, real, case):
    case.build(project, real)
    with pytest.raises(InputError) as err:
        preflight(project)
    message = str(err.value)
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert not (project / "results").exists()
    assert not (project / "PWNED").exists()


# --------------------------------------------------------------------------------------
# usable but odd: a warning row in design_checks.tsv, the run goes on
# --------------------------------------------------------------------------------------
def low_overlap(wd, real):
    text = bl6_bcr_text(real).splitlines()
    header, body = text[0], text[1:]
    fake = [f"TTTTTTTTTT{i:06d}-9" for i in range(len(body))]  # other library's barcodes
    keep = body[:40] + [",".join([fake[i], *r.split(",")[1:]]) for i, r in enumerate(body[40:])]
    (wd / "data" / "low.csv").write_text("\n".join([header, *keep]) + "\n")
    write_sheet(wd, [S1.replace("BL6_BCR.csv.gz", "low.csv"), S2])


def non_productive_case(wd, real):
    non_productive(wd / "data" / "np.csv", real)
    write_sheet(wd, [S1.replace("BL6_BCR.csv.gz", "np.csv"), S2])


WARNING_CASES = [
    Case(
        "patient without baseline",
        rows(S1.replace("-5", "3"), S2),
        ("no_baseline", "patient 'P1' has no baseline sample (day <= 0)"),
    ),  # fmt: skip
    Case(
        "baseline label on a positive day",
        lambda wd, real: write_sheet(
            wd,
            [S1.replace("-5", "5") + "\tbaseline", S2 + "\t"],
            HEADER.rstrip("\n") + "\ttimepoint\n",
        ),
        ("baseline_after_infusion", "labelled 'baseline' but day 5 is after infusion"),
    ),  # fmt: skip
    Case(
        "one GEX file named by two samples",
        rows(S1, S2.replace("MD4_GEX", "BL6_GEX").replace("../data/MD4_BCR.csv.gz", "")),
        ("same_file_twice", "samples S1, S2 name the same gex file"),
    ),  # fmt: skip
    Case(
        "two samples, one time-point label",
        lambda wd, real: write_sheet(
            wd,
            [S1 + "\tD0", S2.replace("60", "61") + "\tD0"],
            HEADER.rstrip("\n") + "\ttimepoint\n",
        ),
        ("timepoint_collision", "share the time-point label 'D0' (days -5, 61)"),
    ),  # fmt: skip
    Case(
        "post_min_day after every sample",
        config(**{"tracking.post_min_day": 90}),
        ("no_post_sample", "no sample on or after tracking.post_min_day (90)"),
    ),  # fmt: skip
    Case(
        "few BCR barcodes in the GEX",
        low_overlap,
        ("barcode_overlap", "BCR barcodes are GEX cells (below checks.warn_barcode_overlap 0.5)"),
    ),  # fmt: skip
    Case(
        "non-productive contigs only",
        non_productive_case,
        ("bcr_non_productive", "no productive contig"),
    ),  # fmt: skip
    Case(
        "cd19_gene not in the features",
        config(**{"tracking.cd19_gene": "CD19X"}),
        ("gene_missing", "config tracking.cd19_gene 'CD19X' is not a feature of this sample"),
    ),  # fmt: skip
    Case(
        "mouse symbols with human gene sets",
        lambda wd, real: None,
        ("species_gene_sets", "mouse gene symbols, but the signature gene sets are human"),
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", WARNING_CASES, ids=lambda c: c.name)
def test_warned_in_design_checks(project, real, case):
    case.build(project, real)
    table = preflight(project)
    check, message = case.expect
    hits = table[table["check"] == check]
    assert len(hits), table
    assert any(message in m for m in hits["message"]), hits["message"].tolist()
    assert set(hits["severity"]) == {"warning"}


@pytest.mark.parametrize(
    "variant",
    [
        "bom",
        "crlf",
        "trailing tabs",
        "trailing tabs in rows only",
        "extra column",
        "R NA in bcr",
        "# in a path",
        "blank lines",
    ],  # fmt: skip
)
def test_harmless_variants_read_like_the_plain_sheet(project, real, variant):
    plain = load_sheet(project / "config" / "samples.tsv")
    text = (project / "config" / "samples.tsv").read_text()
    if variant == "bom":
        data = b"\xef\xbb\xbf" + text.encode()
    elif variant == "crlf":
        data = text.replace("\n", "\r\n").encode()
    elif variant == "trailing tabs":
        data = text.replace("\n", "\t\t\n").encode()
    elif variant == "trailing tabs in rows only":
        header, body = text.split("\n", 1)
        data = (header + "\n" + body.replace("\n", "\t\t\n")).encode()
    elif variant == "blank lines":
        data = text.replace("\n", "\n\n").encode()
    elif variant == "extra column":
        data = (
            text.replace("bcr\n", "bcr\tnotes\n").replace(".csv.gz\n", ".csv.gz\tfine\n").encode()
        )
    elif variant == "R NA in bcr":
        plain.loc["S2", "bcr"] = ""
        data = text.replace("../data/MD4_BCR.csv.gz", "NA").encode()
    else:
        (project / "data" / "BL6_GEX").rename(project / "data" / "run#1")
        plain.loc["S1", "gex"] = str(project / "data" / "run#1")
        data = text.replace("BL6_GEX", "run#1").encode()
    (project / "config" / "samples.tsv").write_bytes(data)
    pd.testing.assert_frame_equal(load_sheet(project / "config" / "samples.tsv"), plain)
    preflight(project)


@pytest.mark.parametrize(
    "name", ["filtered_contig_annotations.csv.gz", "airr_rearrangement.tsv.gz"]
)
def test_real_tcr_files_pass_the_check(project, real, name):
    """The tcr column is checked: the matching TCR files (10x CSV, AIRR) pass untouched."""
    for s in ("BL6", "MD4"):
        shutil.copy(real / DJVDJ / f"{s}_TCR" / name, project / "data" / f"{s}_TCR_{name}")
    write_sheet(
        project,
        [f"{S1}\t../data/BL6_TCR_{name}", f"{S2}\t../data/MD4_TCR_{name}"],
        HEADER.rstrip("\n") + "\ttcr\n",
    )
    table = preflight(project)
    assert not (table["column"] == "tcr").any(), table


# --------------------------------------------------------------------------------------
# errors found only when a job reads the file: still clean messages
# --------------------------------------------------------------------------------------
def test_reader_zero_cell_matrix(project):
    zero_cells(project / "data" / "BL6_GEX")
    with pytest.raises(InputError, match=r"sample 'S1': gex file '.*BL6_GEX': holds zero cells"):
        read_gex(project / "data" / "BL6_GEX", sample="S1")


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (cut_csv, r"its last line \(252\) has \d+ of 31 fields: the file is cut off; copy it"),
        (csv_named_tsv, r"comma-separated Cell Ranger contig table named .tsv.*rename it to .csv"),
    ],
    ids=["cut off", "named .tsv"],
)
def test_reader_refuses_what_the_check_refuses(project, real, make, expect):
    path = project / "data" / ("x.tsv" if make is csv_named_tsv else "x.csv")
    make(path, real)
    with pytest.raises(InputError, match=expect):
        read_bcr(path, sample="S1", cells_only=True, productive_only=True)


def test_reader_invalid_airr_productive(real, tmp_path):
    table = pd.read_csv(real / "scirpy" / "airr" / "rearrangement_ig.tsv", sep="\t", dtype=str)
    table["productive"] = "maybe"
    table.to_csv(tmp_path / "x.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"x.tsv: column `productive` must be T/F.*'maybe'"):
        read_bcr(tmp_path / "x.tsv", sample="S1", cells_only=True, productive_only=True)


def test_qc_emptying_a_sample_names_the_way_out(project):
    gex, _ = read_gex(project / "data" / "BL6_GEX", sample="S1")
    with pytest.raises(InputError, match=r"QC removed all 269 cells.*qc.on_empty_sample: drop"):
        run_qc(gex.copy(), QcParams.from_config(min_genes=100_000), seed=0)
    drop = QcParams.from_config(min_genes=100_000, on_empty_sample="drop")
    kept, summary = run_qc(gex.copy(), drop, seed=0)
    assert kept.n_obs == 0 and summary["status"] == "dropped"
    drop = QcParams.from_config(min_genes=10, on_empty_sample="drop")
    kept, summary = run_qc(gex.copy(), drop, seed=0)
    assert kept.n_obs > 0 and summary["status"] == "passed"


def few_genes(folder: Path, keep: int = 3) -> None:
    """Every cell of an MTX folder left with at most `keep` genes (a failed library)."""
    lines = gz_read(folder / "matrix.mtx.gz").splitlines()
    head = [line for line in lines if line.startswith("%")]
    dims, *entries = lines[len(head) :]
    seen: dict[str, int] = {}
    kept = []
    for entry in entries:
        cell = entry.split()[1]
        seen[cell] = seen.get(cell, 0) + 1
        if seen[cell] <= keep:
            kept.append(entry)
    n_features, n_cells, _ = dims.split()
    gz_write(
        folder / "matrix.mtx.gz",
        "\n".join([*head, f"{n_features} {n_cells} {len(kept)}", *kept]) + "\n",
    )


def test_qc_emptied_sample_dropped_through_snakemake(project):
    """qc.on_empty_sample: drop in the real workflow: S2, whose cells all fall below
    qc.min_genes, is listed as dropped in qc.tsv and the QC targets finish."""
    few_genes(project / "data" / "MD4_GEX")
    edit_config(project, **{"qc.min_genes": 5, "qc.on_empty_sample": "drop"})
    run_snakemake(project, "--cores", "2", "results/tables/qc.tsv")
    qc = pd.read_csv(project / "results" / "tables" / "qc.tsv", sep="\t").set_index("sample")
    assert qc.loc["S2", "status"] == "dropped", qc
    assert qc.loc["S2", "n_cells_passed"] == 0 and qc.loc["S2", "n_cells_input"] == 231
    assert qc.loc["S1", "status"] == "passed" and qc.loc["S1", "n_cells_passed"] > 0
    assert "samples dropped by QC: S2" in (project / "logs" / "gex_qc_table.log").read_text()


# --------------------------------------------------------------------------------------
# through Snakemake: the same messages, no traceback, nothing under results/
# --------------------------------------------------------------------------------------
def result_files(wd: Path) -> list[Path]:
    return [p for p in (wd / "results").rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("build", "expect"),
    [
        (rows(S1.replace("S1", "$(touch PWNED)")), "value '$(touch PWNED)': use only letters"),
        (config(**{"qc.nmad": 3}), "'qc.nmad' is not known: did you mean 'qc.nmads'?"),
        (yaml_text("samples: x\nqc: {nmads: 3\n  a: [\n"), "config.yaml', line 3, column"),
        (rows(S1, S2.replace("P1", "")), "row 3 (sample 'S2'), column 'patient', value ''"),
        (
            bcr_file("tcr.csv.gz", copy(f"{DJVDJ}/BL6_TCR/filtered_contig_annotations.csv.gz")),
            "holds only T-cell receptor chains",
        ),
    ],
    ids=["$(...) id", "misspelt key", "yaml syntax", "no patient", "TCR in bcr (check rule)"],
)
def test_snakemake_reports_cleanly(project, real, build, expect):
    build(project, real)
    proc = run_snakemake(project, "--cores", "1", "results/tables/design_checks.tsv", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expect in out, out[-3000:]
    assert "Traceback (most recent call last)" not in out, out[-3000:]
    assert not result_files(project)
    assert not (project / "PWNED").exists()


def test_tcr_read_waits_for_the_check(project, real):
    """A BCR file in the tcr column stops check_inputs, and tcr_read (which would read it
    without complaint, keeping no TR chain) never runs."""
    tcr_file("bcr.csv.gz", copy(f"{DJVDJ}/BL6_BCR/filtered_contig_annotations.csv.gz"))(
        project, real
    )
    proc = run_snakemake(project, "--cores", "1", "results/tcr/read.h5ad", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "sample 'S1', column 'tcr'" in out and "is it the BCR file?" in out, out[-3000:]
    assert "Traceback (most recent call last)" not in out, out[-3000:]
    assert not result_files(project)
    assert not (project / "logs" / "tcr_read.log").exists()


def pwned(*folders: Path) -> list[Path]:
    names = ("PWNED", "PWNED2", "PWNED3", "PWNED.gmt")
    return [f / n for f in (Path.cwd(), REPO, *folders) for n in names if (f / n).exists()]


def listing(folder: Path, skip: Path) -> set[str]:
    """Every file and folder under `folder`, except those under `skip`."""
    return {str(p) for p in folder.rglob("*") if not p.is_relative_to(skip)}


def test_no_rule_runs_a_shell_command():
    """Why no config or sheet value can run a command: every rule is a `script:` (values
    reach it as Python objects), none a `shell:` or `run:`, and no script starts a process."""
    for smk in [REPO / "workflow" / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        for n, line in enumerate(smk.read_text().splitlines(), start=1):
            assert line.strip() not in ("shell:", "run:"), f"{smk.name}:{n}: {line}"
    for py in (REPO / "scripts").rglob("*.py"):
        text = py.read_text()
        for call in ("subprocess", "os.system", "os.popen", "os.exec", "shell=True"):
            assert call not in text, f"{py.relative_to(REPO)} uses {call}"


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        (
            {"samples": "../../etc/$(touch PWNED);x.tsv"},
            ("sample sheet '../../etc/$(touch PWNED);x.tsv' does not exist",),
        ),
        (
            {
                "annotation.markers": "/etc/$(touch PWNED).tsv",
                "signatures.extra_gmt": ["`touch PWNED`.gmt", "../../x; touch PWNED.gmt"],
                "signatures.gsea.family_gmt": ["$(touch PWNED).gmt"],
            },
            (
                "config key 'annotation.markers' is '/etc/$(touch PWNED).tsv': no such file",
                "config key 'signatures.extra_gmt[0]' is '`touch PWNED`.gmt': no such file",
                "'signatures.extra_gmt[1]' is '../../x; touch PWNED.gmt': no such file",
                "'signatures.gsea.family_gmt[0]' is '$(touch PWNED).gmt': no such file",
            ),
        ),
    ],
    ids=["samples", "file keys"],
)
def test_hostile_config_paths_refused_through_snakemake(project, changes, expect):
    """Path-like config values with `..`, absolute paths and shell syntax: refused while
    Snakemake parses the workflow, every bad key at once, no traceback, nothing written or
    run anywhere."""
    edit_config(project, **changes)
    outside = listing(project.parent, skip=project)
    proc = run_snakemake(project, "--cores", "1", "results/tables/design_checks.tsv", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for fragment in expect:
        assert fragment in out, out[-3000:]
    assert "Traceback (most recent call last)" not in out, out[-3000:]
    assert not (project / "results").exists()
    assert not pwned(project, project.parent)
    assert listing(project.parent, skip=project) == outside


def test_hostile_free_text_config_values_are_only_data(project):
    """Every other free-text config string with shell syntax: the whole DAG is built (dry
    run) and the check jobs run; the values stay data (a gene name that is not a feature is
    reported as such), nothing runs, nothing is written outside the working folder. The
    schema has no key for an output path, so none can point outside."""
    hostile = {
        "tracking.cd19_gene": "$(touch PWNED)",
        "tracking.bcma_gene": "`touch PWNED2`",
        "tracking.cd19_protein": "x; touch PWNED3",
        "tracking.bcma_protein": "$(touch PWNED)",
        "tracking.isotype_control_pattern": "isotype|$(touch PWNED)",
        "annotation.batch_key": "`touch PWNED`",
        "annotation.contaminant_lineages": ["$(touch PWNED)", "erythroid; touch PWNED2"],
        "car_t.features": ["CAR_CD19`touch PWNED`", "$(touch PWNED3)"],
        "bcr.clone.equivalent_genes": [["IGHV3-30;touch PWNED", "$(touch PWNED2)"]],
        "figures.signatures": ["IFN$(touch PWNED)", "`touch PWNED3`"],
        "figures.signature_cell_types": {"IFN": "all; touch PWNED", "default": "$(touch X)"},
    }
    edit_config(project, **hostile)
    outside = listing(project.parent, skip=project)
    dry = run_snakemake(project, "-n", check=False)  # the default target: every rule
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    run_snakemake(project, "--cores", "1", "results/tables/design_checks.tsv")
    table = pd.read_csv(project / "results" / "tables" / "design_checks.tsv", sep="\t")
    missing = table.loc[table["check"] == "gene_missing", "value"]
    assert {"$(touch PWNED)", "`touch PWNED2`"} <= set(missing), table
    assert not pwned(project, project.parent)
    assert listing(project.parent, skip=project) == outside


def test_hostile_file_names_run_nothing_and_write_inside(project, real, tmp_path_factory):
    """Shell metacharacters in file names, a symlinked input and an absolute path outside:
    the check rule reads them (nothing runs as a command) and writes only in the folder."""
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(project / "data" / "MD4_BCR.csv.gz", outside / "bcr.csv.gz")
    hostile = "x;$(touch PWNED)`touch PWNED2`&& touch PWNED3.csv.gz"
    shutil.copy(project / "data" / "BL6_BCR.csv.gz", project / "data" / hostile)
    (project / "data" / "link_GEX").symlink_to(project / "data" / "MD4_GEX")
    write_sheet(
        project,
        [
            S1.replace("BL6_BCR.csv.gz", hostile),
            f"S2\tP1\t60\tPB\t../data/link_GEX\t{outside / 'bcr.csv.gz'}",
        ],
    )
    before = sorted(p.name for p in outside.iterdir())
    proc = run_snakemake(project, "--cores", "1", "results/tables/design_checks.tsv", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(
        (project / n).exists() or Path(n).exists() for n in ("PWNED", "PWNED2", "PWNED3")
    )
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (project / "results" / "tables" / "design_checks.tsv").is_file()
    table = pd.read_csv(project / "results" / "tables" / "design_checks.tsv", sep="\t")
    assert "barcode_overlap" not in set(table["check"])
