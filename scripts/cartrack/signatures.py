"""Gene-signature scores per cell, their changes after CAR-T, and pseudobulk GSEA.

Three steps, each a function of plain AnnData / pandas objects:

1. Scores per cell: :func:`score_cells` runs :func:`scanpy.tl.score_genes` once per gene set
   on the whole cohort (mean log-normalised expression of the set minus that of control genes
   drawn from the same expression bins). One scoring call over all cells means the same
   control genes for every sample, so scores are comparable across samples and time points.
   We use scanpy rather than decoupler because scanpy is already a dependency, its
   binned-control design corrects each cell for overall expression level (which shifts a lot
   between lymphodepleted and recovered samples), and a per-cell mean score is all the
   downstream tables need.
2. Tables: :func:`summarise_scores` gives the mean score per sample x cell type (plus `all` and
   groups such as `B_cells`); :func:`signature_changes` compares each post-infusion time point
   with baseline, paired by patient.
3. GSEA: :func:`pseudobulk` sums raw counts per patient x time point x cell type,
   :func:`rank_paired` ranks genes by the mean paired log fold change baseline - post and
   :func:`prerank` runs gseapy's prerank on that ranking. A positive NES therefore means the
   set is higher at baseline than after infusion.

Gene symbols: sets are matched to ``var_names`` by exact symbol, then through :data:`ALIASES`
(HGNC renames such as DDX58 -> RIGI), in either direction, so a set written with the old
symbol finds the new one in the data and the other way round.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse, stats

from cartrack.design import B_CELLS, B_LINEAGE

log = logging.getLogger(__name__)

#: Old symbol -> current HGNC symbol, for genes of the shipped sets that Cell Ranger references
#: of different ages name differently. Matching works both ways.
ALIASES: dict[str, str] = {
    "DDX58": "RIGI",
    "WARS": "WARS1",
    "MARCH1": "MARCHF1",
    "FAM125A": "MVB12A",
    "FAM46A": "TENT5A",
    "FTSJD2": "CMTR1",
    "PRIC285": "HELZ2",
    "DNAPTP6": "SPATS2L",
    "METTL7B": "TMT1B",
}

#: Named groups of `cell_type` labels (CONTRACT.md) that tables can report next to single types.
CELL_TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "B_cells": tuple(B_CELLS),
    "B_lineage": tuple(B_LINEAGE),
}

#: `cell_type` value for all cells of a sample.
ALL = "all"
#: Condition label of samples with day <= 0 (whatever their `timepoint` label).
BASELINE = "baseline"
#: Suffix of the per-cell score columns: signature `IFN` -> obs column `IFN_score`.
SCORE_SUFFIX = "_score"
#: Name of the random negative-control gene set.
RANDOM_CONTROL = "RANDOM_CONTROL"
#: Genes never drawn into the random control: immunoglobulin and T-cell receptor segments,
#: mitochondrial and ribosomal genes. Their levels follow clonal expansions and cell quality,
#: not a shared programme, and a few of them would let composition changes (B-cell aplasia,
#: CAR-T expansion) dominate the control.
CONTROL_EXCLUDE = re.compile(r"^(IG[HKL][VDJC]|TR[ABDG][VDJC]|MT-|RP[SL]\d|JCHAIN$)")

_BOTH_WAYS = {**ALIASES, **{new: old for old, new in ALIASES.items()}}


def score_column(signature: str) -> str:
    """obs / scores.tsv column that holds the per-cell score of ``signature``."""
    return f"{signature}{SCORE_SUFFIX}"


# --------------------------------------------------------------------------------------------
# Gene sets
# --------------------------------------------------------------------------------------------
def read_gmt(paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """Read gene sets from .gmt files (name, description, genes; tab-separated).

    Parameters
    ----------
    paths
        Files to read, in order. Set names must be unique across all files.

    Returns
    -------
    Set name -> genes, in file order, duplicates within a set removed.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    sets: dict[str, list[str]] = {}
    for path in paths:
        for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in line.split("\t")]
            name, genes = fields[0], [g for g in fields[2:] if g]
            if not name or not genes:
                raise ValueError(f"{path}:{lineno}: a gmt line needs a name and at least one gene")
            if name in sets:
                raise ValueError(f"{path}:{lineno}: gene set {name!r} is defined twice")
            sets[name] = list(dict.fromkeys(genes))
    return sets


