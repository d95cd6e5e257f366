"""Changes of signature scores after CAR-T, paired by patient, against matched controls
(signature_changes.tsv).

:func:`signature_changes` compares each post-infusion time point with baseline, paired by
patient, within cell types, with a composition-adjusted estimate for pooled rows and matched
random gene sets (:func:`matched_control_sets`, :func:`control_summary`) as negative
controls. The scores and their summary per sample come from :mod:`cartrack.signatures`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse, stats

from cartrack.design import BASELINE
from cartrack.genesets import CONTROL_EXCLUDE
from cartrack.pseudobulk import (
    ALL,
    CELL_TYPE_GROUPS,
    cell_type_masks,
    condition_labels,
)

log = logging.getLogger(__name__)

#: `test` of a signature_changes row tested against matched control sets: the larger of the
#: paired t-test against the controls and the rank among them (:func:`signature_changes`).
CONTROL_TEST = "paired_t_and_rank_vs_control"


def paired_test(baseline: np.ndarray, post: np.ndarray, *, min_patients: int) -> float:
    """Two-sided paired t-test p-value; NaN below ``min_patients`` pairs or without variance.

    With 3-4 patients the t-test is the only paired test that can reach p < 0.05 (the exact
    Wilcoxon signed-rank test cannot go below 2 / 2**n = 0.0625 for n = 5 and so never reaches
    0.05 with fewer than 6 patients), but its normality assumption cannot be checked on so few
    differences: :func:`signature_changes` reports it and flags such rows with `low_n`.
    """
    if len(baseline) < max(min_patients, 2):
        return np.nan
    diff = np.asarray(post, dtype=float) - np.asarray(baseline, dtype=float)
    if np.allclose(diff, diff[0]):  # no spread: t undefined
        return np.nan
    return float(stats.ttest_rel(post, baseline).pvalue)


# --------------------------------------------------------------------------------------------
# Matched negative controls
# --------------------------------------------------------------------------------------------
def _gene_strata(adata: ad.AnnData, *, n_bins: int) -> pd.DataFrame:
    """Per gene: expression bin (scanpy's rule: ranks of the mean over all cells cut into
    ``n_bins`` equal groups), the cell type where it is highest, and a tertile of how
    concentrated it is there (top cell type's mean / sum over cell types)."""
    x = sparse.csr_matrix(adata.X)
    mean = np.asarray(x.mean(axis=0)).ravel()
    level = np.minimum(
        (stats.rankdata(mean, method="ordinal") - 1) * n_bins // len(mean), n_bins - 1
    )
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    types = sorted(set(labels))
    codes = pd.Categorical(labels, categories=types).codes
    indicator = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(types), len(codes))
    )
    per_type = np.asarray((indicator @ x).todense()) / np.bincount(codes)[:, None]
    top = per_type.argmax(axis=0)
    share = per_type.max(axis=0) / np.maximum(per_type.sum(axis=0), 1e-12)
    tertile = np.searchsorted(np.quantile(share, [1 / 3, 2 / 3]), share, side="right")
    return pd.DataFrame(
        {
            "mean": mean,
            "level": level,
            "top": np.asarray(types, dtype=object)[top],
            "specificity": tertile,
        },
        index=adata.var_names,
    )


def matched_control_sets(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    n_sets: int,
    n_bins: int,
    min_candidates: int = 5,
    seed: int,
) -> dict[str, list[list[str]]]:
    """``n_sets`` random gene sets per signature, each matched gene by gene to the signature.

    Every gene of a set is replaced by a random gene of the same expression bin, highest in
    the same cell type and with a similar concentration there (:func:`_gene_strata`). The idea
    is scanpy's binned control genes (Satija et al. 2015) extended by cell-type specificity,
    so that a change of composition moves the controls as much as the signature: a set of
    monocyte genes is compared with other monocyte genes of the same level. A stratum with
    fewer than ``min_candidates`` genes falls back to level and cell type, then level only.
    Candidates are genes outside every set, expressed, and not matching
    :data:`cartrack.genesets.CONTROL_EXCLUDE`. Genes of ``gene_sets`` must be data symbols
    (after :func:`cartrack.genesets.usable_gene_sets`).

    Returns
    -------
    Signature -> ``n_sets`` gene lists, each as long as the signature; empty when ``n_sets``
    is 0.
    """
    if n_sets <= 0:
        return {}
    strata = _gene_strata(adata, n_bins=n_bins)
    in_sets = {g for genes in gene_sets.values() for g in genes}
    pool = strata[
        (strata["mean"] > 0)
        & ~strata.index.isin(list(in_sets))
        & ~strata.index.str.match(CONTROL_EXCLUDE.pattern)
    ]
    keys = (["level", "top", "specificity"], ["level", "top"], ["level"])
    groups = [pool.groupby(k).groups for k in keys]
    rng = np.random.default_rng(seed)
    out = {}
    for name, genes in gene_sets.items():
        candidates = []
        for gene in genes:
            row = strata.loc[gene]
            for k, grouped in zip(keys, groups, strict=True):
                key = tuple(row[c] for c in k) if len(k) > 1 else row[k[0]]
                members = grouped.get(key, [])
                if len(members) >= min_candidates or k == keys[-1]:
                    break
            if len(members) == 0:
                members = pool.index
            candidates.append(np.asarray(members))
        draws = np.column_stack([rng.choice(c, size=n_sets) for c in candidates])
        out[name] = [list(row) for row in draws]
        log.info("signature %s: %d matched control sets", name, n_sets)
    return out


