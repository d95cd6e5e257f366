"""Gene-expression readers: one sample's Cell Ranger output (or ``.h5ad``) to AnnData.

Accepted inputs (the sample sheet's ``gex`` column):

- a Cell Ranger >= 3 ``filtered_feature_bc_matrix.h5`` or a legacy Cell Ranger 1.2/2
  ``filtered_gene_bc_matrices_h5.h5`` (scanpy tells them apart);
- a folder with ``matrix.mtx[.gz]``, ``features.tsv[.gz]`` (or legacy ``genes.tsv[.gz]``) and
  ``barcodes.tsv[.gz]``, optionally with a common file-name prefix (GEO style), or a legacy
  folder holding exactly one genome subfolder with these files
  (``filtered_gene_bc_matrices/hg19/``);
- an ``.h5ad`` with raw counts in ``X`` or in ``layers["counts"]``.

Every reader returns the same layout: ``X`` raw counts as a float32 CSR matrix, gene symbols
as unique ``var_names`` (``var["gene_ids"]``, ``var["feature_types"]``), ``obs["barcode"]``
as in the input, ``obs["sample"]``, and ``obs_names`` built by :func:`cell_name`.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cartrack.design import InputError

# anndata and scanpy are imported by the readers that use them: the Snakefile, the input
# checks and the V(D)J readers import this module for paths and cell names only, and should
# not pay seconds of imports in every job (issue 15).
if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

#: h5py filter of the workflow's own intermediate .h5ad files: lzf writes 2.3x and reads
#: 1.5x faster than gzip at 1.7x the size (a 23k-cell integrated.h5ad: 1.8 s and 143 MB
#: against 4.2 s and 84 MB). results/cohort.h5mu, the file users keep, stays gzip.
INTERMEDIATE_COMPRESSION = "lzf"
GEX_TYPE = "Gene Expression"
PROT_TYPE = "Antibody Capture"
H5_SUFFIXES = (".h5",)
H5AD_SUFFIXES = (".h5ad",)

_GZIP_MAGIC = b"\x1f\x8b"
_MATRIX_NAMES = ("matrix.mtx.gz", "matrix.mtx")
_FEATURE_NAMES = ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv")
_BARCODE_NAMES = ("barcodes.tsv.gz", "barcodes.tsv")
_EXPECTED = (
    "a Cell Ranger .h5, an .h5ad, or a folder with matrix.mtx[.gz], "
    "features.tsv[.gz] (or genes.tsv) and barcodes.tsv[.gz]"
)
_NO_MATRIX = "no matrix.mtx[.gz]"
_CHUNK = 10_000_000  # values per block when checking that counts are integers


@contextmanager
def _duplicates_handled_here() -> Iterator[None]:
    """Silence anndata's duplicate-var-name warning: `_unique_var_names` logs the count."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        yield


class _FormatError(Exception):
    """Internal: what is wrong with a gex file; `read_gex` adds sample and path."""


def cell_name(sample: str, barcode: str) -> str:
    """Cohort-unique cell name for a barcode of one sample.

    Parameters
    ----------
    sample
        Sample id from the sheet.
    barcode
        Barcode as it stands in the input file (e.g. ``AAACCTGAGCTAGTGG-1``).

    Returns
    -------
    ``f"{sample}_{barcode}"``; the V(D)J readers name cells the same way.
    """
    return f"{sample}_{barcode}"


def cell_names(sample: str, barcodes: Iterable[str]) -> pd.Index:
    """Vectorised :func:`cell_name` over many barcodes of one sample.

    Parameters
    ----------
    sample
        Sample id from the sheet.
    barcodes
        Barcodes as they stand in the input file.

    Returns
    -------
    String index of cell names, in the order of `barcodes`.
    """
    return pd.Index([cell_name(sample, str(b)) for b in barcodes], dtype=object)


@dataclass(frozen=True)
class _MtxFiles:
    """The three files of one MTX folder."""

    prefix: str
    matrix: Path
    features: Path
    barcodes: Path


