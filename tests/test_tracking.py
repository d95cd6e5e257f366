"""Tests for cartrack.tracking, tracking_stats and b_cell_tables: the elimination test,
status rules, recovery and diversity.

The statistical tests use a small generator of tracked cells (no V(D)J parsing): clones of a
heavy-tailed repertoire dealt to baseline and post-infusion samples.
"""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cartrack.b_cell_tables import b_cell_table, b_recovery, diversity_table, elimination_table
from cartrack.bcr import build_airr, clean_chains
from cartrack.design import InputError, phase
from cartrack.params import CloneParams, TrackingParams
from cartrack.tracking import clone_tables as _clone_tables
from cartrack.tracking import sheet_table, track_clones
from cartrack.tracking_stats import (
    clone_status,
    hill_numbers,
    p_missed,
    q_values,
    rarefied_hill_numbers,
    shannon_evenness,
    top_clone_fraction,
)

ALPHA = 0.05
TRACKING = TrackingParams.from_config()  # the config schema's defaults


def clone_tables(cells, samples, **kwargs):
    """:func:`cartrack.tracking.clone_tables`, the schema's defaults for what a test omits."""
    defaults = {"fdr_family": TRACKING.fdr_family, "compartments": TRACKING.compartments}
    return _clone_tables(cells, samples, **{**defaults, **kwargs})


def run_tracking(parts, gex, sheet, **tracking):
    """:func:`cartrack.tracking.track_clones` with the schema's defaults but `tracking`."""
    return track_clones(
        parts,
        gex,
        sheet,
        tracking=TrackingParams.from_config(tracking),
        clone=CloneParams.from_config(),
        productive_only=True,
    )


ROOT = "CARDGYSSSWYPYYYGMDVW"
LIGHT = "CQQYGSSPWTF"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def heavy(bc, junction=ROOT, v="IGHV3-23", j="IGHJ6", c="IGHG1"):
    return {
        "barcode": bc,
        "locus": "IGH",
        "v_call": v,
        "j_call": j,
        "c_call": c,
        "junction_aa": junction,
        "productive": True,
        "umi_count": 10,
    }


def light(bc, junction=LIGHT):
    return {
        "barcode": bc,
        "locus": "IGK",
        "v_call": "IGKV3-20",
        "j_call": "IGKJ1",
        "c_call": "IGKC",
        "junction_aa": junction,
        "productive": True,
        "umi_count": 5,
    }


