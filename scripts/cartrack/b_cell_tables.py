"""Per-sample and per-patient tables of clone tracking: ``b_cells.tsv``, ``isotypes.tsv``,
``diversity.tsv``, B-cell recovery and ``elimination.tsv``.

They are made of the tracked cells (:func:`cartrack.tracking.tracked_cells`), the clone
table (:func:`cartrack.tracking.clone_tables`) and the sample metadata
(:func:`cartrack.tracking.sheet_table`); the statistics come from
:mod:`cartrack.tracking_stats`.
"""

import numpy as np
import pandas as pd

from cartrack.clones import B_LINEAGE_TYPES
from cartrack.design import B_CELLS, BLOOD, CLONE_STATUSES, NAIVE_B
from cartrack.tracking_stats import (
    hill_numbers,
    observed_coverage,
    rarefied_hill_numbers,
    shannon_evenness,
    top_clone_fraction,
)

UNSWITCHED = ("IgM", "IgD")


def diversity_table(
    tracked: pd.DataFrame, samples: pd.DataFrame, *, min_cells: int
) -> pd.DataFrame:
    """``diversity.tsv``: Hill numbers per sample, raw and rarefied to a depth per patient.

    Parameters
    ----------
    tracked
        :func:`cartrack.tracking.tracked_cells`.
    samples
        :func:`cartrack.tracking.sheet_table`.
    min_cells
        Samples with fewer tracked cells get no rarefied values, and do not set the
        patient's depth (the smallest number of tracked cells among its other samples).

    Returns
    -------
    One row per sheet sample with a V(D)J file: ``sample, patient, day, tissue, timepoint,
    n_bcr_cells`` (tracked cells), ``hill_q0``, ``hill_q1``, ``hill_q2`` (observed),
    ``coverage`` (of the whole sample), ``depth`` (the patient's common depth),
    ``hill_q0_rarefied``, ``hill_q1_rarefied``, ``hill_q2_rarefied`` and
    ``coverage_rarefied`` (at that depth). Raw Hill numbers grow with depth; only the
    rarefied ones compare samples. scirpy's ``tl.alpha_diversity`` gives raw per-group
    indices only, so rarefaction is computed here.
    """
    cols = [
        "sample", "patient", "day", "tissue", "timepoint", "n_bcr_cells",
        "hill_q0", "hill_q1", "hill_q2", "coverage", "depth",
        "hill_q0_rarefied", "hill_q1_rarefied", "hill_q2_rarefied", "coverage_rarefied",
    ]  # fmt: skip
    with_bcr = samples.loc[samples["has_bcr"]]
    sizes = {
        s: g.groupby("clone_id").size().to_numpy()
        for s, g in tracked.groupby(tracked["sample"].astype(str))
    }
    n_cells = pd.Series({s: int(sizes.get(s, np.array([])).sum()) for s in with_bcr.index})
    rows = []
    for sample, meta in with_bcr.iterrows():
        x = sizes.get(sample, np.array([]))
        mine = n_cells[with_bcr.index[with_bcr["patient"] == meta["patient"]]]
        deep = mine[mine >= min_cells]
        depth = int(deep.min()) if len(deep) else np.nan
        rare = (
            rarefied_hill_numbers(x, depth)
            if n_cells[sample] >= min_cells and pd.notna(depth)
            else (np.nan,) * 4
        )
        rows.append(
            [sample, meta["patient"], meta["day"], meta["tissue"], meta["timepoint"],
             n_cells[sample], *hill_numbers(x), observed_coverage(x), depth, *rare]
        )  # fmt: skip
    out = pd.DataFrame(rows, columns=cols)
    out["depth"] = out["depth"].astype("Int64")
    return out


