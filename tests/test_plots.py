"""Figures (issue 5): every plotting function on tiny hand-made tables, empty inputs included."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cartrack import plots
from cartrack.b_cell_tables import isotype_table
from cartrack.design import CELL_TYPES
from cartrack.tracking import sheet_table

matplotlib.use("Agg")

SAMPLES = pd.DataFrame(
    {
        "sample": ["P1_base", "P1_D14", "P1_M6", "P1_BM", "P2_base", "P2_D14", "P2_M6"],
        "patient": ["P1", "P1", "P1", "P1", "P2", "P2", "P2"],
        "day": [-5, 14, 180, -5, -2, 13, 182],
        "tissue": ["PB", "PB", "PB", "BM", "PB", "PB", "PB"],
        "timepoint": ["baseline", "D14", "M6", "baseline", "baseline", "D14", "M6"],
    }
)


@pytest.fixture(autouse=True)
def _close_figures():
    plots.set_style(font_size=7)
    yield
    matplotlib.pyplot.close("all")


@pytest.fixture
def qc():
    q = SAMPLES.drop(columns="timepoint").copy()
    q["n_cells_input"] = [300, 280, 310, 290, 305, 260, 300]
    q["n_doublets"] = 10
    q["n_low_quality"] = 15
    q["n_cells_passed"] = q["n_cells_input"] - 25
    q["min_total_counts"], q["max_total_counts"] = 700.0, 9000.0
    q["min_n_genes"], q["max_n_genes"] = 450.0, 1700.0
    q["max_pct_top20"], q["max_pct_mito"] = 25.0, 6.5
    return q


@pytest.fixture
def cell_types():
    rows = []
    for _, s in SAMPLES.drop(columns="timepoint").iterrows():
        b = 0.0 if s["day"] > 0 and s["patient"] == "P2" else 0.1
        for ct, f in [("B_naive", b), ("T_CD4", 0.5 - b), ("monocyte", 0.5)]:
            rows.append({**s, "cell_type": ct, "n_cells": int(f * 200), "fraction": f})
    return pd.DataFrame(rows)


@pytest.fixture
def b_cells():
    """P2 never gets its B cells back: no naive fraction, no clones after infusion."""
    b = SAMPLES.copy()
    b["n_cells"] = 250
    b["b_fraction"] = [0.1, 0.0, 0.05, 0.08, 0.12, 0.0, 0.0]
    b["n_b_cells"] = (b["b_fraction"] * 250).astype(int)
    b["naive_fraction"] = [0.4, np.nan, 0.95, 0.3, 0.35, np.nan, np.nan]
    b["n_bcr_cells"] = [30, 0, 12, 20, 25, 0, 0]
    b["igm_igd_fraction"] = [0.3, np.nan, 0.9, 0.2, 0.4, np.nan, np.nan]
    b["n_clones"] = [20, 0, 11, 15, 18, 0, 0]
    b["shannon_evenness"] = [0.9, np.nan, 1.0, 0.85, 0.9, np.nan, np.nan]
    b["top_clone_fraction"] = [0.2, np.nan, 0.1, 0.2, 0.15, np.nan, np.nan]
    b["b_recovery_day"] = [180, 180, 180, 180, np.nan, np.nan, np.nan]
    return b


@pytest.fixture
def elimination():
    return pd.DataFrame(
        {
            "patient": ["P1", "P2"],
            "n_dp_clones": [1, 0],
            "n_dp_eliminated": [1, 0],
            "n_dp_persistent": [0, 0],
            "n_dp_not_assessable": [0, 0],
            "b_recovery_day": [180, np.nan],
            "naive_fraction_at_recovery": [0.95, np.nan],
        }
    )


def status_counts(clones):
    """elimination.tsv's clone counts by status (all clones, double-positive ones)."""
    rows = []
    for patient, c in clones.groupby("patient"):
        dp = c[c["double_positive"].astype(str).str.lower() == "true"]
        row = {"patient": patient, "n_clones": len(c), "n_dp_clones": len(dp)}
        for s in ("eliminated", "persistent", "emergent", "early_only", "not_assessable"):
            row[f"n_{s}"] = int((c["status"] == s).sum())
            row[f"n_dp_{s}"] = int((dp["status"] == s).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def isotypes_of(obs):
    """isotypes.tsv of the cells in `obs` (gene-expression cells with their V(D)J isotype)."""
    samples = sheet_table(SAMPLES, post_min_day=28, visit_window_days=3)
    return isotype_table(obs[["isotype"]], obs[["sample"]], samples)


def car_t_samples(obs):
    """car_t.tsv's CAR-T counts of the cells in `obs` (CAR calls in T_CD4 / T_CD8 cells)."""
    o = obs.assign(
        t=obs["cell_type"].astype(str).isin(["T_CD4", "T_CD8"]),
        car=lambda d: d["car_t"] & d["t"],
    )
    by = o.groupby(o["sample"].astype(str), observed=True)
    table = SAMPLES.set_index("sample").loc[by.size().index].reset_index()
    table["n_cells"] = by.size().to_numpy()
    table["n_t_cells"] = by["t"].sum().to_numpy()
    table["n_car_t"] = by["car"].sum().to_numpy()
    table["car_t_fraction"] = table["n_car_t"] / table["n_t_cells"].where(table["n_t_cells"] > 0)
    return table


@pytest.fixture
def clones():
    return pd.DataFrame(
        {
            "patient": ["P1", "P1", "P1", "P2", "P2"],
            "clone_id": ["P1_C1", "P1_C2", "P1_C3", "P2_C1", "P2_C2"],
            "n_cells": [6, 4, 2, 5, 3],
            "n_cells_baseline": [6, 2, 0, 5, 3],
            "n_cells_post": [0, 2, 2, 0, 0],
            "double_positive": ["true", "false", "false", "false", "false"],
            "status": ["eliminated", "persistent", "emergent", "eliminated", "not_assessable"],
        }
    )


@pytest.fixture
def timeline():
    return pd.DataFrame(
        {
            "patient": ["P1", "P1", "P1", "P1", "P2", "P2"],
            "clone_id": ["P1_C1", "P1_C2", "P1_C2", "P1_C3", "P2_C1", "P2_C2"],
            "sample": ["P1_base", "P1_base", "P1_M6", "P1_M6", "P2_base", "P2_base"],
            "day": [-5, -5, 180, 180, -2, -2],
            "tissue": ["PB"] * 6,
            "n_cells": [6, 2, 2, 2, 5, 3],
            "clone_fraction": [0.2, 0.07, 0.17, 0.17, 0.2, 0.12],
        }
    )


@pytest.fixture
def signatures():
    rows = []
    for _, s in SAMPLES[SAMPLES["tissue"] == "PB"].iterrows():
        for sig in ("IFN", "BAFF"):
            score = 0.8 if s["day"] <= 0 else -0.3
            rows.append(
                {**s, "cell_type": "all", "signature": sig, "n_cells": 250, "mean_score": score}
            )
    return pd.DataFrame(rows)


@pytest.fixture
def changes():
    rows = []
    for sig in ("IFN", "BAFF", "RANDOM_CONTROL"):
        for ct in ("all", "monocyte", "B_cells"):
            for tp, day in (("D14", 14), ("M6", 181)):
                missing = ct == "B_cells" and tp == "D14"
                rows.append(
                    {
                        "signature": sig,
                        "cell_type": ct,
                        "timepoint": tp,
                        "day": day,
                        "n_patients": 1 if missing else 2,
                        "baseline_mean": 0.8,
                        "post_mean": np.nan if missing else -0.3,
                        "delta": np.nan if missing else -1.1,
                        "p_value": 0.001,
                        "fdr": 0.003 if sig == "IFN" else 0.4,
                        "test": "paired_t",
                        "low_n": True,
                    }
                )
    return pd.DataFrame(rows).dropna(subset=["delta"])


@pytest.fixture
def gsea():
    rows = []
    for ct in ("all", "monocyte"):
        for comp in ("baseline_vs_post", "baseline_vs_M6", "baseline_vs_D28"):
            for term, nes, fdr in (
                ("IFN", 2.5, 0.001),
                ("BAFF", 1.2, 0.2),
                ("HALLMARK_INTERFERON_ALPHA_RESPONSE", 3.0, 0.0),
            ):
                rows.append(
                    {
                        "cell_type": ct,
                        "comparison": comp,
                        "term": term,
                        "nes": nes,
                        "p_value": fdr,
                        "fdr": fdr,
                        "leading_edge": "A;B",
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def obs():
    rng = np.random.default_rng(0)
    rows = []
    for _, s in SAMPLES.iterrows():
        for i in range(40):
            ct = ["T_CD4", "T_CD8", "B_naive", "monocyte"][i % 4]
            b_gone = ct == "B_naive" and s["day"] > 0 and s["patient"] == "P2"
            rows.append(
                {
                    **s,
                    "cell_type": "NK" if b_gone else ct,
                    "car_t": ct.startswith("T_") and s["day"] > 0 and i % 8 == 0,
                    "isotype": ["IgM", "IgG1", "IgA2", ""][i // 4 % 4] if ct == "B_naive" else "",
                }
            )
    o = pd.DataFrame(rows)
    o.index = [f"c{i}" for i in range(len(o))]
    o["umap_1"], o["umap_2"] = rng.normal(size=(2, len(o)))
    for col in ("sample", "patient", "tissue", "timepoint", "cell_type", "isotype"):
        o[col] = o[col].astype("category")
    return o


def visible_axes(fig: Figure) -> list:
    """Plot panels (visible, not colour bars)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


# --------------------------------------------------------------------------------------
# colours, style, saving
# --------------------------------------------------------------------------------------
def test_patient_colours_are_stable_distinct_and_natural_sorted():
    colours = plots.patient_colours(["P10", "P2", "P1", "P2"])
    assert list(colours) == ["P1", "P2", "P10"]
    assert len(set(colours.values())) == 3
    assert plots.patient_colours(["P2", "P10", "P1"]) == colours
    assert colours["P1"] == plots.PALETTES["okabe_ito"][0]


def test_patient_colours_beyond_the_palette_differ_by_marker():
    patients = [f"P{i:02d}" for i in range(12)]
    colours = plots.patient_colours(patients, palette="tol_bright")
    markers = plots.patient_markers(colours)
    styles = {(colours[p], markers[p]) for p in patients}
    assert len(styles) == 12


def test_unknown_palette_is_an_error():
    with pytest.raises(ValueError, match="palette"):
        plots.patient_colours(["P1"], palette="rainbow")


def test_cell_type_colours_cover_the_vocabulary_and_are_distinct():
    assert set(plots.CELL_TYPE_COLOURS) == set(CELL_TYPES)
    assert len(set(plots.CELL_TYPE_COLOURS.values())) == 12


def test_save_writes_vector_pdf_with_embedded_fonts_and_png(tmp_path, qc):
    fig = plots.qc_cells(qc)
    pdf, png = plots.save(fig, tmp_path / "sub" / "qc_cells", dpi=100)
    assert pdf.name == "qc_cells.pdf" and png.name == "qc_cells.png"
    data = pdf.read_bytes()
    assert b"/FontFile2" in data  # TrueType embedded (pdf.fonttype 42)
    assert b"/Type3" not in data
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not matplotlib.pyplot.get_fignums()  # closed


def test_figure_width_follows_width_mm(qc):
    fig = plots.qc_cells(qc, width_mm=89)
    assert fig.get_figwidth() == pytest.approx(89 / 25.4)
    fig = plots.qc_thresholds(qc, width_mm=183)
    assert fig.get_figwidth() == pytest.approx(183 / 25.4)


def test_day_axis_is_symlog_with_infusion_and_label():
    fig, ax = matplotlib.pyplot.subplots()
    plots.day_axis(ax, [-6, 14, 28, 90, 365])
    assert ax.get_xscale() == "symlog"
    ticks = list(ax.get_xticks())
    assert 0 in ticks and 365 in ticks and -30 not in ticks
    assert ax.get_xlabel() == "Days since infusion"
    lo, hi = ax.get_xlim()
    assert lo < -6 and hi > 365


def test_timepoint_order_uses_median_day():
    t = pd.DataFrame({"timepoint": ["M6", "baseline", "D14", "M6"], "day": [180, -3, 14, 182]})
    assert plots.timepoint_order(t) == ["baseline", "D14", "M6"]
    assert plots.timepoint_days("W12") == 84


def test_labels_are_readable():
    assert plots.label("T_CD4") == "CD4 T"
    assert plots.label("B_naive") == "naive B"
    assert plots.label("all") == "All cells"
    assert plots.label("HALLMARK_INTERFERON_ALPHA_RESPONSE") == "Hallmark IFN α response"
    assert plots.label("monocyte", title=True) == "Monocyte"


# --------------------------------------------------------------------------------------
# every figure on the tiny tables
# --------------------------------------------------------------------------------------
def test_qc_figures(qc):
    fig = plots.qc_cells(qc)
    (ax,) = visible_axes(fig)
    assert len(ax.patches) == 3 * len(qc)  # passed, low quality, doublet per sample
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "P1_base"
    fig = plots.qc_thresholds(qc)
    assert len(visible_axes(fig)) == 4
    assert visible_axes(fig)[0].get_xscale() == "log"


def test_qc_thresholds_without_threshold_columns(qc):
    fig = plots.qc_thresholds(qc[["sample", "patient", "day", "tissue", "n_cells_input"]])
    assert "no QC thresholds" in texts(fig)


def test_umap_has_four_panels_and_highlights_car_t(obs):
    fig = plots.umap(obs)
    axes = visible_axes(fig)
    assert len(axes) == 4
    assert [ax.get_title(loc="left") for ax in axes] == [
        "Cell type",
        "Time point",
        "Patient",
        "CAR-T cells",
    ]
    car = axes[3].collections[-1]
    assert len(car.get_offsets()) == int(obs["car_t"].sum())
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend[0] == "naive B"  # contract order
    tp_legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert tp_legend == ["baseline", "D14", "M6"]


def test_umap_without_coordinates(obs):
    fig = plots.umap(obs.drop(columns=["umap_1", "umap_2"]))
    assert "no UMAP coordinates" in texts(fig)


def test_composition_one_panel_per_patient_with_timepoint_labels(cell_types, b_cells):
    fig = plots.composition(cell_types, samples=b_cells)
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == ["P1", "P2"]
    labels = [t.get_text() for t in axes[0].get_xticklabels()]
    assert labels[0] == "baseline" and labels[-1].startswith("BM")
    assert len(axes[0].patches) == 4 * 3  # samples x cell types


def test_b_fraction_marks_recovery(b_cells, elimination):
    rec = plots.recovery_days(elimination, b_cells)
    assert rec == {"P1": 180.0}
    fig = plots.b_fraction(b_cells, recovery=rec, colours=plots.patient_colours(["P1", "P2"]))
    (ax,) = visible_axes(fig)
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_xdata()[0] == 180
    patient_lines = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(patient_lines) == 2
    assert ax.get_xlabel() == "Days since infusion"


def test_clone_tracking_alluvial(clones, timeline, b_cells):
    fig = plots.clone_tracking(clones, timeline, samples=b_cells, top=10)
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == ["P1", "P2"]
    p1 = axes[0]
    hatched = [p for p in p1.patches if p.get_hatch()]
    assert len(hatched) == 1  # the one double-positive clone, at baseline
    bands = [p for p in p1.patches if isinstance(p, matplotlib.patches.Polygon)]
    assert bands == []  # no clone in consecutive blood samples of P1
    assert "no BCR+ cells" in texts(fig)  # P1_D14 and P2 after infusion


def test_tracked_clones_keeps_double_positive_beyond_top(clones):
    chosen = plots.tracked_clones(clones, top=1)
    assert set(chosen["clone_id"]) == {"P1_C1", "P2_C1"}
    clones = clones.assign(double_positive=[False, False, True, False, False])
    chosen = plots.tracked_clones(clones, top=1)
    assert set(chosen["clone_id"]) == {"P1_C1", "P1_C3", "P2_C1"}


def test_clone_tracking_bands_join_consecutive_samples(clones, timeline):
    more = pd.concat(
        [timeline, timeline[timeline["sample"] == "P1_base"].assign(sample="P1_D14", day=14)]
    )
    fig = plots.clone_tracking(clones, more)
    bands = [p for p in visible_axes(fig)[0].patches if isinstance(p, matplotlib.patches.Polygon)]
    assert len(bands) == 2 + 1  # both baseline clones to D14, P1_C2 on to M6


def test_clone_status_without_double_positive_clones(clones):
    none = clones.assign(double_positive=False)
    fig = plots.clone_status(status_counts(none))
    axes = visible_axes(fig)
    assert len(axes) == 2
    assert "none" in [t.get_text() for t in axes[1].texts]
    assert sum(p.get_width() for p in axes[0].patches) == len(clones)


def test_reconstitution_three_panels_with_gaps(b_cells, elimination):
    fig = plots.reconstitution(b_cells, recovery=plots.recovery_days(elimination))
    axes = visible_axes(fig)
    assert len(axes) == 3
    # P2 has only its baseline value: a line of one finite point
    p2 = [ln for ln in axes[0].lines if ln.get_marker() == "o"][1]
    assert np.isfinite(np.asarray(p2.get_ydata(), dtype=float)).sum() == 1
    assert axes[-1].get_xlabel() == "Days since infusion"
    assert axes[0].get_xlabel() == ""


def test_isotypes_pool_subclasses(obs):
    table = isotypes_of(obs)
    assert set(table["isotype"]) == {"IgM", "IgG", "IgA"}
    assert table.groupby("sample")["fraction"].sum().round(6).eq(1).all()
    fig = plots.isotypes(table)
    assert [ax.get_title(loc="left") for ax in visible_axes(fig)] == ["P1", "P2"]


def test_signatures_time_one_panel_per_signature(signatures):
    fig = plots.signatures_time(signatures, names=["IFN", "BAFF", "MISSING"])
    axes = visible_axes(fig)
    assert len(axes) == 3
    assert len([ln for ln in axes[0].lines if ln.get_marker() == "o"]) == 2
    assert "no MISSING scores" in texts(fig)


def test_signatures_time_draws_each_signature_in_its_own_cell_type(signatures):
    mono = signatures[signatures["signature"] == "IFN"].assign(
        cell_type="monocyte", mean_score=lambda d: d["mean_score"] + 5
    )
    fig = plots.signatures_time(
        pd.concat([signatures, mono]),
        names=["IFN", "BAFF"],
        cell_types={"IFN": "monocyte", "default": "B_naive"},
    )
    ifn, baff = visible_axes(fig)
    drawn = [ln.get_ydata() for ln in ifn.lines if ln.get_marker() == "o"]
    assert drawn and all(min(y) > 4 for y in drawn)  # monocyte scores, not all cells
    assert "monocyte" in ifn.get_ylabel().lower()
    assert "no BAFF scores in naive B" in texts(fig)


def test_signature_changes_heatmap_marks_significance_and_missing(changes):
    fig = plots.signature_changes(changes)
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == ["IFN", "BAFF", "Random control"]
    stars = [t.get_text() for t in axes[0].texts]
    assert stars.count("**") == len(changes[changes["signature"] == "IFN"])
    assert not axes[1].texts  # BAFF: FDR 0.4
    hatched = [p for p in axes[0].patches if p.get_hatch()]
    assert len(hatched) == 1  # B cells at D14
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["All cells", "B cells", "monocyte"]


def test_gsea_dotplot(gsea):
    fig = plots.gsea_dotplot(gsea, top=2)
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == ["All cells", "Monocyte"]
    ticks = [t.get_text() for t in axes[0].get_xticklabels()]
    assert ticks == ["all post", "D28", "M6"]
    terms = [t.get_text() for t in axes[0].get_yticklabels()]
    assert len(terms) == 2 and "BAFF" not in terms
    assert len(axes[0].collections[0].get_offsets()) == 2 * 3


def test_car_t_share_of_t_cells(obs):
    table = car_t_samples(obs)
    fig = plots.car_t(table.assign(n_cells=lambda d: d["n_cells"].where(d["sample"] != "P1_M6", 0)))
    (ax,) = visible_axes(fig)
    assert len(ax.lines) == 2 + 1  # two patients and the infusion line
    p1 = ax.lines[0]
    assert list(p1.get_xdata()) == [-5, 14]  # a sample without cells (emptied by QC) not drawn
    assert list(p1.get_ydata()) == [0, 25]
    fig = plots.car_t(table)
    (ax,) = visible_axes(fig)
    assert len(ax.lines) == 2 + 1  # two patients and the infusion line
    assert ax.get_ylabel() == "CAR-T cells (% of T cells)"


# --------------------------------------------------------------------------------------
# empty inputs never crash
# --------------------------------------------------------------------------------------
EMPTY_CASES = {
    "qc_cells": lambda e: plots.qc_cells(e),
    "qc_thresholds": lambda e: plots.qc_thresholds(e),
    "umap": lambda e: plots.umap(e),
    "composition": lambda e: plots.composition(e),
    "b_fraction": lambda e: plots.b_fraction(e),
    "clone_tracking": lambda e: plots.clone_tracking(e, e),
    "clone_status": lambda e: plots.clone_status(e),
    "reconstitution": lambda e: plots.reconstitution(e),
    "isotypes": lambda e: plots.isotypes(e),
    "signatures_time": lambda e: plots.signatures_time(e),
    "signature_changes": lambda e: plots.signature_changes(e),
    "gsea": lambda e: plots.gsea_dotplot(e),
    "car_t": lambda e: plots.car_t(e),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
def test_empty_input_gives_a_figure(name, tmp_path):
    fig = EMPTY_CASES[name](pd.DataFrame())
    assert isinstance(fig, Figure)
    assert visible_axes(fig)
    assert texts(fig)  # says that there is nothing to show
    pdf, png = plots.save(fig, tmp_path / name, dpi=50)
    assert pdf.stat().st_size > 0 and png.stat().st_size > 0


def test_patient_without_b_cells(b_cells, clones, timeline, obs):
    """A patient in aplasia at every sample: empty panels say so, nothing crashes."""
    p3 = SAMPLES[SAMPLES["patient"] == "P2"].assign(
        patient="P3", sample=lambda d: d["sample"].str.replace("P2", "P3")
    )
    b3 = p3.assign(
        n_cells=200,
        n_b_cells=0,
        b_fraction=0.0,
        naive_fraction=np.nan,
        igm_igd_fraction=np.nan,
        shannon_evenness=np.nan,
        n_bcr_cells=0,
    )
    both = pd.concat([b_cells, b3], ignore_index=True)
    fig = plots.reconstitution(both)
    assert len(visible_axes(fig)) == 3
    fig = plots.b_fraction(both)
    assert len([ln for ln in visible_axes(fig)[0].lines if ln.get_marker() == "o"]) == 3
    fig = plots.clone_tracking(clones, timeline, samples=both)
    assert [ax.get_title(loc="left") for ax in visible_axes(fig)] == ["P1", "P2", "P3"]
    o3 = obs[obs["patient"] == "P2"].copy()
    o3["patient"] = "P3"
    o3["cell_type"] = o3["cell_type"].astype(str).replace("B_naive", "NK")
    o3["isotype"] = ""
    assert isotype_table(o3[["isotype"]], o3[["sample"]], pd.DataFrame()).empty
    only_t = car_t_samples(o3[o3["cell_type"] == "monocyte"])
    assert only_t["car_t_fraction"].isna().all()  # no T cells: share undefined, not 0
    plots.car_t(only_t)


# --------------------------------------------------------------------------------------
# the real workflow: figures and report on the tiny cohort
# --------------------------------------------------------------------------------------
@pytest.mark.workflow
def test_figures_target_and_report(tiny_run):
    import yaml
    from workflow_helpers import run_snakemake

    run_snakemake(tiny_run, "--cores", "2", "figures")
    figures = tiny_run / "results" / "figures"
    stems = {p.stem for p in figures.glob("*.p*")}
    assert stems >= {
        "qc_cells",
        "qc_thresholds",
        "umap",
        "composition",
        "b_fraction",
        "reconstitution",
        "isotypes",
        "clone_tracking",
        "clone_status",
        "signatures_time",
        "signature_changes",
        "gsea",
        "car_t",
    }
    for stem in stems:
        for ext in ("pdf", "png"):
            path = figures / f"{stem}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path
    # figures only: nothing else is rerun by the figures target
    dry = run_snakemake(tiny_run, "--cores", "2", "figures", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # a style change redraws figures and recomputes no analysis
    config = yaml.safe_load((tiny_run / "config" / "config.yaml").read_text())
    config["figures"].update(font_size=8, palette="tol_muted")
    style = tiny_run / "config" / "style.yaml"
    style.write_text(yaml.safe_dump(config))  # keys reordered too: must not matter
    dry = run_snakemake(tiny_run, "--cores", "2", "figures", "-n", "--configfile", str(style))
    stats = (dry.stdout + dry.stderr).split("Job stats:")[1].split("total")[0]
    jobs = [line.split()[0] for line in stats.splitlines()[3:] if line.strip()]
    assert jobs and all(job.startswith("figures") for job in jobs), jobs
    run_snakemake(tiny_run, "--cores", "1", "--report", "results/report.html")
    html = (tiny_run / "results" / "report.html").read_text(errors="replace")
    for stem in stems:
        assert f"{stem}.png" in html, stem


def test_isotype_table_counts_gene_expression_cells_only(obs):
    """isotypes.tsv (rule bcr_clones) counts V(D)J cells that are gene-expression cells."""
    samples = sheet_table(SAMPLES, post_min_day=28, visit_window_days=3)
    bcr = pd.concat([obs[["isotype"]], pd.DataFrame({"isotype": ["IgE"]}, index=["no_gex"])])
    table = isotype_table(bcr, obs[["sample"]], samples)
    assert "IgE" not in set(table["isotype"])
    assert table["n_cells"].sum() == (obs["isotype"].astype(str) != "").sum()
    assert list(table.columns[:5]) == ["sample", "patient", "day", "tissue", "timepoint"]


def test_save_takes_the_pdf_path_of_a_rule_output(tmp_path, qc):
    pdf, png = plots.save(plots.qc_cells(qc), tmp_path / "qc_cells.pdf", dpi=50)
    assert (pdf.name, png.name) == ("qc_cells.pdf", "qc_cells.png") and png.exists()
