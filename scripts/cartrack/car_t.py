"""CAR-T cells' own clonotypes: per-sample CAR-T kinetics and per-clonotype persistence.

A *CAR-T cell* is a cell annotated as a T cell (``T_CD4`` or ``T_CD8``) whose CAR call
``gex.obs["car_t"]`` is true (:func:`is_car_t`). The annotator also calls CAR in NK-lineage
and unassigned cells (e.g. proliferating product cells that scored as no lineage); those are
not counted, neither in the per-sample counts (``n_car_t``, ``car_t_fraction``) nor among
the CAR-T cells with a TCR (``n_car_t_tcr``, clonotypes, clonality, clonotype tables), so
that every count uses one definition and CAR-T cells with a TCR are a subset of the CAR-T
cells. A *CAR-T clonotype* is a TCR clonotype (:func:`cartrack.tcr.define_clonotypes`,
within a patient) with at least one CAR-T cell. Only TCR cells that are also
gene-expression cells count (as for B-cell clones).

Persistence is judged on *comparable* cells, as the B-cell clone statistics are: the CAR-T
cells with a TCR clonotype sampled in a **reference** period, the product and the expansion
phase (tissue ``product``, or days 1 .. ``post_min_day - 1``), and **after** it (day >=
``post_min_day``), in the configured tissues (default product and blood). Conditional on a
clonotype's CAR-T cells in both periods, ``n = n_ref + n_post``, its post count is
Binomial(n, N_post / (N_ref + N_post)) if its share of the CAR-T cells did not change, with
N the comparable cells of its patient. ``p_contracted`` is the lower tail P(X <= n_post),
conditioned, like the B-cell ``p_missed`` (:mod:`cartrack.tracking`), on the clonotype having
been seen in the reference period (X <= n - 1), since only those are tested; for a clonotype
not seen after it is r ** n_ref / (1 - (1 - r) ** n_ref), r = N_ref / (N_ref + N_post).
``q_value``: Benjamini-Hochberg over the patient's clonotypes seen in the
reference period that could reach ``alpha`` at all (:func:`min_attainable_p`); empty for the
others. Statuses:

- ``lost``: seen in the reference period, no CAR-T cell after, ``q_value <= alpha``;
- ``contracted``: seen after, its share fell, ``q_value <= alpha``;
- ``persistent``: seen after and not ``contracted`` (also clonotypes first seen after);
- ``not_assessable``: not seen after but too small for that to mean anything
  (``q_value > alpha``), or the patient has no comparable cells after.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from cartrack.design import T_CELLS
from cartrack.tcr import chain_qc_table, prepare_tcr
from cartrack.tracking import sheet_table
from cartrack.tracking_stats import shannon_evenness

log = logging.getLogger(__name__)

PRODUCT = "product"
CAR_T_STATUSES = ("persistent", "contracted", "lost", "not_assessable")
CAR_T_COLUMNS = [
    "sample",
    "patient",
    "day",
    "tissue",
    "n_cells",
    "n_t_cells",
    "n_car_t",
    "car_t_fraction",
    "n_car_t_clonotypes",
    "car_t_clonality",
    "timepoint",
    "n_car_t_tcr",
]
CLONE_COLUMNS = [
    "patient",
    "clonotype_id",
    "n_cells",
    "n_car_t",
    "first_day",
    "last_day",
    "in_product",
    "status",
    "n_cells_product",
    "peak_day",
    "n_car_t_reference",
    "n_car_t_post",
    "n_comparable_reference",
    "n_comparable_post",
    "p_contracted",
    "q_value",
    "tra_cdr3_aa",
    "trb_cdr3_aa",
    "tra_v_gene",
    "trb_v_gene",
]
TIMELINE_COLUMNS = [
    "patient",
    "clonotype_id",
    "sample",
    "day",
    "tissue",
    "timepoint",
    "n_cells",
    "n_car_t",
    "car_t_share",
]


@dataclass
class CarTResults:
    """Everything rule car_t_clones writes."""

    airr: ad.AnnData
    cell_clonotypes: pd.DataFrame
    chain_qc: pd.DataFrame
    car_t: pd.DataFrame
    clones: pd.DataFrame
    timeline: pd.DataFrame


def _as_bool(values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values
    return values.astype(str).str.lower().isin(["true", "1"])


def is_car_t(gex_cells: pd.DataFrame) -> pd.Series:
    """The CAR-T cells among gene-expression cells: ``cell_type`` T_CD4 or T_CD8 and a true
    ``car_t`` call (all false without a ``car_t`` column). The one definition behind every
    CAR-T count (module docstring)."""
    t_cell = gex_cells["cell_type"].astype(str).isin(T_CELLS)
    if "car_t" not in gex_cells:
        return pd.Series(False, index=gex_cells.index)
    return _as_bool(gex_cells["car_t"]) & t_cell


def tracked_tcr_cells(
    tcr_obs: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """TCR cells with a clonotype that are gene-expression cells, with cell type and car_t
    (:func:`is_car_t`: a CAR call in a cell annotated T_CD4 / T_CD8).

    Parameters
    ----------
    tcr_obs
        Per TCR cell (index cell name): ``sample`` and ``clonotype_id``, and optionally the
        chain annotations of :func:`chain_annotations`.
    gex_cells
        Per gene-expression cell: ``cell_type`` and ``car_t``.
    samples
        :func:`cartrack.tracking.sheet_table`.
    """
    cells = tcr_obs.loc[tcr_obs["clonotype_id"].notna()].copy()
    cells = cells.loc[cells.index.isin(gex_cells.index)]
    cells["cell_type"] = gex_cells.loc[cells.index, "cell_type"].astype(str).to_numpy()
    cells["car_t"] = is_car_t(gex_cells).loc[cells.index].to_numpy()
    meta = samples.loc[cells["sample"].astype(str), ["patient", "day", "tissue", "timepoint"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def clonality(sizes: Sequence[float] | pd.Series) -> float:
    """1 - Shannon evenness of clonotype sizes (0: all different, towards 1: one dominates);
    NaN below 2 clonotypes. The usual TCR-repertoire clonality (1 - Pielou's evenness)."""
    return round(1.0 - shannon_evenness(sizes), 12)  # no 2e-16 for equal sizes


def car_t_sample_table(
    gex_cells: pd.DataFrame, cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """``car_t.tsv``: CAR-T cells per sample, their share of T cells, clonotypes, clonality.

    Parameters
    ----------
    gex_cells
        Per gene-expression cell: ``sample``, ``cell_type``, ``car_t``.
    cells
        :func:`tracked_tcr_cells`.
    samples
        :func:`cartrack.tracking.sheet_table` with ``has_tcr``.

    Returns
    -------
    One row per sheet sample. ``n_t_cells``: T_CD4 + T_CD8; ``n_car_t``: CAR-T cells
    (:func:`is_car_t`); ``car_t_fraction`` = n_car_t / n_t_cells; ``n_car_t_tcr``: the
    CAR-T cells with a TCR clonotype (``cells["car_t"]``, the same definition, so never
    more than ``n_car_t``), of which
    ``n_car_t_clonotypes`` distinct clonotypes and ``car_t_clonality`` (:func:`clonality`);
    the two are empty for samples without a TCR file.
    """
    g = gex_cells.copy()
    g["_t"] = g["cell_type"].astype(str).isin(T_CELLS)
    g["_car"] = is_car_t(g)
    by = g.groupby(g["sample"].astype(str))
    out = pd.DataFrame(index=samples.index)
    out["n_cells"] = by.size().reindex(out.index, fill_value=0)
    out["n_t_cells"] = by["_t"].sum().reindex(out.index, fill_value=0).astype(int)
    out["n_car_t"] = by["_car"].sum().reindex(out.index, fill_value=0).astype(int)
    out["car_t_fraction"] = out["n_car_t"] / out["n_t_cells"].where(out["n_t_cells"] > 0)
    car_cells = cells.loc[_as_bool(cells["car_t"]) & cells.index.isin(g.index[g["_car"]])]
    sizes = car_cells.groupby(["sample", "clonotype_id"]).size()
    has_tcr = samples["has_tcr"] if "has_tcr" in samples else pd.Series(True, index=samples.index)
    n_tcr, n_clono, clon = [], [], []
    for s in out.index:
        if not has_tcr[s]:
            n_tcr.append(np.nan)
            n_clono.append(np.nan)
            clon.append(np.nan)
            continue
        sz = sizes.loc[s] if s in sizes.index.get_level_values(0) else pd.Series(dtype=int)
        n_tcr.append(int(sz.sum()))
        n_clono.append(len(sz))
        clon.append(clonality(sz))
    out["n_car_t_tcr"] = pd.array(n_tcr, dtype="Int64")
    out["n_car_t_clonotypes"] = pd.array(n_clono, dtype="Int64")
    out["car_t_clonality"] = clon
    for col in ("patient", "day", "tissue", "timepoint"):
        out[col] = samples[col]
    out = out.reset_index(names="sample")
    return out.sort_values(["patient", "day", "sample"])[CAR_T_COLUMNS].reset_index(drop=True)


def p_contracted(n_ref, n_post, big_n_ref, big_n_post) -> np.ndarray:
    """P(X <= n_post | X <= n - 1), X ~ Binomial(n, N_post / (N_ref + N_post)), n = n_ref +
    n_post: the conditional binomial test of an unchanged share (module docstring), given
    that the clonotype was seen in the reference period; NaN where a period has no
    comparable cells, the clonotype has no cells in either, or none in the reference period.
    """
    n_ref, n_post = np.asarray(n_ref, dtype=float), np.asarray(n_post, dtype=float)
    big_ref, big_post = np.asarray(big_n_ref, dtype=float), np.asarray(big_n_post, dtype=float)
    total = big_ref + big_post
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, big_post / total, np.nan)
        n = n_ref + n_post
        p = stats.binom.cdf(n_post, n, share) / stats.binom.cdf(n - 1, n, share)
    return np.where((big_ref > 0) & (big_post > 0) & (n_ref > 0), np.minimum(p, 1.0), np.nan)


def min_attainable_p(n, big_n_ref, big_n_post) -> np.ndarray:
    """Smallest p-value a clonotype of n comparable cells can reach: all of them in the
    reference period (:func:`p_contracted` with n_post = 0). Clonotypes where it exceeds
    alpha can never be significant and are left out of the multiple-testing correction
    (Tarone 1990): the filter depends on n only, which the test conditions on, so it keeps
    the correction valid and gains power (most CAR-T clonotypes are seen once)."""
    n = np.asarray(n, dtype=float)
    return p_contracted(n, np.zeros_like(n), big_n_ref, big_n_post)


def bh(p: pd.Series) -> pd.Series:
    """Benjamini-Hochberg q-values (scipy) of the non-missing entries; missing stay missing."""
    q = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok].to_numpy(), method="bh")
    return q


