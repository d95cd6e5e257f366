"""Assemble results/cohort.h5mu: the gex modality with every per-cell result, and airr."""

import logging

import anndata as ad
import awkward as ak
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


#: Per-cell columns of scirpy's chain QC, recomputed after the receptors are combined.
_CHAIN_QC = ("receptor_type", "receptor_subtype", "chain_pairing", "multi_chain")


def combine_receptors(
    bcr: ad.AnnData, tcr: ad.AnnData, *, productive_only: bool = True
) -> ad.AnnData:
    """One airr modality holding both receptors in scirpy's layout.

    Each cell's chains are its BCR chains followed by its TCR chains (cells are named
    ``<sample>_<barcode>`` in both, so a barcode with both receptors is one cell, which
    scirpy's chain QC then calls ``ambiguous``). ``obs`` joins both tables (shared columns
    from the BCR side first); scirpy's chain indices and chain QC are recomputed.
    """
    from cartrack.bcr import _airr_array, harmonise_airr, index_chains

    names = bcr.obs_names.union(tcr.obs_names, sort=False)
    arrays = harmonise_airr([_airr_array(bcr), _airr_array(tcr)])

    def aligned(arr: ak.Array, adata: ad.AnnData) -> ak.Array:
        pos = adata.obs_names.get_indexer(names)
        padded = ak.concatenate([arr, ak.Array([[]])[:1]]) if len(arr) else None
        if padded is None:
            return ak.Array([[] for _ in range(len(names))])
        return padded[np.where(pos < 0, len(arr), pos)]

    b, t = aligned(arrays[0], bcr), aligned(arrays[1], tcr)
    chains = ak.concatenate([b, t], axis=1) if len(names) else arrays[0][:0]
    chains = harmonise_airr([chains])[0]

    def plain(obs: pd.DataFrame) -> pd.DataFrame:
        obs = obs.drop(columns=[c for c in _CHAIN_QC if c in obs.columns])
        return obs.astype({c: object for c in obs.columns if obs[c].dtype == "category"})

    obs = plain(bcr.obs).reindex(names).combine_first(plain(tcr.obs).reindex(names))
    obs = obs[list(dict.fromkeys([*plain(bcr.obs).columns, *plain(tcr.obs).columns]))]
    obs.index = obs.index.astype(str)
    airr = ad.AnnData(obs=obs, obsm={"airr": chains})
    for key in ("bcr_ingest", "tcr_ingest", "tracking", "car_t"):
        for source in (bcr, tcr):
            if key in source.uns:
                airr.uns[key] = source.uns[key]
    index_chains(airr, productive_only=productive_only)
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    log.info("airr: %d cells (%d with BCR, %d with TCR)", airr.n_obs, bcr.n_obs, tcr.n_obs)
    return airr
