"""Tests for cartrack.io: Cell Ranger / h5ad gene-expression readers on real and tiny files."""

import gzip
import logging
import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from cartrack.design import InputError
from cartrack.io import cell_name, cell_names, check_gex_path, read_gex

SCANPY3_H5 = "scanpy/10x_data/3.0.0/filtered_feature_bc_matrix.h5"
SCANPY3_MTX = "scanpy/10x_data/3.0.0/filtered_feature_bc_matrix"
LEGACY_H5 = "scanpy/10x_data/1.2.0/filtered_gene_bc_matrices_h5.h5"
LEGACY_MTX_PARENT = "scanpy/10x_data/1.2.0/filtered_gene_bc_matrices"
LIAO_H5 = "scirpy/liao-2019-covid19/GSM4339772_C144_filtered_feature_bc_matrix.h5"
DJVDJ = "djvdj/splen/{}_GEX/filtered_feature_bc_matrix"
JSON = "scirpy/10x/all_contig_annotations.json"


def _assert_layout(gex: ad.AnnData, sample: str) -> None:
    """The layout every reader promises."""
    assert isinstance(gex.X, sp.csr_matrix)
    assert gex.X.dtype == np.float32
    assert gex.var_names.is_unique
    assert gex.obs_names.is_unique
    assert (gex.obs["sample"] == sample).all()
    expected = [f"{sample}_{b}" for b in gex.obs["barcode"]]
    assert list(gex.obs_names) == expected
    assert {"gene_ids", "feature_types"} <= set(gex.var.columns)
    assert (gex.var["feature_types"] == "Gene Expression").all()


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, compression="infer")