def clonotype_status(n_ref, n_post, q_value, *, big_n_post, alpha: float = 0.05) -> np.ndarray:
    """``persistent`` / ``contracted`` / ``lost`` / ``not_assessable`` (module docstring)."""
    n_ref, n_post = np.asarray(n_ref), np.asarray(n_post)
    q = np.asarray(q_value, dtype=float)
    significant = np.nan_to_num(q, nan=1.0) <= alpha
    status = np.full(n_ref.shape, "not_assessable", dtype=object)
    seen_post = n_post > 0
    status[seen_post] = "persistent"
    status[seen_post & (n_ref > 0) & significant] = "contracted"
    status[~seen_post & (n_ref > 0) & significant & (np.asarray(big_n_post) > 0)] = "lost"
    return status


def _periods(cells: pd.DataFrame, *, post_min_day: int, tissues: Sequence[str]) -> pd.DataFrame:
    day = pd.to_numeric(cells["day"])
    tissue = cells["tissue"].astype(str)
    counted = tissue.isin(list(tissues))
    reference = counted & ((tissue == PRODUCT) | ((day > 0) & (day < post_min_day)))
    post = counted & (tissue != PRODUCT) & (day >= post_min_day)
    return pd.DataFrame({"reference": reference, "post": post}, index=cells.index)


