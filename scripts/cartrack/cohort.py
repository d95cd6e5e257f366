"""results/cohort.h5mu: assembled from the gex modality with every per-cell result and airr;
its cell metadata read back without the matrices."""

import logging
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def assemble(
    gex: ad.AnnData, *, per_cell: list[pd.DataFrame], airr: ad.AnnData | None
) -> md.MuData:
    """Join per-cell tables (indexed by cell name) into gex.obs and pair gex with airr.

    Cells missing from a table get empty values (for example `clone_id` for cells without
    a BCR). The airr modality keeps every BCR cell, also those without a GEX cell. Antibody
    capture counts (`gex.obsm["prot_counts"]`) become the `prot` modality.
    """
    for table in per_cell:
        clash = table.columns.intersection(gex.obs.columns)
        gex.obs = gex.obs.drop(columns=clash).join(table, how="left")
    if "clone_id" not in gex.obs:
        gex.obs["clone_id"] = ""
    gex.obs["clone_id"] = gex.obs["clone_id"].fillna("").astype(str)
    for col in gex.obs.select_dtypes(include=object).columns:
        gex.obs[col] = gex.obs[col].fillna("").astype(str)
    mods = {"gex": gex}
    if "prot_counts" in gex.obsm:
        mods["prot"] = protein_modality(gex.obsm.pop("prot_counts"))
    if airr is not None:
        mods["airr"] = airr
    mdata = md.MuData(mods)
    log.info("cohort: %s", {k: v.shape for k, v in mdata.mod.items()})
    return mdata


def protein_modality(counts: pd.DataFrame) -> ad.AnnData:
    """Antibody-capture counts as an AnnData: raw counts in layers["counts"], CLR in X
    (muon's per-cell CLR, Seurat flavour). Cells of samples without antibodies are dropped."""
    import muon as mu  # slow to import (about 10 s): only when there is protein

    counts = counts.dropna(how="all").fillna(0)
    prot = ad.AnnData(counts.to_numpy(dtype="float32"), obs=pd.DataFrame(index=counts.index))
    prot.var_names = counts.columns.astype(str)
    prot.layers["counts"] = prot.X.copy()
    mu.prot.pp.clr(prot)
    log.info("prot: %d cells x %d antibodies, CLR-normalised", prot.n_obs, prot.n_vars)
    return prot


def read_obs(path: str | Path, *, umap: bool = False) -> pd.DataFrame:
    """Cell metadata of the gene-expression modality (``mod/gex`` of an .h5mu, or an .h5ad).

    Reads only ``obs`` (and ``obsm/X_umap`` as columns ``umap_1``, ``umap_2`` with `umap`),
    never the expression matrix.
    """
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        group = f["mod/gex"] if "mod" in f and "gex" in f["mod"] else f
        obs = read_elem(group["obs"])
        if umap:
            if "obsm" in group and "X_umap" in group["obsm"]:
                xy = np.asarray(read_elem(group["obsm/X_umap"]))[:, :2]
                obs["umap_1"], obs["umap_2"] = xy[:, 0], xy[:, 1]
            else:
                log.warning("%s: no obsm/X_umap; the UMAP figure will be empty", path)
    return obs