def _counts_mmread(matrix: Path) -> sp.csr_matrix:
    """Independent reference: cells x genes counts read straight with scipy (any gzip state)."""
    with open(matrix, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(matrix, "rb") as fh:
        return sp.csr_matrix(scipy.io.mmread(fh).T)


def _write_mtx(
    folder: Path,
    counts: np.ndarray,
    features: list[tuple[str, ...]],
    barcodes: list[str],
    *,
    names: tuple[str, str, str] = ("matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"),
    gzipped: tuple[bool, bool, bool] = (True, True, True),
) -> Path:
    """Write a Cell Ranger-style MTX folder; `counts` is cells x features."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / "_tmp.mtx"
    scipy.io.mmwrite(plain, sp.coo_matrix(counts.T.astype(np.int64)), field="integer")
    mtx_bytes = plain.read_bytes()
    plain.unlink()
    feat_bytes = "".join("\t".join(f) + "\n" for f in features).encode()
    bc_bytes = "".join(b + "\n" for b in barcodes).encode()
    for name, data, gz in zip(names, (mtx_bytes, feat_bytes, bc_bytes), gzipped, strict=True):
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder


def _adt_counts(n_cells: int = 5, n_genes: int = 4, n_adt: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(3, size=(n_cells, n_genes + n_adt)).astype(np.float32)


# ----------------------------------------------------------------------------- helpers


def test_cell_name_and_cell_names_agree():
    assert cell_name("P1_d0", "AAAC-1") == "P1_d0_AAAC-1"
    idx = cell_names("S-2", pd.Index(["AC-1", "GT-2"]))
    assert list(idx) == [cell_name("S-2", "AC-1"), cell_name("S-2", "GT-2")]
    assert isinstance(idx, pd.Index)


# ----------------------------------------------------------------------------- real files


def test_scanpy_v3_h5_and_mtx_identical(real):
    h5, prot_h5 = read_gex(real / SCANPY3_H5, sample="A")
    mtx, prot_mtx = read_gex(real / SCANPY3_MTX, sample="A")
    assert prot_h5 is None and prot_mtx is None
    for g in (h5, mtx):
        _assert_layout(g, "A")
    assert h5.shape == (1107, 507)
    assert list(h5.obs["barcode"]) == list(mtx.obs["barcode"])
    assert list(h5.var_names) == list(mtx.var_names)
    assert list(h5.var["gene_ids"]) == list(mtx.var["gene_ids"])
    assert (h5.X != mtx.X).nnz == 0
    # barcodes exactly as in the file
    barcodes = _read_tsv(real / SCANPY3_MTX / "barcodes.tsv.gz")[0]
    assert list(mtx.obs["barcode"]) == list(barcodes)
    # counts equal an independent scipy read of the matrix
    ref = _counts_mmread(real / SCANPY3_MTX / "matrix.mtx.gz")
    assert (mtx.X != ref).nnz == 0
    assert mtx.var["gene_ids"].str.startswith("ENSG").all()


def test_legacy_h5_and_legacy_mtx_layout(real):
    h5, prot = read_gex(real / LEGACY_H5, sample="old")
    # the parent folder: the matrix sits one level down in the genome subfolder hg19_chr21
    mtx, _ = read_gex(real / LEGACY_MTX_PARENT, sample="old")
    direct, _ = read_gex(real / LEGACY_MTX_PARENT / "hg19_chr21", sample="old")
    assert prot is None
    for g in (h5, mtx, direct):
        _assert_layout(g, "old")
        assert g.shape == (12, 343)
    assert list(h5.obs["barcode"]) == list(mtx.obs["barcode"]) == list(direct.obs["barcode"])
    assert list(h5.var_names) == list(mtx.var_names)
    assert (h5.X != mtx.X).nnz == 0
    ref = _counts_mmread(real / LEGACY_MTX_PARENT / "hg19_chr21" / "matrix.mtx")
    assert (mtx.X != ref).nnz == 0


def test_liao_h5_duplicated_symbols_made_unique(real, caplog):
    with caplog.at_level(logging.WARNING, logger="cartrack.io"):
        gex, prot = read_gex(real / LIAO_H5, sample="C144")
    assert prot is None
    _assert_layout(gex, "C144")
    assert gex.shape == (3716, 33539)
    warnings = [
        r.getMessage() for r in caplog.records if "duplicated gene symbols" in r.getMessage()
    ]
    assert len(warnings) == 1 and " 24 duplicated" in warnings[0]
    with h5py.File(real / LIAO_H5) as f:
        raw_names = pd.Index(f["matrix/features/name"][:].astype(str))
        raw_ids = f["matrix/features/id"][:].astype(str)
    assert raw_names.duplicated().sum() == 24  # known fact: the file itself has duplicates
    assert list(gex.var["gene_ids"]) == list(raw_ids)


@pytest.mark.parametrize(("mouse", "n_cells"), [("BL6", 269), ("MD4", 231)])
def test_djvdj_fake_gz_matrix(real, mouse, n_cells):
    folder = real / DJVDJ.format(mouse)
    with open(folder / "matrix.mtx.gz", "rb") as fh:
        assert fh.read(2) != b"\x1f\x8b"  # the quirk this test is about
    gex, prot = read_gex(folder, sample=mouse)
    assert prot is None
    _assert_layout(gex, mouse)
    assert gex.shape == (n_cells, 1000)
    assert list(gex.obs["barcode"]) == list(_read_tsv(folder / "barcodes.tsv.gz")[0])
    features = _read_tsv(folder / "features.tsv.gz")
    assert list(gex.var["gene_ids"]) == list(features[0])
    assert (gex.X != _counts_mmread(folder / "matrix.mtx.gz")).nnz == 0
    # also through the sample folder (the matrix folder is its only subfolder)
    again, _ = read_gex(folder.parent, sample=mouse)
    assert (again.X != gex.X).nnz == 0


@pytest.mark.parametrize(
    ("names", "gzipped"),
    [
        (("matrix.mtx", "features.tsv", "barcodes.tsv"), (False, False, False)),  # gunzipped CR3
        (("matrix.mtx.gz", "features.tsv", "barcodes.tsv.gz"), (True, False, True)),  # mixed
        (("GSM1_matrix.mtx.gz", "GSM1_features.tsv.gz", "GSM1_barcodes.tsv.gz"), (True,) * 3),
    ],
)
def test_nonstandard_mtx_variants_match_scanpy_folder(real, tmp_path, names, gzipped):
    src = real / SCANPY3_MTX
    ref, _ = read_gex(src, sample="s")
    dst = tmp_path / "mtx"
    dst.mkdir()
    for name, orig, gz in zip(
        names, ("matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"), gzipped, strict=True
    ):
        data = gzip.decompress((src / orig).read_bytes())
        (dst / name).write_bytes(gzip.compress(data) if gz else data)
    gex, _ = read_gex(dst, sample="s")
    _assert_layout(gex, "s")
    assert list(gex.obs_names) == list(ref.obs_names)
    assert list(gex.var_names) == list(ref.var_names)
    assert (gex.X != ref.X).nnz == 0


def test_gzipped_legacy_genes_tsv(real, tmp_path):
    src = real / LEGACY_MTX_PARENT / "hg19_chr21"
    ref, _ = read_gex(src, sample="s")
    dst = tmp_path / "geo"
    dst.mkdir()
    for name in ("matrix.mtx", "genes.tsv", "barcodes.tsv"):
        (dst / f"{name}.gz").write_bytes(gzip.compress((src / name).read_bytes()))
    gex, _ = read_gex(dst, sample="s")
    assert list(gex.obs_names) == list(ref.obs_names)
    assert list(gex.var_names) == list(ref.var_names)
    assert (gex.X != ref.X).nnz == 0


# ----------------------------------------------------------------------------- synthetic


def test_antibody_capture_split_into_prot(tmp_path):
    counts = _adt_counts()
    features = [
        ("ENSG01", "CD19", "Gene Expression"),
        ("ENSG02", "MS4A1", "Gene Expression"),
        ("ENSG03", "CD3E", "Gene Expression"),
        ("ENSG04", "CD19", "Gene Expression"),  # duplicated symbol
        ("CD19", "CD19_TotalSeqC", "Antibody Capture"),
        ("BCMA", "BCMA_TotalSeqC", "Antibody Capture"),
    ]
    barcodes = [f"ACGT{i}-1" for i in range(counts.shape[0])]
    folder = _write_mtx(tmp_path / "cr", counts, features, barcodes)
    gex, prot = read_gex(folder, sample="P1")
    _assert_layout(gex, "P1")
    assert prot is not None
    assert list(prot.var_names) == ["CD19_TotalSeqC", "BCMA_TotalSeqC"]
    assert (prot.var["feature_types"] == "Antibody Capture").all()
    assert list(prot.var["gene_ids"]) == ["CD19", "BCMA"]
    assert list(gex.var_names) == ["CD19", "MS4A1", "CD3E", "CD19-1"]
    assert list(gex.var["gene_ids"]) == ["ENSG01", "ENSG02", "ENSG03", "ENSG04"]
    np.testing.assert_array_equal(gex.X.toarray(), counts[:, :4])
    np.testing.assert_array_equal(prot.X.toarray(), counts[:, 4:])
    assert isinstance(prot.X, sp.csr_matrix)
    assert prot.obs.equals(gex.obs)
    assert list(gex.obs["barcode"]) == barcodes


def test_h5ad_raw_counts_in_x(tmp_path):
    counts = _adt_counts(n_adt=0)
    a = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"B{i}-1" for i in range(counts.shape[0])]),
        var=pd.DataFrame({"gene_ids": [f"E{i}" for i in range(4)]}, index=list("abcd")),
    )
    a.write_h5ad(tmp_path / "x.h5ad")
    gex, prot = read_gex(tmp_path / "x.h5ad", sample="H")
    assert prot is None
    _assert_layout(gex, "H")
    assert list(gex.obs["barcode"]) == list(a.obs_names)
    np.testing.assert_array_equal(gex.X.toarray(), counts)


def test_h5ad_uses_counts_layer_when_x_is_normalised(tmp_path):
    counts = _adt_counts(n_adt=0)
    norm = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    a = ad.AnnData(
        X=norm,  # dense on purpose: the reader must return CSR
        obs=pd.DataFrame(index=[f"B{i}-1" for i in range(counts.shape[0])]),
        var=pd.DataFrame(index=list("abcd")),
    )
    a.layers["counts"] = sp.csr_matrix(counts)
    a.write_h5ad(tmp_path / "n.h5ad")
    gex, _ = read_gex(tmp_path / "n.h5ad", sample="H")
    assert isinstance(gex.X, sp.csr_matrix) and gex.X.dtype == np.float32
    np.testing.assert_array_equal(gex.X.toarray(), counts)
    assert (gex.var["feature_types"] == "Gene Expression").all()


def test_h5ad_without_raw_counts_is_an_error(tmp_path):
    a = ad.AnnData(X=np.array([[0.5, 1.0], [2.0, 0.25]], dtype=np.float32))
    path = tmp_path / "norm.h5ad"
    a.write_h5ad(path)
    with pytest.raises(InputError, match="raw counts are needed") as err:
        read_gex(path, sample="N")
    assert str(err.value).startswith(f"sample 'N': gex file '{path}': ")


def test_h5ad_zero_cells_is_an_error(tmp_path):
    a = ad.AnnData(X=sp.csr_matrix((0, 3), dtype=np.float32))
    path = tmp_path / "empty.h5ad"
    a.write_h5ad(path)
    with pytest.raises(InputError, match="zero cells"):
        read_gex(path, sample="Z")


# ----------------------------------------------------------------------------- errors


def _expect_error(path: Path, sample: str = "S9") -> str:
    with pytest.raises(InputError) as err:
        read_gex(path, sample=sample)
    msg = str(err.value)
    assert msg.startswith(f"sample '{sample}': gex file '{path}': "), msg
    return msg


def test_missing_path(tmp_path):
    assert "does not exist" in _expect_error(tmp_path / "nope.h5")


def test_empty_folder(tmp_path):
    assert "no matrix" in _expect_error(tmp_path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("a,b\n1,2\n")
    assert "unsupported file type" in _expect_error(path)


def test_real_json_passed_as_gex(real):
    assert "unsupported file type" in _expect_error(real / JSON)


def test_json_renamed_to_h5(real, tmp_path):
    path = tmp_path / "contigs.h5"
    shutil.copy(real / JSON, path)
    assert "not an HDF5 file" in _expect_error(path)


def test_hdf5_that_is_not_a_10x_matrix(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["something"] = np.arange(3)
    msg = _expect_error(path)
    assert "not a readable Cell Ranger matrix HDF5" in msg


def test_truncated_h5(real, tmp_path):
    data = (real / SCANPY3_H5).read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 2])
    assert "not a readable Cell Ranger matrix HDF5" in _expect_error(path)


def test_mtx_folder_with_broken_matrix(tmp_path):
    folder = _write_mtx(
        tmp_path / "m", _adt_counts(n_adt=0), [("E", "G", "Gene Expression")] * 4, ["A-1"] * 5
    )
    (folder / "matrix.mtx.gz").write_bytes(gzip.compress(b"not a matrix market file\n"))
    assert "cannot be read" in _expect_error(folder)


def test_duplicated_barcodes_are_an_error(tmp_path):
    feats = [(f"E{i}", f"G{i}", "Gene Expression") for i in range(4)]
    folder = _write_mtx(
        tmp_path / "d", _adt_counts(n_adt=0), feats, ["A-1", "A-1", "C-1", "D-1", "E-1"]
    )
    assert "duplicated barcodes" in _expect_error(folder)


def test_two_genome_subfolders_are_ambiguous(real, tmp_path):
    for genome in ("hg19", "mm10"):
        shutil.copytree(real / LEGACY_MTX_PARENT / "hg19_chr21", tmp_path / genome)
    msg = _expect_error(tmp_path)
    assert "several subfolders" in msg and "hg19" in msg and "mm10" in msg


# ----------------------------------------------------------------------------- check_gex_path


@pytest.mark.parametrize(
    "rel",
    [
        SCANPY3_H5,
        SCANPY3_MTX,
        LEGACY_H5,
        LEGACY_MTX_PARENT,
        LIAO_H5,
        DJVDJ.format("BL6"),
        "djvdj/splen/MD4_GEX",
    ],
)
def test_check_gex_path_accepts_real_inputs(real, rel):
    assert check_gex_path(real / rel) is None


def test_check_gex_path_rejects(real, tmp_path):
    assert check_gex_path(tmp_path / "missing") == "does not exist"
    assert "no matrix" in check_gex_path(tmp_path)
    assert "unsupported file type" in check_gex_path(real / JSON)
    assert "give the folder" in check_gex_path(real / SCANPY3_MTX / "matrix.mtx.gz")
    empty = tmp_path / "empty.h5ad"
    empty.touch()
    assert check_gex_path(empty) == "is empty"
    half = tmp_path / "half"
    half.mkdir()
    (half / "matrix.mtx.gz").write_bytes(b"x")
    (half / "features.tsv.gz").write_bytes(b"x")
    assert "barcodes.tsv" in check_gex_path(half)
    # the matrix folders are two levels below splen/: not searched that deep
    assert "no matrix" in check_gex_path(real / "djvdj" / "splen")


def test_check_gex_path_accepts_h5ad(tmp_path):
    path = tmp_path / "x.h5ad"
    ad.AnnData(X=sp.csr_matrix(np.ones((2, 2), dtype=np.float32))).write_h5ad(path)
    assert check_gex_path(path) is None