def _locate_mtx(folder: Path) -> tuple[_MtxFiles | None, str | None]:
    """Find the MTX triple directly in `folder`; return (files, None) or (None, reason)."""
    found: list[_MtxFiles] = []
    partial: list[str] = []
    for name in _MATRIX_NAMES:
        for matrix in sorted(folder.glob(f"*{name}")):
            if not matrix.is_file():
                continue
            prefix = matrix.name[: -len(name)]
            features = next(
                (
                    folder / f"{prefix}{n}"
                    for n in _FEATURE_NAMES
                    if (folder / f"{prefix}{n}").is_file()
                ),
                None,
            )
            barcodes = next(
                (
                    folder / f"{prefix}{n}"
                    for n in _BARCODE_NAMES
                    if (folder / f"{prefix}{n}").is_file()
                ),
                None,
            )
            if features is None or barcodes is None:
                missing = [
                    what
                    for what, p in (
                        ("features.tsv[.gz]/genes.tsv", features),
                        ("barcodes.tsv[.gz]", barcodes),
                    )
                    if p is None
                ]
                partial.append(f"{matrix.name} has no matching {' or '.join(missing)}")
                continue
            found.append(_MtxFiles(prefix, matrix, features, barcodes))
    if len(found) == 1:
        return found[0], None
    if len(found) > 1:
        names = ", ".join(f.matrix.name for f in found)
        return None, f"several matrices in one folder ({names}); keep only one"
    if partial:
        return None, "; ".join(partial)
    return None, _NO_MATRIX


def _resolve_mtx_folder(folder: Path) -> tuple[_MtxFiles | None, str | None]:
    """Locate the MTX files in `folder` or in its single genome subfolder."""
    files, reason = _locate_mtx(folder)
    if files is not None or reason != _NO_MATRIX:
        return files, reason
    try:
        subdirs = sorted(d for d in folder.iterdir() if d.is_dir())
    except OSError as e:
        return None, f"cannot list the folder ({e})"
    candidates = [(d, *_locate_mtx(d)) for d in subdirs]
    with_matrix = [c for c in candidates if c[2] != _NO_MATRIX]
    if len(with_matrix) == 1:
        d, files, reason = with_matrix[0]
        return files, None if files is not None else f"subfolder '{d.name}': {reason}"
    if len(with_matrix) > 1:
        names = ", ".join(d.name for d, _, _ in with_matrix)
        return None, f"several subfolders hold a matrix ({names}); point gex at one of them"
    return None, f"folder holds no matrix: expected {_EXPECTED}, possibly one subfolder down"


def check_gex_path(path: Path) -> str | None:
    """Cheap check that a sheet's ``gex`` entry looks readable (no matrix is read).

    Parameters
    ----------
    path
        File or folder given in the sheet (already resolved against the sheet's folder).

    Returns
    -------
    None if it looks readable, else a short reason.
    """
    path = Path(path)
    if not path.exists():
        return "does not exist"
    if not os.access(path, os.R_OK):
        return "is not readable (permissions)"
    if path.is_dir():
        return _resolve_mtx_folder(path)[1]
    name = path.name.lower()
    if name.endswith(H5_SUFFIXES + H5AD_SUFFIXES):
        if path.stat().st_size == 0:
            return "is empty"
        try:
            is_hdf5 = h5py.is_hdf5(path)
        except OSError as e:
            return f"cannot be opened ({e})"
        return None if is_hdf5 else "is not an HDF5 file"
    if any(name.endswith(n) for n in _MATRIX_NAMES + _FEATURE_NAMES + _BARCODE_NAMES):
        return "is one file of an MTX folder: give the folder that holds it"
    return f"unsupported file type (expected {_EXPECTED})"


def _is_gzip(path: Path) -> bool:
    """True if the file starts with the gzip magic bytes (whatever its name says)."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _n_feature_columns(path: Path) -> int:
    """Number of tab-separated columns on the first line of a features/genes file."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt") as fh:
        return len(fh.readline().rstrip("\r\n").split("\t"))


# --- Workaround: MTX folders that scanpy.read_10x_mtx cannot read as they are ----------------
# scanpy reads exactly two layouts: Cell Ranger >= 3 (matrix.mtx.gz, features.tsv.gz,
# barcodes.tsv.gz, all truly gzip, 3 feature columns) and Cell Ranger <= 2 (matrix.mtx,
# genes.tsv, barcodes.tsv, all plain). Real folders deviate: djvdj's matrix.mtx.gz is plain
# MatrixMarket text named .gz (scanpy raises BadGzipFile), GEO downloads gzip a legacy
# genes.tsv, users gunzip a Cell Ranger 3 folder. For those we stage the three files under the
# canonical names in a temporary folder, (de)compressing by magic bytes rather than by name,
# and still let scanpy do all the parsing.
def _stage_file(src: Path, dst: Path, *, gzipped: bool) -> None:
    """Link or (de)compress `src` to `dst` so that `dst` is gzip iff `gzipped`."""
    if _is_gzip(src) == gzipped:
        dst.symlink_to(src.resolve())
    elif gzipped:
        with open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=1) as fout:
            shutil.copyfileobj(fin, fout)
    else:
        with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout)