def control_summary(
    adata: ad.AnnData,
    summary: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    control_sets: Mapping[str, Sequence[Sequence[str]]],
    *,
    groups: Iterable[str],
) -> pd.DataFrame:
    """Mean score of every matched control set on every row of ``summary``.

    A control set is scored as if scanpy had scored it with the signature's own control
    genes: mean over cells of (mean of the control set's genes - mean of the signature's
    control genes). Means over cells are linear, so this is ``mean_score`` plus the
    difference between the control set's and the signature's mean expression in that
    sample x cell type; no per-cell rescoring is needed.

    Returns
    -------
    Index `sample, cell_type, signature` (the rows of ``summary`` whose signature has controls),
    columns 0 .. n_sets - 1.
    """
    names = [s for s in control_sets if s in set(summary["signature"])]
    if not names:
        return pd.DataFrame()
    genes = sorted(
        {g for s in names for g in gene_sets[s]}
        | {g for s in names for genes in control_sets[s] for g in genes}
    )
    col = pd.Index(adata.var_names).get_indexer(genes)
    x = sparse.csr_matrix(adata.X)[:, col]
    sample = adata.obs["sample"].astype(str).to_numpy()
    masks = cell_type_masks(adata.obs["cell_type"], groups=groups)
    wanted = summary[["sample", "cell_type"]].drop_duplicates()
    frames = []
    for cell_type, rows in wanted.groupby("cell_type"):
        if cell_type not in masks:
            continue
        mask = masks[cell_type]
        samples = rows["sample"].to_numpy()
        idx = np.flatnonzero(mask & np.isin(sample, samples))
        codes = pd.Categorical(sample[idx], categories=samples).codes
        indicator = sparse.csr_matrix(
            (np.ones(len(idx)), (codes, idx)), shape=(len(samples), adata.n_obs)
        )
        means = (
            np.asarray((indicator @ x).todense())
            / np.bincount(codes, minlength=len(samples))[:, None]
        )
        frames.append(
            pd.DataFrame(
                means, index=pd.MultiIndex.from_product([samples, [cell_type]]), columns=genes
            )
        )
    means = pd.concat(frames)
    means.index.names = ["sample", "cell_type"]
    pos = {g: i for i, g in enumerate(genes)}
    values = means.to_numpy()
    out = []
    for name in names:
        sig_mean = values[:, [pos[g] for g in gene_sets[name]]].mean(axis=1)
        weights = np.zeros((len(genes), len(control_sets[name])))
        for k, members in enumerate(control_sets[name]):
            for g in members:
                weights[pos[g], k] += 1.0 / len(members)
        shift = pd.DataFrame(values @ weights - sig_mean[:, None], index=means.index)
        rows = summary[summary["signature"] == name].set_index(["sample", "cell_type"])
        ctrl = shift.loc[rows.index].to_numpy() + rows["mean_score"].to_numpy()[:, None]
        index = pd.MultiIndex.from_arrays(
            [rows.index.get_level_values(0), rows.index.get_level_values(1), [name] * len(rows)],
            names=["sample", "cell_type", "signature"],
        )
        out.append(pd.DataFrame(ctrl, index=index))
    return pd.concat(out)