def _mode(values: pd.Series):
    v = values.dropna()
    return v.value_counts().index[0] if len(v) else np.nan


def car_t_clone_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    post_min_day: int,
    alpha: float,
    tissues: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``car_t_clones.tsv`` and the clonotype timeline from :func:`tracked_tcr_cells`.

    Parameters
    ----------
    cells
        :func:`tracked_tcr_cells`.
    samples
        :func:`cartrack.tracking.sheet_table`.
    post_min_day
        First day after infusion that counts as "after" (``tracking.post_min_day``).
    alpha
        Level of ``q_value`` for ``lost`` and ``contracted``.
    tissues
        Tissues whose CAR-T cells are compared (the product counts as reference).

    Returns
    -------
    clones
        :data:`CLONE_COLUMNS`, one row per patient x clonotype with CAR-T cells. ``n_cells``:
        all its T cells (with or without CAR transcripts, every tissue); ``n_car_t``: its
        CAR-T cells; ``in_product``: it has cells in a product sample; ``peak_day``: day of
        its largest share of a sample's CAR-T cells.
    timeline
        :data:`TIMELINE_COLUMNS`: per clonotype x sample where it has cells; ``car_t_share``
        = its CAR-T cells / the sample's CAR-T cells with a TCR clonotype.
    """
    car_ids = cells.loc[cells["car_t"], ["patient", "clonotype_id"]].drop_duplicates()
    if car_ids.empty:
        return pd.DataFrame(columns=CLONE_COLUMNS), pd.DataFrame(columns=TIMELINE_COLUMNS)
    c = cells.loc[cells["clonotype_id"].isin(car_ids["clonotype_id"])].copy()
    periods = _periods(c, post_min_day=post_min_day, tissues=tissues)
    c["_ref"] = periods["reference"] & c["car_t"]
    c["_post"] = periods["post"] & c["car_t"]
    c["_product"] = c["tissue"].astype(str).eq(PRODUCT)
    all_periods = _periods(cells, post_min_day=post_min_day, tissues=tissues)
    comparable = (
        cells.assign(
            _ref=all_periods["reference"] & cells["car_t"],
            _post=all_periods["post"] & cells["car_t"],
        )
        .groupby("patient")[["_ref", "_post"]]
        .sum()
    )

    g = c.groupby(["patient", "clonotype_id"], sort=True)
    clones = g.agg(
        n_cells=("sample", "size"),
        n_car_t=("car_t", "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        n_cells_product=("_product", "sum"),
        n_car_t_reference=("_ref", "sum"),
        n_car_t_post=("_post", "sum"),
    )
    for col, chain in (
        ("tra_cdr3_aa", "VJ_1_junction_aa"),
        ("trb_cdr3_aa", "VDJ_1_junction_aa"),
        ("tra_v_gene", "VJ_1_v_call"),
        ("trb_v_gene", "VDJ_1_v_call"),
    ):
        clones[col] = g[chain].agg(_mode) if chain in c else np.nan
    clones["in_product"] = clones["n_cells_product"] > 0
    patients = clones.index.get_level_values("patient")
    clones["n_comparable_reference"] = comparable["_ref"].reindex(patients).to_numpy(dtype=int)
    clones["n_comparable_post"] = comparable["_post"].reindex(patients).to_numpy(dtype=int)
    clones["p_contracted"] = p_contracted(
        clones["n_car_t_reference"],
        clones["n_car_t_post"],
        clones["n_comparable_reference"],
        clones["n_comparable_post"],
    )
    testable = clones["n_car_t_reference"].gt(0) & (
        min_attainable_p(
            clones["n_car_t_reference"] + clones["n_car_t_post"],
            clones["n_comparable_reference"],
            clones["n_comparable_post"],
        )
        <= alpha
    )
    tested = clones["p_contracted"].where(testable)
    clones["q_value"] = tested.groupby(level="patient", group_keys=False).apply(bh)
    clones["status"] = clonotype_status(
        clones["n_car_t_reference"],
        clones["n_car_t_post"],
        clones["q_value"],
        big_n_post=clones["n_comparable_post"],
        alpha=alpha,
    )

    timeline = clonotype_timeline(c, cells)
    peak = timeline.sort_values(["car_t_share", "day"], ascending=[False, True])
    peak = peak.drop_duplicates(["patient", "clonotype_id"]).set_index(["patient", "clonotype_id"])
    clones["peak_day"] = peak["day"].reindex(clones.index)
    clones = clones.reset_index()
    clones = clones.sort_values(
        ["patient", "n_car_t", "clonotype_id"], ascending=[True, False, True]
    )
    return clones[CLONE_COLUMNS].reset_index(drop=True), timeline[TIMELINE_COLUMNS]


def clonotype_timeline(clone_cells: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per clonotype x sample: cells, CAR-T cells and share of the sample's CAR-T cells."""
    keys = ["patient", "clonotype_id", "sample", "day", "tissue", "timepoint"]
    t = clone_cells.groupby(keys, sort=False).agg(
        n_cells=("car_t", "size"), n_car_t=("car_t", "sum")
    )
    t = t.reset_index()
    per_sample = cells.loc[cells["car_t"]].groupby("sample").size()
    denominator = t["sample"].map(per_sample).astype(float)
    t["car_t_share"] = t["n_car_t"] / denominator.where(denominator > 0)
    return t.sort_values(["patient", "clonotype_id", "day", "sample"]).reset_index(drop=True)


