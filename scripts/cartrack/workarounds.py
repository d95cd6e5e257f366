"""Workarounds for dependencies' bugs, under public names: each says what it works around,
in which version, and the upstream issue where there is one. Remove one when the pinned
version (envs/requirements.txt) no longer needs it.

scirpy 0.22 (V(D)J reading, clonotype clusters):

- :func:`read_airr_table`: ``scirpy.io.read_airr`` keeps R's "NA" strings, so its locus
  inference fails; no upstream issue found.
- :func:`scirpy_read`: the scirpy readers crash on inputs without cells (KeyError
  'cell_id'), ``read_airr``'s locus inference needs every ``*_call`` column, and
  ``read_10x_vdj`` reads only a path; no upstream issue found.
- :func:`airr_array`: ``anndata.concat`` turns awkward *views* into union types (related:
  scverse/anndata#912, record-type concatenation).
- :func:`clonotype_clusters`: ``scirpy.tl.define_clonotype_clusters`` raises ValueError on
  data without cells; no upstream issue found.
- :func:`index_chains_without_numba`: ``scirpy.pp.index_chains`` builds two small helper
  arrays with numba functions that cannot be cached (they build awkward arrays: "uses
  dynamic globals"), so every job that indexes chains compiled them anew: 2.6 s of a 0.08 s
  call. They are swapped for the numba-free versions scirpy's own source gives beside them
  (same chain indices, tested); no upstream issue found.

scanpy 1.11:

- :func:`lean_score_genes_mean`: ``score_genes``' sparse mean copies the matrix twice
  (scverse/scanpy#1894, fixed in scanpy 1.12 by #4141).

harmonypy 2.x:

- :func:`run_harmony`: ``scanpy.external.pp.harmony_integrate`` transposes the corrected
  matrix that harmonypy >= 0.1 already returns as cells x components (scverse/scanpy#3940),
  so harmonypy is called directly and the orientation checked.

umap-learn 0.5, pynndescent 0.5 (numba):

- :func:`cache_numba_functions`: their ``@njit`` functions are compiled without
  ``cache=True``, so every new process compiles them again: ~5 s at import (pynndescent's
  functions with explicit signatures compile eagerly) and ~5 s at first call in each job
  that builds a kNN graph or UMAP (scanpy's connectivities call umap's
  ``fuzzy_simplicial_set``). They are imported with ``cache=True`` as the decorators'
  default, into numba's usual cache (``__pycache__`` beside the module, else the user cache
  folder, or ``NUMBA_CACHE_DIR``). Related: lmcinnes/umap#477 (slow import and compilation).

Not code, but scirpy behaviour the design relies on:

- read_10x_vdj/read_airr pass ``cell_attribute_fields=("is_cell")`` (a string, not a tuple),
  so ``is_cell`` stays a chain field typed by its values (bool or str):
  :func:`cartrack.airr_fields.field_type` fixes types.
- ``define_clonotype_clusters(receptor_arms="all")`` only links cells with the same number of
  arms, so heavy-only cells never join paired ones; ``same_v_gene`` compares V calls as exact
  strings. :mod:`cartrack.clones` therefore defines clones itself (heavy chains first, then
  light).
"""

import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cartrack.airr_fields import CALL_FIELDS, NA_STRINGS, Format


# --------------------------------------------------------------------------------------
# scirpy 0.22
# --------------------------------------------------------------------------------------
def read_airr_table(path: Path) -> pd.DataFrame:
    """read_airr keeps R's "NA" strings (so locus inference fails): pre-read with pandas."""
    return pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        na_values=list(NA_STRINGS),
        compression="infer",
    )


def scirpy_read(path: Path, fmt: Format, table: pd.DataFrame, *, subset: bool) -> ad.AnnData | None:
    """scirpy readers crash on inputs without cells (KeyError 'cell_id'): return None then."""
    import scirpy as ir

    if len(table) == 0:
        return None
    if fmt == "airr":
        # a data frame, not the path: NA strings already removed (see :func:`read_airr_table`);
        # its locus inference needs every *_call column (KeyError 'c_call' otherwise)
        table = table.reindex(columns=[*table.columns, *(set(CALL_FIELDS) - set(table.columns))])
        return ir.io.read_airr(table.fillna(""))
    if subset:
        # read_10x_vdj only reads a path; the table was subset to one sample's rows
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "contigs.csv"
            table.to_csv(staged, index=False)
            return ir.io.read_10x_vdj(staged, filtered=False)
    # filtered=False: cell/confidence filtering is ours, so it is counted and configurable
    return ir.io.read_10x_vdj(path, filtered=False)


def airr_array(adata: ad.AnnData, key: str = "airr"):
    """anndata.concat turns awkward *views* into union types: always hand on a real copy."""
    import awkward as ak

    arr = adata.obsm[key]
    return ak.Array(arr.layout) if adata.is_view else arr


