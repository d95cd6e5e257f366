"""Gene-expression side of clone tracking: per-cell counts and the CD19+BCMA+ call."""

import logging
import re
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
    isotype_pattern: str | None = None,
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
    isotype_pattern
        Regular expression (case-insensitive search) naming the isotype-control antibodies;
        their mean log1p count per cell is returned as ``prot_technical`` (the per-cell
        technical component of :func:`dsb_values`). None, or no antibody matching it (logged):
        no such column.
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
        if prot is not None and isotype_pattern:
            technical = technical_component(prot, isotype_pattern)
            if technical is not None:
                out["prot_technical"] = technical.to_numpy()
    out.index = out.index.astype(str)
    return out


def technical_component(prot: pd.DataFrame, pattern: str) -> pd.Series | None:
    """Per-cell mean log1p count of the isotype-control antibodies (columns whose name
    matches `pattern`, case-insensitive): how much antibody a cell binds or its droplet
    captures regardless of target (dsb's technical component, Mulè et al. 2022). With
    several controls their mean stands for dsb's first principal component (the controls
    move together). None, logged, when no antibody matches."""
    controls = [c for c in prot.columns if re.search(pattern, str(c), flags=re.IGNORECASE)]
    if not controls:
        log.warning(
            "no isotype control among the %d antibodies (pattern %r): protein values are "
            "corrected against the negative cells only, without a per-cell technical component",
            prot.shape[1], pattern,
        )  # fmt: skip
        return None
    log.info("isotype controls (per-cell technical component): %s", ", ".join(map(str, controls)))
    values = prot[controls].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return pd.Series(np.log1p(values).mean(axis=1), index=prot.index)


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


def dsb_values(
    counts: np.ndarray, negative: np.ndarray, technical: np.ndarray | None = None
) -> np.ndarray:
    """DSB-style values of one protein: log1p counts in s.d. of a negative population above
    its mean.

    dsb (Mulè et al. 2022) scales by empty droplets, then regresses each protein on a
    per-cell technical component (isotype controls and the cell's background level;
    ``muon.prot.pp.dsb``). Filtered matrices hold no empty droplets, and muon's dsb needs
    them, so the known-negative cells stand in for them (``dsb::ModelNegativeADTnorm``
    without empty drops). With `technical` (:func:`technical_component`), the linear fit of
    the log counts on it among the negative cells is removed first, so the negatives'
    spread, the unit of the values, is free of it too. Cells with a missing value stay NaN.
    """
    y = np.log1p(np.asarray(counts, dtype=float))
    bg = np.asarray(negative, dtype=bool) & np.isfinite(y)
    if technical is not None:
        t = np.asarray(technical, dtype=float)
        fit = bg & np.isfinite(t)
        if fit.sum() > 2 and np.ptp(t[fit]) > 0:
            y = y - np.polyfit(t[fit], y[fit], 1)[0] * t
            bg &= np.isfinite(y)
    lb = y[bg]
    mu, sd = (lb.mean(), lb.std(ddof=1)) if len(lb) > 1 else (0.0, 1.0)
    return (y - mu) / (sd if sd > 0 else 1.0)


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
    the protein decides instead: DSB-style values against the same negative cells
    (:func:`dsb_values`, with the per-cell technical component ``prot_technical`` of the
    isotype controls when `cells` has it), clone mean >= `min_protein_dsb` and z-test
    p <= `alpha`. ``double_positive``: both markers
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
    technical = (
        cells["prot_technical"].astype(float).to_numpy() if "prot_technical" in cells else None
    )
    dsb = {}  # (marker, patient) -> DSB-style values of the patient's cells
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
                if (key, pat) not in dsb:
                    dsb[(key, pat)] = dsb_values(np.where(mine, prot, np.nan), bg, technical)
                ok = idx[np.isfinite(prot[idx])]
                d = dsb[(key, pat)][ok]
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