def b_cell_table(
    gex_cells: pd.DataFrame,
    bcr_cells: pd.DataFrame,
    tracked: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    unmutated_max_mu_freq: float,
) -> pd.DataFrame:
    """``b_cells.tsv``: one row per sheet sample.

    Parameters
    ----------
    gex_cells
        All gene-expression cells (``sample``, ``cell_type``).
    bcr_cells
        All V(D)J cells (index cell name; ``sample``, ``heavy_v_gene``, ``isotype``, optional
        ``mu_freq``).
    tracked
        :func:`cartrack.tracking.tracked_cells` (B-lineage cells with a clone).
    samples
        :func:`cartrack.tracking.sheet_table`.
    unmutated_max_mu_freq
        A heavy chain with ``mu_freq`` at or below this counts as unmutated.

    Returns
    -------
    Contract columns plus ``timepoint``, ``phase``, ``has_bcr``, ``n_bcr_total`` (all V(D)J
    cells of the sample, with or without a gene-expression cell), ``n_bcr_with_clone``,
    ``switched_fraction`` (IgG/IgA/IgE), ``mean_shm`` (mean ``mu_freq``),
    ``unmutated_igm_igd_fraction`` (IgM/IgD with ``mu_freq <= unmutated_max_mu_freq``, among
    heavy chains with isotype and ``mu_freq``), ``n_ighv4_34`` and ``ighv4_34_fraction``.
    ``n_bcr_cells`` counts BCR+ B-lineage cells (V(D)J cells whose gene-expression cell is B
    lineage); ``igm_igd_fraction``, ``switched_fraction``, ``mean_shm`` and
    ``ighv4_34_fraction`` are taken among those with a heavy chain (and a known isotype for
    the isotype shares); ``n_clones``, ``shannon_evenness`` and ``top_clone_fraction`` among
    those with a clone. BCR metrics are empty without such cells (``mean_shm`` and the
    unmutated share also without ``mu_freq``); ``n_clones`` and ``n_ighv4_34`` are empty
    when the sample has no V(D)J file.
    """
    b_lineage = gex_cells.index[gex_cells["cell_type"].astype(str).isin(B_LINEAGE_TYPES)]
    bcr_b = bcr_cells.loc[bcr_cells.index.isin(b_lineage)]
    for col in ("heavy_v_gene", "isotype", "mu_freq"):
        if col not in bcr_b.columns:
            bcr_b = bcr_b.assign(**{col: np.nan})
    bcr_b = bcr_b.assign(mu_freq=pd.to_numeric(bcr_b["mu_freq"], errors="coerce"))

    def by_sample(df: pd.DataFrame) -> dict:
        return dict(tuple(df.groupby(df["sample"].astype(str)))) if len(df) else {}

    gex_by, bcr_by, tr_by = by_sample(gex_cells), by_sample(bcr_b), by_sample(tracked)
    bcr_total = bcr_cells.groupby(bcr_cells["sample"].astype(str)).size()
    empty = pd.DataFrame(columns=["cell_type", "heavy_v_gene", "isotype", "mu_freq", "clone_id"])
    rows = []
    for sample, meta in samples.iterrows():
        types = gex_by.get(sample, empty)["cell_type"].astype(str)
        n_cells, n_b = len(types), int(types.isin(B_CELLS).sum())
        n_naive = int(types.isin(NAIVE_B).sum())
        b = bcr_by.get(sample, empty)
        heavy = b.loc[b["heavy_v_gene"].notna()]
        iso = heavy["isotype"].dropna()
        shm = pd.to_numeric(heavy["mu_freq"], errors="coerce")
        typed = heavy.loc[heavy["isotype"].notna() & shm.notna()]
        unmutated = typed["isotype"].isin(UNSWITCHED) & (
            pd.to_numeric(typed["mu_freq"]) <= unmutated_max_mu_freq
        )
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
                "igm_igd_fraction": iso.isin(UNSWITCHED).mean() if len(iso) else np.nan,
                "n_clones": len(sizes) if meta["has_bcr"] else pd.NA,
                "shannon_evenness": shannon_evenness(sizes),
                "top_clone_fraction": top_clone_fraction(sizes),
                "timepoint": meta["timepoint"],
                "phase": meta["phase"],
                "has_bcr": bool(meta["has_bcr"]),
                "n_bcr_total": int(bcr_total.get(sample, 0)),
                "n_bcr_with_clone": int(sizes.sum()),
                "switched_fraction": iso.str.match(r"Ig[GAE]").mean() if len(iso) else np.nan,
                "mean_shm": shm.mean() if shm.notna().any() else np.nan,
                "unmutated_igm_igd_fraction": unmutated.mean() if len(typed) else np.nan,
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