def _read_mtx_staged(files: _MtxFiles, *, cr3: bool) -> ad.AnnData:
    """Read a non-standard MTX folder through a canonical copy in a temporary folder."""
    log.info("staging non-standard MTX folder %s for scanpy", files.matrix.parent)
    suffix = ".gz" if cr3 else ""
    feature_name = "features.tsv" if cr3 else "genes.tsv"
    with tempfile.TemporaryDirectory(prefix="cartrack_mtx_") as tmp:
        tmpdir = Path(tmp)
        _stage_file(files.matrix, tmpdir / f"matrix.mtx{suffix}", gzipped=cr3)
        _stage_file(files.features, tmpdir / f"{feature_name}{suffix}", gzipped=cr3)
        _stage_file(files.barcodes, tmpdir / f"barcodes.tsv{suffix}", gzipped=cr3)
        import scanpy as sc

        return sc.read_10x_mtx(tmpdir, make_unique=False, gex_only=False)


# --- end of workaround -------------------------------------------------------------------------


def _read_mtx_folder(files: _MtxFiles) -> ad.AnnData:
    """Read an MTX folder with scanpy, staging it first if its layout is non-standard."""
    opener = gzip.open if _is_gzip(files.barcodes) else open
    with opener(files.barcodes, "rt") as fh:
        if not fh.readline().strip():  # scanpy would raise pandas' EmptyDataError
            raise _FormatError(f"holds zero cells ('{files.barcodes.name}' is empty)")
    cr3 = _n_feature_columns(files.features) >= 3
    names = (files.matrix.name, files.features.name, files.barcodes.name)
    p = files.prefix
    if cr3:
        native = names == (f"{p}matrix.mtx.gz", f"{p}features.tsv.gz", f"{p}barcodes.tsv.gz")
        native = native and all(_is_gzip(f) for f in (files.matrix, files.features, files.barcodes))
        # scanpy switches to the legacy layout whenever a plain genes.tsv sits next to it
        native = native and not (files.matrix.parent / f"{p}genes.tsv").is_file()
    else:
        native = names == (f"{p}matrix.mtx", f"{p}genes.tsv", f"{p}barcodes.tsv")
        native = native and not any(
            _is_gzip(f) for f in (files.matrix, files.features, files.barcodes)
        )
    if not native:
        return _read_mtx_staged(files, cr3=cr3)
    import scanpy as sc

    return sc.read_10x_mtx(files.matrix.parent, make_unique=False, gex_only=False, prefix=p)


def _read_h5(path: Path) -> ad.AnnData:
    """Read a Cell Ranger HDF5 (>= 3 or legacy 1.2/2) with scanpy, all feature types."""
    import scanpy as sc

    try:
        return sc.read_10x_h5(path, gex_only=False)
    except Exception as e:
        raise _FormatError(
            f"not a readable Cell Ranger matrix HDF5 ({type(e).__name__}: {e})"
        ) from e


def _is_counts(x: object) -> bool:
    """True if a matrix holds only non-negative whole numbers (checked block-wise)."""
    values = x.data if sp.issparse(x) else np.asarray(x).ravel()
    if values.dtype.kind in "iub":
        return bool(values.size == 0 or values.min() >= 0)
    for start in range(0, values.size, _CHUNK):
        block = values[start : start + _CHUNK]
        if not (np.all(block >= 0) and np.all(np.floor(block) == block)):
            return False
    return True


