"""Per-sample QC on tiny hand-made samples."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from blood_stress import make_blood
from scipy.stats import binom

from cartrack.params import QcParams
from cartrack.qc import (
    add_qc_metrics,
    expected_doublet_rate_from_loading,
    flag_low_quality,
    mad_outlier,
    qc_by_cell_type,
    run_qc,
)

DEFAULTS = QcParams.from_config()

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
    add_qc_metrics(a, exclude_ig_from_top_genes=True)
    assert {"pct_counts_mt", "pct_counts_ribo", "pct_counts_hb"} <= set(a.obs)
    thresholds = flag_low_quality(a, DEFAULTS)
    assert a.obs["low_quality"].iloc[:20].all()
    assert a.obs["low_quality"].iloc[20:].mean() < 0.02
    assert thresholds["min_total_counts"] < thresholds["max_total_counts"]


@pytest.mark.parametrize("exclude_ig", [True, False])
def test_plasma_cells_survive_top_genes_filter_only_when_ig_excluded(exclude_ig):
    a = sample(n=400, n_plasma=12)
    params = QcParams.from_config(
        exclude_ig_from_top_genes=exclude_ig, min_cells_for_doublets=10**6
    )
    kept, summary = run_qc(a, params, seed=0)
    plasma_kept = np.isin([f"c{i}" for i in range(12)], kept.obs_names).mean()
    if exclude_ig:
        assert plasma_kept == 1.0
    else:
        assert plasma_kept < 0.5  # the failure mode the option exists for
    assert summary["n_cells_input"] == 400
    assert summary["n_cells_passed"] == kept.n_obs


def test_doublets_are_called_per_sample_and_counted():
    a = sample(n=300, seed=1)
    params = QcParams.from_config(expected_doublet_rate=0.05, doublet_threshold="expected")
    kept, summary = run_qc(a, params, seed=0)
    assert summary["n_doublets"] == int(a.obs["doublet"].sum())
    assert 5 <= summary["n_doublets"] <= 25
    assert summary["doublet_method"] == "expected" and summary["expected_doublet_rate"] == 0.05
    assert summary["n_cells_input"] == (
        summary["n_cells_passed"] + summary["n_doublets"] + summary["n_low_quality"]
    )
    assert a.obs.loc[~a.obs["low_quality"], "doublet_score"].notna().all()


@pytest.mark.parametrize("exact", [True, False])
def test_scrublet_neighbours_exact_unless_asked(monkeypatch, exact):
    """3,000 cells (9,000 with simulated doublets) is where scanpy switches scrublet to
    pynndescent; doublet_exact_neighbors keeps it on brute force (issue 15)."""
    import pynndescent

    used = []

    class Spy(pynndescent.PyNNDescentTransformer):
        def fit_transform(self, *args, **kwargs):
            used.append(True)
            raise RuntimeError("pynndescent used")

    monkeypatch.setattr(pynndescent, "PyNNDescentTransformer", Spy)
    a = sample(n=3000, seed=2)
    if exact:
        _, summary = run_qc(a, QcParams.from_config(doublet_exact_neighbors=True), seed=0)
        assert not used and a.obs.loc[~a.obs["low_quality"], "doublet_score"].notna().all()
    else:
        with pytest.raises(RuntimeError, match="pynndescent used"):
            run_qc(a, QcParams.from_config(doublet_exact_neighbors=False), seed=0)


def test_small_samples_skip_doublet_detection():
    a = sample(n=60)
    kept, summary = run_qc(a, QcParams.from_config(min_cells_for_doublets=100), seed=0)
    assert summary["n_doublets"] == 0 and a.obs["doublet_score"].isna().all()


def test_losing_every_cell_is_a_clear_error():
    from cartrack.design import InputError

    a = sample(n=150)
    with pytest.raises(InputError, match=r"QC removed all 150 cells: median \d+ genes"):
        run_qc(a, QcParams.from_config(min_genes=10_000), seed=0)


def test_expected_rate_follows_the_loading():
    assert expected_doublet_rate_from_loading(1000, rate_per_1000=0.008) == pytest.approx(0.008)
    assert expected_doublet_rate_from_loading(10_000, rate_per_1000=0.008) == pytest.approx(0.08)
    assert DEFAULTS.doublet_rate_per_1000 == 0.008  # 10x's multiplet rate
    a = sample(n=500)
    _, summary = run_qc(a, DEFAULTS, seed=0)
    assert summary["expected_doublet_rate"] == pytest.approx(0.004)


BLOOD = {"B_naive": 300, "B_memory": 200, "plasmablast": 100, "T_CD4": 350, "T_CD8": 200,
         "NK": 100, "monocyte": 250}  # fmt: skip


def test_memory_b_and_plasmablast_singletons_survive_doublet_removal():
    """1,500 cells with 1.2% heterotypic doublets (the loading's rate)."""
    a = make_blood(BLOOD, seed=4, doublet_rate=0.012)
    _, summary = run_qc(a, DEFAULTS, seed=0)
    obs = a.obs[~a.obs["low_quality"]]
    for cell_type in ("B_memory", "plasmablast"):
        assert (~obs.loc[obs["truth"] == cell_type, "doublet"]).mean() >= 0.95, cell_type
    assert obs.loc[obs["truth"] == "doublet", "doublet"].mean() >= 0.3  # power
    assert summary["n_doublets"] <= binom.isf(1e-3, a.n_obs, 2 * summary["expected_doublet_rate"])


def test_no_doublets_no_mass_removal():
    """Null: a clean sample loses at most the loading's bound, not a fixed 6%."""
    a = make_blood(BLOOD, seed=5)
    _, summary = run_qc(a, DEFAULTS, seed=0)
    rate = expected_doublet_rate_from_loading(a.n_obs, rate_per_1000=0.008)
    assert summary["n_doublets"] <= binom.isf(1e-3, a.n_obs, 2 * rate) < 0.06 * a.n_obs
    expected = QcParams.from_config(doublet_threshold="expected")
    _, fixed = run_qc(make_blood(BLOOD, seed=5), expected, seed=0)
    assert fixed["n_doublets"] == pytest.approx(rate * a.n_obs, abs=2)


def test_qc_by_cell_type_counts_what_qc_removed():
    cells = pd.DataFrame(
        {
            "sample": ["S1"] * 5 + ["S2"],
            "qc_cell_type": ["B_memory", "B_memory", "T_CD4", "other", "plasmablast", "NK"],
            "low_quality": [False, True, False, True, False, False],
            "doublet": [True, False, False, True, False, False],
        }
    )
    sheet = pd.DataFrame(
        {"patient": ["P", "P"], "day": [0, 14], "tissue": ["PB", "PB"]},
        index=pd.Index(["S1", "S2"], name="sample"),
    )
    t = qc_by_cell_type(cells, sheet).set_index(["sample", "cell_type"])
    mem = t.loc[("S1", "B_memory")]
    assert (mem["n_cells_input"], mem["n_low_quality"], mem["n_doublets"]) == (2, 1, 1)
    assert mem["n_cells_passed"] == 0 and mem["fraction_removed"] == 1
    assert t.loc[("S1", "other"), "n_doublets"] == 0  # low quality first, counted once
    assert t.loc[("S2", "NK"), "n_cells_passed"] == 1
    assert np.isnan(t.loc[("S2", "T_CD4"), "fraction_removed"])
    assert len(t) == 2 * 12
    as_read = cells.assign(  # flags as a TSV round trip may leave them
        low_quality=cells["low_quality"].map({True: "true", False: "false"}),
        doublet=cells["doublet"].map({True: "True", False: "False"}),
    )
    again = qc_by_cell_type(as_read, sheet).set_index(["sample", "cell_type"])
    pd.testing.assert_frame_equal(again, t)
