"""Merging, normalisation and the sparse embedding with Harmony."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cartrack.integrate import (
    embed,
    merge_samples,
    merged_counts,
    normalise,
    pca_by_covariance,
    read_graph,
    umap_epochs,
    umap_layout,
)
from cartrack.params import IntegrationParams, UmapParams
from cartrack.workarounds import run_harmony

SHEET = pd.DataFrame(
    {
        "patient": ["P1", "P1"],
        "day": [-3, 90],
        "tissue": ["PB", "PB"],
        "timepoint": ["baseline", "M3"],
        "batch": ["b1", "b2"],
    },
    index=pd.Index(["S1", "S2"], name="sample"),
)


def two_samples(n: int = 150, seed: int = 0, shift: float = 0.0) -> list[ad.AnnData]:
    """Two samples with two cell populations; the second sample's counts carry a batch shift."""
    rng = np.random.default_rng(seed)
    out = []
    for s, sample in enumerate(SHEET.index):
        mean = rng.lognormal(0, 1, (2, 200))
        mean[1, :20] *= 8  # population 2 over-expresses 20 genes
        pops = rng.integers(0, 2, n)
        m = mean[pops] * (1 + shift * s * (np.arange(200) % 3 == 0))
        a = ad.AnnData(sp.csr_matrix(rng.poisson(m).astype(np.float32)))
        a.var_names = [f"G{i}" for i in range(200)]
        a.obs_names = [f"{sample}_c{i}" for i in range(n)]
        a.obs["sample"] = sample
        a.obs["pop"] = pops
        out.append(a)
    return out


def test_merge_attaches_the_sheet_and_keeps_every_feature(caplog):
    samples = two_samples()
    samples[0] = samples[0][:, :150].copy()
    merged = merge_samples(samples, SHEET)
    assert merged.n_obs == 300 and merged.n_vars == 200
    assert merged.obs.loc["S2_c0", "timepoint"] == "M3"
    assert merged.obs["day"].dtype.kind == "i"
    assert "sample S1 lacks 50 of the cohort's 200 features" in caplog.text


def test_car_feature_of_post_infusion_samples_only_is_kept_with_zeros():
    """Baseline was counted without the CAR contig; the post-infusion run has it."""
    samples = two_samples()
    post = samples[1]
    car = sp.csr_matrix(np.r_[np.zeros(140), np.full(10, 4.0)].astype(np.float32)[:, None])
    samples[1] = ad.concat(
        [post, ad.AnnData(car, obs=post.obs[[]], var=pd.DataFrame(index=["CAR_CD19"]))],
        axis=1,
        merge="first",
    )
    samples[1].obs = post.obs.copy()
    merged = merge_samples(samples, SHEET)
    assert "CAR_CD19" in merged.var_names
    col = merged[:, "CAR_CD19"].X.toarray().ravel()
    s1 = (merged.obs["sample"] == "S1").to_numpy()
    assert np.all(col[s1] == 0) and not np.isnan(col).any()
    assert col[~s1].sum() == 40
    assert sp.issparse(merged.X)


def test_normalise_gives_log1p_of_counts_per_target_sum():
    merged = merge_samples(two_samples(), SHEET)
    normalise(merged, target_sum=1e4)
    assert np.allclose(np.expm1(merged.X[:5].toarray()).sum(axis=1), 1e4, rtol=1e-4)


def test_counts_read_again_line_up_with_the_merged_cells_and_genes():
    """gex_integrate writes the counts layer from a second read of the samples: same cells
    and genes, in the same order, as the merged matrix, a feature one sample lacks too."""
    samples = two_samples()
    samples[0] = samples[0][:, 50:].copy()  # S1 lacks G0-G49
    merged = merge_samples([a.copy() for a in samples], SHEET)
    genes = merged.var_names[::-1]  # any order the merged matrix has
    counts = merged_counts(samples, genes)
    assert (counts != merged.X[:, ::-1]).nnz == 0
    assert counts[:150, genes.isin([f"G{i}" for i in range(50)])].nnz == 0  # S1 lacks them


def test_embed_is_sparse_and_clusters_the_populations():
    merged = merge_samples(two_samples(shift=1.5), SHEET)
    normalise(merged, target_sum=1e4)
    params = IntegrationParams.from_config(
        n_top_genes=100, n_pcs=10, n_neighbors=10, leiden_resolution=0.3
    )
    embed(merged, params, seed=0)
    assert sp.issparse(merged.X)
    assert "X_umap" not in merged.obsm  # rule gex_umap's
    assert merged.obsm["X_pca_harmony"].shape == merged.obsm["X_pca"].shape
    # clusters follow biology, not batch
    ct = pd.crosstab(merged.obs["leiden"], merged.obs["pop"])
    purity = ct.max(axis=1).sum() / ct.to_numpy().sum()
    assert purity > 0.95


def test_pca_by_covariance_is_scanpys_covariance_eigh():
    """Same components, coordinates and variances as scanpy's covariance_eigh on the dense
    masked matrix, summed over ten blocks of 1,000 cells."""
    import scanpy as sc

    merged = merge_samples(two_samples(n=5_000, shift=1.5), SHEET)  # 10,000 cells
    normalise(merged, target_sum=1e4)
    merged.var["hv"] = np.arange(merged.n_vars) % 4 != 0  # 150 of 200 genes
    pca_by_covariance(merged, n_comps=10, mask_var="hv", block_values=150 * 1_000)
    dense = ad.AnnData(merged.X[:, merged.var["hv"].to_numpy()].toarray().astype(np.float64))
    sc.pp.pca(dense, n_comps=10, svd_solver="covariance_eigh")
    assert np.allclose(merged.obsm["X_pca"], dense.obsm["X_pca"], atol=1e-3)
    assert np.allclose(
        merged.varm["PCs"][merged.var["hv"].to_numpy()], dense.varm["PCs"], atol=1e-5
    )
    assert (merged.varm["PCs"][~merged.var["hv"].to_numpy()] == 0).all()
    for key in ("variance", "variance_ratio"):
        assert np.allclose(merged.uns["pca"][key], dense.uns["pca"][key], rtol=1e-5)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [(5_000, 500), (40_000, 200), (90_000, 111), (225_000, 100), (2_000_000, 100)],
)
def test_umap_epochs_stop_growing_with_the_cohort(cells, expected):
    """umap-learn's own default up to 10M cell-epochs, then the budget, never below 100."""
    assert umap_epochs(cells, cell_epochs=10_000_000, min_epochs=100) == expected


