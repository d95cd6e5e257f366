"""Clone tracking through CAR-T therapy: per-clone status, timelines, B-cell recovery.

Tracking uses only *B-lineage BCR+ cells*: cells with a clone that are also gene-expression
cells whose ``cell_type`` is a B-cell or plasmablast/plasma-cell type. V(D)J barcodes without
a gene-expression cell are counted in the chain-QC table and left out of every count here.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from cartrack.bcr import index_chains, merge_bcr
from cartrack.clones import (
    B_LINEAGE_TYPES,
    CloneParams,
    cell_annotations,
    chain_qc_table,
    define_clones,
)
from cartrack.design import B_CELLS, NAIVE_B, InputError
from cartrack.double_positive import double_positive_cells

log = logging.getLogger(__name__)

B_CELL_TYPES = tuple(B_CELLS)
NAIVE_TYPES = tuple(NAIVE_B)
BLOOD = "PB"
STATUSES = ("eliminated", "persistent", "emergent", "not_assessable")


def sheet_table(sheet: pd.DataFrame) -> pd.DataFrame:
    """Sample metadata from the sheet.

    Returns
    -------
    Index sample; ``patient``, ``day`` (int), ``tissue``, ``timepoint`` (default
    ``D<day>``) and ``has_bcr`` (the sheet names a V(D)J file).
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
    return out


def p_missed(
    baseline_frequency: pd.Series | np.ndarray | float, n_post: pd.Series | np.ndarray | int
) -> np.ndarray:
    """Probability of sampling none of a clone's cells after infusion had it persisted.

    ``(1 - f) ** N`` with ``f`` the clone's baseline frequency among the patient's BCR+
    B-lineage cells and ``N`` the patient's BCR+ B-lineage cells after infusion (each cell an
    independent draw; binomial zero class).
    """
    f = np.clip(np.asarray(baseline_frequency, dtype=float), 0, 1)
    return np.power(1 - f, np.asarray(n_post, dtype=float))


def clone_status(n_baseline, n_post, p_miss, *, alpha: float = 0.05) -> np.ndarray:
    """Contract status per clone.

    ``persistent``: seen at baseline and after infusion; ``eliminated``: seen at baseline,
    not after, ``p_missed < alpha``; ``not_assessable``: seen at baseline, not after,
    ``p_missed >= alpha`` (also clones seen only between infusion and ``post_min_day``);
    ``emergent``: seen after infusion only.
    """
    base = np.asarray(n_baseline) > 0
    post = np.asarray(n_post) > 0
    p = np.asarray(p_miss, dtype=float)
    status = np.full(base.shape, "not_assessable", dtype=object)
    status[base & post] = "persistent"
    status[base & ~post & (p < alpha)] = "eliminated"
    status[~base & post] = "emergent"
    return status


def shannon_evenness(sizes: Sequence[float] | pd.Series) -> float:
    """Shannon entropy of clone sizes divided by log(number of clones); NaN below 2 clones."""
    s = np.asarray(sizes, dtype=float)
    s = s[s > 0]
    if len(s) < 2:
        return np.nan
    p = s / s.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(s)))


def top_clone_fraction(sizes: Sequence[float] | pd.Series) -> float:
    """Share of the largest clone among all cells with a clone; NaN without clones."""
    s = np.asarray(sizes, dtype=float)
    return float(s.max() / s.sum()) if len(s) and s.sum() > 0 else np.nan