def bh(p):
    """Benjamini-Hochberg by hand: q_(i) = min over j >= i of p_(j) m / j."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    m = len(p)
    q = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1)
    return out


# --------------------------------------------------------------------- generator
def sample_sheet(rows: list[tuple]) -> pd.DataFrame:
    """:func:`sheet_table` of (sample, patient, day, tissue[, has_bcr]) rows."""
    sheet = pd.DataFrame(
        [r[:4] for r in rows], columns=["sample", "patient", "day", "tissue"]
    ).assign(bcr=[("x.csv" if (len(r) < 5 or r[4]) else "") for r in rows])
    return sheet_table(sheet, post_min_day=28, visit_window_days=3)


def dp_frame(**clones) -> pd.DataFrame:
    """A per-clone CD19+BCMA+ table (clone -> (cd19_bcma_fraction, double_positive)), as
    cartrack.double_positive.clone_double_positive returns it."""
    rows = [
        {"clone_id": k, "cd19_bcma_fraction": f, "double_positive": d, "dp_confidence": 0.999}
        for k, (f, d) in clones.items()
    ]
    return pd.DataFrame(rows)


def cells_of(counts: list[tuple], samples: pd.DataFrame) -> pd.DataFrame:
    """Tracked cells from (clone, sample, n, cell_type[, double_positive]) entries."""
    rows = []
    for entry in counts:
        clone, sample, n, cell_type = entry[:4]
        dp = entry[4] if len(entry) > 4 else False
        rows += [{"clone_id": clone, "sample": sample, "cell_type": cell_type,
                  "double_positive": dp}] * n  # fmt: skip
    cells = pd.DataFrame(rows)
    cells.index = [f"c{i}" for i in range(len(cells))]
    meta = samples.loc[cells["sample"], ["patient", "day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def repertoire_cohort(
    rng,
    *,
    n_patients: int,
    n_baseline: int,
    ratio: float,
    eliminated_share: float = 0.0,
    n_clones: int = 3000,
    exponent: float = 1.1,
):
    """Cohort whose clone frequencies follow a power law (heavy tail of expanded clones).

    Per patient: baseline blood with `n_baseline` cells, two post-infusion blood samples
    with `ratio` times as many cells in all. A share of the clones (chosen at random, size
    blind) is eliminated: their frequency after infusion goes to new clones. One clone in
    five is naive, the others antigen-experienced. Returns (cells, samples, eliminated)
    with `eliminated` the set of truly eliminated clone ids.
    """
    freq = np.arange(1, n_clones + 1, dtype=float) ** -exponent
    freq /= freq.sum()
    rows, frames, gone = [], [], set()
    for i in range(n_patients):
        pid = f"P{i}"
        rows += [(f"{pid}_base", pid, -5, "PB"), (f"{pid}_m3", pid, 90, "PB"),
                 (f"{pid}_m6", pid, 180, "PB")]  # fmt: skip
        naive = rng.random(n_clones) < 0.2
        out = rng.random(n_clones) < eliminated_share
        types = np.where(naive, "B_naive", "B_memory")
        ids = np.array([f"{pid}_C{k}" for k in range(n_clones)])
        new = np.array([f"{pid}_N{k}" for k in range(n_clones)])
        gone |= set(ids[out])
        n_post = int(round(n_baseline * ratio))
        draws = {
            f"{pid}_base": (rng.choice(n_clones, n_baseline, p=freq), False),
            f"{pid}_m3": (rng.choice(n_clones, n_post // 2, p=freq), True),
            f"{pid}_m6": (rng.choice(n_clones, n_post - n_post // 2, p=freq), True),
        }
        for sample, (k, after) in draws.items():
            clone = np.where(after & out[k], new[k], ids[k])
            frames.append(
                pd.DataFrame({"clone_id": clone, "sample": sample, "cell_type": types[k]}).assign(
                    double_positive=False
                )
            )
    samples = sample_sheet(rows)
    cells = pd.concat(frames, ignore_index=True)
    cells.index = [f"c{i}" for i in range(len(cells))]
    meta = samples.loc[cells["sample"], ["patient", "day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells, samples, gone


# --------------------------------------------------------------------- the test itself
def seen(n, share):
    """P(X >= 1), X ~ Binomial(n, share): the chance a clone of n cells is seen at baseline."""
    return 1 - (1 - share) ** n


def test_p_missed_is_the_exact_conditional_binomial_test():
    # unseen after infusion: pi ** n_b, given that the clone was seen at baseline at all
    assert p_missed(3, 0, 100, 300)[()] == pytest.approx(0.25**3 / seen(3, 0.25))
    # seen after: scipy's exact one-sided binomial test of n_b out of n_b + n_p, given n_b >= 1
    for nb, npost, big_b, big_p in [(10, 3, 20, 20), (4, 1, 50, 200), (1, 5, 10, 10)]:
        share = big_b / (big_b + big_p)
        ref = stats.binomtest(nb, nb + npost, share, alternative="greater")
        assert p_missed(nb, npost, big_b, big_p)[()] == pytest.approx(
            ref.pvalue / seen(nb + npost, share)
        )
    # a baseline singleton never seen again carries no evidence, however deep post is
    assert p_missed(1, 0, 2, 106)[()] == pytest.approx(1.0)
    assert np.isnan(p_missed(0, 4, 10, 10)[()])  # not seen at baseline: no test
    assert p_missed(5, 0, 10, 0)[()] == 1.0  # nothing comparable sequenced after infusion


def test_p_missed_is_calibrated_among_baseline_seen_clones():
    """Under the null (every clone at one frequency before and after), clones selected as
    baseline-seen get p_missed <= a with probability <= a, at any depth ratio; without
    conditioning on being seen, a singleton's p is N_b / (N_b + N_p) with certainty."""
    rng = np.random.default_rng(7)
    for big_b, big_p in [(2, 106), (20, 60), (100, 100)]:
        share = big_b / (big_b + big_p)
        n = rng.integers(1, 8, size=200_000)
        nb = rng.binomial(n, share)
        p = p_missed(nb[nb > 0], (n - nb)[nb > 0], big_b, big_p)
        for a in (0.01, 0.05, 0.2):
            assert (p <= a).mean() <= a + 0.005, (big_b, big_p, a)


def test_q_values_restricted_to_testable_clones():
    p = np.array([0.001, 0.01, 0.5, np.nan, 0.25])
    testable = np.array([True, True, True, True, False])
    q = q_values(p, testable=testable)
    assert q[:3] == pytest.approx(bh([0.001, 0.01, 0.5]))
    assert np.isnan(q[3]) and q[4] == 1.0
    assert q_values(p)[[0, 1, 2, 4]] == pytest.approx(bh([0.001, 0.01, 0.5, 0.25]))


def test_status_rules():
    status = clone_status(
        n_baseline=[5, 5, 5, 0, 0, 0, 3, 0],
        n_post=[2, 0, 0, 4, 4, 0, 0, 0],
        n_early=[0, 0, 0, 0, 0, 2, 0, 0],
        q_value=[0.5, 0.01, 0.2, np.nan, np.nan, np.nan, 0.01, np.nan],
        resampled=[True, True, True, True, True, True, False, True],
        baseline_sampled=[True, True, True, True, False, True, True, True],
        alpha=ALPHA,
    )
    assert list(status) == [
        "persistent",
        "eliminated",
        "not_assessable",  # q too large
        "emergent",
        "not_assessable",  # no baseline sample in that tissue: never emergent
        "early_only",
        "not_assessable",  # tissue not sampled again after infusion
        "not_assessable",
    ]


