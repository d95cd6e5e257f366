"""Gene-signature scores per cell and their summary per sample (scores.tsv, signatures.tsv).

1. Scores per cell: :func:`score_cells` runs :func:`scanpy.tl.score_genes` once per gene set
   on the whole cohort (mean log-normalised expression of the set minus that of control genes
   drawn from the same expression bins). One scoring call over all cells means the same
   control genes for every sample, so scores are comparable across samples and time points.
   We use scanpy rather than decoupler because scanpy is already a dependency, its
   binned-control design corrects each cell for overall expression level (which shifts a lot
   between lymphodepleted and recovered samples), and a per-cell mean score is all the
   downstream tables need.
2. Tables: :func:`summarise_scores` gives the mean score per sample x cell type (every single
   type, `all` and groups such as `B_cells`).
3. The whole step of rule signatures_score: :func:`score_and_compare`.

Gene sets (.gmt files, symbol aliases, the random control) live in :mod:`cartrack.genesets`;
the paired changes after infusion, with matched random gene sets as negative controls, in
:mod:`cartrack.signature_stats`; pseudobulk differential expression and GSEA in
:mod:`cartrack.pseudobulk` and :mod:`cartrack.gsea`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import anndata as ad
import pandas as pd
import scanpy as sc

from cartrack.genesets import usable_gene_sets
from cartrack.params import PhaseParams, SignatureParams
from cartrack.pseudobulk import cell_meta, cell_type_masks
from cartrack.signature_stats import control_summary, matched_control_sets, signature_changes
from cartrack.workarounds import lean_score_genes_mean

log = logging.getLogger(__name__)

#: Suffix of the per-cell score columns: signature `IFN` -> obs column `IFN_score`.
SCORE_SUFFIX = "_score"


def score_column(signature: str) -> str:
    """obs / scores.tsv column that holds the per-cell score of ``signature``."""
    return f"{signature}{SCORE_SUFFIX}"


# --------------------------------------------------------------------------------------------
# Scores per cell
# --------------------------------------------------------------------------------------------
def score_cells(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_genes: int,
    on_too_few: str,
    ctrl_size: int,
    n_bins: int,
    seed: int,
    inplace: bool = True,
) -> pd.DataFrame:
    """Score every cell for every gene set with :func:`scanpy.tl.score_genes` on ``.X``.

    Parameters
    ----------
    adata
        Cells x genes, log-normalised values in ``.X``, gene symbols as ``var_names``.
    gene_sets
        Set name -> genes. Sets are resolved with
        :func:`cartrack.genesets.usable_gene_sets`.
    min_genes, on_too_few
        See :func:`cartrack.genesets.usable_gene_sets`.
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
    lean_score_genes_mean()
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
def summarise_scores(
    obs: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    min_cells: int,
    groups: Iterable[str],
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
        Extra rows for these groups of :data:`cartrack.pseudobulk.CELL_TYPE_GROUPS`, next to
        every single type and `all`.

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
    for cell_type, mask in cell_type_masks(obs["cell_type"], groups=groups).items():
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


def score_and_compare(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    params: SignatureParams,
    phases: PhaseParams,
    *,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rule signatures_score's analysis: per-cell scores (:func:`score_cells`), their
    summary (signatures.tsv) and the changes against matched controls
    (signature_changes.tsv) of the usable ``gene_sets``.

    Parameters
    ----------
    params
        Section ``signatures`` (:class:`cartrack.params.SignatureParams`).
    phases
        Baseline and after infusion (:class:`cartrack.params.PhaseParams`).
    seed
        The workflow's ``seed``: control genes and matched control sets.
    """
    p = params
    usable = usable_gene_sets(
        gene_sets, adata.var_names, min_genes=p.min_genes, on_too_few=p.on_too_few
    )
    scores = score_cells(
        adata,
        usable,
        min_genes=p.min_genes,
        on_too_few=p.on_too_few,
        ctrl_size=p.ctrl_size,
        n_bins=p.n_bins,
        seed=seed,
        inplace=False,
    )
    groups = p.cell_type_groups
    summary = summarise_scores(adata.obs, scores, min_cells=p.min_cells, groups=groups)
    matched = matched_control_sets(
        adata, usable, n_sets=p.matched_controls, n_bins=p.n_bins, seed=seed
    )
    changes = signature_changes(
        summary,
        controls=control_summary(adata, summary, usable, matched, groups=groups),
        post_min_day=phases.post_min_day,
        visit_window_days=phases.visit_window_days,
        tissue=p.tissue,
        min_patients_test=p.min_patients_test,
    )
    return scores, summary, changes