def clonotype_clusters(adata: ad.AnnData, *, key_added: str, **kwargs) -> pd.Series:
    """define_clonotype_clusters raises ValueError on data without cells: return empty then."""
    import scirpy as ir

    if adata.n_obs == 0:
        return pd.Series(index=adata.obs_names, dtype=object)
    ir.tl.define_clonotype_clusters(adata, key_added=key_added, **kwargs)
    return adata.obs[key_added].astype(object)


def index_chains_without_numba(adata: ad.AnnData, **kwargs) -> None:
    """``scirpy.pp.index_chains`` with its numba helpers ``_awkward_isin`` and ``_awkward_len``
    replaced by awkward's vectorised operations (scirpy's commented alternatives; a missing
    locus is not in the list, as in numba's ``in``), for the duration of the call."""
    import operator
    from functools import reduce

    import awkward as ak
    import scirpy as ir
    from scirpy.pp import _index_chains as module

    def isin(arr, haystack):
        return reduce(operator.or_, (ak.fill_none(arr == v, False, axis=-1) for v in haystack))

    def length(arr):
        return ak.fill_none(ak.num(arr, axis=1), 0)

    saved = module._awkward_isin, module._awkward_len
    module._awkward_isin, module._awkward_len = isin, length
    try:
        ir.pp.index_chains(adata, **kwargs)
    finally:
        module._awkward_isin, module._awkward_len = saved


# --------------------------------------------------------------------------------------
# umap-learn, pynndescent: numba functions compiled anew in every process
# --------------------------------------------------------------------------------------
#: packages whose numba functions scanpy calls without a compilation cache
NUMBA_UNCACHED = ("umap", "pynndescent")


def cache_numba_functions() -> None:
    """Import :data:`NUMBA_UNCACHED` with ``cache=True`` as the default of numba's ``jit``
    and ``njit`` decorators for their own modules, so that both the functions they compile
    at import (explicit signatures) and those compiled at first call are cached (see the
    module docstring). Idempotent; a function numba cannot cache is compiled as before; if
    something imported them before, it is too late: logged, and they compile as before."""
    import functools
    import importlib
    import logging
    import sys
    import warnings

    import numba

    imported = [name for name in NUMBA_UNCACHED if name in sys.modules]
    if imported:
        if not getattr(cache_numba_functions, "done", False):
            logging.getLogger(__name__).warning(
                "%s imported before cache_numba_functions: their numba functions are compiled "
                "in this process without a disk cache",
                ", ".join(imported),
            )
        return

    def cached(decorator):
        @functools.wraps(decorator)
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.partition(".")[0] in NUMBA_UNCACHED:
                kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)

        return wrapper

    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
    saved = numba.jit, numba.njit
    numba.jit, numba.njit = cached(numba.jit), cached(numba.njit)
    try:
        for name in NUMBA_UNCACHED:
            importlib.import_module(name)
    finally:
        numba.jit, numba.njit = saved
    cache_numba_functions.done = True


# --------------------------------------------------------------------------------------
# harmonypy 2.x
# --------------------------------------------------------------------------------------
def run_harmony(pcs: np.ndarray, obs: pd.DataFrame, batch_key: str, seed: int) -> np.ndarray:
    """Harmony-corrected PCs, cells x components (harmonypy called directly: see the module
    docstring)."""
    import harmonypy

    result = harmonypy.run_harmony(
        pcs, obs[[batch_key]].astype(str), [batch_key], random_state=seed, verbose=False
    )
    z = np.asarray(result.Z_corr)
    return z if z.shape == pcs.shape else z.T


# --------------------------------------------------------------------------------------
# scanpy 1.11: score_genes' sparse mean copies the matrix twice
# --------------------------------------------------------------------------------------
def lean_score_genes_mean() -> None:
    """Make ``scanpy.tl.score_genes``' sparse mean copy-free when the matrix has no NaN.

    scanpy 1.11's ``_sparse_nanmean`` copies the (gene-pool) matrix twice to count and zero
    NaNs, so each call holds three copies of the expression matrix: 4.5 GB in
    ``signatures_score`` at 225k cells. Without NaNs its result is the float64 column (row)
    sum over the length, which is what this computes, to the bit; with NaNs scanpy's own
    function runs. Fixed upstream in scanpy 1.12 (scverse/scanpy#1894, PR #4141).
    Idempotent.
    """
    from scanpy.tools import _score_genes

    original = _score_genes._sparse_nanmean
    if getattr(original, "lean", False):
        return

    def _sparse_nanmean(x, /, axis):
        if np.isnan(x.data).any():
            return original(x, axis=axis)
        return x.sum(axis, dtype="float64") / x.shape[axis]

    _sparse_nanmean.lean = True
    _score_genes._sparse_nanmean = _sparse_nanmean