def test_visit_window_decides_phase_once():
    assert list(phase([-3, 0, 1, 24, 25, 27, 28], post_min_day=28, visit_window_days=3)) == [
        "baseline", "baseline", "early", "early", "post", "post", "post",
    ]  # fmt: skip
    assert phase(27, post_min_day=28, visit_window_days=0) == "early"
    with pytest.raises(ValueError):
        phase(27, post_min_day=28, visit_window_days=28)


# --------------------------------------------------------------------- by hand
def _by_hand_samples(window: int = 3):
    sheet = pd.DataFrame(
        {
            "sample": ["base", "d14", "d28", "m3"],
            "patient": "P1",
            "day": [-7, 14, 27, 90],
            "tissue": "PB",
            "timepoint": ["baseline", "D14", "D28", "M3"],
            "bcr": "x.csv",
        }
    )
    return sheet_table(sheet, post_min_day=28, visit_window_days=window)


BY_HAND = [
    ("A", "base", 10, "B_memory"),
    ("B", "base", 2, "B_memory"),
    ("C", "base", 6, "plasmablast", True),
    ("C", "base", 2, "plasmablast"),
    ("N", "base", 5, "B_naive"),
    ("A", "d14", 1, "B_memory"),
    ("X", "d14", 4, "B_memory"),
    ("A", "d28", 3, "B_memory"),  # day 27: after infusion by the 3-day visit window
    ("E", "m3", 20, "B_naive"),
    ("F", "m3", 17, "B_memory"),
]


def test_clone_tables_by_hand():
    """Antigen-experienced: 20 cells at baseline, 3 + 17 after; naive: 5 and 20."""
    samples = _by_hand_samples()
    cells = cells_of(BY_HAND, samples)
    cells["heavy_v_gene"] = np.where(cells["clone_id"] == "C", "IGHV4-34", "IGHV1-2")
    cells["isotype"] = np.where(cells["clone_id"] == "E", "IgM", "IgG1")
    cells["mu_freq"] = np.where(cells["clone_id"] == "E", 0.0, 0.05)
    clones, timeline = clone_tables(
        cells, samples, alpha=ALPHA, double_positive=dp_frame(C=(0.75, True), B=(0.0, False))
    )
    c = clones.set_index("clone_id")
    assert list(c.loc["A", ["n_cells", "n_cells_baseline", "n_cells_post"]]) == [14, 10, 3]
    assert c.loc["A", "n_cells_early"] == 1
    assert (c.loc["A", "first_day"], c.loc["A", "last_day"]) == (-7, 27)
    ae, naive = c.loc["C"], c.loc["N"]
    assert ae["compartment"] == "antigen_experienced" and naive["compartment"] == "naive"
    assert (ae["n_comparable_baseline"], ae["n_comparable_post"]) == (20, 20)
    assert (naive["n_comparable_baseline"], naive["n_comparable_post"]) == (5, 20)
    assert (c["tissue_assessed"].dropna() == "PB").all()
    p = {
        "A": stats.binomtest(10, 13, 0.5, alternative="greater").pvalue / seen(13, 0.5),
        "C": 0.5**8 / seen(8, 0.5),
        "N": 0.2**5 / seen(5, 0.2),
        "B": 0.5**2 / seen(2, 0.5),
    }
    for clone, value in p.items():
        assert c.loc[clone, "p_missed"] == pytest.approx(value), clone
    # B (2 cells) cannot reach alpha even if gone: outside the BH family, q = 1
    assert not c.loc["B", "testable"] and c.loc["B", "q_value"] == 1.0
    q = bh([p["A"], p["C"], p["N"]])
    assert list(c.loc[["A", "C", "N"], "q_value"]) == pytest.approx(list(q))
    status = c["status"].to_dict()
    assert status == {
        "A": "persistent",
        "B": "not_assessable",
        "C": "eliminated",
        "N": "eliminated",
        "E": "emergent",
        "F": "emergent",
        "X": "early_only",
    }
    assert np.isnan(c.loc["E", "p_missed"]) and np.isnan(c.loc["X", "q_value"])
    assert c.loc["C", "cd19_bcma_fraction"] == pytest.approx(0.75)
    assert bool(c.loc["C", "double_positive"]) and not bool(c.loc["B", "double_positive"])
    assert bool(c.loc["C", "ighv4_34"]) and not bool(c.loc["A", "ighv4_34"])
    assert c.loc["E", "mean_shm"] == 0 and c.loc["A", "mean_shm"] == pytest.approx(0.05)
    t = timeline.set_index(["clone_id", "sample"])
    assert t.loc[("A", "d28"), "clone_fraction"] == pytest.approx(1.0)
    assert t.loc[("A", "base"), "clone_fraction"] == pytest.approx(10 / 25)
    assert t.loc[("A", "d28"), "phase"] == "post"
    b_cells = pd.DataFrame(
        {"patient": ["P1"], "sample": ["base"], "tissue": ["PB"], "day": [-7],
         "b_fraction": [0.1], "naive_fraction": [0.5], "n_b_cells": [50]}
    )  # fmt: skip
    elim = elimination_table(clones, b_cells, recovery_level=0.01, recovery_min_b_cells=20).iloc[0]
    assert (elim["n_dp_clones"], elim["n_dp_eliminated"], elim["n_dp_persistent"]) == (1, 1, 0)
    assert elim["expected_false_eliminated"] == pytest.approx(p["C"] + p["N"])
    assert elim["n_early_only"] == 1 and pd.isna(elim["b_recovery_day"])
    # without the visit window the day-27 visit is early: A is no longer seen after infusion
    strict = _by_hand_samples(window=0)
    clones, _ = clone_tables(cells_of(BY_HAND, strict), strict, alpha=ALPHA)
    assert clones.set_index("clone_id").loc["A", "n_cells_post"] == 0


