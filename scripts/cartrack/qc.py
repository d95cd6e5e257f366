"""Per-sample quality control: QC metrics, MAD outliers, doublets (sc-best-practices)."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy.stats import median_abs_deviation

from cartrack.design import InputError

log = logging.getLogger(__name__)

IG_PATTERN = r"^(IG[HKL][VDJC]|IGH[MDGAE]|IGKC|IGLC|JCHAIN)"
HB_PATTERN = r"^HB(?!EGF|S1L|P1)[ABDEGMQZ]\d*$"


def add_qc_metrics(adata: ad.AnnData, *, exclude_ig_from_top_genes: bool = True) -> None:
    """Add mito / ribo / hb flags and scanpy's QC metrics to `adata` (raw counts in X).

    Gene prefixes are matched case-insensitively so mouse symbols (`mt-`, `Rps`) work too.
    With `exclude_ig_from_top_genes`, `pct_counts_in_top_20_genes` is computed on the
    non-immunoglobulin genes: plasma cells spend most of their counts on Ig transcripts
    and would otherwise look like low-complexity outliers.
    """
    names = adata.var_names.str.upper()
    adata.var["mt"] = names.str.startswith("MT-")
    adata.var["ribo"] = names.str.match(r"^RP[SL]\d")
    adata.var["hb"] = names.str.match(HB_PATTERN)
    adata.var["ig"] = names.str.match(IG_PATTERN)
    sc.pp.calculate_qc_metrics(
        adata, qc_vars=["mt", "ribo", "hb"], percent_top=[20], log1p=True, inplace=True
    )
    if exclude_ig_from_top_genes and adata.var["ig"].any():
        top = sc.pp.calculate_qc_metrics(
            adata[:, ~adata.var["ig"].to_numpy()], percent_top=[20], inplace=False
        )[0]
        adata.obs["pct_counts_in_top_20_genes"] = top["pct_counts_in_top_20_genes"].to_numpy()


def mad_outlier(values: pd.Series | np.ndarray, nmads: float) -> np.ndarray:
    """True where a value lies more than `nmads` median absolute deviations from the median."""
    x = np.asarray(values, dtype=float)
    med = np.median(x)
    mad = median_abs_deviation(x)
    return (x < med - nmads * mad) | (x > med + nmads * mad)


def flag_low_quality(
    adata: ad.AnnData,
    *,
    nmads: float = 5,
    nmads_mito: float = 5,
    max_pct_mito: float = 8,
    min_genes: int = 100,
) -> dict[str, float]:
    """Set `obs["low_quality"]`; return the thresholds used (for the QC table and figure).

    A cell is low quality when it is a MAD outlier on log1p total counts, log1p genes or
    the share of counts in its top 20 genes, or on the mitochondrial share (or above
    `max_pct_mito`), or has fewer than `min_genes` genes.
    """
    obs = adata.obs
    outlier = (
        mad_outlier(obs["log1p_total_counts"], nmads)
        | mad_outlier(obs["log1p_n_genes_by_counts"], nmads)
        | mad_outlier(obs["pct_counts_in_top_20_genes"], nmads)
    )
    mt = obs["pct_counts_mt"].to_numpy()
    mito = (mt > np.median(mt) + nmads_mito * median_abs_deviation(mt)) | (mt > max_pct_mito)
    obs["low_quality"] = outlier | mito | (obs["n_genes_by_counts"].to_numpy() < min_genes)

    def bounds(col: str, n: float) -> tuple[float, float]:
        x = obs[col].to_numpy(dtype=float)
        med, mad = np.median(x), median_abs_deviation(x)
        return med - n * mad, med + n * mad

    lo_counts, hi_counts = bounds("log1p_total_counts", nmads)
    lo_genes, hi_genes = bounds("log1p_n_genes_by_counts", nmads)
    return {
        "min_total_counts": float(np.expm1(lo_counts)),
        "max_total_counts": float(np.expm1(hi_counts)),
        "min_n_genes": float(max(np.expm1(lo_genes), min_genes)),
        "max_n_genes": float(np.expm1(hi_genes)),
        "max_pct_top20": bounds("pct_counts_in_top_20_genes", nmads)[1],
        "max_pct_mito": float(min(bounds("pct_counts_mt", nmads_mito)[1], max_pct_mito)),
    }


def flag_doublets(
    adata: ad.AnnData,
    *,
    expected_doublet_rate: float = 0.06,
    threshold: str | float = "expected",
    n_pcs: int = 15,
    min_cells: int = 100,
    seed: int = 0,
) -> None:
    """Set `obs["doublet"]` and `obs["doublet_score"]` with scrublet on this sample alone.

    `threshold`: "expected" calls the `expected_doublet_rate` share of cells with the highest
    scores (how scDblFinder thresholds; scrublet's automatic threshold is unstable on
    samples of a few hundred cells), "auto" keeps scrublet's own, a number is a fixed score.
    Low-quality cells are left out of the doublet model. Samples with fewer than
    `min_cells` good cells are not scored.
    """
    adata.obs["doublet"] = False
    adata.obs["doublet_score"] = np.nan
    good = ~adata.obs["low_quality"].to_numpy()
    if good.sum() < min_cells:
        log.warning(
            "%d good cells (< %d): doublet detection skipped for this sample", good.sum(), min_cells
        )
        return
    sub = adata[good].copy()
    sc.pp.scrublet(
        sub,
        expected_doublet_rate=expected_doublet_rate,
        log_transform=True,
        n_prin_comps=min(n_pcs, sub.n_obs - 1),
        random_state=seed,
        verbose=False,
    )
    scores = sub.obs["doublet_score"].to_numpy()
    if threshold == "expected":
        cut = np.quantile(scores, 1 - expected_doublet_rate)
    elif threshold == "auto":
        cut = sub.uns["scrublet"]["threshold"]
    else:
        cut = float(threshold)
    log.info("doublet score threshold %.3f (%s)", cut, threshold)
    adata.obs.loc[sub.obs_names, "doublet"] = scores > cut
    adata.obs.loc[sub.obs_names, "doublet_score"] = scores


def qc_summary(adata: ad.AnnData, thresholds: dict[str, float]) -> dict:
    """One row of qc.tsv: cell counts before and after QC, and the thresholds used."""
    lq = adata.obs["low_quality"].to_numpy()
    dbl = adata.obs["doublet"].to_numpy() & ~lq
    return {
        "n_cells_input": adata.n_obs,
        "n_cells_passed": int((~lq & ~dbl).sum()),
        "n_doublets": int(dbl.sum()),
        "n_low_quality": int(lq.sum()),
        **thresholds,
    }


def run_qc(
    adata: ad.AnnData,
    *,
    nmads: float = 5,
    nmads_mito: float = 5,
    max_pct_mito: float = 8,
    min_genes: int = 100,
    exclude_ig_from_top_genes: bool = True,
    expected_doublet_rate: float = 0.06,
    doublet_threshold: str | float = "expected",
    doublet_n_pcs: int = 15,
    min_cells_for_doublets: int = 100,
    on_empty_sample: str = "error",
    seed: int = 0,
) -> tuple[ad.AnnData, dict]:
    """QC one sample: return the kept cells and the summary row (all cells keep their flags
    in `adata.obs`).

    When QC removes every cell, `on_empty_sample` ``"error"`` raises InputError with the
    sample's QC medians; ``"drop"`` returns zero cells and ``status`` ``dropped`` in the
    summary (otherwise ``passed``)."""
    add_qc_metrics(adata, exclude_ig_from_top_genes=exclude_ig_from_top_genes)
    thresholds = flag_low_quality(
        adata, nmads=nmads, nmads_mito=nmads_mito, max_pct_mito=max_pct_mito, min_genes=min_genes
    )
    flag_doublets(
        adata,
        expected_doublet_rate=expected_doublet_rate,
        threshold=doublet_threshold,
        n_pcs=doublet_n_pcs,
        min_cells=min_cells_for_doublets,
        seed=seed,
    )
    summary = qc_summary(adata, thresholds)
    keep = ~(adata.obs["low_quality"] | adata.obs["doublet"]).to_numpy()
    summary["status"] = "passed"
    if not keep.any():
        obs = adata.obs
        reason = (
            f"QC removed all {adata.n_obs} cells: median {obs['n_genes_by_counts'].median():.0f} "
            f"genes and {obs['total_counts'].median():.0f} counts per cell (qc.min_genes is "
            f"{min_genes}), median {obs['pct_counts_mt'].median():.1f}% mitochondrial "
            f"(qc.max_pct_mito is {max_pct_mito})"
        )
        if on_empty_sample != "drop":
            raise InputError(
                f"{reason}. Is this a filtered matrix of whole transcriptomes? Lower the qc "
                "thresholds in your config if it is, or set qc.on_empty_sample: drop to "
                "leave such samples out."
            )
        log.warning("%s: sample dropped (qc.on_empty_sample: drop)", reason)
        summary["status"] = "dropped"
    log.info(
        "QC: %d cells in, %d low quality, %d doublets, %d kept",
        adata.n_obs,
        summary["n_low_quality"],
        summary["n_doublets"],
        keep.sum(),
    )
    return adata[keep].copy(), summary