def chain_annotations(airr: ad.AnnData) -> pd.DataFrame:
    """Primary TRA/TRB (VJ/VDJ) junction_aa and V gene of each cell (scirpy.get.airr)."""
    import scirpy as ir

    if airr.n_obs == 0:
        cols = ["VJ_1_junction_aa", "VDJ_1_junction_aa", "VJ_1_v_call", "VDJ_1_v_call"]
        return pd.DataFrame(columns=cols, index=airr.obs_names)
    return ir.get.airr(airr, ["junction_aa", "v_call"], ["VJ_1", "VDJ_1"])


def track_car_t(
    samples: Sequence[ad.AnnData],
    gex_cells: pd.DataFrame,
    sheet: pd.DataFrame,
    *,
    post_min_day: int,
    alpha: float,
    tissues: Sequence[str],
    productive_only: bool = True,
    receptor_arms: str = "all",
    dual_ir: str = "any",
    include_multichain: bool = False,
    n_jobs: int = 1,
) -> CarTResults:
    """Merge per-sample TCR data, define clonotypes and build the CAR-T tables.

    Parameters
    ----------
    samples
        Per-sample outputs of :func:`cartrack.tcr.read_tcr` (may be empty: no TCR anywhere).
    gex_cells
        Per gene-expression cell: ``sample``, ``cell_type``, ``car_t``.
    sheet
        The sample sheet (all samples).
    post_min_day, alpha, tissues
        As for :func:`car_t_clone_tables`.
    productive_only, receptor_arms, dual_ir, include_multichain, n_jobs
        As for :func:`cartrack.tcr.prepare_tcr`.

    Returns
    -------
    :class:`CarTResults`; ``cell_clonotypes`` has one row per TCR cell: ``cell,
    clonotype_id``; ``chain_qc`` is :func:`cartrack.tcr.chain_qc_table`.
    """
    meta = sheet_table(sheet)
    tcr_col = sheet["tcr"] if "tcr" in sheet else pd.Series("", index=sheet.index)
    has_tcr = tcr_col.fillna("").astype(str).str.strip().ne("")
    meta["has_tcr"] = has_tcr.to_numpy()
    airr = prepare_tcr(
        samples,
        meta,
        productive_only=productive_only,
        receptor_arms=receptor_arms,
        dual_ir=dual_ir,
        include_multichain=include_multichain,
        n_jobs=n_jobs,
    )
    obs = airr.obs.join(chain_annotations(airr))
    cells = tracked_tcr_cells(obs, gex_cells, meta)
    car_t = car_t_sample_table(gex_cells, cells, meta)
    clones, timeline = car_t_clone_tables(
        cells, meta, post_min_day=post_min_day, alpha=alpha, tissues=tissues
    )
    qc = chain_qc_table(airr, gex_cells, meta)
    car_ids = set(clones["clonotype_id"])
    airr.obs["car_t_clonotype"] = airr.obs["clonotype_id"].isin(car_ids).to_numpy()
    cell_clonotypes = pd.DataFrame(
        {"cell": airr.obs_names, "clonotype_id": airr.obs["clonotype_id"].to_numpy()}
    )
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    for key in [k for k in airr.uns if k.startswith(("ir_dist", "cc_", "_clonotype"))]:
        del airr.uns[key]
    airr.uns["car_t"] = {"post_min_day": post_min_day, "alpha": alpha, "tissues": list(tissues)}
    log.info(
        "CAR-T: %d clonotypes with CAR-T cells; statuses %s",
        len(clones),
        clones["status"].value_counts().to_dict(),
    )
    return CarTResults(airr, cell_clonotypes, qc, car_t, clones, timeline)