def test_marrow_clone_needs_marrow_after_infusion():
    """A marrow plasma-cell clone is not eliminated by blood samples alone."""
    rows = [("base_pb", "P1", -3, "PB"), ("base_bm", "P1", -3, "BM"), ("m3", "P1", 90, "PB"),
            ("m6", "P1", 180, "PB")]  # fmt: skip
    counts = [
        ("LLPC", "base_bm", 12, "plasma_cell", True),  # persists in marrow, never in blood
        ("M", "base_bm", 30, "plasma_cell"),
        ("M", "base_pb", 40, "B_memory"),
        ("M", "m3", 40, "B_memory"),
        ("M", "m6", 40, "B_memory"),
        ("Q", "m6", 20, "plasma_cell"),
    ]
    samples = sample_sheet(rows)
    clones, _ = clone_tables(cells_of(counts, samples), samples, alpha=ALPHA)
    c = clones.set_index("clone_id")
    assert c.loc["LLPC", "tissue_assessed"] == "BM"
    assert c.loc["LLPC", "n_comparable_post"] == 0
    assert c.loc["LLPC", "status"] == "not_assessable"
    assert c.loc["M", "status"] == "persistent" and c.loc["M", "tissue_assessed"] == "PB"
    # with marrow taken again (deep, without it) the same clone is eliminated
    rows.append(("m6_bm", "P1", 180, "BM"))
    counts.append(("M", "m6_bm", 80, "plasma_cell"))
    samples = sample_sheet(rows)
    clones, _ = clone_tables(cells_of(counts, samples), samples, alpha=ALPHA)
    assert clones.set_index("clone_id").loc["LLPC", "status"] == "eliminated"


def test_emergent_needs_a_baseline_sample_in_that_tissue():
    rows = [("base", "P1", -3, "PB"), ("m6", "P1", 180, "PB"), ("m6_bm", "P1", 180, "BM")]
    counts = [("A", "base", 5, "B_memory"), ("A", "m6", 5, "B_memory"),
              ("NEW_PB", "m6", 4, "B_naive"), ("NEW_BM", "m6_bm", 4, "plasma_cell")]  # fmt: skip
    samples = sample_sheet(rows)
    clones, _ = clone_tables(cells_of(counts, samples), samples, alpha=ALPHA)
    status = clones.set_index("clone_id")["status"]
    assert status["NEW_PB"] == "emergent"
    assert status["NEW_BM"] == "not_assessable"  # marrow never sampled at baseline
    # a baseline sample without V(D)J does not count as sampled
    samples = sample_sheet([*rows, ("base_bm", "P1", -3, "BM", False)])
    clones, _ = clone_tables(cells_of(counts, samples), samples, alpha=ALPHA)
    assert clones.set_index("clone_id").loc["NEW_BM", "status"] == "not_assessable"


def test_persisting_double_positive_clone_is_persistent():
    rows = [("base", "P1", -3, "PB"), ("d14", "P1", 14, "PB"), ("m3", "P1", 90, "PB"),
            ("m6", "P1", 180, "PB")]  # fmt: skip
    counts = [("DP", "base", 8, "plasmablast", True), ("DP", "base", 4, "plasma_cell"),
              ("DP", "m6", 1, "plasma_cell", True), ("GONE", "base", 20, "B_memory", True),
              ("R", "base", 30, "B_memory"), ("R", "m3", 40, "B_memory"),
              ("R", "m6", 40, "B_memory")]  # fmt: skip
    samples = sample_sheet(rows)
    dp = dp_frame(DP=(8 / 12, True), GONE=(1.0, True), R=(0.0, False))
    clones, _ = clone_tables(cells_of(counts, samples), samples, alpha=ALPHA, double_positive=dp)
    c = clones.set_index("clone_id")
    assert c.loc["DP", "double_positive"] and c.loc["DP", "status"] == "persistent"
    assert c.loc["GONE", "double_positive"] and c.loc["GONE", "status"] == "eliminated"