def _read_h5ad(path: Path) -> ad.AnnData:
    """Read an ``.h5ad`` and return raw counts (``X`` or ``layers['counts']``) with obs/var."""
    import anndata as ad

    try:
        adata = ad.read_h5ad(path)
    except Exception as e:
        raise _FormatError(f"not a readable .h5ad ({type(e).__name__}: {e})") from e
    if adata.X is not None and _is_counts(adata.X):
        counts = adata.X
    elif "counts" in adata.layers:
        counts = adata.layers["counts"]
        if not _is_counts(counts):
            raise _FormatError(
                "layers['counts'] holds non-integer or negative values; raw counts are needed"
            )
        log.info("%s: X is not raw counts, using layers['counts']", path)
    else:
        raise _FormatError(
            "X is not raw counts (non-integer, negative or missing) and there is no "
            "layers['counts']; "
            "raw counts are needed"
        )
    obs = pd.DataFrame(index=adata.obs_names.astype(str))
    if "barcode" in adata.obs:  # e.g. an AnnData whose obs_names were already prefixed
        obs["barcode"] = adata.obs["barcode"].astype(str).to_numpy()
    return ad.AnnData(X=counts, obs=obs, var=adata.var.copy())


def _to_csr32(x: object) -> sp.csr_matrix:
    """Counts as a float32 ``scipy.sparse.csr_matrix`` (dense input is sparsified)."""
    if sp.issparse(x):
        return sp.csr_matrix(x, dtype=np.float32)
    return sp.csr_matrix(np.asarray(x, dtype=np.float32))


def _unique_var_names(adata: ad.AnnData, what: str, where: str) -> None:
    """Make var_names unique in place; log how many were duplicated."""
    n_dup = int(adata.var_names.duplicated().sum())
    if n_dup:
        examples = ", ".join(adata.var_names[adata.var_names.duplicated()][:5])
        log.warning(
            "%s: %d duplicated %s made unique with var_names_make_unique (e.g. %s)",
            where,
            n_dup,
            what,
            examples,
        )
        adata.var_names_make_unique()


def _finish(raw: ad.AnnData, *, sample: str, where: str) -> tuple[ad.AnnData, ad.AnnData | None]:
    """Common layout: csr float32 counts, barcode/sample obs, gene/antibody split."""
    import anndata as ad

    if raw.n_obs == 0:
        raise _FormatError("holds zero cells")
    barcodes = (
        pd.Index(raw.obs["barcode"].astype(str))
        if "barcode" in raw.obs
        else pd.Index(raw.obs_names.astype(str))
    )
    if barcodes.has_duplicates:
        dups = barcodes[barcodes.duplicated()]
        raise _FormatError(
            f"{len(dups)} duplicated barcodes (e.g. '{dups[0]}'); one sample per gex file"
        )
    var = raw.var.copy()
    var.index = var.index.astype(str)
    if "feature_types" not in var:  # legacy Cell Ranger and most .h5ad: genes only
        var["feature_types"] = GEX_TYPE
    var["feature_types"] = var["feature_types"].astype(str)
    types = var["feature_types"].to_numpy()
    is_gex = types == GEX_TYPE
    is_prot = types == PROT_TYPE
    if not is_gex.any():
        raise _FormatError(f"has no '{GEX_TYPE}' features (feature_types: {sorted(set(types))})")
    other = pd.Series(types[~(is_gex | is_prot)]).value_counts()
    if len(other):
        log.warning(
            "%s: dropping features of other types: %s",
            where,
            ", ".join(f"{k} ({v})" for k, v in other.items()),
        )

    X = _to_csr32(raw.X)
    if not _is_counts(X):
        raise _FormatError("matrix holds non-integer or negative values; raw counts are needed")
    obs = pd.DataFrame(
        {"barcode": barcodes.to_numpy(dtype=object), "sample": sample},
        index=cell_names(sample, barcodes),
    )
    gex = ad.AnnData(X=X[:, np.flatnonzero(is_gex)], obs=obs, var=var.loc[is_gex].copy())
    _unique_var_names(gex, "gene symbols", where)
    prot = None
    if is_prot.any():
        prot = ad.AnnData(
            X=X[:, np.flatnonzero(is_prot)], obs=obs.copy(), var=var.loc[is_prot].copy()
        )
        _unique_var_names(prot, "antibody names", where)
    return gex, prot


