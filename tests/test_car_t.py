"""CAR-T tables: the conditional binomial status calls (null and power), per-sample counts,
and the whole path on simulated CAR-T clonotypes of known fate."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from cartrack.car_t import (
    CAR_T_COLUMNS,
    CLONE_COLUMNS,
    ClonotypeCall,
    call_car_t_by_clonotype,
    car_t_clone_tables,
    car_t_sample_table,
    clonality,
    p_contracted,
    track_car_t,
    tracked_tcr_cells,
)
from cartrack.simulate_tcr import TcrSimulator, write_contigs
from cartrack.tcr import read_tcr
from cartrack.tracking import sheet_table
from cartrack.tracking_stats import p_missed

CONTRACT = {
    "car_t": "sample, patient, day, tissue, n_cells, n_t_cells, n_car_t, car_t_fraction, "
    "n_car_t_clonotypes, car_t_clonality",
    "car_t_clones": "patient, clonotype_id, n_cells, n_car_t, first_day, last_day, in_product, "
    "status",
}
DESIGN = [  # sample, day, tissue
    ("prod", 0, "product"),
    ("D14", 14, "PB"),
    ("M3", 90, "PB"),
]
ALPHA = 0.05
AMBIENT_UMIS = 0.03  # expected ambient CAR UMIs per T cell (the demo: 0.002-0.13)
CONFIG = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text()
)
RULE = ClonotypeCall(**CONFIG["car_t"]["clonotype_call"])  # the shipped defaults


def samples_meta(design=DESIGN, patient="P1") -> pd.DataFrame:
    sheet = pd.DataFrame(
        [{"sample": s, "patient": patient, "day": d, "tissue": t} for s, d, t in design]
    )
    return sheet_table(sheet, post_min_day=28, visit_window_days=3)


def cells_from_counts(counts: dict[str, np.ndarray], meta: pd.DataFrame) -> pd.DataFrame:
    """Tracked CAR-T cells from clonotype counts per sample (clonotype k -> P1_T<k>)."""
    rows = []
    for sample, per_clone in counts.items():
        for k, n in enumerate(per_clone):
            rows += [{"sample": sample, "clonotype_id": f"P1_T{k}", "car_t": True}] * int(n)
    cells = pd.DataFrame(rows)
    for col in ("patient", "day", "tissue", "timepoint"):
        cells[col] = meta.loc[cells["sample"], col].to_numpy()
    cells.index = [f"c{i}" for i in range(len(cells))]
    return cells


def statuses(counts, meta=None) -> pd.Series:
    meta = samples_meta() if meta is None else meta
    clones, _ = car_t_clone_tables(
        cells_from_counts(counts, meta),
        meta,
        post_min_day=28,
        visit_window_days=3,
        alpha=ALPHA,
        tissues=["product", "PB"],
    )
    return clones.set_index("clonotype_id")["status"]


def frequencies(k: int = 40) -> np.ndarray:
    f = 0.88 ** np.arange(k)
    return f / f.sum()


def test_p_contracted_is_the_b_cell_p_missed_when_unseen_after():
    big_ref, big_post = 300, 120
    p = p_contracted([7], [0], [big_ref], [big_post])
    assert p[0] == pytest.approx(p_missed(7, 0, big_ref, big_post))
    r = big_ref / (big_ref + big_post)
    assert p[0] == pytest.approx(r**7 / (1 - (1 - r) ** 7))
    # a singleton seen in the reference period only: no evidence of loss
    assert p_contracted([1], [0], [big_ref], [big_post])[0] == pytest.approx(1.0)
    # unchanged share (10% in both periods): far from significant
    assert p_contracted([30], [12], [big_ref], [big_post])[0] > 0.4
    assert np.isnan(p_contracted([3], [0], [big_ref], [0])[0])  # nothing sampled after


def test_null_same_frequencies_at_different_depths_gives_no_false_calls():
    """Same clonotype frequencies before and after, 400 reference vs 80 later CAR-T cells:
    replicates with any `lost` or `contracted` call stay within alpha (BH controls the
    family-wise error under the global null)."""
    rng = np.random.default_rng(7)
    f, reps, bad = frequencies(), 200, 0
    n_calls = 0
    for _ in range(reps):
        counts = {
            "prod": rng.multinomial(250, f),
            "D14": rng.multinomial(150, f),
            "M3": rng.multinomial(80, f),
        }
        s = statuses(counts)
        calls = s.isin(["lost", "contracted"]).sum()
        n_calls += calls
        bad += calls > 0
    se = np.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert bad / reps <= ALPHA + 2 * se
    assert n_calls / (reps * len(f)) < ALPHA / 5  # per clonotype: far below alpha


def test_power_lost_and_contracted_clonotypes_are_found():
    """A clonotype at 5% of the reference CAR-T cells that is gone after, and one that falls
    from 10% to 1%, with 400 reference and 200 later cells: the fall is found in >= 90% of
    replicates (the second one is `lost` instead of `contracted` when none of its expected
    two later cells is sampled, (0.99 ** 200 = 13%)); unchanged ones are almost never lost."""
    rng = np.random.default_rng(11)
    base = frequencies(38) * 0.85
    ref = np.concatenate([[0.05, 0.10], base])
    post = np.concatenate([[0.0, 0.01], base])
    post = post / post.sum()
    found_lost = found_contracted = found_fall = false_lost = 0
    reps = 60
    for _ in range(reps):
        counts = {
            "prod": rng.multinomial(250, ref),
            "D14": rng.multinomial(150, ref),
            "M3": rng.multinomial(200, post),
        }
        s = statuses(counts)
        found_lost += s.get("P1_T0") == "lost"
        found_contracted += s.get("P1_T1") == "contracted"
        found_fall += s.get("P1_T1") in ("contracted", "lost")
        false_lost += s.drop(["P1_T0", "P1_T1"], errors="ignore").eq("lost").sum()
    assert found_lost / reps >= 0.9
    assert found_fall / reps >= 0.9 and found_contracted / reps >= 0.7
    assert false_lost / (reps * len(base)) < ALPHA / 5


def test_shallow_or_unsampled_periods_are_not_assessable():
    f = frequencies(10)
    counts = {"prod": np.round(f * 20).astype(int), "D14": np.zeros(10), "M3": np.zeros(10)}
    assert set(statuses(counts)) == {"not_assessable"}  # nothing after: cannot be lost
    counts["M3"] = np.array([0] * 9 + [1])
    s = statuses(counts)
    assert "lost" not in set(s)  # 20 reference cells, 1 after: no clonotype is testable
    assert s["P1_T9"] == "persistent"


def test_clones_table_columns_and_in_product():
    counts = {"prod": np.array([5, 0, 2]), "D14": np.array([3, 4, 0]), "M3": np.array([2, 1, 0])}
    meta = samples_meta()
    clones, timeline = car_t_clone_tables(
        cells_from_counts(counts, meta),
        meta,
        post_min_day=28,
        visit_window_days=3,
        alpha=ALPHA,
        tissues=["product", "PB"],
    )
    assert list(clones.columns) == CLONE_COLUMNS
    assert CONTRACT["car_t_clones"].split(", ") == CLONE_COLUMNS[:8]
    c = clones.set_index("clonotype_id")
    assert c.loc["P1_T0", "in_product"] and not c.loc["P1_T1", "in_product"]
    assert (c.loc["P1_T0", "first_day"], c.loc["P1_T0", "last_day"]) == (0, 90)
    assert c.loc["P1_T0", "n_car_t_reference"] == 8 and c.loc["P1_T0", "n_car_t_post"] == 2
    assert (c["n_comparable_reference"] == 14).all() and (c["n_comparable_post"] == 3).all()
    share = timeline.set_index(["clonotype_id", "sample"])["car_t_share"]
    assert share["P1_T0", "prod"] == pytest.approx(5 / 7)


def test_sample_table_counts_and_clonality():
    meta = samples_meta()
    meta["has_tcr"] = [True, True, False]
    gex = pd.DataFrame(
        {
            "sample": ["prod"] * 6 + ["D14"] * 4 + ["M3"] * 2,
            "cell_type": ["T_CD4", "T_CD8", "T_CD8", "T_CD4", "NK", "T_CD4"]
            + ["T_CD8", "T_CD4", "B_naive", "T_CD4"]
            + ["T_CD4", "monocyte"],
            "car_t": [True, True, True, True, False, False]
            + [True, True, False, False]
            + [True, False],
        },
        index=[f"c{i}" for i in range(12)],
    )
    tcr = pd.DataFrame(
        {
            "sample": ["prod"] * 4 + ["D14"] * 2,
            "clonotype_id": ["A", "A", "A", "B", "A", "C"],
            "car_t": True,
            "patient": "P1",
        },
        index=["c0", "c1", "c2", "c3", "c6", "c7"],
    )
    table = car_t_sample_table(gex, tcr, meta).set_index("sample")
    assert list(table.reset_index().columns) == CAR_T_COLUMNS
    assert CONTRACT["car_t"].split(", ") == CAR_T_COLUMNS[:10]
    assert table.loc["prod", ["n_cells", "n_t_cells", "n_car_t"]].tolist() == [6, 5, 4]
    assert table.loc["prod", "car_t_fraction"] == pytest.approx(0.8)
    assert table.loc["prod", "n_car_t_clonotypes"] == 2
    p = np.array([3, 1]) / 4
    assert table.loc["prod", "car_t_clonality"] == pytest.approx(
        1 + (p * np.log(p)).sum() / np.log(2)
    )
    assert table.loc["D14", "car_t_clonality"] == pytest.approx(0.0)  # two equal clonotypes
    assert pd.isna(table.loc["M3", "n_car_t_clonotypes"])  # no TCR file
    assert clonality([5]) != clonality([5])  # NaN for one clonotype


def test_car_t_cells_with_a_tcr_are_car_t_cells():
    """Issue 16: a CAR call in a cell annotated NK or other (here with a TCR) is no CAR-T cell,
    neither in n_car_t nor among the CAR-T cells with a TCR or the CAR-T clonotypes."""
    meta = samples_meta()
    meta["has_tcr"] = True
    gex = pd.DataFrame(
        {
            "sample": "prod",
            "cell_type": ["T_CD4", "T_CD8", "other", "NK", "T_CD4"],
            "car_t": [True, True, True, True, False],
        },
        index=[f"c{i}" for i in range(5)],
    )
    tcr = pd.DataFrame(
        {"sample": "prod", "clonotype_id": ["A", "A", "B", "C", "D"]},
        index=gex.index,
    )
    cells = tracked_tcr_cells(tcr, gex, meta)
    assert cells["car_t"].tolist() == [True, True, False, False, False]
    table = car_t_sample_table(gex, cells, meta).set_index("sample")
    assert table.loc["prod", "n_car_t"] == 2 and table.loc["prod", "n_car_t_tcr"] == 2
    assert table.loc["prod", "n_car_t_clonotypes"] == 1


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Two patients, product + D14 + D28 + M3 + M6 blood, simulated TCRs of known fate; the
    UMI call misses a fifth of the CAR-T cells (no CAR UMI above ambient), so the call
    through clonotypes has cells to find."""
    folder = tmp_path_factory.mktemp("tcr")
    rng = np.random.default_rng(5)
    design = [("prod", 0, "product", 0.45), ("D14", 14, "PB", 0.35), ("D28", 28, "PB", 0.2)]
    design += [("M3", 90, "PB", 0.12), ("M6", 180, "PB", 0.08), ("base", -7, "PB", 0.0)]
    sim = TcrSimulator(["P1", "P2"], seed=2)
    gex, reads, sheet = [], [], []
    for patient in ("P1", "P2"):
        for name, day, tissue, share in design:
            sample = f"{patient}_{name}"
            n = 900
            types = rng.choice(
                ["T_CD4", "T_CD8", "monocyte", "B_naive"], size=n, p=[0.5, 0.4, 0.05, 0.05]
            )
            car = np.isin(types, ["T_CD4", "T_CD8"]) & (rng.random(n) < share)
            truth = pd.DataFrame(
                {"barcode": [f"B{i:04d}-1" for i in range(n)], "cell_type": types, "car_t": car}
            )
            rows = sim.contigs(truth, sample=sample, patient=patient, day=day, tissue=tissue)
            write_contigs(folder / f"{sample}.csv", rows)
            reads.append(
                read_tcr(
                    folder / f"{sample}.csv", sample=sample, cells_only=True, productive_only=True
                )
            )
            g = truth.assign(sample=sample, car_t=car & (rng.random(n) >= 0.2))
            g.index = sample + "_" + g["barcode"]
            gex.append(g)
            sheet.append(
                {"sample": sample, "patient": patient, "day": day, "tissue": tissue, "tcr": "x"}
            )
    res = track_car_t(
        reads,
        pd.concat(gex),
        pd.DataFrame(sheet),
        post_min_day=28,
        visit_window_days=3,
        alpha=ALPHA,
        tissues=["product", "PB"],
        clonotype_call=RULE,
    )
    truth_cells = sim.truth_cells()
    truth_cells.index = truth_cells["sample"] + "_" + truth_cells["barcode"]
    return res, sim.truth_clonotypes(), truth_cells