# --------------------------------------------------------------------- calibration, power
def _called_share(clones: pd.DataFrame, clone_ids=None) -> pd.Series:
    base = clones.loc[clones["n_cells_baseline"] > 0]
    if clone_ids is not None:
        base = base.loc[base["clone_id"].isin(clone_ids)]
    return base.groupby("patient")["status"].apply(lambda s: (s == "eliminated").mean())


@pytest.mark.parametrize("ratio", [1, 3, 10, 30, 100])
@pytest.mark.parametrize("fdr_family", ["testable", "all"])
def test_null_calibration(ratio, fdr_family):
    """Nothing eliminated: the share of baseline-seen clones called eliminated <= alpha.

    Ratios of 30 and 100 occur within a compartment (the demo's null patient: 2 naive BCR
    cells at baseline, 106 after): there every baseline singleton had p_missed = N_b / (N_b +
    N_p) < alpha before the test accounted for the clones being selected as baseline-seen."""
    rng = np.random.default_rng(ratio)
    cells, samples, _ = repertoire_cohort(rng, n_patients=30, n_baseline=300, ratio=ratio)
    clones, _ = clone_tables(cells, samples, alpha=ALPHA, fdr_family=fdr_family)
    share = _called_share(clones)
    assert len(share) == 30
    assert share.max() <= ALPHA, share.describe()
    assert share.mean() <= ALPHA / 5, share.mean()
    # the plug-in test (1 - f) ** N_post it replaces fails this null at ratios 3 and 10 (at
    # 30-100 nearly every clone is seen again, so it has little left to get wrong)
    base = clones.loc[clones["n_cells_baseline"] > 0]
    n_post = cells.loc[cells["phase"] == "post"].groupby("patient").size()
    n_base = cells.loc[cells["phase"] == "baseline"].groupby("patient").size()
    f = base["n_cells_baseline"] / base["patient"].map(n_base)
    plug_in = ((1 - f) ** base["patient"].map(n_post) < ALPHA) & (base["n_cells_post"] == 0)
    if ratio in (3, 10):
        assert plug_in.mean() > 3 * ALPHA


@pytest.mark.parametrize("ratio", [1, 3, 10])
def test_power_for_clones_of_five_or_more_cells(ratio):
    """Most baseline clones eliminated (CAR-T): those with >= 5 baseline cells are found."""
    rng = np.random.default_rng(100 + ratio)
    cells, samples, gone = repertoire_cohort(
        rng, n_patients=10, n_baseline=400, ratio=ratio, eliminated_share=0.8
    )
    clones, _ = clone_tables(cells, samples, alpha=ALPHA)
    c = clones.set_index("clone_id")
    # compartment counts: five baseline cells in the clone's own tissue and compartment
    big = c.loc[c.index.isin(gone) & (c["n_assessed_baseline"] >= 5)]
    assert len(big) >= 50
    power = (big["status"] == "eliminated").mean()
    assert power >= 0.8, power
    persisting = c.loc[~c.index.isin(gone) & (c["n_cells_baseline"] > 0)]
    assert (persisting["status"] == "eliminated").mean() <= ALPHA


REAL_REPERTOIRES = [
    "scirpy/10x/sc5p_v2_hs_melanoma_10k_b_filtered_contig_annotations.csv.gz",
    "immunarch/flu.csv.gz",  # two lanes of a vaccinee: clonotypes are per lane
]


@pytest.mark.parametrize("path", REAL_REPERTOIRES)
def test_null_on_real_repertoires(real, path):
    """Cells of a real repertoire (Cell Ranger clonotypes) dealt at random between baseline
    and post, post four times deeper: at most alpha of the baseline clones called eliminated."""
    contigs = pd.read_csv(real / path).dropna(subset=["raw_clonotype_id"])
    lane = contigs["sample"].astype(str) + "_" if "sample" in contigs else ""
    cells = contigs.assign(
        cell=lane + contigs["barcode"], clone=lane + contigs["raw_clonotype_id"]
    ).drop_duplicates("cell")
    samples = sample_sheet([("base", "S", -2, "PB"), ("m6", "S", 180, "PB")])
    rng = np.random.default_rng(7)
    for _ in range(5):
        dealt = np.where(rng.random(len(cells)) < 0.2, "base", "m6")
        entries = (
            pd.DataFrame({"clone": cells["clone"].to_numpy(), "sample": dealt})
            .groupby(["clone", "sample"])
            .size()
        )
        tracked = cells_of([(c, s, int(n), "B_memory") for (c, s), n in entries.items()], samples)
        clones, _ = clone_tables(tracked, samples, alpha=ALPHA)
        assert _called_share(clones).max() <= ALPHA


