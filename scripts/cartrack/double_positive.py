"""Gene-expression side of clone tracking: per-cell counts and the CD19+BCMA+ call."""

import logging
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from scipy.stats import poisson

from cartrack.design import B_LINEAGE, NAIVE_B, InputError

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


_DP_COLUMNS = [
    "clone_id", "patient", "n_cells", "cd19_bcma_fraction", "cd19_rate", "cd19_background",
    "cd19_p", "cd19_source", "bcma_rate", "bcma_background", "bcma_p", "bcma_source",
    "double_positive", "dp_confidence",
]  # fmt: skip


def _rna_test(x: np.ndarray, size: np.ndarray, bg_x: np.ndarray, bg_size: np.ndarray):
    """Pseudobulk Poisson test of a clone's counts against a background rate per size factor.

    Returns (clone rate, background rate, one-sided p). The background rate carries half a
    pseudo-count so a background without any UMI is not a rate of zero.
    """
    bg = (bg_x.sum() + 0.5) / max(bg_size.sum(), 1e-9)
    rate = x.sum() / max(size.sum(), 1e-9)
    p = float(poisson.sf(x.sum() - 1, bg * size.sum())) if x.sum() > 0 else 1.0
    return rate, bg, p


def _dsb(values: np.ndarray, background: np.ndarray) -> np.ndarray:
    """DSB-style protein values: log1p counts in s.d. of a negative population above its mean.

    Follows dsb (Mulè et al. 2022; ``dsb::ModelNegativeADTnorm`` when no empty droplets
    are available): the known-negative cells play the background's part.
    """
    lb = np.log1p(background[np.isfinite(background)])
    mu, sd = (lb.mean(), lb.std(ddof=1)) if len(lb) > 1 else (0.0, 1.0)
    return (np.log1p(values) - mu) / (sd if sd > 0 else 1.0)


def clone_double_positive(
    cells: pd.DataFrame,
    clone_ids: pd.Series,
    *,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = None,
    bcma_protein: str | None = None,
    naive_types: Sequence[str] = NAIVE_B,
    b_lineage_types: Sequence[str] = B_LINEAGE,
    alpha: float = 0.01,
    min_fold: float = 4.0,
    min_protein_dsb: float = 3.0,
    min_cells: int = 1,
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
) -> pd.DataFrame:
    """Per-clone CD19+BCMA+ call, dropout-aware: the clone's pseudobulk against background.

    Parameters
    ----------
    cells
        Per gene-expression cell (index = cell name; pass the baseline cells): ``patient``,
        ``cell_type``, ``total_counts`` and the :func:`read_gex_cells` columns
        ``rna_<gene>`` (and ``prot_<protein>`` when protein is used).
    clone_ids
        Cell name -> clone id for the clone's cells among `cells` (missing: no clone).

    A marker is positive for a clone when its summed counts exceed the patient's background
    expectation (one-sided Poisson, p <= `alpha`, size factors = total counts / the cohort
    median) and its rate is at least `min_fold` x the background's. CD19's background is
    the patient's non-B-lineage cells (CD19 RNA there is ambient), BCMA's the patient's
    naive/transitional B cells (BCMA is absent on naive B cells; DOMAIN.md 3). With a protein column
    the protein decides instead: DSB-style values against the same negative cells, clone
    mean >= `min_protein_dsb` and z-test p <= `alpha`. ``double_positive``: both markers
    positive in a clone of at least `min_cells` cells; ``dp_confidence`` = 1 - the larger
    p-value. ``cd19_bcma_fraction``: share of the clone's cells with CD19 and BCMA counts
    above the per-cell thresholds (descriptive; dropout makes it depth-dependent).
    """
    from scipy.stats import norm

    for col in ("patient", "cell_type", "total_counts"):
        if col not in cells.columns:
            raise InputError(f"gene-expression cells lack column `{col}` (CD19+BCMA+ call)")
    ids = clone_ids.reindex(cells.index)
    size = cells["total_counts"].astype(float)
    size = (size / size[size > 0].median()).to_numpy()
    ctype = cells["cell_type"].astype(str)
    markers = {
        "cd19": (cd19_gene, cd19_protein, ~ctype.isin(b_lineage_types).to_numpy(), cd19_min_counts),
        "bcma": (bcma_gene, bcma_protein, ctype.isin(naive_types).to_numpy(), bcma_min_counts),
    }
    values = {}
    for key, (gene, protein, _, _) in markers.items():
        rna = cells.get(f"rna_{gene}")
        values[key] = {
            "rna": (rna if rna is not None else pd.Series(np.nan, index=cells.index))
            .astype(float)
            .to_numpy(),
            "prot": cells[f"prot_{protein}"].astype(float).to_numpy()
            if protein and f"prot_{protein}" in cells.columns
            else None,
        }
    patient = cells["patient"].astype(str).to_numpy()
    rows = []
    for clone, idx in pd.Series(np.arange(len(cells)))[ids.notna().to_numpy()].groupby(
        ids.dropna().to_numpy()
    ):
        idx = idx.to_numpy()
        pat = pd.Series(patient[idx]).mode().iloc[0]
        mine = patient == pat
        row = {"clone_id": clone, "patient": pat, "n_cells": len(idx)}
        per_cell = np.ones(len(idx), dtype=bool)
        ps = []
        for key, (_, _, negative, min_counts) in markers.items():
            rna, prot = values[key]["rna"], values[key]["prot"]
            bg = mine & negative
            per_cell &= np.nan_to_num(rna[idx], nan=0) > min_counts
            use_prot = prot is not None and np.isfinite(prot[idx]).any()
            if use_prot:
                ok = idx[np.isfinite(prot[idx])]
                d = _dsb(prot[ok], prot[bg])
                mean = float(d.mean())
                p = float(norm.sf(mean * np.sqrt(len(d))))
                row |= {f"{key}_rate": mean, f"{key}_background": 0.0, f"{key}_source": "protein"}
                positive = p <= alpha and mean >= min_protein_dsb
            elif np.isfinite(rna[idx]).any():
                x = np.nan_to_num(rna[idx])
                rate, bg_rate, p = _rna_test(x, size[idx], np.nan_to_num(rna[bg]), size[bg])
                row |= {f"{key}_rate": rate, f"{key}_background": bg_rate, f"{key}_source": "rna"}
                positive = p <= alpha and rate >= min_fold * bg_rate
            else:
                p, positive = 1.0, False
                row |= {f"{key}_rate": np.nan, f"{key}_background": np.nan, f"{key}_source": ""}
            row[f"{key}_p"] = p
            row[f"{key}_positive"] = positive
            ps.append(p)
        row["cd19_bcma_fraction"] = float(per_cell.mean())
        both = row.pop("cd19_positive") & row.pop("bcma_positive")
        row["double_positive"] = bool(both) and len(idx) >= min_cells
        row["dp_confidence"] = 1 - max(ps)
        rows.append(row)
    return pd.DataFrame(rows, columns=_DP_COLUMNS)