def test_simulated_clonotypes_are_recovered(simulated):
    res, _, truth_cells = simulated
    called = res.airr.obs["clonotype_id"].astype(object)
    both = pd.DataFrame({"called": called, "truth": truth_cells["clonotype"].reindex(called.index)})
    both = both.dropna()
    # purity: a called clonotype never mixes simulated ones
    assert both.groupby("called")["truth"].nunique().max() == 1
    # completeness: most cells of a simulated clonotype land in one called clonotype
    # (the rest are orphan cells that lost a chain: 10% dropout)
    sizes = both.groupby("truth")["called"].agg(lambda v: v.value_counts().iloc[0] / len(v))
    big = both["truth"].value_counts()
    assert sizes[big[big >= 20].index].min() >= 0.75


def test_simulated_fates_are_called(simulated):
    res, truth_clonotypes, truth_cells = simulated
    clones = res.clones
    cells = res.airr.obs[["clonotype_id"]].astype(object).dropna()
    cells["truth"] = truth_cells["clonotype"].reindex(cells.index)
    main = cells.groupby("clonotype_id")["truth"].first()
    clones = clones.assign(truth=clones["clonotype_id"].map(main))
    kinds = truth_clonotypes.set_index("clonotype")["kind"]
    clones["kind"] = clones["truth"].map(kinds)
    kept = clones[clones["kind"].isin(["persistent", "small"])]
    assert not kept["status"].isin(["lost"]).any()  # no false loss, orphan fragments included
    # the main called clonotype of each simulated one (orphan cells form small extra ones)
    main_called = clones.sort_values("n_car_t").groupby("truth").tail(1).set_index("truth")
    status = main_called.groupby("kind")["status"]
    assert (status.get_group("lost") == "lost").mean() >= 2 / 3
    assert (status.get_group("contracted") == "contracted").mean() >= 2 / 3
    assert status.get_group("contracted").isin(["contracted", "lost", "persistent"]).all()
    assert (status.get_group("persistent") == "persistent").all()
    product = clones[clones["in_product"]]
    assert len(product) and (product["n_cells_product"] > 0).all()
    car_t = res.car_t.set_index("sample")
    assert car_t.loc["P1_base", "n_car_t"] == 0
    assert car_t.loc["P1_prod", "car_t_fraction"] > car_t.loc["P1_M6", "car_t_fraction"]


