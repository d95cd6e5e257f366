"""Assemble results/cohort.h5mu: the gex modality with every per-cell result, and airr."""

import logging

import anndata as ad
import mudata as md
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