# --------------------------------------------------------------------------------------------
# Changes after infusion
# --------------------------------------------------------------------------------------------
def _members(cell_type: str, single_types: Sequence[str]) -> list[str] | None:
    """Single types pooled in a composition-dependent row (`all`, a group); None otherwise."""
    if cell_type == ALL:
        return list(single_types)
    if cell_type in CELL_TYPE_GROUPS:
        return [t for t in CELL_TYPE_GROUPS[cell_type] if t in single_types]
    return None


def _one_sample_p(values: np.ndarray, *, min_patients: int) -> float:
    """Two-sided one-sample t-test of per-patient changes against 0 (a paired t-test)."""
    return paired_test(np.zeros(len(values)), np.asarray(values), min_patients=min_patients)


def signature_changes(
    summary: pd.DataFrame,
    *,
    post_min_day: int,
    visit_window_days: int,
    controls: pd.DataFrame | None = None,
    tissue: str | None,
    min_patients_test: int,
    low_n: int = 5,
) -> pd.DataFrame:
    """Each post-infusion time point against baseline, paired by patient (signature_changes.tsv).

    Per patient, the baseline value is the mean over that patient's baseline samples and the
    post value the mean over its samples with that `timepoint` label (phases from
    :func:`cartrack.design.phase`); only sample x cell type rows present in ``summary`` count,
    i.e. those with enough cells. Patients are grouped by label, not by day, because they are
    sampled on different days.

    Within a cell type the change is not a change of composition. Rows that pool cell types
    (`all`, groups such as `B_cells`) are flagged `composition_dependent`; next to their
    `delta` stands `adjusted_delta`: the per-type changes of each patient weighted by that
    patient's baseline composition (share of each type among its baseline cells; types
    without a pair are left out and the weights renormalised), averaged over patients,
    with its own paired t-test `adjusted_p_value`.

    With ``controls`` (:func:`control_summary`), every row also gets the same change for
    each matched control set: `control_delta` (their mean), `delta_vs_control` = delta -
    control_delta, `p_empirical` (two-sided: share of control sets whose delta lies at
    least as far from the controls' mean, with the usual +1 in numerator and denominator).
    `p_value` is then the larger of two p-values (an intersection-union test, Berger 1982,
    valid at level alpha for the union of the two nulls; `test` = :data:`CONTROL_TEST`):
    the paired t-test of the per-patient change relative to the mean of its matched
    controls (is the change consistent across patients?, a self-contained question) and
    `p_empirical` (is it larger than comparable genes show?, a competitive question,
    Goeman & Buhlmann 2007). Each alone is not enough: a random gene set has a fixed drift
    of its own (its genes, not the patients, are the sample), which the paired t-test turns
    into a small p-value with patients as replicates; the rank alone ignores whether the
    patients agree. So a shift that any comparable genes show (normalisation, composition,
    depth) is not called, nor is one patient's flare.

    Returns
    -------
    Columns `signature, cell_type, timepoint, day, n_patients, baseline_mean, post_mean,
    delta, p_value, fdr, test, low_n, composition_dependent, adjusted_delta,
    adjusted_p_value, control_delta, delta_vs_control, p_empirical, n_controls`. `fdr` is
    Benjamini-Hochberg over the `p_value` of each signature's rows (its cell types x time
    points).
    """
    cols = [
        "signature",
        "cell_type",
        "timepoint",
        "day",
        "n_patients",
        "baseline_mean",
        "post_mean",
        "delta",
        "p_value",
        "fdr",
        "test",
        "low_n",
        "composition_dependent",
        "adjusted_delta",
        "adjusted_p_value",
        "control_delta",
        "delta_vs_control",
        "p_empirical",
        "n_controls",
    ]
    df = summary if tissue is None else summary[summary["tissue"] == tissue]
    df = df.assign(
        condition=condition_labels(
            df["day"],
            df["timepoint"],
            post_min_day=post_min_day,
            visit_window_days=visit_window_days,
            tissue=df["tissue"],
        )
    ).dropna(subset=["condition"])
    keys = ["signature", "cell_type", "condition", "patient"]
    post_days = df[df["condition"] != BASELINE].drop_duplicates("sample")
    median_day = post_days.groupby("timepoint")["day"].median().round().astype(int)
    per_patient = df.groupby(keys)["mean_score"].mean().unstack("condition")
    ctrl = None
    if controls is not None and len(controls):
        meta = df.set_index(["sample", "cell_type", "signature"])[["patient", "condition"]]
        joined = controls.join(meta, how="inner")
        ctrl = joined.groupby(
            [
                joined.index.get_level_values("signature"),
                joined.index.get_level_values("cell_type"),
                "condition",
                "patient",
            ]
        ).mean(numeric_only=True)
        ctrl.index.names = keys
    # baseline composition per patient: share of each single type among its baseline cells
    groups_or_all = {ALL, *CELL_TYPE_GROUPS}
    single_types = sorted(set(df["cell_type"]) - groups_or_all)
    cells = df.drop_duplicates(["sample", "cell_type"])
    base_cells = cells[cells["condition"] == BASELINE]
    totals = base_cells[base_cells["cell_type"] == ALL].groupby("patient")["n_cells"].sum()
    shares = (
        base_cells[base_cells["cell_type"].isin(single_types)]
        .groupby(["patient", "cell_type"])["n_cells"]
        .sum()
        .div(totals, level="patient")
    )
    rows = []
    if BASELINE in per_patient.columns:
        for timepoint in median_day.sort_values().index:
            if timepoint not in per_patient.columns:
                continue
            pairs = per_patient[[BASELINE, timepoint]].dropna()
            change = (pairs[timepoint] - pairs[BASELINE]).rename("change")
            for (signature, cell_type), pair in pairs.groupby(level=["signature", "cell_type"]):
                base, post = pair[BASELINE].to_numpy(), pair[timepoint].to_numpy()
                patients = pair.index.get_level_values("patient")
                row = {
                    "signature": signature,
                    "cell_type": cell_type,
                    "timepoint": timepoint,
                    "day": int(median_day[timepoint]),
                    "n_patients": len(pair),
                    "baseline_mean": base.mean(),
                    "post_mean": post.mean(),
                    "delta": post.mean() - base.mean(),
                    "low_n": len(pair) < low_n,
                    "composition_dependent": cell_type in groups_or_all,
                }
                d = post - base
                if ctrl is not None and (signature, cell_type, BASELINE, patients[0]) in ctrl.index:
                    idx_b = [(signature, cell_type, BASELINE, p) for p in patients]
                    idx_p = [(signature, cell_type, timepoint, p) for p in patients]
                    cd = ctrl.loc[idx_p].to_numpy() - ctrl.loc[idx_b].to_numpy()
                    null = cd.mean(axis=0)
                    centre = null.mean()
                    row["control_delta"] = centre
                    row["delta_vs_control"] = row["delta"] - centre
                    far = np.abs(null - centre) >= abs(row["delta"] - centre) - 1e-12
                    row["p_empirical"] = (1 + far.sum()) / (1 + len(null))
                    row["n_controls"] = len(null)
                    p_t = _one_sample_p(d - cd.mean(axis=1), min_patients=min_patients_test)
                    # intersection-union test: both nulls must be rejected (module docstring)
                    p = max(p_t, row["p_empirical"])
                    row["test"] = "none" if np.isnan(p) else CONTROL_TEST
                else:
                    p = paired_test(base, post, min_patients=min_patients_test)
                    row["test"] = "none" if np.isnan(p) else "paired_t"
                row["p_value"] = p
                members = _members(cell_type, single_types)
                if members:
                    adjusted = []
                    for patient in patients:
                        w, x = [], []
                        for t in members:
                            key = (signature, t, patient)
                            if key in change.index and (patient, t) in shares.index:
                                w.append(shares[(patient, t)])
                                x.append(change[key])
                        if w and sum(w) > 0:
                            adjusted.append(np.dot(w, x) / sum(w))
                    if adjusted:
                        row["adjusted_delta"] = float(np.mean(adjusted))
                        row["adjusted_p_value"] = _one_sample_p(
                            np.asarray(adjusted), min_patients=min_patients_test
                        )
                rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=cols)
    # one family per signature: a negative control (or a weak set) must not borrow the
    # discoveries of a strong one, as it would in one Benjamini-Hochberg over the table
    out["fdr"] = out.groupby("signature", group_keys=False)["p_value"].apply(bh_fdr)
    out["n_controls"] = out["n_controls"].astype("Int64")
    for col in ("low_n", "composition_dependent"):
        out[col] = out[col].astype(bool)
    return out.sort_values(["signature", "cell_type", "day"]).reset_index(drop=True)


def bh_fdr(p_values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and is not counted as a test."""
    p = pd.to_numeric(p_values, errors="coerce").astype(float)
    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok].to_numpy(), method="bh")
    return out
