"""Clone tracking through CAR-T therapy: per-clone status, timelines, B-cell recovery, diversity.

Tracking uses only *B-lineage BCR+ cells*: cells with a clone that are also gene-expression
cells whose ``cell_type`` is a B-cell or plasmablast/plasma-cell type. V(D)J barcodes without
a gene-expression cell are counted in the chain-QC table and left out of every count here.

Whether a sample is baseline, early or after infusion is decided once, by
:func:`cartrack.design.phase` (``tracking.post_min_day`` and ``tracking.visit_window_days``),
and stored in the ``phase`` column of :func:`sheet_table`.

The elimination test and the diversity statistics are in :mod:`cartrack.tracking_stats`,
the per-sample and per-patient tables in :mod:`cartrack.b_cell_tables`; this module builds
the per-clone tables and runs the whole step (:func:`track_clones`).
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from cartrack.b_cell_tables import b_cell_table, diversity_table, elimination_table, isotype_table
from cartrack.bcr import index_chains, merge_bcr
from cartrack.clones import (
    B_LINEAGE_TYPES,
    cell_annotations,
    chain_qc_table,
    define_clones,
)
from cartrack.design import BASELINE, EARLY, POST, TISSUES, InputError, phase
from cartrack.double_positive import clone_double_positive
from cartrack.params import CloneParams, TrackingParams
from cartrack.tracking_stats import FDR_FAMILIES, clone_status, min_p_missed, p_missed, q_values

log = logging.getLogger(__name__)


def sheet_table(sheet: pd.DataFrame, *, post_min_day: int, visit_window_days: int) -> pd.DataFrame:
    """Sample metadata from the sheet.

    `post_min_day` and `visit_window_days` are ``tracking.post_min_day`` and
    ``tracking.visit_window_days`` (defaults in the config schema); they decide ``phase``.

    Returns
    -------
    Index sample; ``patient``, ``day`` (int), ``tissue``, ``timepoint`` (default
    ``D<day>``), ``has_bcr`` (the sheet names a V(D)J file) and ``phase``
    (:func:`cartrack.design.phase`).
    """
    for col in ("sample", "patient", "day", "tissue"):
        if col not in sheet.columns and not (col == "sample" and sheet.index.name == "sample"):
            raise InputError(f"sample sheet lacks column `{col}`")
    s = sheet.copy()
    if "sample" in s.columns:
        s.index = s["sample"].astype(str).to_numpy()
    s.index = s.index.astype(str)
    if not s.index.is_unique:
        raise InputError(
            f"sample sheet: duplicated samples {sorted(s.index[s.index.duplicated()])}"
        )
    out = pd.DataFrame(index=s.index)
    out.index.name = "sample"
    out["patient"] = s["patient"].astype(str)
    out["day"] = pd.to_numeric(s["day"]).astype(int)
    out["tissue"] = s["tissue"].astype(str)
    tp = s["timepoint"] if "timepoint" in s.columns else pd.Series(np.nan, index=s.index)
    out["timepoint"] = tp.where(tp.notna() & tp.astype(str).ne(""), "D" + out["day"].astype(str))
    bcr = s["bcr"] if "bcr" in s.columns else pd.Series(np.nan, index=s.index)
    out["has_bcr"] = bcr.notna() & bcr.astype(str).str.strip().ne("")
    out["phase"] = phase(
        out["day"],
        post_min_day=post_min_day,
        visit_window_days=visit_window_days,
        tissue=out["tissue"],
    )
    return out


# --------------------------------------------------------------------------------------
# per-clone tables
# --------------------------------------------------------------------------------------
def tracked_cells(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """BCR+ B-lineage cells with a clone: the cells every tracking count is made of.

    Parameters
    ----------
    bcr_cells
        Per BCR cell (index cell name): ``sample``, ``clone_id`` and annotations.
    gex_cells
        Per gene-expression cell: ``cell_type``.
    samples
        :func:`sheet_table`.
    """
    cells = bcr_cells.loc[bcr_cells["clone_id"].notna()].copy()
    cells = cells.loc[cells.index.isin(gex_cells.index)]
    # plain strings: categoricals (as read from h5ad) break arithmetic on mapped values
    cells["sample"] = cells["sample"].astype(str).to_numpy()
    cells["clone_id"] = cells["clone_id"].astype(str).to_numpy()
    cells["cell_type"] = gex_cells.loc[cells.index, "cell_type"].astype(str).to_numpy()
    cells = cells.loc[cells["cell_type"].isin(B_LINEAGE_TYPES)]
    meta = samples.loc[cells["sample"], ["patient", "day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def _group_mode(df: pd.DataFrame, keys: list[str], col: str, order: Sequence = ()) -> pd.Series:
    """Most frequent non-missing `col` per group of `keys`; ties go to the first value in
    `order`, then the alphabetically first. Groups without a value are missing."""
    counts = df.groupby([*keys, col], observed=True).size().rename("_n").reset_index()
    rank = {x: i for i, x in enumerate(order)}
    counts["_rank"] = counts[col].map(rank).fillna(len(rank))
    counts["_str"] = counts[col].astype(str)
    counts = counts.sort_values(
        [*keys, "_n", "_rank", "_str"], ascending=[True] * len(keys) + [False, True, True]
    )
    return counts.drop_duplicates(keys).set_index(keys)[col]


def _compartment_of(cell_types: pd.Series, compartments: Mapping[str, Sequence[str]]):
    lookup = {t: name for name, types in compartments.items() for t in types}
    return cell_types.map(lookup)


def _assessment(
    c: pd.DataFrame, samples: pd.DataFrame, compartments: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Per clone: tissue_assessed, compartment, the clone's and the comparable cell counts,
    and whether the patient's tissue was sampled (with V(D)J) at baseline / after infusion.

    The reference cells are the clone's baseline cells, else its post-infusion cells, else
    its early ones; tissue and compartment are their most frequent (ties: blood first, then
    the sheet's tissue order; compartments in configured order).
    """
    order = {BASELINE: 0, POST: 1, EARLY: 2}
    rank = c["phase"].map(order)
    ref = c.loc[rank == rank.groupby([c["patient"], c["clone_id"]]).transform("min")]
    key = ["patient", "clone_id"]
    out = pd.DataFrame({"tissue_assessed": _group_mode(ref, key, "tissue", TISSUES)})
    ref = ref.join(out["tissue_assessed"], on=key)
    in_tissue = ref.loc[ref["tissue"] == ref["tissue_assessed"]]
    out["compartment"] = _group_mode(in_tissue, key, "compartment", list(compartments))
    comparable = c.groupby(["patient", "tissue", "compartment", "phase"]).size()
    own = c.groupby(["patient", "clone_id", "tissue", "compartment", "phase"]).size()
    sampled = samples.loc[samples["has_bcr"]].groupby(["patient", "tissue", "phase"]).size()
    pats = out.index.get_level_values("patient")
    ids = out.index.get_level_values("clone_id")
    tis, comp = out["tissue_assessed"].to_numpy(), out["compartment"].to_numpy()
    for ph, name in ((BASELINE, "baseline"), (POST, "post")):
        phs = [ph] * len(out)
        key = pd.MultiIndex.from_arrays([pats, tis, comp, phs])
        out[f"n_comparable_{name}"] = comparable.reindex(key, fill_value=0).to_numpy()
        key = pd.MultiIndex.from_arrays([pats, ids, tis, comp, phs])
        out[f"n_assessed_{name}"] = own.reindex(key, fill_value=0).to_numpy()
        key = pd.MultiIndex.from_arrays([pats, tis, phs])
        out[f"{name}_sampled"] = sampled.reindex(key, fill_value=0).to_numpy() > 0
    return out


