"""Per-sample QC on tiny hand-made samples."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cartrack.qc import add_qc_metrics, flag_low_quality, mad_outlier, run_qc

GENES = (
    [f"MT-G{i}" for i in range(5)] + [f"RPS{i}" for i in range(5)] + ["HBB"]
    + ["IGHG1", "IGKC", "JCHAIN"] + [f"G{i}" for i in range(300)]
)  # fmt: skip


def sample(n: int = 400, seed: int = 0, n_plasma: int = 0) -> ad.AnnData:
    """Cells with Poisson counts; plasma cells put half their counts on Ig genes."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0, 1, len(GENES))
    base[:5] = 2.0  # mitochondrial genes
    base /= base.sum()
    lib = rng.lognormal(np.log(2000), 0.3, n)
    mean = lib[:, None] * base[None, :]
    for i in range(n_plasma):  # Ig transcripts on top of a normal transcriptome
        mean[i, [11, 12, 13]] = lib[i] * np.array([0.6, 0.3, 0.1])
    x = rng.poisson(mean).astype(np.float32)
    a = ad.AnnData(sp.csr_matrix(x), var=pd.DataFrame(index=GENES))
    a.obs_names = [f"c{i}" for i in range(n)]
    return a


def test_mad_outlier():
    x = np.r_[np.ones(50), 1.1 * np.ones(49), 100.0]
    assert mad_outlier(x, 5).tolist() == [False] * 99 + [True]
    assert not mad_outlier(np.arange(100.0), 5).any()


def test_metrics_and_low_quality_cells():
    a = sample()
    x = a.X.toarray()
    x[:10, :5] += 2000  # broken cells: mitochondrial reads
    x[10:20] = np.floor(x[10:20] * 0.02)  # almost empty droplets
    a.X = sp.csr_matrix(x)
    add_qc_metrics(a)
    assert {"pct_counts_mt", "pct_counts_ribo", "pct_counts_hb"} <= set(a.obs)
    thresholds = flag_low_quality(a)
    assert a.obs["low_quality"].iloc[:20].all()
    assert a.obs["low_quality"].iloc[20:].mean() < 0.02
    assert thresholds["min_total_counts"] < thresholds["max_total_counts"]


@pytest.mark.parametrize("exclude_ig", [True, False])
def test_plasma_cells_survive_top_genes_filter_only_when_ig_excluded(exclude_ig):
    a = sample(n=400, n_plasma=12)
    kept, summary = run_qc(a, exclude_ig_from_top_genes=exclude_ig, min_cells_for_doublets=10**6)
    plasma_kept = np.isin([f"c{i}" for i in range(12)], kept.obs_names).mean()
    if exclude_ig:
        assert plasma_kept == 1.0
    else:
        assert plasma_kept < 0.5  # the failure mode the option exists for
    assert summary["n_cells_input"] == 400
    assert summary["n_cells_passed"] == kept.n_obs


def test_doublets_are_called_per_sample_and_counted():
    a = sample(n=300, seed=1)
    kept, summary = run_qc(a, expected_doublet_rate=0.05, seed=0)
    assert summary["n_doublets"] == int(a.obs["doublet"].sum())
    assert 5 <= summary["n_doublets"] <= 25
    assert summary["n_cells_input"] == (
        summary["n_cells_passed"] + summary["n_doublets"] + summary["n_low_quality"]
    )
    assert a.obs.loc[~a.obs["low_quality"], "doublet_score"].notna().all()


def test_small_samples_skip_doublet_detection():
    a = sample(n=60)
    kept, summary = run_qc(a, min_cells_for_doublets=100)
    assert summary["n_doublets"] == 0 and a.obs["doublet_score"].isna().all()


def test_losing_every_cell_is_a_clear_error():
    from cartrack.design import InputError

    a = sample(n=150)
    with pytest.raises(InputError, match=r"QC removed all 150 cells: median \d+ genes"):
        run_qc(a, min_genes=10_000)
