"""Cohort-level processing: merge, normalise, HVG, sparse PCA, Harmony, kNN, UMAP, Leiden."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from cartrack.params import IntegrationParams, UmapParams
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


def merged_counts(samples: list[ad.AnnData], var_names: pd.Index) -> sparse.csr_matrix:
    """The raw counts of `samples` (as read, X only needed) in the cells' and genes' order
    of :func:`merge_samples` on the same samples: rule gex_integrate reads them again after
    the embedding instead of holding them through it."""
    x = ad.concat(
        [ad.AnnData(a.X, obs=a.obs[[]], var=a.var[[]]) for a in samples],
        join="outer",
        fill_value=0,
    )
    if not x.var_names.equals(var_names):
        x = x[:, var_names]
    return sparse.csr_matrix(x.X)


def normalise(adata: ad.AnnData, *, target_sum: float) -> None:
    """Put log1p of depth-normalised counts in X (in place: the raw counts are not kept)."""
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)


def embed(adata: ad.AnnData, params: IntegrationParams, *, seed: int) -> None:
    """HVG, PCA on the sparse matrix, Harmony over `batch_key`, kNN graph, Leiden (the UMAP
    layout is :func:`umap_layout`, rule gex_umap).

    `params` (config section ``integration``): ``n_top_genes``, ``n_pcs``, ``batch_key``,
    ``n_neighbors``, ``exact_neighbors_max_cells``, ``leiden_resolution``.

    PCA: :func:`pca_by_covariance` (the count matrix is never densified whole). Harmony is
    skipped when there is a single batch. The kNN graph is exact (scikit-learn) up to
    ``exact_neighbors_max_cells`` cells, approximate (pynndescent) above.
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
    pca_by_covariance(adata, n_comps=n_pcs, mask_var="highly_variable")
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
    sc.tl.leiden(
        adata,
        resolution=params.leiden_resolution,
        random_state=seed,
        flavor="igraph",
        n_iterations=2,
        directed=False,
    )


def umap_layout(adata: ad.AnnData, params: UmapParams, *, seed: int) -> None:
    """scanpy's UMAP of the kNN graph :func:`embed` left (``obsm["X_umap"]``), with
    :func:`umap_epochs` epochs (``umap_cell_epochs``, ``umap_min_epochs``). A rule of its own
    (gex_umap): only the UMAP figure needs it, so nothing else waits for it."""
    cache_numba_functions()
    n_epochs = umap_epochs(adata.n_obs, params.umap_cell_epochs, params.umap_min_epochs)
    log.info("UMAP: %d epochs, %d cells", n_epochs, adata.n_obs)
    sc.tl.umap(adata, random_state=seed, maxiter=n_epochs)


def read_graph(path: str) -> ad.AnnData:
    """What :func:`umap_layout` needs of rule gex_integrate's output: the kNN graph, its
    parameters and the representation it was built on, no expression matrix."""
    from cartrack.io import read_h5ad_parts

    adata = read_h5ad_parts(
        path, obs=[], obsp=["connectivities", "distances"], uns=["neighbors"], x=False
    )
    rep = adata.uns["neighbors"]["params"].get("use_rep", "X_pca")  # X_pca: one batch
    adata.obsm[rep] = read_h5ad_parts(path, obs=[], obsm=[rep], x=False).obsm[rep]
    return adata


def umap_epochs(n_cells: int, cell_epochs: int, min_epochs: int) -> int:
    """UMAP's layout epochs: umap-learn's own default (500 up to 10,000 cells, 200 above),
    capped at ``cell_epochs / n_cells`` so that the layout's cost stops growing with the
    cohort, but never below ``min_epochs``. Only the UMAP figure depends on it (clusters and
    cell types come from the kNN graph)."""
    default = 500 if n_cells <= 10_000 else 200  # umap.UMAP(n_epochs=None)
    return max(min_epochs, min(default, cell_epochs // max(n_cells, 1)))


def pca_by_covariance(
    adata: ad.AnnData, *, n_comps: int, mask_var: str, block_values: int = 2_000_000
) -> None:
    """PCA of ``X[:, mask_var]`` by eigendecomposition of its covariance matrix, written as
    ``sc.pp.pca`` writes it (``obsm["X_pca"]``, ``varm["PCs"]``, ``uns["pca"]``).

    The algorithm is scanpy's / scikit-learn's ``svd_solver="covariance_eigh"`` (covariance
    of the centred matrix, ``scipy.linalg.eigh``, components in decreasing variance, signs by
    ``svd_flip(u_based_decision=False)``), with one change: the gene x gene cross-product
    is summed over dense float64 blocks of 1,000 cells (2,000 genes; BLAS) instead of
    scipy's sparse ``X.T @ X``, and the cells are projected block by block. On log-normalised
    counts with 2,000 genes at 39 % non-zero (90k cells) that takes 8 s and 0.5 GB where
    scanpy's ``arpack`` (implicit centring, our solver before; same 30 components) takes
    46 s and 1.2 GB, and its sparse ``covariance_eigh`` longer still.
    """
    from scipy.linalg import eigh
    from sklearn.utils.extmath import svd_flip

    mask = adata.var[mask_var].to_numpy(dtype=bool)
    x = sparse.csr_matrix(adata.X)
    n, genes = x.shape[0], np.flatnonzero(mask)
    step = max(1, block_values // len(genes))  # 2M values: 16 MB per dense block

    def blocks():
        for i in range(0, n, step):
            # float64 before densifying: no float32 copy of the block beside it
            yield i, x[i : i + step][:, genes].astype(np.float64).toarray()

    mean = np.zeros(len(genes))
    for _, b in blocks():
        mean += b.sum(axis=0, dtype=np.float64)
    mean /= n
    cross = np.zeros((len(genes), len(genes)))
    for _, b in blocks():
        b -= mean
        cross += b.T @ b
    cross /= n - 1
    variance, vectors = eigh(cross, overwrite_a=True, check_finite=False)
    del cross
    variance, vectors = variance[::-1].clip(min=0), vectors[:, ::-1]
    _, components = svd_flip(None, np.ascontiguousarray(vectors.T), u_based_decision=False)
    components = components[:n_comps]
    x_pca = np.empty((n, n_comps), dtype=np.float32)
    for i, b in blocks():
        b -= mean
        x_pca[i : i + len(b)] = b @ components.T
    adata.obsm["X_pca"] = x_pca
    adata.varm["PCs"] = np.zeros((adata.n_vars, n_comps))
    adata.varm["PCs"][mask] = components.T
    adata.uns["pca"] = {
        "params": {"zero_center": True, "use_highly_variable": True, "mask_var": mask_var},
        "variance": variance[:n_comps],
        "variance_ratio": variance[:n_comps] / variance.sum(),
    }