# --------------------------------------------------------------------- recovery
def test_b_recovery_by_hand():
    b = pd.DataFrame(
        {
            "patient": "P1",
            "sample": [f"s{i}" for i in range(7)],
            "tissue": ["PB", "PB", "PB", "PB", "BM", "PB", "PB"],
            "day": [-5, 14, 28, 90, 100, 120, 180],
            "b_fraction": [0.10, 0.0, 0.002, 0.005, 0.5, 0.02, 0.05],
            "naive_fraction": [0.2, np.nan, 0.9, 0.8, 0.1, 0.85, 0.7],
            "n_b_cells": [50, 0, 1, 2, 200, 25, 60],
        }
    )
    rec = b_recovery(b, level=0.01, min_b_cells=20).loc["P1"]
    assert rec["nadir_day"] == 14
    assert rec["b_recovery_day"] == 120  # BM at day 100 does not count
    assert rec["b_recovery_after_day"] == 90  # recovery lies between day 90 and day 120
    assert rec["naive_fraction_at_recovery"] == pytest.approx(0.85)
    few = b.assign(n_b_cells=np.where(b["day"] == 120, 19, b["n_b_cells"]))
    rec = b_recovery(few, level=0.01, min_b_cells=20).loc["P1"]
    assert pd.isna(rec["naive_fraction_at_recovery"])
    never = b.assign(b_fraction=np.where(b["day"] > 0, 0.001, 0.1))
    assert pd.isna(b_recovery(never, level=0.01, min_b_cells=20).loc["P1", "b_recovery_day"])
    # B cells never below the level: no aplasia, so no recovery day either
    flat = b.assign(b_fraction=np.where(b["day"] > 0, 0.2, 0.1))
    rec = b_recovery(flat, level=0.01, min_b_cells=20).loc["P1"]
    assert pd.isna(rec["b_recovery_day"]) and pd.isna(rec["b_recovery_after_day"])


# --------------------------------------------------------------------- diversity
def test_diversity_metrics():
    assert shannon_evenness([3, 3, 3, 3]) == pytest.approx(1.0)
    h = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    assert shannon_evenness([2, 1, 1]) == pytest.approx(h / np.log(3))
    assert np.isnan(shannon_evenness([7])) and np.isnan(shannon_evenness([]))
    assert top_clone_fraction([2, 1, 1]) == pytest.approx(0.5)
    assert np.isnan(top_clone_fraction([]))
    assert hill_numbers([2, 1, 1]) == pytest.approx((3, np.exp(h), 1 / (0.25 + 2 / 16)))


def test_rarefied_hill_numbers_match_subsampling():
    """The exact expectation equals the mean over random subsamples without replacement."""
    rng = np.random.default_rng(1)
    sizes = np.array([40, 12, 6, 3, 2, 2, 1, 1, 1, 1, 1])
    cells = np.repeat(np.arange(len(sizes)), sizes)
    depth = 20
    sims = np.array([
        [*hill_numbers(np.bincount(rng.choice(cells, depth, replace=False)))]
        for _ in range(4000)
    ])  # fmt: skip
    q0, q1, q2, coverage = rarefied_hill_numbers(sizes, depth)
    assert q0 == pytest.approx(sims[:, 0].mean(), rel=0.01)
    # Chao et al.'s q = 1, 2 are functions of the expected frequency counts, close to the
    # mean of the subsamples' values
    assert q1 == pytest.approx(sims[:, 1].mean(), rel=0.05)
    assert q2 == pytest.approx(sims[:, 2].mean(), rel=0.1)
    assert 0 < coverage < 1
    n = sizes.sum()
    assert rarefied_hill_numbers(sizes, n)[0] == pytest.approx(len(sizes))
    assert np.isnan(rarefied_hill_numbers(sizes, n + 1)[0])


def test_rarefied_diversity_does_not_follow_depth():
    """Same repertoire sampled 300 and 3000 deep: raw richness grows, rarefied does not."""
    rng = np.random.default_rng(2)
    cells, samples, _ = repertoire_cohort(rng, n_patients=5, n_baseline=300, ratio=10)
    div = diversity_table(cells, samples, min_cells=20)
    base, post = div[div["day"] < 0], div[div["day"] == 180]
    assert (base["depth"] == 300).all()
    assert (post["hill_q0"].to_numpy() > 3 * base["hill_q0"].to_numpy()).all()
    ratio = post["hill_q0_rarefied"].to_numpy() / base["hill_q0_rarefied"].to_numpy()
    assert np.abs(np.log(ratio)).max() < np.log(1.25), ratio


