"""Pseudobulks per patient x condition x cell type and their differential expression (PyDESeq2).

:func:`pseudobulk` sums raw counts; :func:`paired_counts` picks one baseline and one post
pseudobulk per patient (post time points summed when a comparison pools them),
:func:`timepoint_counts` every visit of the patients, for the per-time-point contrasts;
:func:`deseq_wald` runs PyDESeq2 with the design ``~ patient + condition`` (each patient its
own intercept, as in DESeq2's paired design, vignette section "Multi-factor designs") and
returns the Wald test of post against baseline; :func:`sign_flip_statistics` gives the same
Wald statistic with the condition labels swapped within chosen patients, the null of the
patient-wise sign-flip permutation used by :mod:`cartrack.gsea`.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from cartrack.design import ALL, BASELINE, CELL_TYPE_GROUPS, POST, phase

log = logging.getLogger(__name__)

#: Columns of pseudobulk_de.tsv.
DE_COLUMNS = [
    "cell_type",
    "comparison",
    "gene",
    "base_mean",
    "log2_fold_change",
    "lfc_se",
    "stat",
    "p_value",
    "padj",
    "n_patients",
]


def cell_type_masks(
    cell_type: pd.Series, *, groups: Iterable[str] = (), types: bool = True
) -> dict[str, np.ndarray]:
    """`all`, each named group or single type in ``groups`` and (``types``) each type -> mask."""
    labels = cell_type.astype(str).to_numpy()
    masks = {ALL: np.ones(len(labels), dtype=bool)}
    for group in groups:
        if group == ALL:
            continue
        if group in CELL_TYPE_GROUPS:
            masks[group] = np.isin(labels, CELL_TYPE_GROUPS[group])
        else:  # a single cell type named directly
            masks[group] = labels == group
    if types:
        for label in sorted(set(labels)):
            masks.setdefault(label, labels == label)
    return masks


def cell_meta(obs: pd.DataFrame) -> pd.DataFrame:
    """`sample, patient, day, tissue, timepoint` of each cell as plain str / int columns.

    A missing or empty `timepoint` becomes `D<day>`, the sample sheet's default.
    """
    meta = pd.DataFrame(index=obs.index)
    for col in ("sample", "patient", "tissue"):
        meta[col] = obs[col].astype(str)
    meta["day"] = pd.to_numeric(obs["day"]).astype(int)
    label = obs["timepoint"].astype(object) if "timepoint" in obs else pd.Series(pd.NA, obs.index)
    label = label.where(label.notna() & (label.astype(str) != ""), "D" + meta["day"].astype(str))
    meta["timepoint"] = label.astype(str)
    return meta[["sample", "patient", "day", "tissue", "timepoint"]]


def condition_labels(
    day: pd.Series,
    timepoint: pd.Series,
    *,
    post_min_day: int,
    visit_window_days: int,
    tissue: pd.Series | None = None,
) -> pd.Series:
    """`baseline`, the `timepoint` label after infusion, else NA; phases from
    :func:`cartrack.design.phase` (a `product` sample is neither)."""
    ph = phase(
        day.to_numpy(),
        post_min_day=post_min_day,
        visit_window_days=visit_window_days,
        tissue=None if tissue is None else tissue.to_numpy(),
    )
    ph = pd.Series(ph, index=day.index)
    out = pd.Series(pd.NA, index=day.index, dtype=object)
    out[ph == BASELINE] = BASELINE
    post = ph == POST
    out[post] = timepoint[post].astype(str)
    return out


def pseudobulk(
    adata: ad.AnnData,
    *,
    cell_types: Iterable[str],
    post_min_day: int,
    visit_window_days: int,
    layer: str | None = "counts",
    tissue: str | None,
    min_cells: int,
) -> ad.AnnData:
    """Summed raw counts per patient x condition x cell type.

    Conditions are `baseline` and each post-infusion `timepoint` label
    (:func:`condition_labels`); cells between are left out. ``cell_types`` holds `all`, single
    `cell_type` labels or names of :data:`CELL_TYPE_GROUPS`. A pseudobulk sample from fewer
    than ``min_cells`` cells is dropped. A cell type without any cells gives no rows.

    Returns
    -------
    AnnData: obs `patient, condition, cell_type, n_cells, day` (median day of its cells), X the
    summed counts (sparse CSR), var as in ``adata``.
    """
    cols = ["patient", "condition", "cell_type", "n_cells", "day"]
    cell_types = list(cell_types)
    meta = cell_meta(adata.obs)
    keep = np.ones(adata.n_obs, dtype=bool)
    if tissue is not None:
        keep &= (meta["tissue"] == tissue).to_numpy()
    condition = condition_labels(
        meta["day"],
        meta["timepoint"],
        post_min_day=post_min_day,
        visit_window_days=visit_window_days,
        tissue=meta["tissue"],
    )
    keep &= condition.notna().to_numpy()
    counts = adata.layers[layer] if layer else adata.X
    patient = meta["patient"].to_numpy()
    day = meta["day"].to_numpy()
    masks = cell_type_masks(adata.obs["cell_type"], groups=cell_types, types=False)
    frames, blocks = [], []
    for cell_type in cell_types:
        sel = masks[cell_type] & keep
        if not sel.any():
            continue
        idx = np.flatnonzero(sel)
        key = pd.MultiIndex.from_arrays(
            [patient[idx], condition.to_numpy()[idx]], names=["patient", "condition"]
        )
        codes, uniques = pd.factorize(key, sort=True)
        indicator = sparse.csr_matrix(
            (np.ones(len(idx)), (codes, idx)), shape=(len(uniques), adata.n_obs)
        )
        frame = pd.DataFrame(list(uniques), columns=["patient", "condition"])
        frame["cell_type"] = cell_type
        frame["n_cells"] = np.bincount(codes, minlength=len(uniques))
        frame["day"] = pd.Series(day[idx]).groupby(codes).median().to_numpy()
        ok = (frame["n_cells"] >= min_cells).to_numpy()
        frames.append(frame[ok])
        blocks.append(_sum_rows(indicator, counts)[ok])
    if not frames or sum(len(f) for f in frames) == 0:
        return ad.AnnData(
            X=sparse.csr_matrix((0, adata.n_vars)),
            obs=pd.DataFrame(columns=cols),
            var=adata.var[[]],
        )
    obs_pb = pd.concat(frames, ignore_index=True)[cols]
    obs_pb.index = [
        f"{r.patient}|{r.condition}|{r.cell_type}" for r in obs_pb.itertuples(index=False)
    ]
    return ad.AnnData(X=sparse.vstack(blocks).tocsr(), obs=obs_pb, var=adata.var[[]])


#: Cells summed at a time by :func:`pseudobulk` (10,000 cells x 2,000 genes at 40 % non-zero:
#: 60 MB of a backed matrix in memory at once).
SUM_BLOCK_ROWS = 10_000


def _sum_rows(indicator: sparse.csr_matrix, counts) -> sparse.csr_matrix:
    """``indicator @ counts`` over blocks of :data:`SUM_BLOCK_ROWS` cells: ``counts`` may be
    a backed matrix (:func:`cartrack.io.backed_counts`), read a block at a time. Exact:
    integer counts summed in float64."""
    total, step = sparse.csr_matrix((indicator.shape[0], counts.shape[1])), SUM_BLOCK_ROWS
    for i in range(0, counts.shape[0], step):
        total += indicator[:, i : i + step] @ sparse.csr_matrix(counts[i : i + step])
    return total


def paired_counts(
    pb: ad.AnnData, *, cell_type: str, post: Sequence[str], min_counts: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One baseline and one post pseudobulk per patient that has both, for PyDESeq2.

    Several post labels (a pooled comparison) are summed per patient, so every patient
    contributes one pair and the design stays balanced. Genes with fewer than ``min_counts``
    counts over the kept pseudobulks are left out (edgeR ``filterByExpr``'s ``min.count``).

    Returns
    -------
    ``(counts, metadata)``: samples x genes (int) and `patient, condition` (`baseline` /
    `post`); both empty when no patient has both.
    """
    sub = pb[(pb.obs["cell_type"] == cell_type).to_numpy()]
    x = sparse.csr_matrix(sub.X)
    patients = sub.obs["patient"].astype(str).to_numpy()
    condition = sub.obs["condition"].astype(str).to_numpy()
    rows, meta = [], []
    for patient in sorted(set(patients)):
        is_base = (patients == patient) & (condition == BASELINE)
        is_post = (patients == patient) & np.isin(condition, list(post))
        if is_base.any() and is_post.any():
            for label, mask in ((BASELINE, is_base), (POST, is_post)):
                rows.append(np.asarray(x[mask].sum(axis=0)).ravel())
                meta.append((patient, label))
    if not rows:
        return pd.DataFrame(), pd.DataFrame(columns=["patient", "condition"])
    index = [f"{p}|{c}" for p, c in meta]
    counts = pd.DataFrame(np.vstack(rows), index=index, columns=pb.var_names)
    counts = counts.loc[:, counts.sum(axis=0) >= min_counts].round().astype(int)
    metadata = pd.DataFrame(meta, index=index, columns=["patient", "condition"])
    return counts, metadata


