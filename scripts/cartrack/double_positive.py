"""Gene-expression side of clone tracking: per-cell counts and the CD19+BCMA+ call."""

import logging
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cartrack.design import InputError

log = logging.getLogger(__name__)


def read_gex_cells(
    path: str | Path,
    *,
    genes: Sequence[str] = ("CD19", "TNFRSF17"),
    proteins: Sequence[str] = (),
    layer: str = "counts",
    protein_key: str = "prot_counts",
    chunk: int = 20_000,
) -> pd.DataFrame:
    """Per-cell table of the annotated gene-expression AnnData, without loading its matrix.

    Parameters
    ----------
    path
        ``results/gex/annotated.h5ad`` (obs ``sample`` and ``cell_type``; raw counts in
        ``layers[layer]``; optional ``obsm[protein_key]`` data frame of raw ADT counts).
    genes
        Genes whose raw counts are returned as ``rna_<gene>`` (missing genes: NaN, warned).
    proteins
        Protein columns of ``obsm[protein_key]`` returned as ``prot_<name>`` (NaN if absent).
    layer
        Layer with raw counts.
    protein_key
        ``obsm`` key of the protein counts.
    chunk
        Cells read at a time.

    Returns
    -------
    Data frame indexed by cell name with the ``obs`` columns and the count columns.
    """
    from anndata.io import read_elem, sparse_dataset

    with h5py.File(path, "r") as f:
        obs = read_elem(f["obs"])
        var_names = pd.Index(read_elem(f["var"]).index.astype(str))
        for col in ("sample", "cell_type"):
            if col not in obs.columns:
                raise InputError(f"{path}: gene-expression obs lacks column `{col}`")
        if "layers" not in f or layer not in f["layers"]:
            raise InputError(f"{path}: no raw counts in layers[{layer!r}]")
        store = f["layers"][layer]
        matrix = sparse_dataset(store) if isinstance(store, h5py.Group) else store
        # exact symbol first, else a case-insensitive match (mouse data carry Cd19)
        upper = {name.upper(): name for name in var_names}
        found = {g: g if g in var_names else upper.get(g.upper()) for g in genes}
        present = [g for g in genes if found[g] is not None]
        for g in genes:
            if found[g] is None:
                log.warning(
                    "%s: gene %s not in var_names; its counts are treated as missing", path, g
                )
        cols = var_names.get_indexer([found[g] for g in present])
        values = np.full((len(obs), len(present)), np.nan)
        if present:
            for start in range(0, len(obs), chunk):
                block = matrix[start : start + chunk]
                block = block[:, cols]
                values[start : start + chunk] = np.asarray(
                    block.toarray() if hasattr(block, "toarray") else block, dtype=float
                )
        out = obs.copy()
        for j, g in enumerate(present):
            out[f"rna_{g}"] = values[:, j]
        for g in genes:
            if f"rna_{g}" not in out.columns:
                out[f"rna_{g}"] = np.nan
        prot = None
        if "obsm" in f and protein_key in f["obsm"]:
            prot = read_elem(f["obsm"][protein_key])
            if not isinstance(prot, pd.DataFrame):
                prot = None
                log.warning("%s: obsm[%r] is not a data frame; protein ignored", path, protein_key)
        for p in proteins:
            if prot is not None and p in prot.columns:
                out[f"prot_{p}"] = pd.to_numeric(prot[p], errors="coerce").to_numpy(dtype=float)
            else:
                out[f"prot_{p}"] = np.nan
    out.index = out.index.astype(str)
    return out


def double_positive_cells(
    gex_cells: pd.DataFrame,
    *,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = None,
    bcma_protein: str | None = None,
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
    cd19_min_protein: float = 10,
    bcma_min_protein: float = 10,
) -> pd.Series:
    """Per-cell CD19+BCMA+ call from raw counts.

    For each marker the protein count is used where the cell has one (column
    ``prot_<name>`` not missing), else the RNA count (``rna_<gene>``); a cell is positive
    for the marker when the count is *above* the threshold. Missing counts are negative.

    Returns
    -------
    Boolean series indexed like `gex_cells`.
    """

    def positive(gene, protein, rna_min, prot_min):
        rna = gex_cells.get(f"rna_{gene}", pd.Series(np.nan, index=gex_cells.index))
        pos = rna.astype(float) > rna_min
        if protein:
            prot = gex_cells.get(f"prot_{protein}")
            if prot is not None:
                prot = prot.astype(float)
                pos = pos.where(prot.isna(), prot > prot_min)
        return pos.fillna(False).astype(bool)

    cd19 = positive(cd19_gene, cd19_protein, cd19_min_counts, cd19_min_protein)
    bcma = positive(bcma_gene, bcma_protein, bcma_min_counts, bcma_min_protein)
    return cd19 & bcma