def write_gmt(gene_sets: Mapping[str, Sequence[str]], path: str | Path, *, description="") -> None:
    """Write gene sets as a .gmt file (one line per set)."""
    lines = ["\t".join([name, description, *genes]) for name, genes in gene_sets.items()]
    Path(path).write_text("\n".join(lines) + "\n")


def resolve_genes(genes: Iterable[str], var_names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Match a set's genes to the data's symbols, through :data:`ALIASES` when needed.

    Returns
    -------
    ``(present, missing)``: ``present`` holds data symbols (unique, in set order), ``missing``
    the set's genes found under neither name.
    """
    var = set(var_names)
    present, missing = [], []
    for gene in genes:
        if gene in var:
            present.append(gene)
        elif _BOTH_WAYS.get(gene) in var:
            present.append(_BOTH_WAYS[gene])
        else:
            missing.append(gene)
    return list(dict.fromkeys(present)), missing


def usable_gene_sets(
    gene_sets: Mapping[str, Sequence[str]],
    var_names: Iterable[str],
    *,
    min_genes: int = 3,
    on_too_few: str = "warn",
) -> dict[str, list[str]]:
    """Resolve every set against the data; warn about missing genes, drop or refuse small sets.

    Parameters
    ----------
    gene_sets
        Set name -> genes (as read by :func:`read_gmt`).
    var_names
        Gene symbols of the data.
    min_genes
        Minimum number of a set's genes present in the data.
    on_too_few
        ``"warn"``: leave such a set out with a warning; ``"error"``: raise ``ValueError``.

    Returns
    -------
    Set name -> genes as named in the data, for the sets that are kept.
    """
    if on_too_few not in ("warn", "error"):
        raise ValueError(f"on_too_few must be 'warn' or 'error', not {on_too_few!r}")
    var_names = list(var_names)
    kept = {}
    for name, genes in gene_sets.items():
        present, missing = resolve_genes(genes, var_names)
        if missing:
            log.warning(
                "signature %s: %d of %d genes not in the data (%s)",
                name,
                len(missing),
                len(genes),
                ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else ""),
            )
        if len(present) < min_genes:
            msg = f"signature {name}: only {len(present)} genes in the data, fewer than {min_genes}"
            if on_too_few == "error":
                raise ValueError(msg)
            log.warning("%s: skipped", msg)
            continue
        kept[name] = present
    return kept


def random_gene_set(
    adata: ad.AnnData,
    *,
    size: int = 20,
    exclude: Iterable[str] = (),
    min_frac: float = 0.01,
    seed: int = 0,
) -> list[str]:
    """Draw a random gene set as a negative control.

    Candidates are genes detected (non-zero in ``.X``) in at least ``min_frac`` of cells, not in
    ``exclude`` (the genes of the real signatures) and not matching :data:`CONTROL_EXCLUDE`.
    The draw depends only on the data's gene list, its detection rates and ``seed``.
    """
    x = adata.X
    detected = np.asarray((x != 0).sum(axis=0)).ravel() / max(adata.n_obs, 1)
    excluded = set(exclude)
    excluded |= {_BOTH_WAYS[g] for g in excluded if g in _BOTH_WAYS}
    candidates = sorted(
        g
        for g, frac in zip(adata.var_names, detected, strict=True)
        if frac >= min_frac and g not in excluded and not CONTROL_EXCLUDE.match(g)
    )
    if len(candidates) < size:
        raise ValueError(f"only {len(candidates)} candidate genes for a random set of {size}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(candidates, size=size, replace=False).tolist())


def add_random_control(
    gene_sets: Mapping[str, Sequence[str]],
    adata: ad.AnnData,
    *,
    size: int = 20,
    seed: int = 0,
) -> dict[str, list[str]]:
    """``gene_sets`` plus :data:`RANDOM_CONTROL`, drawn by :func:`random_gene_set` away from
    every gene of ``gene_sets``; unchanged when ``size`` is 0."""
    out = {name: list(genes) for name, genes in gene_sets.items()}
    if size <= 0:
        return out
    if RANDOM_CONTROL in out:
        raise ValueError(f"gene set name {RANDOM_CONTROL} is reserved for the random control")
    exclude = {g for genes in out.values() for g in genes}
    out[RANDOM_CONTROL] = random_gene_set(adata, size=size, exclude=exclude, seed=seed)
    log.info("random control set: %s", ", ".join(out[RANDOM_CONTROL]))
    return out


# --------------------------------------------------------------------------------------------
# Scores per cell
# --------------------------------------------------------------------------------------------
def score_cells(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_genes: int = 3,
    on_too_few: str = "warn",
    ctrl_size: int = 50,
    n_bins: int = 25,
    seed: int = 0,
    inplace: bool = True,
) -> pd.DataFrame:
    """Score every cell for every gene set with :func:`scanpy.tl.score_genes` on ``.X``.

    Parameters
    ----------
    adata
        Cells x genes, log-normalised values in ``.X``, gene symbols as ``var_names``.
    gene_sets
        Set name -> genes. Sets are resolved with :func:`usable_gene_sets`.
    min_genes, on_too_few
        See :func:`usable_gene_sets`.
    ctrl_size, n_bins
        Control genes per expression bin and number of bins (scanpy's defaults). Control genes
        are drawn from genes outside every set: otherwise a strong programme (interferon
        genes falling after infusion) leaks into the other scores through their controls and
        moves them the opposite way. The random negative control caught this.
    seed
        Random state for the choice of control genes.
    inplace
        Also add one obs column per signature, named by :func:`score_column`.

    Returns
    -------
    Cells x signatures (index ``obs_names``, columns ``<signature>_score``).
    """
    usable = usable_gene_sets(
        gene_sets, adata.var_names, min_genes=min_genes, on_too_few=on_too_few
    )
    # a bare AnnData (no obs columns, no layers) keeps score_genes away from the caller's object
    work = ad.AnnData(X=adata.X, obs=pd.DataFrame(index=adata.obs_names), var=adata.var[[]])
    in_sets = {g for genes in usable.values() for g in genes}
    scores = pd.DataFrame(index=adata.obs_names)
    for name, genes in usable.items():
        col = score_column(name)
        sc.tl.score_genes(
            work,
            genes,
            ctrl_size=ctrl_size,
            n_bins=n_bins,
            # scanpy needs the set's own genes in the pool; it never uses them as controls
            gene_pool=[g for g in adata.var_names if g not in in_sets or g in genes],
            score_name=col,
            random_state=seed,
            use_raw=False,
        )
        scores[col] = work.obs[col].to_numpy(dtype=float)
        log.info("signature %s: scored with %d genes", name, len(genes))
    if inplace:
        for col in scores.columns:
            adata.obs[col] = scores[col]
    return scores


def scores_table(scores: pd.DataFrame) -> pd.DataFrame:
    """scores.tsv layout: column `cell` (obs name) then one `<signature>_score` per signature."""
    return scores.rename_axis("cell").reset_index()


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _cell_type_masks(
    cell_type: pd.Series, *, groups: Iterable[str] = (), types: bool = True
) -> dict[str, np.ndarray]:
    """`all`, each group of :data:`CELL_TYPE_GROUPS` and (``types``) each single type -> mask."""
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


def summarise_scores(
    obs: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    min_cells: int = 20,
    groups: Iterable[str] = ("B_cells",),
) -> pd.DataFrame:
    """Mean score per sample x cell type x signature (signatures.tsv).

    Parameters
    ----------
    obs
        Cell metadata with `sample, patient, day, tissue, timepoint, cell_type`.
    scores
        Output of :func:`score_cells` (same index as ``obs``).
    min_cells
        A sample x cell type with fewer cells is left out: a mean over a handful of cells in an
        aplastic sample is noise.
    groups
        Extra rows for these groups of :data:`CELL_TYPE_GROUPS`, next to every single type and
        `all`.

    Returns
    -------
    Columns `sample, patient, day, tissue, timepoint, cell_type, signature, n_cells, mean_score`.
    """
    scores = scores.loc[obs.index]
    signatures = [c[: -len(SCORE_SUFFIX)] for c in scores.columns if c.endswith(SCORE_SUFFIX)]
    meta_cols = ["sample", "patient", "day", "tissue", "timepoint"]
    meta = cell_meta(obs)
    sample_meta = meta.drop_duplicates("sample").set_index("sample")
    values = scores[[score_column(s) for s in signatures]].to_numpy(dtype=float)
    sample = meta["sample"].to_numpy()
    rows = []
    for cell_type, mask in _cell_type_masks(obs["cell_type"], groups=groups).items():
        if not mask.any():
            continue
        frame = pd.DataFrame(values[mask], columns=signatures)
        frame["sample"] = sample[mask]
        grouped = frame.groupby("sample", sort=True)
        n_cells = grouped.size()
        means = grouped[signatures].mean()
        keep = n_cells.index[n_cells >= min_cells]
        long = (
            means.loc[keep]
            .rename_axis(columns="signature")
            .stack()
            .rename("mean_score")
            .reset_index()
        )
        long["n_cells"] = n_cells.loc[long["sample"]].to_numpy()
        long["cell_type"] = cell_type
        rows.append(long)
    cols = [*meta_cols, "cell_type", "signature", "n_cells", "mean_score"]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True).join(sample_meta, on="sample")
    return (
        out[cols]
        .sort_values(["signature", "cell_type", "patient", "day", "sample"])
        .reset_index(drop=True)
    )


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


def condition_labels(day: pd.Series, timepoint: pd.Series, *, post_min_day: int = 28) -> pd.Series:
    """`baseline` (day <= 0), the `timepoint` label (day >= post_min_day), else empty (NA)."""
    day = pd.to_numeric(day).astype(int)
    out = pd.Series(pd.NA, index=day.index, dtype=object)
    out[day <= 0] = BASELINE
    post = day >= post_min_day
    out[post] = timepoint[post].astype(str)
    return out


def paired_test(baseline: np.ndarray, post: np.ndarray, *, min_patients: int = 3) -> float:
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


def signature_changes(
    summary: pd.DataFrame,
    *,
    post_min_day: int = 28,
    tissue: str | None = "PB",
    min_patients_test: int = 3,
    low_n: int = 5,
) -> pd.DataFrame:
    """Each post-infusion time point against baseline, paired by patient (signature_changes.tsv).

    Per patient, the baseline value is the mean over that patient's baseline samples (day <= 0)
    and the post value the mean over its samples with that `timepoint` label (day >=
    ``post_min_day``); only sample x cell type rows present in ``summary`` count, i.e. those
    with enough cells. Patients are grouped by label, not by day, because they are sampled on
    different days.

    Parameters
    ----------
    summary
        Output of :func:`summarise_scores`.
    post_min_day
        First day counted as after infusion (config `tracking.post_min_day`).
    tissue
        Only samples of this tissue (None: all tissues together).
    min_patients_test
        Fewer paired patients than this: no test, `p_value` empty.
    low_n
        Rows with fewer paired patients than this are flagged `low_n` = true.

    Returns
    -------
    Columns `signature, cell_type, timepoint, day, n_patients, baseline_mean, post_mean, delta,
    p_value, fdr, test, low_n`. `delta` = post_mean - baseline_mean (means over the paired
    patients); `day` is the median day of the time point over the patients sampled then;
    `fdr` is Benjamini-Hochberg over every p-value of the table.
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
    ]
    df = summary if tissue is None else summary[summary["tissue"] == tissue]
    df = df.assign(
        condition=condition_labels(df["day"], df["timepoint"], post_min_day=post_min_day)
    )
    df = df.dropna(subset=["condition"])
    post_days = df[df["condition"] != BASELINE].drop_duplicates("sample")
    median_day = post_days.groupby("timepoint")["day"].median().round().astype(int)
    per_patient = (
        df.groupby(["signature", "cell_type", "condition", "patient"])["mean_score"]
        .mean()
        .unstack("condition")
    )
    rows = []
    if BASELINE in per_patient.columns:
        for timepoint in median_day.sort_values().index:
            if timepoint not in per_patient.columns:
                continue
            pairs = per_patient[[BASELINE, timepoint]].dropna()
            for (signature, cell_type), pair in pairs.groupby(level=["signature", "cell_type"]):
                base, post = pair[BASELINE].to_numpy(), pair[timepoint].to_numpy()
                p = paired_test(base, post, min_patients=min_patients_test)
                rows.append(
                    {
                        "signature": signature,
                        "cell_type": cell_type,
                        "timepoint": timepoint,
                        "day": int(median_day[timepoint]),
                        "n_patients": len(pair),
                        "baseline_mean": base.mean(),
                        "post_mean": post.mean(),
                        "delta": post.mean() - base.mean(),
                        "p_value": p,
                        "test": "none" if np.isnan(p) else "paired_t",
                        "low_n": len(pair) < low_n,
                    }
                )
    out = pd.DataFrame(rows, columns=cols)
    out["fdr"] = bh_fdr(out["p_value"])
    return out.sort_values(["signature", "cell_type", "day"]).reset_index(drop=True)


def bh_fdr(p_values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and is not counted as a test."""
    p = pd.to_numeric(p_values, errors="coerce").astype(float)
    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok].to_numpy(), method="bh")
    return out


# --------------------------------------------------------------------------------------------
# Pseudobulk and GSEA
# --------------------------------------------------------------------------------------------
def pseudobulk(
    adata: ad.AnnData,
    *,
    cell_types: Iterable[str] = (ALL, "monocyte", "B_cells"),
    layer: str | None = "counts",
    post_min_day: int = 28,
    tissue: str | None = "PB",
    min_cells: int = 20,
) -> ad.AnnData:
    """Summed raw counts per patient x condition x cell type.

    Conditions are `baseline` (all samples with day <= 0) and each post-infusion `timepoint`
    label (day >= ``post_min_day``); cells between are left out. ``cell_types`` holds `all`,
    single `cell_type` labels or names of :data:`CELL_TYPE_GROUPS`. A pseudobulk sample from
    fewer than ``min_cells`` cells is dropped.

    Returns
    -------
    AnnData: obs `patient, condition, cell_type, n_cells, day` (median day of its cells), X the
    summed counts (sparse CSR), var as in ``adata``.
    """
    meta = cell_meta(adata.obs)
    keep = np.ones(adata.n_obs, dtype=bool)
    if tissue is not None:
        keep &= (meta["tissue"] == tissue).to_numpy()
    condition = condition_labels(meta["day"], meta["timepoint"], post_min_day=post_min_day)
    keep &= condition.notna().to_numpy()
    counts = adata.layers[layer] if layer else adata.X
    counts = sparse.csr_matrix(counts)
    patient = meta["patient"].to_numpy()
    day = meta["day"].to_numpy()
    masks = _cell_type_masks(adata.obs["cell_type"], groups=cell_types, types=False)
    wanted = {c for c in cell_types}
    meta, blocks = [], []
    for cell_type, mask in masks.items():
        if cell_type not in wanted:
            continue
        sel = mask & keep
        key = pd.DataFrame({"patient": patient[sel], "condition": condition[sel].to_numpy()})
        codes, uniques = pd.factorize(pd.MultiIndex.from_frame(key), sort=True)
        if len(uniques) == 0:
            continue
        idx = np.flatnonzero(sel)
        indicator = sparse.csr_matrix(
            (np.ones(len(idx)), (codes, idx)), shape=(len(uniques), adata.n_obs)
        )
        n_cells = np.bincount(codes, minlength=len(uniques))
        med_day = pd.Series(day[sel]).groupby(codes).median().to_numpy()
        frame = uniques.to_frame(index=False, name=["patient", "condition"])
        frame["cell_type"] = cell_type
        frame["n_cells"] = n_cells
        frame["day"] = med_day
        ok = n_cells >= min_cells
        meta.append(frame[ok])
        blocks.append((indicator @ counts)[ok])
    if not meta:
        return ad.AnnData(
            X=sparse.csr_matrix((0, adata.n_vars)),
            obs=pd.DataFrame(columns=["patient", "condition", "cell_type", "n_cells", "day"]),
            var=adata.var[[]],
        )
    obs_pb = pd.concat(meta, ignore_index=True)
    obs_pb.index = [
        f"{r.patient}|{r.condition}|{r.cell_type}" for r in obs_pb.itertuples(index=False)
    ]
    return ad.AnnData(X=sparse.vstack(blocks).tocsr(), obs=obs_pb, var=adata.var[[]])


def log_cpm(counts: np.ndarray, *, prior_count: float = 2.0) -> np.ndarray:
    """log2 counts per million with edgeR's prior (``cpm(log=TRUE, prior.count=2)``).

    Each row (a pseudobulk sample) gets ``prior_count`` scaled by its library size relative to
    the mean library size, so the prior is the same on the CPM scale in every row and a
    smaller library does not push weak genes one way.
    """
    counts = np.asarray(counts, dtype=float)
    lib = counts.sum(axis=1, keepdims=True)
    prior = prior_count * lib / max(lib.mean(), 1.0)
    return np.log2((counts + prior) / np.maximum(lib + 2 * prior, 1.0) * 1e6)


def rank_paired(
    pb: ad.AnnData,
    *,
    cell_type: str,
    post: str | Sequence[str],
    prior_count: float = 2.0,
    min_counts: int = 10,
) -> tuple[pd.Series, int]:
    """Rank genes by the mean paired log2 fold change baseline - post over patients.

    For each patient with both a baseline and a post pseudobulk of ``cell_type``: log2 CPM
    with a prior count (:func:`log_cpm`), difference baseline - post; the ranking is the mean
    of these differences over patients. The prior shrinks fold changes of weakly expressed
    genes towards 0, so a gene going from 1 count to 0 cannot top the ranking. With the 2-6
    patients of a trial cohort a dispersion model (DESeq2/edgeR) has little to estimate from;
    the paired fold change removes the patient effect, is fast and needs no extra dependency
    (PyDESeq2 is not installed). GSEA only needs the order.

    Parameters
    ----------
    pb
        Output of :func:`pseudobulk`.
    cell_type
        Which pseudobulk rows.
    post
        One post condition label, or several: their counts are summed per patient first
        (`baseline_vs_post` pools every post time point).
    prior_count
        Prior count of :func:`log_cpm` (edgeR's default 2).
    min_counts
        Genes with fewer counts than this over all paired pseudobulks are left out: they carry
        noise and tie near 0 (edgeR's ``filterByExpr`` uses the same ``min.count = 10``).

    Returns
    -------
    ``(ranking, n_patients)``: gene -> mean log2 fold change (sorted, descending) and the number
    of paired patients (0: empty ranking).
    """
    post = [post] if isinstance(post, str) else list(post)
    sub = pb[(pb.obs["cell_type"] == cell_type).to_numpy()]
    x = sparse.csr_matrix(sub.X)
    patients = sub.obs["patient"].to_numpy()
    condition = sub.obs["condition"].to_numpy()
    base_rows, post_rows = [], []
    for patient in sorted(set(patients)):
        is_base = (patients == patient) & (condition == BASELINE)
        is_post = (patients == patient) & np.isin(condition, post)
        if is_base.any() and is_post.any():
            base_rows.append(np.asarray(x[is_base].sum(axis=0)).ravel())
            post_rows.append(np.asarray(x[is_post].sum(axis=0)).ravel())
    if not base_rows:
        return pd.Series(dtype=float), 0
    n = len(base_rows)
    counts = np.vstack(base_rows + post_rows)
    logcpm = log_cpm(counts, prior_count=prior_count)
    lfc = (logcpm[:n] - logcpm[n:]).mean(axis=0)
    expressed = counts.sum(axis=0) >= min_counts
    ranking = pd.Series(lfc, index=pb.var_names)[expressed]
    return ranking.sort_values(ascending=False, kind="mergesort"), n


def prerank(
    ranking: pd.Series,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    permutations: int = 1000,
    min_size: int = 5,
    max_size: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """gseapy prerank on one ranking; sets outside the size limits are dropped with a warning.

    Returns
    -------
    Columns `term, nes, es, p_value, fdr, n_genes, leading_edge` (`;`-joined genes), sorted by
    NES (descending). Empty when no set is left. A `p_value` of 0 means below
    1 / ``permutations``.
    """
    import gseapy  # heavy import, only here

    cols = ["term", "nes", "es", "p_value", "fdr", "n_genes", "leading_edge"]
    genes = set(ranking.index)
    sets = {}
    for name, members in gene_sets.items():
        present, _ = resolve_genes(members, genes)
        if min_size <= len(present) <= max_size and len(present) < len(genes):
            sets[name] = present
        else:
            log.warning(
                "GSEA: gene set %s has %d genes in the ranking (limits %d-%d): left out",
                name,
                len(present),
                min_size,
                max_size,
            )
    if not sets:
        return pd.DataFrame(columns=cols)
    res = gseapy.prerank(
        rnk=ranking,
        gene_sets=sets,
        outdir=None,
        min_size=min_size,
        max_size=max_size,
        permutation_num=permutations,
        seed=seed,
        threads=1,
        no_plot=True,
        verbose=False,
    ).res2d
    out = pd.DataFrame(
        {
            "term": res["Term"].astype(str),
            "nes": pd.to_numeric(res["NES"], errors="coerce"),
            "es": pd.to_numeric(res["ES"], errors="coerce"),
            "p_value": pd.to_numeric(res["NOM p-val"], errors="coerce"),
            "fdr": pd.to_numeric(res["FDR q-val"], errors="coerce"),
            "leading_edge": res["Lead_genes"].astype(str),
        }
    )
    out["n_genes"] = out["term"].map(lambda t: len(sets[t]))
    return out[cols].sort_values("nes", ascending=False, kind="mergesort").reset_index(drop=True)


def run_gsea(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    cell_types: Sequence[str] = (ALL, "monocyte", "B_cells"),
    post_min_day: int = 28,
    tissue: str | None = "PB",
    min_cells: int = 20,
    per_timepoint: bool = True,
    layer: str | None = "counts",
    prior_count: float = 2.0,
    min_counts: int = 10,
    permutations: int = 1000,
    min_size: int = 5,
    max_size: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Pseudobulk GSEA, baseline against after infusion, per cell type (gsea.tsv).

    Comparisons: `baseline_vs_post` (every post time point of a patient pooled) and, with
    ``per_timepoint``, `baseline_vs_<timepoint>` for each post time point label. Genes are
    ranked by :func:`rank_paired` (baseline - post), so a positive NES means higher at
    baseline. A comparison without any paired patient is skipped with a log message.

    Returns
    -------
    Columns `cell_type, comparison, term, nes, p_value, fdr, leading_edge, es, n_genes,
    n_patients`.
    """
    cols = [
        "cell_type",
        "comparison",
        "term",
        "nes",
        "p_value",
        "fdr",
        "leading_edge",
        "es",
        "n_genes",
        "n_patients",
    ]
    pb = pseudobulk(
        adata,
        cell_types=cell_types,
        layer=layer,
        post_min_day=post_min_day,
        tissue=tissue,
        min_cells=min_cells,
    )
    post_days = pb.obs[pb.obs["condition"] != BASELINE].groupby("condition")["day"].median()
    timepoints = list(post_days.sort_values().index)
    comparisons = {"baseline_vs_post": timepoints}
    if per_timepoint:
        comparisons |= {f"baseline_vs_{t}": [t] for t in timepoints}
    results = []
    for cell_type in cell_types:
        for comparison, post in comparisons.items():
            ranking, n_patients = rank_paired(
                pb, cell_type=cell_type, post=post, prior_count=prior_count, min_counts=min_counts
            )
            if n_patients == 0:
                log.info("GSEA %s %s: no patient with both conditions", cell_type, comparison)
                continue
            res = prerank(
                ranking,
                gene_sets,
                permutations=permutations,
                min_size=min_size,
                max_size=max_size,
                seed=seed,
            )
            log.info(
                "GSEA %s %s: %d patients, %d genes, %d sets",
                cell_type,
                comparison,
                n_patients,
                len(ranking),
                len(res),
            )
            results.append(
                res.assign(cell_type=cell_type, comparison=comparison, n_patients=n_patients)
            )
    if not results:
        return pd.DataFrame(columns=cols)
    return pd.concat(results, ignore_index=True)[cols]