def tracked_cells(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """BCR+ B-lineage cells with a clone: the cells every tracking count is made of.

    Parameters
    ----------
    bcr_cells
        Per BCR cell (index cell name): ``sample``, ``clone_id`` and annotations.
    gex_cells
        Per gene-expression cell: ``cell_type`` and ``double_positive`` (bool).
    samples
        :func:`sheet_table`.
    """
    cells = bcr_cells.loc[bcr_cells["clone_id"].notna()].copy()
    cells = cells.loc[cells.index.isin(gex_cells.index)]
    cells["cell_type"] = gex_cells.loc[cells.index, "cell_type"].astype(str).to_numpy()
    cells = cells.loc[cells["cell_type"].isin(B_LINEAGE_TYPES)]
    cells["double_positive"] = (
        gex_cells.loc[cells.index, "double_positive"].astype(bool).to_numpy()
        if "double_positive" in gex_cells.columns
        else False
    )
    meta = samples.loc[cells["sample"].astype(str), ["patient", "day", "tissue", "timepoint"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def _mode(values: pd.Series):
    v = values.dropna()
    if v.empty:
        return np.nan
    counts = v.value_counts()
    return sorted(counts.index[counts == counts.max()])[0]


def clone_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    post_min_day: int = 28,
    alpha: float = 0.05,
    dp_min_fraction: float = 0.2,
    dp_min_baseline_cells: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``clones.tsv`` and ``clone_timeline.tsv`` from the tracked cells.

    Parameters
    ----------
    cells
        :func:`tracked_cells`.
    samples
        :func:`sheet_table`.
    post_min_day
        First day that counts as "after infusion".
    alpha
        ``eliminated`` needs ``p_missed < alpha``.
    dp_min_fraction, dp_min_baseline_cells
        ``double_positive`` when ``cd19_bcma_fraction >= dp_min_fraction`` among at least
        ``dp_min_baseline_cells`` baseline cells.

    Returns
    -------
    clones
        Contract columns (``heavy_cdr3_aa``: the most frequent heavy CDR3 in AIRR's sense,
        without the conserved C and W/F; ``isotype``: the most frequent isotype) plus
        ``ighv4_34``, ``isotypes`` (``IgG1:5;IgM:2``), ``mean_shm``, ``baseline_frequency``
        (the f of p_missed), ``n_bcr_baseline`` and ``n_bcr_post`` (the patient's BCR+
        B-lineage cells at baseline / after infusion: N of p_missed) and
        ``heavy_junction_aa`` (the CDR3 with C and W/F, as Cell Ranger's ``cdr3``).
    timeline
        Contract columns plus ``timepoint``.
    """
    cols = [
        "patient",
        "clone_id",
        "n_cells",
        "n_cells_baseline",
        "n_cells_post",
        "first_day",
        "last_day",
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "isotype",
        "cd19_bcma_fraction",
        "double_positive",
        "p_missed",
        "status",
        "ighv4_34",
        "isotypes",
        "mean_shm",
        "baseline_frequency",
        "n_bcr_baseline",
        "n_bcr_post",
        "heavy_junction_aa",
    ]
    tcols = [
        "patient",
        "clone_id",
        "sample",
        "day",
        "tissue",
        "timepoint",
        "n_cells",
        "clone_fraction",
    ]
    if cells.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=tcols)
    c = cells.copy()
    for col in (
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "heavy_junction_aa",
        "isotype",
        "shm",
        "double_positive",
    ):
        if col not in c.columns:
            c[col] = False if col == "double_positive" else np.nan
    c["baseline"] = c["day"] <= 0
    c["post"] = c["day"] >= post_min_day
    g = c.groupby(["patient", "clone_id"], sort=True)
    clones = g.agg(
        n_cells=("sample", "size"),
        n_cells_baseline=("baseline", "sum"),
        n_cells_post=("post", "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        mean_shm=("shm", "mean"),
    )
    clones["heavy_v_gene"] = g["heavy_v_gene"].agg(_mode)
    clones["heavy_j_gene"] = g["heavy_j_gene"].agg(_mode)
    clones["heavy_cdr3_aa"] = g["heavy_cdr3_aa"].agg(_mode)
    clones["heavy_junction_aa"] = g["heavy_junction_aa"].agg(_mode)
    clones["isotype"] = g["isotype"].agg(_mode)
    clones["isotypes"] = g["isotype"].agg(
        lambda v: ";".join(f"{k}:{n}" for k, n in sorted(v.dropna().value_counts().items()))
    )
    clones["ighv4_34"] = clones["heavy_v_gene"].eq("IGHV4-34")
    base = c.loc[c["baseline"]]
    dp = base.groupby(["patient", "clone_id"])["double_positive"].mean()
    clones["cd19_bcma_fraction"] = dp.reindex(clones.index)
    clones["double_positive"] = clones["cd19_bcma_fraction"].ge(dp_min_fraction) & clones[
        "n_cells_baseline"
    ].ge(dp_min_baseline_cells)
    n_base = c.loc[c["baseline"]].groupby("patient").size()
    n_post = c.loc[c["post"]].groupby("patient").size()
    patients = clones.index.get_level_values("patient")
    clones["n_bcr_baseline"] = n_base.reindex(patients, fill_value=0).to_numpy()
    clones["n_bcr_post"] = n_post.reindex(patients, fill_value=0).to_numpy()
    freq = clones["n_cells_baseline"] / clones["n_bcr_baseline"].replace(0, np.nan)
    clones["baseline_frequency"] = freq.fillna(0.0)
    clones["p_missed"] = p_missed(clones["baseline_frequency"], clones["n_bcr_post"])
    clones["status"] = clone_status(
        clones["n_cells_baseline"], clones["n_cells_post"], clones["p_missed"], alpha=alpha
    )
    clones = clones.reset_index()
    clones = clones.sort_values(["patient", "n_cells", "clone_id"], ascending=[True, False, True])
    timeline = c.groupby(["patient", "clone_id", "sample"]).size().rename("n_cells").reset_index()
    per_sample = c.groupby("sample").size()
    timeline["clone_fraction"] = timeline["n_cells"] / timeline["sample"].map(per_sample)
    meta = samples.loc[timeline["sample"], ["day", "tissue", "timepoint"]]
    for col in meta.columns:
        timeline[col] = meta[col].to_numpy()
    timeline = timeline.sort_values(["patient", "clone_id", "day", "sample"])
    return clones[cols].reset_index(drop=True), timeline[tcols].reset_index(drop=True)


def b_cell_table(
    gex_cells: pd.DataFrame,
    bcr_cells: pd.DataFrame,
    tracked: pd.DataFrame,
    samples: pd.DataFrame,
) -> pd.DataFrame:
    """``b_cells.tsv``: one row per sheet sample.

    Parameters
    ----------
    gex_cells
        All gene-expression cells (``sample``, ``cell_type``).
    bcr_cells
        All V(D)J cells (index cell name; ``sample``, ``heavy_v_gene``, ``isotype``, ``shm``).
    tracked
        :func:`tracked_cells` (B-lineage cells with a clone).
    samples
        :func:`sheet_table`.

    Returns
    -------
    Contract columns plus ``timepoint``, ``has_bcr``, ``n_bcr_total`` (all V(D)J cells of
    the sample, with or without a gene-expression cell), ``n_bcr_with_clone``,
    ``switched_fraction`` (IgG/IgA/IgE), ``mean_shm``, ``n_ighv4_34`` and
    ``ighv4_34_fraction``. ``n_bcr_cells`` counts BCR+ B-lineage cells (V(D)J cells whose
    gene-expression cell is B lineage); ``igm_igd_fraction``, ``switched_fraction``,
    ``mean_shm`` and ``ighv4_34_fraction`` are taken among those with a heavy chain (and a
    known isotype for the isotype shares); ``n_clones``, ``shannon_evenness`` and
    ``top_clone_fraction`` among those with a clone. BCR metrics are empty without such
    cells; ``n_clones`` and ``n_ighv4_34`` are empty when the sample has no V(D)J file.
    """
    b_lineage = gex_cells.index[gex_cells["cell_type"].astype(str).isin(B_LINEAGE_TYPES)]
    bcr_b = bcr_cells.loc[bcr_cells.index.isin(b_lineage)]
    for col in ("heavy_v_gene", "isotype", "shm"):
        if col not in bcr_b.columns:
            bcr_b = bcr_b.assign(**{col: np.nan})

    def by_sample(df: pd.DataFrame) -> dict:
        return dict(tuple(df.groupby(df["sample"].astype(str)))) if len(df) else {}

    gex_by, bcr_by, tr_by = by_sample(gex_cells), by_sample(bcr_b), by_sample(tracked)
    bcr_total = bcr_cells.groupby(bcr_cells["sample"].astype(str)).size()
    empty = pd.DataFrame(columns=["cell_type", "heavy_v_gene", "isotype", "shm", "clone_id"])
    rows = []
    for sample, meta in samples.iterrows():
        types = gex_by.get(sample, empty)["cell_type"].astype(str)
        n_cells, n_b = len(types), int(types.isin(B_CELL_TYPES).sum())
        n_naive = int(types.isin(NAIVE_TYPES).sum())
        b = bcr_by.get(sample, empty)
        heavy = b.loc[b["heavy_v_gene"].notna()]
        iso = heavy["isotype"].dropna()
        sizes = tr_by.get(sample, empty).groupby("clone_id").size()
        rows.append(
            {
                "sample": sample,
                "patient": meta["patient"],
                "day": meta["day"],
                "tissue": meta["tissue"],
                "n_cells": n_cells,
                "n_b_cells": n_b,
                "b_fraction": n_b / n_cells if n_cells else np.nan,
                "naive_fraction": n_naive / n_b if n_b else np.nan,
                "n_bcr_cells": len(b),
                "igm_igd_fraction": iso.isin(["IgM", "IgD"]).mean() if len(iso) else np.nan,
                "n_clones": len(sizes) if meta["has_bcr"] else pd.NA,
                "shannon_evenness": shannon_evenness(sizes),
                "top_clone_fraction": top_clone_fraction(sizes),
                "timepoint": meta["timepoint"],
                "has_bcr": bool(meta["has_bcr"]),
                "n_bcr_total": int(bcr_total.get(sample, 0)),
                "n_bcr_with_clone": int(sizes.sum()),
                "switched_fraction": iso.str.match(r"Ig[GAE]").mean() if len(iso) else np.nan,
                "mean_shm": pd.to_numeric(heavy["shm"]).mean() if len(heavy) else np.nan,
                "n_ighv4_34": (
                    int(heavy["heavy_v_gene"].eq("IGHV4-34").sum()) if meta["has_bcr"] else pd.NA
                ),
                "ighv4_34_fraction": (
                    heavy["heavy_v_gene"].eq("IGHV4-34").mean() if len(heavy) else np.nan
                ),
            }
        )
    out = pd.DataFrame(rows)
    for col in ("n_clones", "n_ighv4_34"):
        out[col] = out[col].astype("Int64")
    return out


def b_recovery(b_cells: pd.DataFrame, *, level: float = 0.01) -> pd.DataFrame:
    """B-cell recovery per patient from blood samples.

    The nadir is the post-infusion (day > 0) blood sample with the lowest ``b_fraction``
    (earliest on ties); ``b_recovery_day`` is the first day after the nadir's day whose blood
    ``b_fraction`` reaches `level`, empty if none does.

    Returns
    -------
    Index patient; ``b_recovery_day`` (Int64), ``naive_fraction_at_recovery``,
    ``nadir_day``, ``nadir_b_fraction``.
    """
    out = {}
    for patient, g in b_cells.groupby("patient", sort=True):
        blood = g.loc[(g["tissue"] == BLOOD) & (g["day"] > 0) & g["b_fraction"].notna()]
        blood = blood.sort_values(["day", "sample"])
        rec = {
            "b_recovery_day": pd.NA,
            "naive_fraction_at_recovery": np.nan,
            "nadir_day": pd.NA,
            "nadir_b_fraction": np.nan,
        }
        if len(blood):
            nadir = blood.loc[blood["b_fraction"].idxmin()]
            rec["nadir_day"], rec["nadir_b_fraction"] = nadir["day"], nadir["b_fraction"]
            after = blood.loc[(blood["day"] > nadir["day"]) & (blood["b_fraction"] >= level)]
            if len(after):
                first = after.iloc[0]
                rec["b_recovery_day"] = first["day"]
                rec["naive_fraction_at_recovery"] = first["naive_fraction"]
        out[patient] = rec
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index.name = "patient"
    for col in ("b_recovery_day", "nadir_day"):
        res[col] = res[col].astype("Int64") if len(res) else pd.Series(dtype="Int64")
    return res


def elimination_table(
    clones: pd.DataFrame, b_cells: pd.DataFrame, *, recovery_level: float = 0.01
) -> pd.DataFrame:
    """``elimination.tsv``: one row per patient of the sheet (via `b_cells`).

    Returns
    -------
    Contract columns plus counts of all clones by status (``n_clones``, ``n_eliminated``,
    ``n_persistent``, ``n_emergent``, ``n_not_assessable``), ``n_bcr_baseline``,
    ``n_bcr_post``, ``nadir_day`` and ``nadir_b_fraction``.
    """
    patients = sorted(b_cells["patient"].astype(str).unique())
    rec = b_recovery(b_cells, level=recovery_level).reindex(patients)
    rows = []
    for p in patients:
        cl = clones.loc[clones["patient"] == p]
        dp = cl.loc[cl["double_positive"].astype(bool)]
        row = {
            "patient": p,
            "n_dp_clones": len(dp),
            "n_dp_eliminated": int((dp["status"] == "eliminated").sum()),
            "n_dp_persistent": int((dp["status"] == "persistent").sum()),
            "n_dp_not_assessable": int((dp["status"] == "not_assessable").sum()),
            "b_recovery_day": rec.loc[p, "b_recovery_day"],
            "naive_fraction_at_recovery": rec.loc[p, "naive_fraction_at_recovery"],
            "n_clones": len(cl),
        }
        for s in STATUSES:
            row[f"n_{s}"] = int((cl["status"] == s).sum())
        row["n_bcr_baseline"] = int(cl["n_bcr_baseline"].max()) if len(cl) else 0
        row["n_bcr_post"] = int(cl["n_bcr_post"].max()) if len(cl) else 0
        row["nadir_day"] = rec.loc[p, "nadir_day"]
        row["nadir_b_fraction"] = rec.loc[p, "nadir_b_fraction"]
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("b_recovery_day", "nadir_day"):
        out[col] = out[col].astype("Int64")
    return out


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


def track_clones(
    samples: Sequence[ad.AnnData],
    gex_cells: pd.DataFrame,
    sheet: pd.DataFrame,
    *,
    productive_only: bool = True,
    clone: CloneParams | Mapping | None = None,
    post_min_day: int = 28,
    alpha: float = 0.05,
    recovery_b_fraction: float = 0.01,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = "CD19",
    bcma_protein: str | None = "CD269",
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
    cd19_min_protein: float = 10,
    bcma_min_protein: float = 10,
    dp_min_fraction: float = 0.2,
    dp_min_baseline_cells: int = 3,
) -> CloneResults:
    """Merge per-sample BCR data, define clones and build all tracking tables.

    Parameters
    ----------
    samples
        Per-sample outputs of :func:`cartrack.bcr.read_bcr`.
    gex_cells
        :func:`read_gex_cells` of the annotated gene-expression data.
    sheet
        The sample sheet (all samples, with or without BCR).
    productive_only
        As for :func:`cartrack.bcr.index_chains`.
    clone
        Clone definition: :class:`cartrack.clones.CloneParams` or the config section
        ``bcr.clone`` (defaults when None).
    post_min_day, alpha, dp_min_fraction, dp_min_baseline_cells
        As for :func:`clone_tables`.
    recovery_b_fraction
        Blood ``b_fraction`` that counts as B-cell recovery (:func:`b_recovery`).
    cd19_gene, bcma_gene, cd19_protein, bcma_protein
        As for :func:`double_positive_cells`.
    cd19_min_counts, bcma_min_counts, cd19_min_protein, bcma_min_protein
        As for :func:`double_positive_cells`.

    Returns
    -------
    :class:`CloneResults`; ``airr`` has obs ``clone_id``, ``isotype``, ``shm``,
    ``ighv4_34``, ``b_lineage`` and the sheet's columns; ``cell_clones`` has one row per BCR
    cell: ``cell, clone_id, isotype, shm, ighv4_34``.
    """
    meta = sheet_table(sheet)
    airr = merge_bcr(samples)
    unknown = sorted(set(airr.obs["sample"].astype(str)) - set(meta.index))
    if unknown:
        raise InputError(f"BCR samples not in the sample sheet: {', '.join(unknown)}")
    for col in ("patient", "day", "tissue", "timepoint"):
        airr.obs[col] = meta.loc[airr.obs["sample"].astype(str), col].to_numpy()
    index_chains(airr, productive_only=productive_only)
    params = clone if isinstance(clone, CloneParams) else CloneParams.from_config(clone)
    define_clones(airr, params)
    ann = cell_annotations(airr, sequence=airr.uns["clone_definition"]["sequence"])
    for col in ann.columns:
        airr.obs[col] = ann[col]
    gex = gex_cells.copy()
    gex["double_positive"] = double_positive_cells(
        gex,
        cd19_gene=cd19_gene,
        bcma_gene=bcma_gene,
        cd19_protein=cd19_protein,
        bcma_protein=bcma_protein,
        cd19_min_counts=cd19_min_counts,
        bcma_min_counts=bcma_min_counts,
        cd19_min_protein=cd19_min_protein,
        bcma_min_protein=bcma_min_protein,
    )
    ctype = gex["cell_type"].reindex(airr.obs_names).astype(object)
    airr.obs["has_gex"] = airr.obs_names.isin(gex.index)
    airr.obs["b_lineage"] = ctype.isin(B_LINEAGE_TYPES).to_numpy()
    cells = airr.obs.copy()
    tracked = tracked_cells(cells, gex, meta)
    clones, timeline = clone_tables(
        tracked,
        meta,
        post_min_day=post_min_day,
        alpha=alpha,
        dp_min_fraction=dp_min_fraction,
        dp_min_baseline_cells=dp_min_baseline_cells,
    )
    b_cells = b_cell_table(gex, cells, tracked, meta)
    elimination = elimination_table(clones, b_cells, recovery_level=recovery_b_fraction)
    qc = chain_qc_table(airr, gex, meta)
    # no `sample` here: the table is joined into gex.obs, which has its own
    cell_clones = cells[["clone_id", "isotype", "shm", "ighv4_34"]].copy()
    cell_clones.insert(0, "cell", cells.index)
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    for key in [k for k in airr.uns if k.startswith(("ir_dist", "cc_"))]:
        del airr.uns[key]
    airr.uns["tracking"] = {
        "post_min_day": post_min_day,
        "alpha": alpha,
        "recovery_b_fraction": recovery_b_fraction,
        "dp_min_fraction": dp_min_fraction,
        "dp_min_baseline_cells": dp_min_baseline_cells,
    }
    return CloneResults(
        airr, cell_clones.reset_index(drop=True), qc, clones, timeline, b_cells, elimination
    )