def test_no_tcr_anywhere_gives_empty_tables_with_contract_columns():
    gex = pd.DataFrame(
        {"sample": ["S1"] * 2, "cell_type": ["T_CD4", "B_naive"], "car_t": [True, False]},
        index=["S1_a", "S1_b"],
    )
    sheet = pd.DataFrame(
        {"sample": ["S1"], "patient": ["P"], "day": [14], "tissue": ["PB"], "tcr": [""]}
    )
    res = track_car_t(
        [], gex, sheet, post_min_day=28, visit_window_days=3, alpha=ALPHA, tissues=["product", "PB"]
    )
    assert res.clones.empty and list(res.clones.columns) == CLONE_COLUMNS
    assert res.car_t.loc[0, "n_car_t"] == 1 and pd.isna(res.car_t.loc[0, "n_car_t_clonotypes"])
    assert res.chain_qc.empty and res.airr.n_obs == 0


def test_kinetics_figure(simulated, tmp_path):
    import warnings

    from cartrack import plots
    from cartrack.tables import write_tsv

    res = simulated[0]
    tables = {}
    for name, df in (("car_t", res.car_t), ("clones", res.clones), ("timeline", res.timeline)):
        write_tsv(df, tmp_path / f"{name}.tsv")  # the figure reads the written tables
        tables[name] = plots.read_tsv(tmp_path / f"{name}.tsv")
    plots.configure()
    fig = plots.car_t_kinetics(tables["car_t"], tables["clones"], tables["timeline"], top=3)
    lower = [ax for ax in fig.axes if ax.get_ylabel() == "Clonotype (% of CAR-T)"]
    assert len(fig.axes) == 4 and len(lower) == 1
    legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert len(legend) == 3 and all("(" in t for t in legend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constrained layout must not collapse
        paths = plots.save(fig, tmp_path / "kinetics")
    assert all(p.stat().st_size > 0 for p in paths)
    empty = plots.car_t_kinetics(
        tables["car_t"].iloc[:0], tables["clones"].iloc[:0], tables["timeline"].iloc[:0]
    )
    assert "no CAR-T cells" in [t.get_text() for t in empty.axes[0].texts]


# -- CAR-T calls through TCR clonotypes -----------------------------------------------------


def clonotype_cells(rng, n_clonotypes, car_fraction, car_umis, sizes=(2, 40)) -> pd.DataFrame:
    """T cells of clonotypes (D14 blood, patient P) of which a share `car_fraction` (a range)
    carry the CAR, with Poisson(`car_umis`) CAR UMIs plus ambient, called by UMIs as
    cartrack.annotate.call_car_t does (ambient tail probability <= 0.001); column ``truth``."""
    rows = []
    for c in range(n_clonotypes):
        n = int(rng.integers(*sizes))
        car = rng.random(n) < rng.uniform(*car_fraction)
        umis = rng.poisson(AMBIENT_UMIS, n) + np.where(car, rng.poisson(car_umis, n), 0)
        p = stats.poisson.sf(umis - 1, AMBIENT_UMIS)
        rows += [
            {"cell": f"c{c}_{i}", "sample": "D14", "cell_type": "T_CD8", "car_t": p[i] <= 1e-3,
             "car_ambient_p": p[i], "clonotype_id": f"P_T{c}", "truth": car[i]}
            for i in range(n)
        ]  # fmt: skip
    return pd.DataFrame(rows).set_index("cell")


def call(cells: pd.DataFrame) -> pd.DataFrame:
    meta = sheet_table(
        pd.DataFrame({"sample": ["D14"], "patient": ["P"], "day": [14], "tissue": ["PB"]}),
        post_min_day=28,
        visit_window_days=3,
    )
    return call_car_t_by_clonotype(cells, cells["clonotype_id"], meta, RULE)


@pytest.mark.parametrize("car_umis", [2.5, 4.0])  # UMI-call sensitivity about 0.7 and 0.9
def test_clonotype_call_null_partly_transduced_clones(car_umis):
    """False positives: in clones transduced in part (20-50 %, the usual transduction
    efficiency; expanded endogenous clones), the untransduced cells are almost never called
    CAR-T through their clonotype (at most 0.5 %: a few times the UMI call's own 0.1 %)."""
    cells = clonotype_cells(np.random.default_rng(1), 1500, (0.2, 0.5), car_umis)
    calls = call(cells)
    untransduced = ~cells["truth"]
    assert untransduced.sum() > 10_000
    assert calls.loc[untransduced, "car_t"].mean() <= 0.005


@pytest.mark.parametrize("car_umis", [2.5, 4.0])
def test_clonotype_call_power_fully_transduced_clones(car_umis):
    """Power: CAR-T cells that the UMI call missed in fully transduced clones of 5 or more
    cells are mostly called through their clonotype (>= 80 %)."""
    cells = clonotype_cells(np.random.default_rng(2), 800, (1.0, 1.0), car_umis, sizes=(5, 40))
    calls = call(cells)
    missed = ~cells["car_t"].to_numpy()
    assert missed.sum() > 500
    assert calls["car_t"].to_numpy()[missed].mean() >= 0.8
    assert set(calls.loc[missed & calls["car_t"].to_numpy(), "car_t_call"]) == {"clonotype"}
    assert (calls.loc[cells["car_t"], "car_t_call"] == "umi").all()


def test_clonotype_call_never_before_infusion_nor_outside_t_cells():
    """A clonotype carrying the CAR calls its other T cells after infusion only; its cells
    sampled at baseline, annotated NK, or of a clonotype with one UMI-called cell are not."""
    meta = samples_meta([("base", -7, "PB"), ("prod", 0, "product"), ("D14", 14, "PB")])
    cells = pd.DataFrame(
        {
            "sample": ["prod", "prod", "D14", "D14", "base", "D14", "D14", "D14"],
            "cell_type": ["T_CD4"] * 5 + ["NK", "T_CD8", "T_CD8"],
            "car_t": [True, True, True, False, False, False, True, False],
            "car_ambient_p": 1.0,
            "clonotype_id": ["A"] * 6 + ["B", "B"],
        },
        index=[f"c{i}" for i in range(8)],
    )
    calls = call_car_t_by_clonotype(cells, cells["clonotype_id"], meta, RULE)
    assert calls["car_t_call"].tolist() == [
        "umi", "umi", "umi", "clonotype", "", "", "umi", "",
    ]  # fmt: skip
    assert calls["car_t"].tolist() == (calls["car_t_call"] != "").tolist()


def test_track_car_t_counts_clonotype_calls_once():
    """car_t.tsv's n_car_t and the per-cell car_t (cohort.h5mu) are one definition: cells
    called by UMIs plus those called through their clonotype, T cells only."""
    meta_sheet = pd.DataFrame(
        {"sample": ["S1"], "patient": ["P"], "day": [14], "tissue": ["PB"], "tcr": [""]}
    )
    gex = pd.DataFrame(
        {"sample": "S1", "cell_type": ["T_CD4", "T_CD4", "NK"], "car_t": [True, False, True]},
        index=["S1_a", "S1_b", "S1_c"],
    )
    res = track_car_t(
        [],
        gex,
        meta_sheet,
        post_min_day=28,
        visit_window_days=3,
        alpha=ALPHA,
        tissues=["PB"],
        clonotype_call=RULE,
    )
    cell = res.cell_car_t.set_index("cell")
    assert cell["car_t"].tolist() == [True, False, False]  # the NK cell is no CAR-T cell
    assert res.car_t.loc[0, "n_car_t"] == cell["car_t"].sum()
    assert res.car_t.loc[0, "n_car_t_clonotype_call"] == 0


def test_simulated_clonotype_calls_find_missed_car_t_cells(simulated):
    """On simulated TCRs with partly transduced clones (untransduced sisters, an endogenous
    clone): the call through clonotypes finds most CAR-T cells of expanded clonotypes that
    the UMI call missed, and calls almost no untransduced T cell."""
    res, truth_clonotypes, truth_cells = simulated
    calls = res.cell_car_t.set_index("cell").loc[truth_cells.index]
    truth_car = truth_cells["car_t"].astype(bool)
    kind = truth_cells["clonotype"].map(truth_clonotypes.set_index("clonotype")["kind"])
    assert (kind.eq("endogenous") & ~truth_car).sum() > 50  # the null is present
    assert truth_clonotypes["car_fraction"].lt(1).sum() >= 4
    by_clonotype = calls["car_t_call"].eq("clonotype")
    expanded = kind.isin(["lost", "contracted", "persistent"])
    missed = truth_car & expanded & ~calls["car_t_call"].eq("umi")
    assert missed.sum() > 50
    assert by_clonotype[missed].mean() >= 0.8
    untransduced = ~truth_car
    assert calls.loc[untransduced, "car_t"].mean() <= 0.005
    every = res.cell_car_t
    per_sample = every.groupby(every["cell"].str.rsplit("_", n=1).str[0])["car_t"].sum()
    table = res.car_t.set_index("sample")
    assert table.loc[per_sample.index, "n_car_t"].tolist() == per_sample.tolist()
    assert table["n_car_t_clonotype_call"].sum() == by_clonotype.sum()


def test_simulated_car_clonotypes_are_partly_transduced(simulated):
    """The simulator mixes CAR+ and CAR- cells in a clonotype as a product does: the mixed
    clonotypes carry the CAR in about their transduced share, and the endogenous clone is
    mostly untransduced and present before infusion."""
    _, truth_clonotypes, truth_cells = simulated
    mixed = truth_clonotypes[truth_clonotypes["car_fraction"] < 1]
    observed = mixed["n_car_cells"].sum() / mixed["n_cells"].sum()
    expected = (mixed["car_fraction"] * mixed["n_cells"]).sum() / mixed["n_cells"].sum()
    assert abs(observed - expected) < 0.1
    endogenous = truth_clonotypes.loc[truth_clonotypes["kind"] == "endogenous", "clonotype"]
    members = truth_cells[truth_cells["clonotype"].isin(endogenous)]
    assert 0 < members["car_t"].mean() < 0.5
    assert members["sample"].str.endswith("_base").any()


@pytest.mark.parametrize("window, counted_after", [(3, True), (0, False)])
def test_a_d28_visit_taken_on_day_27_counts_after_infusion(window, counted_after):
    """CAR-T persistence follows the one visit rule (design.phase) of every other table: with
    tracking.visit_window_days 3 a "D28" visit on day 27 is after infusion; with no window it
    is early expansion, part of the reference."""
    design = [("prod", 0, "product"), ("D27", 27, "PB")]
    meta = samples_meta(design)
    clones, _ = car_t_clone_tables(
        cells_from_counts({"prod": np.array([6]), "D27": np.array([4])}, meta),
        meta,
        post_min_day=28,
        visit_window_days=window,
        alpha=ALPHA,
        tissues=["product", "PB"],
    )
    row = clones.set_index("clonotype_id").loc["P1_T0"]
    assert row["status"] == ("persistent" if counted_after else "not_assessable"), row