def isotype_table(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """``isotypes.tsv``: cells per sample and heavy-chain isotype (subclasses pooled: IgG1-4
    as IgG).

    Parameters
    ----------
    bcr_cells
        All V(D)J cells (index cell name; ``isotype``).
    gex_cells
        All gene-expression cells (``sample``).
    samples
        :func:`cartrack.tracking.sheet_table`.

    Returns
    -------
    One row per sample and isotype (IgM, IgD, IgG, IgA, IgE) found there: ``sample, patient,
    day, tissue, timepoint, isotype, n_cells`` (gene-expression cells whose heavy chain has
    that isotype, whatever their cell type) and ``fraction`` (of the sample's cells with an
    isotype).
    """
    cols = ["sample", "patient", "day", "tissue", "timepoint", "isotype", "n_cells", "fraction"]
    if "isotype" not in bcr_cells:
        return pd.DataFrame(columns=cols)
    iso = bcr_cells.loc[bcr_cells.index.isin(gex_cells.index), "isotype"].astype(object)
    iso = iso.where(iso.notna(), "").astype(str).str.extract(r"^(Ig[MDGAE])", expand=False)
    iso = iso.dropna()
    if iso.empty:
        return pd.DataFrame(columns=cols)
    sample = gex_cells.loc[iso.index, "sample"].astype(str)
    cells = samples.loc[sample, ["patient", "day", "tissue", "timepoint"]].reset_index()
    cells["isotype"] = iso.to_numpy()
    n = cells.groupby(cols[:6]).size().rename("n_cells").reset_index()
    n["fraction"] = n["n_cells"] / n.groupby("sample")["n_cells"].transform("sum")
    return n[cols]


def b_recovery(b_cells: pd.DataFrame, *, level: float, min_b_cells: int) -> pd.DataFrame:
    """B-cell recovery per patient from blood samples after infusion (day > 0).

    The aplasia starts at the first blood sample whose ``b_fraction`` is below `level`;
    ``b_recovery_day`` is the first later blood sample whose ``b_fraction`` reaches `level`
    again and ``b_recovery_after_day`` the blood sample just before it (recovery happened
    between the two). Both empty when B cells never fell below `level` or never came back.
    ``naive_fraction_at_recovery`` is that of the recovery sample, empty when it holds fewer
    than `min_b_cells` B cells. ``nadir_day`` / ``nadir_b_fraction``: the lowest sample.

    Returns
    -------
    Index patient; ``b_recovery_after_day``, ``b_recovery_day`` (Int64),
    ``naive_fraction_at_recovery``, ``nadir_day`` (Int64), ``nadir_b_fraction``.
    """
    out = {}
    for patient, g in b_cells.groupby("patient", sort=True):
        blood = g.loc[(g["tissue"] == BLOOD) & (g["day"] > 0) & g["b_fraction"].notna()]
        blood = blood.sort_values(["day", "sample"]).reset_index(drop=True)
        rec = {
            "b_recovery_after_day": pd.NA,
            "b_recovery_day": pd.NA,
            "naive_fraction_at_recovery": np.nan,
            "nadir_day": pd.NA,
            "nadir_b_fraction": np.nan,
        }
        if len(blood):
            nadir = blood.loc[blood["b_fraction"].idxmin()]
            rec["nadir_day"], rec["nadir_b_fraction"] = nadir["day"], nadir["b_fraction"]
            below = np.flatnonzero(blood["b_fraction"].to_numpy() < level)
            if len(below):
                later = blood.iloc[below[0] + 1 :]
                back = later.index[later["b_fraction"] >= level]
                if len(back):
                    first = blood.loc[back[0]]
                    rec["b_recovery_day"] = first["day"]
                    rec["b_recovery_after_day"] = blood.loc[back[0] - 1, "day"]
                    n_b = first.get("n_b_cells", np.nan)
                    if pd.notna(n_b) and n_b >= min_b_cells:
                        rec["naive_fraction_at_recovery"] = first["naive_fraction"]
        out[patient] = rec
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index.name = "patient"
    for col in ("b_recovery_after_day", "b_recovery_day", "nadir_day"):
        res[col] = res[col].astype("Int64") if len(res) else pd.Series(dtype="Int64")
    for col in ("naive_fraction_at_recovery", "nadir_b_fraction"):
        res[col] = res[col].astype(float) if len(res) else pd.Series(dtype=float)
    return res


def elimination_table(
    clones: pd.DataFrame,
    b_cells: pd.DataFrame,
    *,
    recovery_level: float,
    recovery_min_b_cells: int,
) -> pd.DataFrame:
    """``elimination.tsv``: one row per patient of the sheet (via `b_cells`).

    Returns
    -------
    Contract columns (``expected_false_eliminated``: the sum of ``p_missed`` over the
    patient's eliminated clones, the expected number among them that persisted unseen) plus
    counts of all clones by status (``n_clones``, ``n_eliminated``, ``n_persistent``,
    ``n_emergent``, ``n_early_only``, ``n_not_assessable``), ``nadir_day`` and ``nadir_b_fraction``.
    """
    patients = sorted(b_cells["patient"].astype(str).unique())
    rec = b_recovery(b_cells, level=recovery_level, min_b_cells=recovery_min_b_cells)
    rec = rec.reindex(patients)
    rows = []
    for p in patients:
        cl = clones.loc[clones["patient"] == p]
        dp = cl.loc[cl["double_positive"].astype(bool)]
        gone = cl.loc[cl["status"] == "eliminated"]
        row = {
            "patient": p,
            "n_dp_clones": len(dp),
            "n_dp_eliminated": int((dp["status"] == "eliminated").sum()),
            "n_dp_persistent": int((dp["status"] == "persistent").sum()),
            "n_dp_not_assessable": int((dp["status"] == "not_assessable").sum()),
            "expected_false_eliminated": float(gone["p_missed"].astype(float).sum()),
            "b_recovery_after_day": rec.loc[p, "b_recovery_after_day"],
            "b_recovery_day": rec.loc[p, "b_recovery_day"],
            "naive_fraction_at_recovery": rec.loc[p, "naive_fraction_at_recovery"],
            "n_clones": len(cl),
        }
        for s in CLONE_STATUSES:
            row[f"n_{s}"] = int((cl["status"] == s).sum())
        row["nadir_day"] = rec.loc[p, "nadir_day"]
        row["nadir_b_fraction"] = rec.loc[p, "nadir_b_fraction"]
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("b_recovery_after_day", "b_recovery_day", "nadir_day"):
        out[col] = out[col].astype("Int64")
    return out