# --------------------------------------------------------------------- end to end
def _parts_and_sheet():
    base = [heavy("a"), light("a"), heavy("b"), light("b"), heavy("c"), light("c"),
            heavy("d", v="IGHV4-34", c="IGHM"), heavy("nogex"), heavy("tcell"),
            light("lo")]  # fmt: skip
    post = [heavy("n1", v="IGHV1-2", c="IGHM"), heavy("n2", v="IGHV1-3", c="IGHD"),
            heavy("n3", v="IGHV1-8", c="IGHG2")]  # fmt: skip
    parts = [
        build_airr(clean_chains(pd.DataFrame(base)), sample="P1_base"),
        build_airr(clean_chains(pd.DataFrame(post)), sample="P1_m3"),
        build_airr(pd.DataFrame(columns=["barcode"]), sample="P1_d14"),
    ]
    sheet = pd.DataFrame(
        {
            "sample": ["P1_base", "P1_d14", "P1_m3", "P1_m6"],
            "patient": "P1",
            "day": [-3, 14, 90, 180],
            "tissue": "PB",
            "bcr": ["x.csv", "y.csv", "z.csv", ""],
        }
    )
    gex_rows = {
        "P1_base_a": ("plasmablast", 2, 3),
        "P1_base_b": ("plasmablast", 1, 1),
        "P1_base_c": ("B_memory", 3, 0),
        "P1_base_d": ("B_naive", 1, 0),
        "P1_base_lo": ("plasma_cell", 0, 5),
        "P1_base_tcell": ("T_CD4", 0, 0),
        "P1_base_x": ("B_naive", 0, 0),
        "P1_d14_t": ("T_CD8", 0, 0),
        "P1_m3_n1": ("B_transitional", 0, 0),
        "P1_m3_n2": ("B_naive", 0, 0),
        "P1_m3_n3": ("B_naive", 0, 0),
        "P1_m3_t": ("monocyte", 0, 0),
        "P1_m6_t": ("NK", 0, 0),
    }
    gex = pd.DataFrame.from_dict(
        gex_rows, orient="index", columns=["cell_type", "rna_CD19", "rna_TNFRSF17"]
    )
    gex["sample"] = [i.rsplit("_", 1)[0] for i in gex.index]
    gex["patient"], gex["total_counts"] = "P1", 2000.0
    return parts, sheet, gex


def test_track_clones_end_to_end(tmp_path):
    parts, sheet, gex = _parts_and_sheet()
    res = run_tracking(parts, gex, sheet, dp_min_baseline_cells=3, post_min_day=28)
    clones = res.clones.set_index("clone_id")
    big = clones.loc["P1_C1"]
    assert big["n_cells"] == 3  # a, b, c; nogex and tcell are not B-lineage GEX cells
    assert big["cd19_bcma_fraction"] == pytest.approx(2 / 3) and bool(big["double_positive"])
    # antigen-experienced: 3 cells at baseline, none after infusion (the M3 cells are naive)
    assert (big["n_comparable_baseline"], big["n_comparable_post"]) == (3, 0)
    assert big["p_missed"] == 1.0 and big["status"] == "not_assessable"
    assert clones["ighv4_34"].sum() == 1
    qc = res.chain_qc.set_index("sample")
    assert qc.loc["P1_base", "n_bcr_without_gex"] == 1
    assert qc.loc["P1_base", "n_bcr_non_b_lineage"] == 1
    assert qc.loc["P1_d14", "n_bcr_cells"] == 0
    b = res.b_cells.set_index("sample")
    assert list(b.index) == ["P1_base", "P1_d14", "P1_m3", "P1_m6"]
    assert b.loc["P1_base", "n_b_cells"] == 3 and b.loc["P1_base", "n_cells"] == 7
    assert b.loc["P1_base", "naive_fraction"] == pytest.approx(2 / 3)
    assert b.loc["P1_base", "n_bcr_cells"] == 5 and b.loc["P1_base", "n_bcr_with_clone"] == 4
    assert b.loc["P1_base", "igm_igd_fraction"] == pytest.approx(1 / 4)  # heavy chains only
    assert b.loc["P1_m3", "igm_igd_fraction"] == pytest.approx(2 / 3)
    assert b.loc["P1_m3", "shannon_evenness"] == pytest.approx(1.0)
    assert b.loc["P1_base", "top_clone_fraction"] == pytest.approx(3 / 4)
    assert b.loc["P1_m6", "n_bcr_cells"] == 0 and pd.isna(b.loc["P1_m6", "n_clones"])
    assert b.loc["P1_d14", "n_clones"] == 0 and pd.isna(b.loc["P1_d14", "shannon_evenness"])
    if "mu_freq" not in res.airr.obs:  # no alignment in the input: SHM columns stay empty
        assert b["mean_shm"].isna().all() and clones["mean_shm"].isna().all()
    elim = res.elimination.set_index("patient").loc["P1"]
    assert elim["n_dp_clones"] == 1 and elim["n_dp_not_assessable"] == 1
    assert elim["expected_false_eliminated"] == 0
    assert elim["b_recovery_day"] == 90 and elim["b_recovery_after_day"] == 14
    assert pd.isna(elim["naive_fraction_at_recovery"])  # 3 B cells at M3, fewer than 20
    assert set(res.diversity["sample"]) == {"P1_base", "P1_d14", "P1_m3"}
    assert list(res.cell_clones.columns[:2]) == ["cell", "clone_id"]
    res.airr.write_h5ad(tmp_path / "airr.h5ad")
    back = ad.read_h5ad(tmp_path / "airr.h5ad")
    assert back.obs["clone_id"].notna().sum() == res.airr.obs["clone_id"].notna().sum()
    empty = res.airr.obs.iloc[:0]
    no_bcr = b_cell_table(
        gex,
        empty,
        empty,
        sheet_table(sheet, post_min_day=28, visit_window_days=3),
        unmutated_max_mu_freq=0.02,
    )
    assert (no_bcr["n_bcr_cells"] == 0).all() and no_bcr["igm_igd_fraction"].isna().all()


