"""Cohort-level processing: merge, normalise, HVG, sparse PCA, Harmony, kNN, UMAP, Leiden."""

import logging

import anndata as ad
import pandas as pd
import scanpy as sc

from cartrack.params import IntegrationParams
from cartrack.workarounds import cache_numba_functions, run_harmony

log = logging.getLogger(__name__)


def merge_samples(samples: list[ad.AnnData], sheet: pd.DataFrame) -> ad.AnnData:
    """Concatenate QC-passed samples (union of features) and attach the sheet's columns.

    A feature missing from a sample's matrix (a CAR transgene added to the reference of the
    post-infusion runs only, a different Cell Ranger reference) is kept with zero counts in
    that sample's cells, and the log names the samples and features concerned. `sheet` is
    indexed by sample; its columns (patient, day, tissue, timepoint, batch, ...) are copied
    onto every cell of that sample.
    """
    prot = [a.obsm.pop("prot_counts", None) for a in samples]
    union = pd.Index(sorted(set().union(*(a.var_names for a in samples))))
    for a in samples:
        missing = union.difference(a.var_names)
        if len(missing):
            name = ", ".join(sorted(a.obs["sample"].astype(str).unique()))
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            log.warning(
                "sample %s lacks %d of the cohort's %d features (kept as zero counts): %s",
                name, len(missing), len(union), shown,
            )  # fmt: skip
    adata = ad.concat(samples, join="outer", merge="same", fill_value=0)
    adata.obs_names_make_unique()
    for col in ["patient", "day", "tissue", "timepoint", "batch"]:
        adata.obs[col] = adata.obs["sample"].map(sheet[col]).to_numpy()
    adata.obs["day"] = adata.obs["day"].astype(int)
    for col in ["sample", "patient", "tissue", "timepoint", "batch"]:
        adata.obs[col] = pd.Categorical(adata.obs[col].astype(str))
    if any(p is not None for p in prot):
        frames = [
            p if p is not None else pd.DataFrame(index=a.obs_names)
            for p, a in zip(prot, samples, strict=True)
        ]
        adata.obsm["prot_counts"] = pd.concat(frames).reindex(adata.obs_names)
    n_samples = adata.obs["sample"].nunique()
    log.info("merged %d samples: %d cells x %d genes", n_samples, adata.n_obs, adata.n_vars)
    return adata


def normalise(adata: ad.AnnData, *, target_sum: float) -> None:
    """Keep raw counts in `layers["counts"]`; put log1p of depth-normalised counts in X."""
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)


def embed(adata: ad.AnnData, params: IntegrationParams, *, seed: int) -> None:
    """HVG, PCA on the sparse matrix, Harmony over `batch_key`, kNN graph, UMAP, Leiden.

    `params` (config section ``integration``): ``n_top_genes``, ``n_pcs``, ``batch_key``,
    ``n_neighbors``, ``exact_neighbors_max_cells``, ``leiden_resolution``.

    PCA centres implicitly (arpack on the sparse matrix): the count matrix is never
    densified. Harmony is skipped when there is a single batch. The kNN graph is exact
    (scikit-learn) up to ``exact_neighbors_max_cells`` cells, approximate (pynndescent)
    above.
    """
    batch_key = params.batch_key
    n_batches = adata.obs[batch_key].nunique()
    sc.pp.highly_variable_genes(
        adata,
        n_top_genes=min(params.n_top_genes, adata.n_vars - 1),
        flavor="seurat",
        batch_key=batch_key if n_batches > 1 else None,
    )
    n_pcs = min(params.n_pcs, adata.n_obs - 1, int(adata.var["highly_variable"].sum()) - 1)
    sc.pp.pca(
        adata, n_comps=n_pcs, mask_var="highly_variable", svd_solver="arpack", random_state=seed
    )
    if n_batches > 1:
        adata.obsm["X_pca_harmony"] = run_harmony(adata.obsm["X_pca"], adata.obs, batch_key, seed)
        rep = "X_pca_harmony"
    else:
        log.info("one batch only: Harmony skipped")
        rep = "X_pca"
    exact = adata.n_obs <= params.exact_neighbors_max_cells
    cache_numba_functions()  # umap's connectivities and layout, pynndescent
    sc.pp.neighbors(
        adata,
        n_neighbors=params.n_neighbors,
        use_rep=rep,
        transformer="sklearn" if exact else "pynndescent",
        random_state=seed,
    )
    log.info("kNN graph: %s, %d cells", "exact" if exact else "pynndescent", adata.n_obs)
    sc.tl.umap(adata, random_state=seed)
    sc.tl.leiden(
        adata,
        resolution=params.leiden_resolution,
        random_state=seed,
        flavor="igraph",
        n_iterations=2,
        directed=False,
    )