def check_compartments(compartments: Mapping[str, Sequence[str]]) -> None:
    """Every B-lineage cell type in exactly one compartment, nothing else (ValueError)."""
    listed = [t for types in compartments.values() for t in types]
    missing = sorted(set(B_LINEAGE_TYPES) - set(listed))
    twice = sorted({t for t in listed if listed.count(t) > 1})
    unknown = sorted(set(listed) - set(B_LINEAGE_TYPES))
    if missing or twice or unknown:
        raise ValueError(
            "tracking.compartments must list every B-lineage cell type exactly once "
            f"(missing {missing}, listed twice {twice}, not B lineage {unknown})"
        )


def clone_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    alpha: float,
    fdr_family: str,
    compartments: Mapping[str, Sequence[str]],
    double_positive: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``clones.tsv`` and ``clone_timeline.tsv`` from the tracked cells.

    Parameters
    ----------
    cells
        :func:`tracked_cells` (optional ``mu_freq``: per-cell heavy-chain SHM frequency).
    samples
        :func:`sheet_table` (its ``phase`` decides baseline / early / post).
    alpha
        ``eliminated`` needs ``q_value <= alpha``.
    fdr_family
        ``testable``: BH over the patient's baseline-seen clones that could reach `alpha`
        (:func:`q_values`); ``all``: over every baseline-seen clone.
    compartments
        Name -> cell types; a clone is compared with the cells of its own compartment.
    double_positive
        :func:`cartrack.double_positive.clone_double_positive` of the clones' baseline
        cells (``clone_id``, ``cd19_bcma_fraction``, ``double_positive``,
        ``dp_confidence``); None: no clone is double positive.

    Returns
    -------
    clones
        Contract columns (``heavy_cdr3_aa``: the most frequent heavy CDR3 in AIRR's sense,
        without the conserved C and W/F; ``isotype``: the most frequent isotype;
        ``mean_shm``: mean ``mu_freq``, empty without it) plus ``n_cells_early``,
        ``compartment``, ``n_assessed_baseline`` and ``n_assessed_post`` (the clone's cells
        in its tissue and compartment: n_b and n_p of p_missed), ``testable`` (the smallest
        reachable p_missed is <= alpha), ``ighv4_34``, ``isotypes`` (``IgG1:5;IgM:2``) and
        ``heavy_junction_aa`` (the CDR3 with C and W/F, as Cell Ranger's ``cdr3``).
    timeline
        Contract columns plus ``timepoint`` and ``phase``.
    """
    if fdr_family not in FDR_FAMILIES:
        raise ValueError(f"fdr_family must be one of {FDR_FAMILIES}, got {fdr_family!r}")
    cols = [
        "patient", "clone_id", "n_cells", "n_cells_baseline", "n_cells_post", "first_day",
        "last_day", "heavy_v_gene", "heavy_j_gene", "heavy_cdr3_aa", "isotype", "mean_shm",
        "cd19_bcma_fraction", "double_positive", "tissue_assessed", "n_comparable_baseline",
        "n_comparable_post", "p_missed", "q_value", "status", "n_cells_early", "compartment",
        "n_assessed_baseline", "n_assessed_post", "testable", "ighv4_34", "isotypes",
        "heavy_junction_aa", "dp_confidence",
    ]  # fmt: skip
    tcols = [
        "patient", "clone_id", "sample", "day", "tissue", "timepoint", "n_cells",
        "clone_fraction", "phase",
    ]  # fmt: skip
    if cells.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=tcols)
    c = cells.copy()
    for col in (
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "heavy_junction_aa",
        "isotype",
        "mu_freq",
    ):
        if col not in c.columns:
            c[col] = np.nan
    c["mu_freq"] = pd.to_numeric(c["mu_freq"], errors="coerce")
    check_compartments(compartments)
    c["compartment"] = _compartment_of(c["cell_type"], compartments)
    for ph in (BASELINE, EARLY, POST):
        c[ph] = c["phase"] == ph
    g = c.groupby(["patient", "clone_id"], sort=True)
    clones = g.agg(
        n_cells=("sample", "size"),
        n_cells_baseline=(BASELINE, "sum"),
        n_cells_post=(POST, "sum"),
        n_cells_early=(EARLY, "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        mean_shm=("mu_freq", "mean"),
    )
    for col in ("heavy_v_gene", "heavy_j_gene", "heavy_cdr3_aa", "heavy_junction_aa", "isotype"):
        clones[col] = _group_mode(c, ["patient", "clone_id"], col).reindex(clones.index)
    iso = c.groupby(["patient", "clone_id", "isotype"], observed=True).size()
    iso = pd.Series(
        iso.index.get_level_values("isotype").astype(str) + ":" + iso.astype(str).to_numpy(),
        index=iso.index,
    )
    clones["isotypes"] = iso.groupby(level=["patient", "clone_id"]).agg(";".join)
    clones["isotypes"] = clones["isotypes"].reindex(clones.index).fillna("")
    clones["ighv4_34"] = clones["heavy_v_gene"].eq("IGHV4-34")
    dp_cols = ["cd19_bcma_fraction", "double_positive", "dp_confidence"]
    if double_positive is not None and len(double_positive):
        dp = double_positive.set_index("clone_id")[dp_cols]
        dp = dp.reindex(clones.index.get_level_values("clone_id"))
        for col in dp_cols:
            clones[col] = dp[col].to_numpy()
    else:
        clones["cd19_bcma_fraction"], clones["dp_confidence"] = np.nan, np.nan
        clones["double_positive"] = False
    clones["double_positive"] = clones["double_positive"].fillna(False).astype(bool)
    clones = clones.join(_assessment(c, samples, compartments))
    nb, npost = clones["n_assessed_baseline"], clones["n_assessed_post"]
    big_b, big_p = clones["n_comparable_baseline"], clones["n_comparable_post"]
    seen = clones["n_cells_baseline"] > 0
    clones["p_missed"] = np.where(seen, p_missed(nb, npost, big_b, big_p), np.nan)
    clones["testable"] = seen & (min_p_missed(nb + npost, big_b, big_p) <= alpha)
    clones["q_value"] = np.nan
    for _patient, rows in clones.groupby(level="patient").groups.items():
        sub = clones.loc[rows]
        clones.loc[rows, "q_value"] = q_values(
            sub["p_missed"], testable=sub["testable"] if fdr_family == "testable" else None
        )
    clones["status"] = clone_status(
        clones["n_cells_baseline"],
        clones["n_cells_post"],
        clones["n_cells_early"],
        clones["q_value"],
        resampled=clones["post_sampled"],
        baseline_sampled=clones["baseline_sampled"],
        alpha=alpha,
    )
    clones = clones.reset_index()
    clones = clones.sort_values(["patient", "n_cells", "clone_id"], ascending=[True, False, True])
    timeline = c.groupby(["patient", "clone_id", "sample"]).size().rename("n_cells").reset_index()
    per_sample = c.groupby("sample").size()
    timeline["clone_fraction"] = timeline["n_cells"] / timeline["sample"].map(per_sample)
    meta = samples.loc[timeline["sample"], ["day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        timeline[col] = meta[col].to_numpy()
    timeline = timeline.sort_values(["patient", "clone_id", "day", "sample"])
    return clones[cols].reset_index(drop=True), timeline[tcols].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# the whole step
# --------------------------------------------------------------------------------------
@dataclass
class CloneResults:
    """Outputs of :func:`track_clones` (tables follow the contract)."""

    airr: ad.AnnData
    cell_clones: pd.DataFrame
    chain_qc: pd.DataFrame
    clones: pd.DataFrame
    clone_timeline: pd.DataFrame
    b_cells: pd.DataFrame
    elimination: pd.DataFrame
    diversity: pd.DataFrame
    isotypes: pd.DataFrame


def track_clones(
    samples: Sequence[ad.AnnData],
    gex_cells: pd.DataFrame,
    sheet: pd.DataFrame,
    *,
    tracking: TrackingParams,
    clone: CloneParams,
    productive_only: bool,
) -> CloneResults:
    """Merge per-sample BCR data, define clones and build all tracking tables.

    Parameters
    ----------
    samples
        Per-sample outputs of :func:`cartrack.bcr.read_bcr`.
    gex_cells
        :func:`cartrack.double_positive.read_gex_cells` of the annotated gene-expression data.
    sheet
        The sample sheet (all samples, with or without BCR).
    tracking
        Config section ``tracking``: ``post_min_day`` and ``visit_window_days`` as for
        :func:`cartrack.design.phase`; ``alpha``, ``fdr_family``, ``compartments`` as for
        :func:`clone_tables`; ``recovery_b_fraction``, ``recovery_min_b_cells`` for
        :func:`cartrack.b_cell_tables.b_recovery`; ``unmutated_max_mu_freq`` for
        :func:`cartrack.b_cell_tables.b_cell_table`; ``diversity_min_cells`` for
        :func:`cartrack.b_cell_tables.diversity_table`; the genes, proteins, counts and
        ``dp_*`` settings for :func:`cartrack.double_positive.clone_double_positive`.
    clone
        Config section ``bcr.clone``: the clone definition.
    productive_only
        ``bcr.productive_only``, as for :func:`cartrack.bcr.index_chains`.

    Returns
    -------
    :class:`CloneResults`; ``airr`` has obs ``clone_id``, ``isotype``, ``shm``,
    ``ighv4_34``, ``b_lineage`` and the sheet's columns; ``cell_clones`` has one row per BCR
    cell: ``cell, clone_id, isotype, shm, ighv4_34``.
    """
    t = tracking
    meta = sheet_table(sheet, post_min_day=t.post_min_day, visit_window_days=t.visit_window_days)
    airr = merge_bcr(samples)
    unknown = sorted(set(airr.obs["sample"].astype(str)) - set(meta.index))
    if unknown:
        raise InputError(f"BCR samples not in the sample sheet: {', '.join(unknown)}")
    for col in ("patient", "day", "tissue", "timepoint", "phase"):
        airr.obs[col] = meta.loc[airr.obs["sample"].astype(str), col].to_numpy()
    index_chains(airr, productive_only=productive_only)
    define_clones(airr, clone)
    ann = cell_annotations(airr, sequence=airr.uns["clone_definition"]["sequence"])
    for col in ann.columns:
        airr.obs[col] = ann[col]
    gex = gex_cells.copy()
    ctype = gex["cell_type"].reindex(airr.obs_names).astype(object)
    airr.obs["has_gex"] = airr.obs_names.isin(gex.index)
    airr.obs["b_lineage"] = ctype.isin(B_LINEAGE_TYPES).to_numpy()
    cells = airr.obs.copy()
    tracked = tracked_cells(cells, gex, meta)
    baseline_gex = gex.loc[gex["sample"].astype(str).map(meta["phase"]).eq(BASELINE).to_numpy()]
    baseline_clone = tracked.loc[tracked["phase"] == BASELINE, "clone_id"]
    double_positive = clone_double_positive(
        baseline_gex,
        baseline_clone,
        cd19_gene=t.cd19_gene,
        bcma_gene=t.bcma_gene,
        cd19_protein=t.cd19_protein,
        bcma_protein=t.bcma_protein,
        alpha=t.dp_alpha,
        min_fold=t.dp_min_fold,
        min_protein_dsb=t.dp_min_protein_dsb,
        min_cells=t.dp_min_baseline_cells,
        cd19_min_counts=t.cd19_min_counts,
        bcma_min_counts=t.bcma_min_counts,
    )
    clones, timeline = clone_tables(
        tracked,
        meta,
        alpha=t.alpha,
        fdr_family=t.fdr_family,
        compartments=t.compartments,
        double_positive=double_positive,
    )
    b_cells = b_cell_table(gex, cells, tracked, meta, unmutated_max_mu_freq=t.unmutated_max_mu_freq)
    elimination = elimination_table(
        clones,
        b_cells,
        recovery_level=t.recovery_b_fraction,
        recovery_min_b_cells=t.recovery_min_b_cells,
    )
    diversity = diversity_table(tracked, meta, min_cells=t.diversity_min_cells)
    isotypes = isotype_table(cells, gex, meta)
    qc = chain_qc_table(airr, gex, meta)
    # no `sample` here: the table is joined into gex.obs, which has its own
    cell_clones = cells[["clone_id", "isotype", "mu_freq", "shm", "ighv4_34"]].copy()
    cell_clones.insert(0, "cell", cells.index)
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    for key in [k for k in airr.uns if k.startswith(("ir_dist", "cc_"))]:
        del airr.uns[key]
    airr.uns["tracking"] = {
        "post_min_day": t.post_min_day,
        "visit_window_days": t.visit_window_days,
        "alpha": t.alpha,
        "fdr_family": t.fdr_family,
        "recovery_b_fraction": t.recovery_b_fraction,
        "recovery_min_b_cells": t.recovery_min_b_cells,
        "dp_alpha": t.dp_alpha,
        "dp_min_fold": t.dp_min_fold,
        "dp_min_baseline_cells": t.dp_min_baseline_cells,
    }
    return CloneResults(
        airr,
        cell_clones.reset_index(drop=True),
        qc,
        clones,
        timeline,
        b_cells,
        elimination,
        diversity,
        isotypes,
    )