def test_b_cell_table_shm_and_unmutated_share():
    samples = sheet_table(pd.DataFrame({"sample": ["S1"], "patient": "P1", "day": [-3],
                                        "tissue": "PB", "bcr": "x.csv"}),
                          post_min_day=28, visit_window_days=3)  # fmt: skip
    names = [f"S1_{i}" for i in range(5)]
    gex = pd.DataFrame({"sample": "S1", "cell_type": "B_naive"}, index=names)
    bcr = pd.DataFrame(
        {
            "sample": "S1",
            "heavy_v_gene": "IGHV1-2",
            "isotype": ["IgM", "IgM", "IgD", "IgG1", None],
            "mu_freq": [0.0, 0.05, 0.01, 0.0, 0.0],
            "clone_id": names,
        },
        index=names,
    )
    row = b_cell_table(gex, bcr, bcr.iloc[:0], samples, unmutated_max_mu_freq=0.02).iloc[0]
    assert row["mean_shm"] == pytest.approx(0.012)
    assert row["unmutated_igm_igd_fraction"] == pytest.approx(2 / 4)


def test_one_sample_with_bcr_read_back_from_h5ad(tmp_path):
    """Issue 17: BCR at baseline only (aplasia after), parts read from h5ad (categorical
    `sample`) crashed with `TypeError ... category ... divide`."""
    parts, sheet, gex = _parts_and_sheet()
    paths = []
    for i, part in enumerate(parts[:1]):
        paths.append(tmp_path / f"p{i}.h5ad")
        part.write_h5ad(paths[-1])
    read = [ad.read_h5ad(p) for p in paths]
    assert isinstance(read[0].obs["sample"].dtype, pd.CategoricalDtype)
    sheet["bcr"] = ["x.csv", "", "", ""]
    res = run_tracking(read, gex, sheet)
    assert len(res.clones) and (res.clones["n_cells_post"] == 0).all()
    assert (res.clones["status"] == "not_assessable").all()  # no V(D)J after infusion
    assert res.clone_timeline["clone_fraction"].between(0, 1).all()


def test_track_clones_rejects_unknown_samples():
    part = build_airr(clean_chains(pd.DataFrame([heavy("a")])), sample="ghost")
    sheet = pd.DataFrame({"sample": ["S1"], "patient": "P1", "day": [0], "tissue": "PB"})
    gex = pd.DataFrame({"sample": ["S1"], "cell_type": ["B_naive"]}, index=["S1_a"])
    with pytest.raises(InputError, match="ghost"):
        run_tracking([part], gex, sheet)


# --------------------------------------------------------------------- figure
def test_diversity_figure(tmp_path):
    from cartrack import plots

    rng = np.random.default_rng(3)
    cells, samples, _ = repertoire_cohort(rng, n_patients=2, n_baseline=100, ratio=3)
    table = diversity_table(cells, samples, min_cells=20)
    fig = plots.diversity(table)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 6
    assert all(len(ax.lines) >= 2 for ax in axes)  # one line per patient
    assert "100 cells" in " ".join(t.get_text() for t in fig.legends[0].get_texts())
    pdf, png = plots.save(fig, tmp_path / "diversity", dpi=50)
    assert pdf.stat().st_size > 0 and png.stat().st_size > 0
    empty = plots.diversity(pd.DataFrame())
    assert "no BCR data" in " ".join(t.get_text() for ax in empty.axes for t in ax.texts)
