"""T-cell receptor (V(D)J) ingest, chain QC and clonotypes, with the BCR library's readers.

Reading goes through :func:`cartrack.bcr.read_bcr` with ``loci=TR_LOCI`` (same formats, same
cleaning and checks: 10x contig CSV / JSON, AIRR TSV with ``cell_id``), so a TCR file is
checked exactly as a BCR file is; IG contigs in a TCR file are dropped and counted.

Clonotypes follow scirpy's TCR defaults (:func:`scirpy.tl.define_clonotypes`, scirpy 0.22):
identical *nucleotide* junctions (CDR3 with its conserved C and F/W) of both receptor arms
(``receptor_arms="all"``), within a patient (``within_group="patient"``: the cells are T cells
already, so scirpy's default grouping by receptor type would only split off multichain cells).

- Single-chain cells (orphan TRA or orphan TRB, usually one chain lost to dropout) keep
  scirpy's behaviour under ``receptor_arms="all"``: they form clonotypes only with cells that
  carry the same single chain, never with paired cells (they may be a paired clonotype whose
  other chain was missed, but an orphan beta matches many unrelated alphas, so joining would
  merge clonotypes). ``receptor_arms="any"`` joins them.
- Dual-alpha (or dual-beta) cells, about 10-30% of alpha-beta T cells carry two productive
  alphas: ``dual_ir="any"`` (scirpy's default) lets a dual-alpha cell join a clonotype when
  either of its alphas matches, so the same T cell seen with one or both alphas stays one
  clonotype. ``primary_only`` compares only the most abundant pair.
- Cells with more than two chains of an arm (scirpy ``multichain``; doublets or ambient
  contigs in T cells) get no clonotype unless ``include_multichain`` (scirpy's tutorial
  removes them too).
- A chain needs a nucleotide junction: cells whose indexed chains lack one (AIRR files with
  amino acids only) get no clonotype, because scirpy would compare the missing values as
  equal strings.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import awkward as ak
import numpy as np
import pandas as pd

from cartrack.bcr import (
    TR_LOCI,
    harmonise_airr,
    index_chains,
    merge_bcr,
    read_bcr,
)
from cartrack.design import InputError
from cartrack.workarounds import airr_array as _airr_array
from cartrack.workarounds import clonotype_clusters as _clonotype_clusters

log = logging.getLogger(__name__)

_INGEST = ("n_contigs", "n_contigs_kept", "n_contigs_bcr")
#: scirpy chain_pairing categories, in the order of the chain-QC table.
CHAIN_PAIRINGS = (
    "single pair",
    "extra VJ",
    "extra VDJ",
    "two full chains",
    "orphan VJ",
    "orphan VDJ",
    "multichain",
    "ambiguous",
    "no IR",
)


def read_tcr(
    path: str | Path, *, sample: str, cells_only: bool, productive_only: bool
) -> ad.AnnData:
    """Read one sample's T-cell V(D)J file into scirpy's AnnData layout.

    Parameters
    ----------
    path
        ``filtered_contig_annotations.csv[.gz]``, ``all_contig_annotations.json`` or an AIRR
        rearrangement ``.tsv[.gz]`` with ``cell_id``.
    sample
        Sample id from the sheet (cell names ``f"{sample}_{barcode}"``, as for GEX and BCR).
    cells_only, productive_only
        As for :func:`cartrack.bcr.read_bcr` (``tcr.cells_only`` / ``tcr.productive_only``).

    Returns
    -------
    AnnData with ``obs`` ``sample`` and ``barcode``, the TRA/TRB/TRG/TRD chains in
    ``obsm["airr"]`` and the ingest counts in ``uns["tcr_ingest"]``.

    Raises
    ------
    InputError
        As :func:`cartrack.bcr.read_bcr`, the message naming the TCR file.
    """
    try:
        adata = read_bcr(
            path,
            sample=sample,
            cells_only=cells_only,
            productive_only=productive_only,
            loci=TR_LOCI,
        )
    except InputError as err:
        # the shared reader words its messages for BCR files
        raise InputError(str(err).replace("BCR file", "TCR file", 1)) from err
    adata.uns["tcr_ingest"] = adata.uns.pop("bcr_ingest")
    return adata


def merge_tcr(samples: Sequence[ad.AnnData] | Mapping[str, ad.AnnData]) -> ad.AnnData:
    """Concatenate per-sample TCR AnnData objects (:func:`cartrack.bcr.merge_bcr`)."""
    adatas = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
    for a in adatas:
        if "tcr_ingest" in a.uns:
            a.uns["bcr_ingest"] = a.uns["tcr_ingest"]
    merged = merge_bcr(adatas)
    merged.uns["tcr_ingest"] = merged.uns.pop("bcr_ingest")
    return merged


def _has_nt_junctions(airr: ad.AnnData) -> pd.Series:
    """True for cells whose indexed chains all carry a nucleotide junction."""
    import scirpy as ir

    chains = ir.get.airr(airr, ["junction", "junction_aa"])
    ok = pd.Series(True, index=airr.obs_names)
    for arm in ("VJ_1", "VDJ_1", "VJ_2", "VDJ_2"):
        has_chain = chains[f"{arm}_junction_aa"].notna()
        ok &= ~has_chain | chains[f"{arm}_junction"].notna()
    return ok


def define_clonotypes(
    airr: ad.AnnData,
    *,
    receptor_arms: str = "all",
    dual_ir: str = "any",
    include_multichain: bool = False,
    n_jobs: int = 1,
) -> pd.Series:
    """TCR clonotypes within patients (scirpy's define_clonotypes; see the module docstring).

    Parameters
    ----------
    airr
        Merged TCR AnnData after :func:`cartrack.bcr.index_chains`, with ``obs["patient"]``.
    receptor_arms, dual_ir
        Passed to scirpy (its defaults: ``all``, ``any``).
    include_multichain
        Also give clonotypes to scirpy ``multichain`` cells (by their two top chains).
    n_jobs
        Threads for scirpy.

    Returns
    -------
    ``clonotype_id`` per cell (``<patient>_T<n>``, numbered by size within the patient),
    missing for cells without a usable TCR; also stored in ``airr.obs``.
    """
    import scirpy as ir

    out = pd.Series(np.nan, index=airr.obs_names, dtype=object)
    if "patient" not in airr.obs:
        raise InputError("TCR cells lack `patient` (set it from the sample sheet first)")
    if airr.n_obs == 0:
        airr.obs["clonotype_id"] = out
        return out
    # scirpy's receptor_type is "multichain" for multichain cells; ingest kept TR chains only
    kinds = ["TCR", "multichain"] if include_multichain else ["TCR"]
    usable = airr.obs["receptor_type"].astype(str).isin(kinds) & _has_nt_junctions(airr)
    work = airr[usable.to_numpy()].copy()
    if work.n_obs:
        ir.pp.ir_dist(work, metric="identity", sequence="nt", n_jobs=n_jobs)
        raw = _clonotype_clusters(
            work,
            key_added="_clonotype",
            sequence="nt",
            metric="identity",
            receptor_arms=receptor_arms,
            dual_ir=dual_ir,
            within_group="patient",
            n_jobs=n_jobs,
        ).dropna()
        patient = work.obs.loc[raw.index, "patient"].astype(str)
        frame = pd.DataFrame({"raw": raw.astype(str), "patient": patient})
        sizes = frame.groupby(["patient", "raw"]).size().rename("n").reset_index()
        sizes = sizes.sort_values(["patient", "n", "raw"], ascending=[True, False, True])
        sizes["rank"] = sizes.groupby("patient").cumcount() + 1
        names = {
            (p, r): f"{p}_T{k}"
            for p, r, k in zip(sizes["patient"], sizes["raw"], sizes["rank"], strict=True)
        }
        out.loc[frame.index] = [
            names[(p, r)] for p, r in zip(frame["patient"], frame["raw"], strict=True)
        ]
    airr.obs["clonotype_id"] = out
    log.info(
        "TCR clonotypes: %d of %d cells in %d clonotypes",
        out.notna().sum(),
        airr.n_obs,
        out.nunique(),
    )
    return out


def chain_qc_table(
    airr: ad.AnnData, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """TRA/TRB chain QC per sample: cells by scirpy ``chain_pairing`` and whether in the GEX.

    Parameters
    ----------
    airr
        Merged TCR AnnData after :func:`cartrack.bcr.index_chains` (``obs`` ``sample``,
        ``chain_pairing``, ``receptor_subtype``; ``clonotype_id`` when defined).
    gex_cells
        Per gene-expression cell (index cell name).
    samples
        :func:`cartrack.tracking.sheet_table` (samples with a TCR file: ``has_tcr``).

    Returns
    -------
    One row per sample with a TCR file: ``sample, patient, day, tissue``, the ingest counts
    ``n_contigs``, ``n_contigs_kept`` and ``n_contigs_bcr`` (IG contigs in the TCR file,
    dropped), ``n_tcr_cells, n_in_gex, n_with_clonotype``, one ``n_<pairing>`` column per
    scirpy chain pairing (spaces as ``_``) and ``n_gamma_delta`` (subtype TRG+TRD).
    """
    pair_cols = [f"n_{p.replace(' ', '_')}" for p in CHAIN_PAIRINGS]
    cols = [
        "sample",
        "patient",
        "day",
        "tissue",
        *_INGEST,
        "n_tcr_cells",
        "n_in_gex",
        "n_with_clonotype",
        *pair_cols,
        "n_gamma_delta",
    ]
    with_tcr = samples.index[samples["has_tcr"]] if "has_tcr" in samples else samples.index
    obs = airr.obs
    ingest = airr.uns.get("tcr_ingest")
    if not isinstance(ingest, pd.DataFrame) or "sample" not in ingest:
        ingest = pd.DataFrame(columns=["sample", *_INGEST])
    ingest = ingest.drop_duplicates("sample").set_index("sample")
    rows = []
    for sample in with_tcr:
        o = obs.loc[obs["sample"].astype(str) == sample]
        pairing = o["chain_pairing"].astype(str) if "chain_pairing" in o else pd.Series(dtype=str)
        clonotype = o["clonotype_id"] if "clonotype_id" in o else pd.Series(dtype=object)
        subtype = o.get("receptor_subtype", pd.Series(dtype=str)).astype(str)
        row = {
            "sample": sample,
            "patient": samples.at[sample, "patient"],
            "day": samples.at[sample, "day"],
            "tissue": samples.at[sample, "tissue"],
            **{c: ingest.at[sample, c] if sample in ingest.index else np.nan for c in _INGEST},
            "n_tcr_cells": len(o),
            "n_in_gex": int(o.index.isin(gex_cells.index).sum()),
            "n_with_clonotype": int(clonotype.notna().sum()),
            "n_gamma_delta": int(subtype.eq("TRG+TRD").sum()),
        }
        for p, col in zip(CHAIN_PAIRINGS, pair_cols, strict=True):
            row[col] = int(pairing.eq(p).sum())
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def prepare_tcr(
    samples: Sequence[ad.AnnData],
    meta: pd.DataFrame,
    *,
    productive_only: bool,
    receptor_arms: str,
    dual_ir: str,
    include_multichain: bool,
    n_jobs: int = 1,
) -> ad.AnnData:
    """Merge per-sample TCR data, add the sheet's columns, index chains, define clonotypes.

    Parameters
    ----------
    samples
        Outputs of :func:`read_tcr`.
    meta
        :func:`cartrack.tracking.sheet_table`.
    productive_only
        As for :func:`cartrack.bcr.index_chains` (``tcr.productive_only``).
    receptor_arms, dual_ir, include_multichain, n_jobs
        As for :func:`define_clonotypes`; the first three are the ``tcr`` config values
        (defaults in the config schema), `n_jobs` is not a config key.

    Returns
    -------
    The merged AnnData with ``obs`` ``patient, day, tissue, timepoint``, scirpy's chain QC
    columns and ``clonotype_id``.
    """
    airr = merge_tcr(samples)
    if "sample" not in airr.obs:  # no sample has a TCR file
        airr.obs["sample"] = pd.Series(dtype=str)
    unknown = sorted(set(airr.obs["sample"].astype(str)) - set(meta.index))
    if unknown:
        raise InputError(f"TCR samples not in the sample sheet: {', '.join(unknown)}")
    for col in ("patient", "day", "tissue", "timepoint"):
        airr.obs[col] = meta.loc[airr.obs["sample"].astype(str), col].to_numpy()
    index_chains(airr, productive_only=productive_only)
    define_clonotypes(
        airr,
        receptor_arms=receptor_arms,
        dual_ir=dual_ir,
        include_multichain=include_multichain,
        n_jobs=n_jobs,
    )
    return airr


#: Per-cell columns of scirpy's chain QC, recomputed after the receptors are combined.
_CHAIN_QC = ("receptor_type", "receptor_subtype", "chain_pairing", "multi_chain")


def combine_receptors(bcr: ad.AnnData, tcr: ad.AnnData, *, productive_only: bool) -> ad.AnnData:
    """One airr modality holding both receptors in scirpy's layout.

    Each cell's chains are its BCR chains followed by its TCR chains (cells are named
    ``<sample>_<barcode>`` in both, so a barcode with both receptors is one cell, which
    scirpy's chain QC then calls ``ambiguous``). ``obs`` joins both tables (shared columns
    from the BCR side first); scirpy's chain indices and chain QC are recomputed, with
    ``productive_only`` as for :func:`cartrack.bcr.index_chains`.
    """
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