def timepoint_counts(
    pb: ad.AnnData, *, cell_type: str, timepoints: Sequence[str], min_counts: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each baseline and each post pseudobulk (one per time point label in ``timepoints``) of
    the patients that have a baseline and at least one of them: one PyDESeq2 fit whose
    contrasts are the per-time-point comparisons (DESeq2's advice: fit all samples together,
    then extract contrasts; the dispersions come from every visit). Genes filtered as in
    :func:`paired_counts`.

    Returns
    -------
    ``(counts, metadata)`` as :func:`paired_counts`, `condition` being `baseline` or the
    time point label.
    """
    sub = pb[(pb.obs["cell_type"] == cell_type).to_numpy()]
    obs = sub.obs[["patient", "condition"]].astype(str)
    obs = obs[obs["condition"].isin([BASELINE, *timepoints])]
    seen = obs.groupby("patient")["condition"].agg(set)
    paired = seen[seen.map(lambda c: BASELINE in c and len(c) > 1)].index
    obs = obs[obs["patient"].isin(paired)]
    if obs.empty:
        return pd.DataFrame(), pd.DataFrame(columns=["patient", "condition"])
    rank = obs["condition"].map({label: i for i, label in enumerate([BASELINE, *timepoints])})
    obs = obs.assign(rank=rank).sort_values(["patient", "rank"])
    index = [f"{p}|{c}" for p, c in zip(obs["patient"], obs["condition"], strict=True)]
    x = sparse.csr_matrix(sub[obs.index].X)
    counts = pd.DataFrame(x.toarray(), index=index, columns=pb.var_names)
    counts = counts.loc[:, counts.sum(axis=0) >= min_counts].round().astype(int)
    # baseline the reference level (DESeq2's relevel), as in the pooled comparison: PyDESeq2's
    # dispersion fits are not invariant to the parametrisation (up to 6 % apart otherwise)
    levels = [c for c in [BASELINE, *timepoints] if c in set(obs["condition"])]
    metadata = pd.DataFrame(
        {
            "patient": obs["patient"].to_numpy(),
            "condition": pd.Categorical(obs["condition"], categories=levels),
        },
        index=index,
    )
    return counts, metadata


def _deseq(counts: pd.DataFrame, metadata: pd.DataFrame):
    """A fitted PyDESeq2 DeseqDataSet, design ``~ patient + condition``, one CPU, quiet."""
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference

    inference = DefaultInference(n_cpus=1)
    with warnings.catch_warnings():
        # small pseudobulk designs often fall back to the mean dispersion trend; PyDESeq2
        # warns each time, and the fallback is DESeq2's own (fitType="mean")
        warnings.simplefilter("ignore", UserWarning)
        dds = DeseqDataSet(
            counts=counts,
            metadata=metadata,
            design="~ patient + condition",
            refit_cooks=True,
            inference=inference,
            quiet=True,
        )
        dds.deseq2()
    return dds, inference


def _wald(dds, inference, post: str = POST, **kwargs) -> pd.DataFrame:
    from pydeseq2.ds import DeseqStats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = DeseqStats(
            dds, contrast=["condition", post, BASELINE], inference=inference, quiet=True, **kwargs
        )
        res.summary()
    return res.results_df


def deseq_wald(
    counts: pd.DataFrame, metadata: pd.DataFrame, *, post: str = POST, fit=None
) -> tuple[pd.DataFrame, object]:
    """PyDESeq2 Wald test of condition ``post`` against baseline, design
    ``~ patient + condition``; ``fit`` (the second value of an earlier call on the same
    samples) reuses that fit for another contrast.

    Returns
    -------
    ``(results, fit)``: per gene `base_mean, log2_fold_change` (post / baseline), `lfc_se,
    stat, p_value, padj` (PyDESeq2's Benjamini-Hochberg after independent filtering), and
    the fitted DeseqDataSet for :func:`sign_flip_statistics` and further contrasts.
    """
    dds, inference = fit if fit is not None else _deseq(counts, metadata)
    res = _wald(dds, inference, post).rename(
        columns={
            "baseMean": "base_mean",
            "log2FoldChange": "log2_fold_change",
            "lfcSE": "lfc_se",
            "pvalue": "p_value",
        }
    )
    return res.rename_axis("gene"), (dds, inference)


def flip_patterns(patients: Sequence[str], *, max_flips: int, seed: int) -> list[tuple[str, ...]]:
    """Sets of patients whose labels are swapped: every subset when there are at most
    ``max_flips`` of them (the observed labelling, the empty set, excluded), else a random
    sample of ``max_flips`` distinct non-empty subsets."""
    patients = sorted(patients)
    n = len(patients)
    if 2**n - 1 <= max_flips:
        return [combo for k in range(1, n + 1) for combo in itertools.combinations(patients, k)]
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    while len(chosen) < max_flips:
        chosen.add(int(rng.integers(1, 2**n)))
    return [tuple(p for i, p in enumerate(patients) if code >> i & 1) for code in sorted(chosen)]


def sign_flip_statistics(
    counts: pd.DataFrame,
    metadata: pd.DataFrame,
    flips: Sequence[Sequence[str]],
    fit,
    *,
    post: str = POST,
) -> pd.DataFrame:
    """Wald statistics with baseline and ``post`` swapped within each listed set of patients
    (their other conditions left as they are).

    ``fit`` is the second value of :func:`deseq_wald` on the observed labels. Each flip
    refits the GLM coefficients (PyDESeq2 ``fit_LFC``) and the Wald test on the relabelled
    samples, keeping the observed fit's size factors (which do not depend on labels) and
    dispersions: re-estimating dispersions is 90% of a PyDESeq2 run, and under the null of
    no condition effect the relabelled design estimates the same dispersions.

    Returns
    -------
    Genes x flips (columns 0..len(flips)-1) of Wald statistics, NaN where PyDESeq2 gives none.
    """
    from pydeseq2.dds import DeseqDataSet

    dds0, inference = fit
    out = {}
    swap = {BASELINE: post, post: BASELINE}
    for k, flipped in enumerate(flips):
        meta = metadata.copy()
        rows = meta["patient"].isin(list(flipped)) & meta["condition"].isin(list(swap))
        meta.loc[rows, "condition"] = meta.loc[rows, "condition"].map(swap)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dds = DeseqDataSet(
                counts=counts,
                metadata=meta,
                design="~ patient + condition",
                refit_cooks=False,
                inference=inference,
                quiet=True,
            )
        # PyDESeq2 0.5 has no public way to refit coefficients with given size factors and
        # dispersions: copy the fitted state that fit_LFC and the Wald test read.
        dds.obs["size_factors"] = dds0.obs["size_factors"].to_numpy()
        dds.layers["normed_counts"] = dds0.layers["normed_counts"]
        for col in ("dispersions", "non_zero", "_normed_means"):
            dds.var[col] = dds0.var[col].to_numpy()
        dds.non_zero_idx, dds.non_zero_genes = dds0.non_zero_idx, dds0.non_zero_genes
        dds.fit_LFC()
        out[k] = _wald(dds, inference, post, cooks_filter=False, independent_filter=False)["stat"]
    return pd.DataFrame(out, index=counts.columns)