@pytest.mark.parametrize("harmony", [True, False])
def test_umap_of_the_graph_read_back_is_the_in_memory_one(tmp_path, harmony):
    """Rule gex_umap lays out the graph it reads from gex_integrate's file (no expression
    matrix): the same layout as on the whole AnnData, with or without Harmony."""
    sheet = SHEET if harmony else SHEET.assign(batch="one")
    merged = merge_samples(two_samples(shift=1.5), sheet)
    normalise(merged, target_sum=1e4)
    params = IntegrationParams.from_config(n_top_genes=100, n_pcs=10, batch_key="batch")
    embed(merged, params, seed=0)
    merged.write_h5ad(tmp_path / "integrated.h5ad")
    graph = read_graph(tmp_path / "integrated.h5ad")
    assert graph.X is None and ("X_pca_harmony" in graph.obsm) == harmony
    umap = UmapParams.from_config()
    umap_layout(merged, umap, seed=0)
    umap_layout(graph, umap, seed=0)
    assert merged.obsm["X_umap"].shape == (300, 2)
    np.testing.assert_array_equal(graph.obsm["X_umap"], merged.obsm["X_umap"])


def test_single_batch_skips_harmony():
    samples = two_samples()
    sheet = SHEET.assign(batch="one")
    merged = merge_samples(samples, sheet)
    normalise(merged, target_sum=1e4)
    params = IntegrationParams.from_config(
        n_top_genes=100, n_pcs=10, n_neighbors=10, batch_key="batch"
    )
    embed(merged, params, seed=0)
    assert "X_pca_harmony" not in merged.obsm


def test_harmony_result_is_cells_by_components_and_removes_a_shift():
    rng = np.random.default_rng(0)
    pcs = rng.normal(size=(400, 8))
    batch = np.repeat(["a", "b"], 200)
    pcs[batch == "b", 0] += 3
    corrected = run_harmony(pcs, pd.DataFrame({"batch": batch}), "batch", seed=0)
    assert corrected.shape == pcs.shape
    gap_before = abs(pcs[batch == "a", 0].mean() - pcs[batch == "b", 0].mean())
    gap_after = abs(corrected[batch == "a", 0].mean() - corrected[batch == "b", 0].mean())
    assert gap_after < gap_before * 0.75
    # each row is still the same cell: unshifted components barely move
    assert np.corrcoef(corrected[:, 1], pcs[:, 1])[0, 1] > 0.9


@pytest.mark.parametrize("max_cells", [300, 0])
def test_knn_graph_is_exact_up_to_the_configured_size(max_cells):
    """Up to `exact_neighbors_max_cells` the kNN graph holds every cell's true nearest
    neighbours in the Harmony space; above it, pynndescent's approximate graph is used."""
    from sklearn.neighbors import NearestNeighbors

    merged = merge_samples(two_samples(shift=1.5), SHEET)
    normalise(merged, target_sum=1e4)
    params = IntegrationParams.from_config(
        n_top_genes=100, n_pcs=10, n_neighbors=10, exact_neighbors_max_cells=max_cells
    )
    embed(merged, params, seed=0)
    rep = merged.obsm["X_pca_harmony"]
    true = NearestNeighbors(n_neighbors=10).fit(rep).kneighbors(rep, return_distance=False)
    graph = merged.obsp["distances"].tolil().rows
    found = np.mean([set(true[i][1:]) <= set(graph[i]) for i in range(merged.n_obs)])
    exact = max_cells >= merged.n_obs
    assert (found == 1.0) if exact else (found > 0.9), found


def test_umap_numba_functions_get_a_disk_cache():
    """umap's and pynndescent's numba functions (no cache=True upstream) are compiled once
    per environment, not once per job: those compiled at first call (umap's connectivities
    and layout epoch) and those compiled at import (pynndescent's distances, explicit
    signatures), which a second fresh process loads from the cache."""
    import subprocess
    import sys
    from pathlib import Path

    functions = (
        "import pynndescent.distances, umap.layouts, umap.umap_\n"
        "fs = [umap.umap_.compute_membership_strengths,\n"
        "      umap.layouts._nb_optimize_layout_euclidean_single_epoch,\n"
        "      pynndescent.distances.squared_euclidean]\n"
        "print(*[type(f._cache).__name__ for f in fs], sum(fs[2].stats.cache_hits.values()))\n"
    )
    cached = "from cartrack.workarounds import cache_numba_functions\ncache_numba_functions()\n"
    scripts = Path(__file__).resolve().parents[1] / "scripts"

    def run(code):
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(scripts), "PATH": ""},
        ).stdout.split()

    assert run(functions) == ["NullCache", "NullCache", "NullCache", "0"]
    run(cached + functions)  # fills the cache if this environment's is empty
    assert run(cached + functions) == ["FunctionCache", "FunctionCache", "FunctionCache", "2"]
