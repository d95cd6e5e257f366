"""Per-sample quality control: QC metrics, MAD outliers, doublets (sc-best-practices)."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy.stats import binom, median_abs_deviation

from cartrack.design import CELL_TYPES, InputError
from cartrack.params import QcParams

log = logging.getLogger(__name__)

IG_PATTERN = r"^(IG[HKL][VDJC]|IGH[MDGAE]|IGKC|IGLC|JCHAIN)"
HB_PATTERN = r"^HB(?!EGF|S1L|P1)[ABDEGMQZ]\d*$"


def add_qc_metrics(adata: ad.AnnData, *, exclude_ig_from_top_genes: bool) -> None:
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


def flag_low_quality(adata: ad.AnnData, params: QcParams) -> dict[str, float]:
    """Set `obs["low_quality"]`; return the thresholds used (for the QC table and figure).

    A cell is low quality when it is a MAD outlier (``nmads``) on log1p total counts, log1p
    genes or the share of counts in its top 20 genes, or on the mitochondrial share
    (``nmads_mito``; or above ``max_pct_mito``), or has fewer than ``min_genes`` genes.
    """
    nmads, nmads_mito = params.nmads, params.nmads_mito
    max_pct_mito, min_genes = params.max_pct_mito, params.min_genes
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


def expected_doublet_rate_from_loading(n_cells: int, *, rate_per_1000: float) -> float:
    """The multiplet rate of a capture: `rate_per_1000` per 1,000 cells recovered (10x's is
    about 0.8 %, config ``qc.doublet_rate_per_1000``)."""
    return rate_per_1000 * n_cells / 1000


def flag_doublets(adata: ad.AnnData, params: QcParams, *, seed: int) -> dict[str, float]:
    """Set `obs["doublet"]` and `obs["doublet_score"]` with scrublet on this sample alone.

    The expected rate comes from the sample's loading: ``doublet_rate_per_1000`` x cells
    recovered / 1,000 (all barcodes of the filtered matrix), unless ``expected_doublet_rate``
    fixes it. ``doublet_threshold``: ``auto`` takes scrublet's own threshold (the minimum
    between the two modes of the simulated doublets' scores,
    ``skimage.filters.threshold_minimum``; see ``scanpy.pp.scrublet``) but never calls more
    cells than a Binomial(n, ``max_doublet_rate_factor`` x expected rate) makes plausible (its
    99.9 % quantile; the threshold is raised to that many top scores instead) and falls back
    to the expected-rate quantile when scrublet finds no threshold; ``expected`` calls the
    expected-rate share of top scores; a number is a fixed score. Low-quality cells are left
    out. Samples with fewer than ``min_cells_for_doublets`` good cells are not scored.
    ``doublet_exact_neighbors`` finds scrublet's neighbours by brute force (sklearn) at every
    sample size; otherwise scanpy switches to pynndescent (approximate, and compiled anew by
    numba in each process) from about 2,700 cells. Returns the rate, threshold and
    method used.
    """
    threshold, min_cells = params.doublet_threshold, params.min_cells_for_doublets
    adata.obs["doublet"] = False
    adata.obs["doublet_score"] = np.nan
    rate = (
        params.expected_doublet_rate
        if params.expected_doublet_rate is not None
        else expected_doublet_rate_from_loading(
            adata.n_obs, rate_per_1000=params.doublet_rate_per_1000
        )
    )
    info = {"expected_doublet_rate": rate, "doublet_threshold": np.nan, "doublet_method": "skipped"}
    good = ~adata.obs["low_quality"].to_numpy()
    if good.sum() < min_cells:
        log.warning(
            "%d good cells (< %d): doublet detection skipped for this sample", good.sum(), min_cells
        )
        return info
    sub = adata[good].copy()
    sc.pp.scrublet(
        sub,
        expected_doublet_rate=max(rate, 1e-3),
        log_transform=True,
        n_prin_comps=min(params.doublet_n_pcs, sub.n_obs - 1),
        threshold=None if threshold == "auto" else 1.0,
        use_approx_neighbors=False if params.doublet_exact_neighbors else None,
        random_state=seed,
        verbose=False,
    )
    scores = sub.obs["doublet_score"].to_numpy()
    max_calls = int(binom.isf(1e-3, len(scores), min(params.max_doublet_rate_factor * rate, 1)))
    if threshold == "auto":
        auto = sub.uns["scrublet"].get("threshold")
        if auto is None or not np.isfinite(auto):
            cut, method = float(np.quantile(scores, 1 - rate)), "expected (scrublet found none)"
        elif (scores > auto).sum() > max_calls:
            cut = float(np.sort(scores)[::-1][max_calls]) if max_calls < len(scores) else -np.inf
            method = f"auto capped at {max_calls} calls"
        else:
            cut, method = float(auto), "auto"
    elif threshold == "expected":
        cut, method = float(np.quantile(scores, 1 - rate)), "expected"
    else:
        cut, method = float(threshold), "fixed"
    log.info(
        "doublets: expected rate %.4f (%d cells recovered), threshold %.3f (%s), %d called",
        rate, adata.n_obs, cut, method, int((scores > cut).sum()),
    )  # fmt: skip
    adata.obs.loc[sub.obs_names, "doublet"] = scores > cut
    adata.obs.loc[sub.obs_names, "doublet_score"] = scores
    return {"expected_doublet_rate": rate, "doublet_threshold": cut, "doublet_method": method}


def qc_summary(adata: ad.AnnData, thresholds: dict) -> dict:
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


def run_qc(adata: ad.AnnData, params: QcParams, *, seed: int) -> tuple[ad.AnnData, dict]:
    """QC one sample: return the kept cells and the summary row (all cells keep their flags
    in `adata.obs`).

    When QC removes every cell, ``on_empty_sample`` ``"error"`` raises InputError with the
    sample's QC medians; ``"drop"`` returns zero cells and ``status`` ``dropped`` in the
    summary (otherwise ``passed``)."""
    add_qc_metrics(adata, exclude_ig_from_top_genes=params.exclude_ig_from_top_genes)
    thresholds = flag_low_quality(adata, params)
    thresholds |= flag_doublets(adata, params, seed=seed)
    summary = qc_summary(adata, thresholds)
    keep = ~(adata.obs["low_quality"] | adata.obs["doublet"]).to_numpy()
    summary["status"] = "passed"
    if not keep.any():
        obs = adata.obs
        reason = (
            f"QC removed all {adata.n_obs} cells: median {obs['n_genes_by_counts'].median():.0f} "
            f"genes and {obs['total_counts'].median():.0f} counts per cell (qc.min_genes is "
            f"{params.min_genes}), median {obs['pct_counts_mt'].median():.1f}% mitochondrial "
            f"(qc.max_pct_mito is {params.max_pct_mito})"
        )
        if params.on_empty_sample != "drop":
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


def qc_by_cell_type(cells: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """qc_by_cell_type.tsv: per sample x cell type, cells in, removed as low quality or doublet.

    `cells` is the per-cell QC table of every sample (``sample``, ``qc_cell_type``,
    ``low_quality``, ``doublet``). Rule gex_qc_by_cell_type sets ``qc_cell_type`` to the
    cohort annotation for kept cells (so ``n_cells_passed`` is cell_types.tsv's count) and,
    for removed cells, to their call scored with the cohort's cells
    (:func:`cartrack.annotate.annotate_like_reference`).
    """

    def flag(col: str) -> pd.Series:  # bool, or true/false as read back from a table
        return cells[col].astype(str).str.lower().isin(["true", "1"])

    c = cells.assign(
        low_quality=flag("low_quality"), doublet=flag("doublet") & ~flag("low_quality")
    )
    c["cell_type"] = pd.Categorical(c["qc_cell_type"].astype(str), categories=CELL_TYPES)
    g = c.groupby(["sample", "cell_type"], observed=False)
    out = pd.DataFrame(
        {
            "n_cells_input": g.size(),
            "n_low_quality": g["low_quality"].sum(),
            "n_doublets": g["doublet"].sum(),
        }
    ).reset_index()
    out["n_cells_passed"] = out["n_cells_input"] - out["n_low_quality"] - out["n_doublets"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["fraction_removed"] = np.where(
            out["n_cells_input"] > 0,
            1 - out["n_cells_passed"] / out["n_cells_input"].where(out["n_cells_input"] > 0, 1),
            np.nan,
        )
    out = out.join(sheet[["patient", "day", "tissue"]], on="sample")
    first = ["sample", "patient", "day", "tissue", "cell_type"]
    return out[first + [c for c in out.columns if c not in first]]