def read_gex(path: str | Path, *, sample: str) -> tuple[ad.AnnData, ad.AnnData | None]:
    """Read one sample's Cell Ranger gene expression; return (gex, prot or None).

    Parameters
    ----------
    path
        Cell Ranger ``.h5``, MTX folder (or its parent with one genome subfolder) or ``.h5ad``.
    sample
        Sample id; stored in ``obs["sample"]`` and prefixed to the barcodes in ``obs_names``.

    Returns
    -------
    ``gex``: ``Gene Expression`` features, raw counts (float32 CSR), gene symbols as unique
    ``var_names``. ``prot``: ``Antibody Capture`` features with the same obs, or None.

    Raises
    ------
    InputError
        ``sample 'X': gex file '/path': <what is wrong>`` for missing, unknown, corrupt,
        empty or non-count input.
    """
    path = Path(path)
    where = f"sample '{sample}': gex file '{path}'"
    try:
        with _duplicates_handled_here():
            reason = check_gex_path(path)
            if reason is not None:
                raise _FormatError(reason)
            if path.is_dir():
                files, reason = _resolve_mtx_folder(path)
                if files is None:  # pragma: no cover - check_gex_path said it was fine
                    raise _FormatError(str(reason))
                try:
                    raw = _read_mtx_folder(files)
                except _FormatError:
                    raise
                except Exception as e:
                    where_mtx = files.matrix.parent
                    raise _FormatError(
                        f"MTX folder '{where_mtx}' cannot be read ({type(e).__name__}: {e})"
                    ) from e
            elif path.name.lower().endswith(H5AD_SUFFIXES):
                raw = _read_h5ad(path)
            else:
                raw = _read_h5(path)
            gex, prot = _finish(raw, sample=sample, where=where)
    except _FormatError as e:
        raise InputError(f"{where}: {e}") from (e.__cause__ or e)
    log.info(
        "%s: %d cells x %d genes%s",
        where,
        gex.n_obs,
        gex.n_vars,
        f", {prot.n_vars} antibodies" if prot is not None else "",
    )
    return gex, prot


def read_h5ad_parts(
    path: str | Path,
    *,
    obs: Sequence[str] | None = None,
    obsm: Sequence[str] = (),
    varm: Sequence[str] = (),
    obsp: Sequence[str] = (),
    uns: Sequence[str] = (),
    x: str | None | bool = None,
) -> ad.AnnData:
    """X (with `x` a name, that layer as X; with `x` False, no matrix), the named `obs`
    columns (all when None), `obsm`, `varm`, `obsp` and `uns` keys of one of the workflow's
    ``.h5ad`` files (``anndata.io.read_elem``), nothing else: a job that needs one matrix
    and no graph holds a third of the file."""
    import anndata as ad
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        frame = read_elem(f["obs"])
        var = pd.DataFrame(index=read_elem(f["var"]).index)
        return ad.AnnData(
            X=None if x is False else read_elem(f["X"] if x is None else f["layers"][x]),
            obs=frame if obs is None else frame[list(obs)],
            var=var,
            obsm={k: read_elem(f["obsm"][k]) for k in obsm},
            varm={k: read_elem(f["varm"][k]) for k in varm},
            obsp={k: read_elem(f["obsp"][k]) for k in obsp},
            uns={k: read_elem(f["uns"][k]) for k in uns},
        )


@contextmanager
def backed_counts(path: str | Path, *, x: str | None = None) -> Iterator[ad.AnnData]:
    """All `obs` columns of one of the workflow's ``.h5ad`` files with X (or, with `x`, that
    layer) left on disk as anndata's backed CSR dataset (``anndata.io.sparse_dataset``;
    ``X[i:j]`` reads those rows), for a job that sums over cells block by block: the whole
    matrix is never in memory. Valid inside the ``with`` block only."""
    import anndata as ad
    from anndata.io import read_elem, sparse_dataset

    with h5py.File(path, "r") as f:
        yield ad.AnnData(
            X=sparse_dataset(f["X"] if x is None else f["layers"][x]),
            obs=read_elem(f["obs"]),
            var=pd.DataFrame(index=read_elem(f["var"]).index),
        )


def write_layer(path: str | Path, name: str, matrix: object) -> None:
    """Add `matrix` as ``layers[name]`` to an ``.h5ad`` already written
    (``anndata.io.write_elem``, compressed as the workflow's intermediates): a job can write
    its AnnData without a large layer and hold that layer only after letting go of the rest."""
    from anndata.io import write_elem

    with h5py.File(path, "a") as f:
        write_elem(
            f.require_group("layers"),
            name,
            matrix,
            dataset_kwargs={"compression": INTERMEDIATE_COMPRESSION},
        )
