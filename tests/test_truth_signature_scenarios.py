"""Issue 14, deliverable 5: signature FDRs per scenario on the realistic simulated cohort.

The tiny workflow cohort has two patients per signature scenario and signature_changes.tsv
pools every patient, so the FDR of one scenario cannot be read off it. Here the project's
simulator (:func:`cartrack.simulate.write_cohort`: realistic depth, dropout, ambient RNA,
patient, batch and sample effects, B-cell aplasia, platelet aggregates, low-density
granulocytes) writes a cohort of 16 patients, who play the simulator's scenarios by position
(four each of reference, persistent, same_repertoire, non_recovering), i.e. 8 play
`composition_only` and 8 `true_fall` (truth_patients.tsv). Each patient has the demo's blood
visits of its scenario (baseline, D28, M3, M6, M12; D14, marrow and the product are left
out: signature_changes reads blood after day 25 only).

The cells then go through the workflow's own steps: Cell Ranger files read by
:func:`cartrack.io.read_gex`, merged and normalised by :mod:`cartrack.integrate`, labelled by
the workflow's annotator (:func:`cartrack.annotate.annotate_cell_types` with the config's
settings, on the whole cohort as rule gex_annotate does), and each scenario's patients
analysed by :func:`cartrack.signatures.score_and_compare` with the config's settings and
gene sets plus the random control, as rule signatures_score does. Two shortcuts, for
runtime: QC keeps the droplets the simulator did not make broken or doublets (rule gex_qc's
scrublet would add about a minute), and the annotator runs without the kNN graph and
without the BCR refinement of B subsets (PCA, Harmony and neighbours on 64,000 cells would
add about a minute more); its labels are therefore somewhat noisier than the workflow's,
which makes the within-type test harder, not easier.

What is asserted follows the truth table (truth_signatures.tsv), checked first: nothing
changes within any cell type of a composition-only patient, so no within-type row may be
called (FDR > 0.1) and the pooled rows must be flagged with an adjusted change near 0;
interferon falls in every cell type of a true-fall patient and BAFF in its B-lineage cells,
so those rows must be found (FDR <= 0.1), and BAFF rows of T and NK cells, which do not
change, must not.
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from cartrack import genesets
from cartrack import signatures as sig
from cartrack.annotate import annotate_cell_types, read_markers
from cartrack.design import B_CELLS
from cartrack.integrate import merge_samples, normalise
from cartrack.io import read_gex
from cartrack.params import AnnotationParams, DemoParams, PhaseParams, SignatureParams
from cartrack.simulate import write_cohort

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
N_PATIENTS = 16  # four per simulator scenario: 8 composition_only, 8 true_fall
CELLS = 800  # per sample: enough B cells after recovery for B-subset rows (min_cells 20)
VISITS = ["baseline", "D28", "M3", "M6", "M12"]
POOLED = ("all", "B_cells")
ALPHA = 0.1
STABLE_TYPES = ["monocyte", "T_CD4", "T_CD8", "NK"]  # in blood at every visit


def demo_visits(config: dict) -> pd.DataFrame:
    """Blood visits of the demo sheet, one set per demo patient (= per scenario)."""
    sheet = pd.read_csv(REPO / config["samples"], sep="\t", dtype={"day": int})
    sheet = sheet[(sheet["tissue"] == "PB") & sheet["timepoint"].isin(VISITS)]
    return sheet[["patient", "day", "timepoint"]]


def make_sheet(config: dict, folder: Path) -> pd.DataFrame:
    """Patient i takes the visit days of demo patient i % 4 (the same scenario)."""
    visits = demo_visits(config)
    demo_patients = sorted(visits["patient"].unique())
    rows = []
    for i in range(N_PATIENTS):
        patient = f"P{i + 1:02d}"
        mine = visits[visits["patient"] == demo_patients[i % len(demo_patients)]]
        for day, timepoint in zip(mine["day"], mine["timepoint"], strict=True):
            sample = f"{patient}_PB_{timepoint}"
            rows.append({
                "sample": sample, "patient": patient, "day": int(day), "tissue": "PB",
                "timepoint": timepoint, "batch": f"run{i // 4 + 1}",
                "gex": str(folder / sample / "filtered_feature_bc_matrix.h5"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def analyse(adata: ad.AnnData, config: dict) -> pd.DataFrame:
    """signature_changes of these cells, exactly as rule signatures_score computes them."""
    par, tracking = config["signatures"], config["tracking"]
    gene_sets = genesets.read_gmt([REPO / p for p in par["gmt"]])
    gene_sets = genesets.add_random_control(
        gene_sets, adata, size=par["random_control_size"], seed=config["seed"]
    )
    *_, changes = sig.score_and_compare(
        adata,
        gene_sets,
        SignatureParams.from_config(par),
        PhaseParams.from_config(tracking),
        seed=config["seed"],
    )
    return changes


def build_cohort(folder: Path) -> dict:
    """Simulate, read, QC, normalise, annotate, analyse per scenario (module docstring)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sheet = make_sheet(config, folder)
    sets = genesets.read_gmt(
        [REPO / "resources" / "genesets" / f"{name}.gmt"
         for name in ("IFN", "HALLMARK_INTERFERON_ALPHA_RESPONSE", "NFKB2_NONCANONICAL")]
    )  # fmt: skip
    truth_dir = folder / "truth"
    write_cohort(  # as rule demo_simulate calls it
        sheet,
        ifn_genes=sets["IFN"] + sets["HALLMARK_INTERFERON_ALPHA_RESPONSE"],
        baff_genes=sets["NFKB2_NONCANONICAL"],
        truth_dir=truth_dir,
        demo=DemoParams.from_config(config["demo"], cells_per_sample=CELLS),
        seed=config["seed"],
    )
    truth = {
        name: pd.read_csv(truth_dir / f"truth_{name}.tsv", sep="\t")
        for name in ("cells", "patients", "signatures")
    }
    cells = truth["cells"].astype({"sample": str, "barcode": str})
    broken = cells[cells["low_quality"] | cells["doublet"]]
    samples = []
    for _, row in sheet.iterrows():
        gex, _ = read_gex(row["gex"], sample=row["sample"])
        drop = set(broken.loc[broken["sample"] == row["sample"], "barcode"])
        samples.append(gex[~gex.obs["barcode"].astype(str).isin(drop).to_numpy()].copy())
    adata = merge_samples(samples, sheet.set_index("sample"))
    normalise(adata, target_sum=config["integration"]["target_sum"])
    annotate_cell_types(
        adata,
        read_markers(REPO / config["annotation"]["markers"]),
        AnnotationParams.from_config(config["annotation"]),
        seed=config["seed"],
    )
    patients = truth["patients"]
    changes = {}
    for scenario in ("composition_only", "true_fall"):
        mine = patients.loc[patients["signature_scenario"] == scenario, "patient"]
        changes[scenario] = analyse(adata[adata.obs["patient"].isin(mine)].copy(), config)
    return {"sheet": sheet, "truth": truth, "changes": changes}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    return build_cohort(tmp_path_factory.mktemp("signature_scenarios"))


def truth_change(cohort: dict, scenario: str) -> pd.DataFrame:
    """Per patient of `scenario`, cell type and post visit: the true within-type fold at the
    visit minus the fold at baseline (columns ifn, baff)."""
    folds = cohort["truth"]["signatures"]
    folds = folds[folds["signature_scenario"] == scenario]
    label = cohort["sheet"].drop_duplicates(["patient", "day"]).set_index(["patient", "day"])
    visit = list(zip(folds["patient"], folds["day"], strict=True))
    folds = folds.assign(timepoint=label.loc[visit, "timepoint"].to_numpy())
    wide = folds.set_index(["patient", "cell_type", "timepoint"])[["ifn_fold", "baff_fold"]]
    base = wide.xs("baseline", level="timepoint")
    post = wide.drop(index="baseline", level="timepoint")
    diff = post - base.reindex(post.index.droplevel("timepoint")).to_numpy()
    return diff.rename(columns={"ifn_fold": "IFN", "baff_fold": "BAFF"})


def within_tested(changes: pd.DataFrame, signature: str) -> pd.DataFrame:
    rows = changes[(changes["signature"] == signature) & ~changes["composition_dependent"]]
    return rows[rows["p_value"].notna()]


def keys(rows: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(rows["cell_type"], rows["timepoint"], strict=True))


def truly(change: pd.DataFrame, signature: str, how: str) -> set[tuple[str, str]]:
    """(cell_type, timepoint) where the programme falls (`fall`) or stays (`flat`) in every
    patient of the scenario."""
    per = change[signature].groupby(level=["cell_type", "timepoint"])
    hit = per.max() < 0 if how == "fall" else per.apply(lambda d: np.allclose(d, 0))
    return set(hit.index[hit.to_numpy()])


def test_the_simulator_truth_is_what_the_assertions_assume(cohort):
    patients = cohort["truth"]["patients"]
    counts = patients["signature_scenario"].value_counts()
    assert counts["composition_only"] >= 4 and counts["true_fall"] >= 4, counts
    flat = truth_change(cohort, "composition_only")
    assert (flat == 0).all().all(), flat[(flat != 0).any(axis=1)]
    fall = truth_change(cohort, "true_fall")
    # interferon falls in every cell type at every post visit, BAFF in B-lineage cells
    assert (fall["IFN"] < 0).all(), fall[fall["IFN"] >= 0]
    b = fall.index.get_level_values("cell_type").isin(B_CELLS)
    assert (fall.loc[b, "BAFF"] < 0).all()
    t_nk = fall.index.get_level_values("cell_type").isin(["T_CD4", "T_CD8", "NK"])
    assert (fall.loc[t_nk, "BAFF"] == 0).all()


@pytest.mark.parametrize("signature", ["IFN", "BAFF"])
def test_composition_only_gives_no_call_within_cell_types(cohort, signature):
    """Nothing changes within any cell type (truth), only the mix: no within-type row of
    the composition-only patients is called."""
    changes = cohort["changes"]["composition_only"]
    rows = within_tested(changes, signature)
    flat = truly(truth_change(cohort, "composition_only"), signature, "flat")
    assert keys(rows) <= flat
    assert (rows["fdr"] > ALPHA).all(), rows
    # the check has teeth: the rows are there, with the patients
    if signature == "IFN":
        for cell_type in STABLE_TYPES:
            mine = rows[rows["cell_type"] == cell_type]
            assert set(mine["timepoint"]) == set(VISITS[1:]), (cell_type, mine)
            assert (mine["n_patients"] >= 4).all(), mine
    else:  # BAFF is read within B subsets: some must be tested once B cells are back
        b_rows = rows[rows["cell_type"].isin(B_CELLS) & (rows["day"] >= 90)]
        assert len(b_rows) >= 1, rows


def test_composition_only_pooled_rows_are_flagged_and_adjust_to_near_zero(cohort):
    """Pooled rows may move with the mix; they are flagged, and the composition-adjusted
    change is small next to the true fall's (where the signature acts: IFN in all cells
    and B cells, BAFF in B cells). BAFF's all-cells row moves with the loss of B cells:
    the adjustment removes most of that move."""
    flat = cohort["changes"]["composition_only"]
    fall = cohort["changes"]["true_fall"].set_index(["signature", "cell_type", "timepoint"])
    pooled = flat[flat["cell_type"].isin(POOLED) & flat["signature"].isin(["IFN", "BAFF"])]
    assert len(pooled) >= 8
    assert pooled["composition_dependent"].all()
    assert pooled["adjusted_delta"].notna().all(), pooled
    compared = 0
    for _, row in pooled.iterrows():
        key = (row["signature"], row["cell_type"], row["timepoint"])
        if key[:2] == ("BAFF", "all"):
            assert abs(row["adjusted_delta"]) < abs(row["delta"]) / 4, row
            continue
        if key not in fall.index or np.isnan(fall.loc[key, "adjusted_delta"]):
            continue
        true_fall = fall.loc[key, "adjusted_delta"]
        assert true_fall < 0
        assert abs(row["adjusted_delta"]) < 0.2 * abs(true_fall), (row, true_fall)
        compared += 1
    assert compared >= 6  # IFN all at 4 visits, B_cells once B cells are back


def test_true_fall_is_found_within_cell_types(cohort):
    """Interferon falls within every cell type of the true-fall patients (truth): every
    tested within-type row is found, in particular monocytes, T and NK cells at day >= 90;
    BAFF falls in their B cells: the B-subset rows are found once B cells are back."""
    changes = cohort["changes"]["true_fall"]
    truth = truth_change(cohort, "true_fall")
    ifn = within_tested(changes, "IFN")
    assert keys(ifn) <= truly(truth, "IFN", "fall")
    assert (ifn["fdr"] <= ALPHA).all(), ifn[ifn["fdr"] > ALPHA]
    assert (ifn["delta"] < 0).all() and (ifn["delta_vs_control"] < 0).all(), ifn
    late = ifn[ifn["day"] >= 90]
    for cell_type in STABLE_TYPES:
        mine = late[late["cell_type"] == cell_type]
        assert set(mine["timepoint"]) == {"M3", "M6", "M12"}, (cell_type, mine)
    baff = within_tested(changes, "BAFF")
    baff = baff[baff["cell_type"].isin(B_CELLS) & (baff["day"] >= 90)]
    assert set(baff["timepoint"]) == {"M3", "M6", "M12"}, baff
    assert keys(baff) <= truly(truth, "BAFF", "fall")
    assert (baff["fdr"] <= ALPHA).all() and (baff["delta"] < 0).all(), baff


def test_true_fall_cohort_calls_no_baff_change_where_it_stays(cohort):
    """BAFF-dependent genes do not change in T and NK cells (truth) while interferon falls
    there and BAFF falls in B cells: no call."""
    rows = within_tested(cohort["changes"]["true_fall"], "BAFF")
    rows = rows[rows["cell_type"].isin(["T_CD4", "T_CD8", "NK"])]
    assert keys(rows) <= truly(truth_change(cohort, "true_fall"), "BAFF", "flat")
    assert len(rows) == 3 * (len(VISITS) - 1), rows
    assert (rows["fdr"] > ALPHA).all(), rows


def test_random_control_has_no_change_in_the_composition_only_cohort(cohort):
    """Nothing changes within cell types there, and the matched controls move with the
    mix: the random control is called nowhere, pooled rows included."""
    changes = cohort["changes"]["composition_only"]
    control = changes[changes["signature"] == genesets.RANDOM_CONTROL]
    tested = control[control["p_value"].notna()]
    assert len(tested) >= 15, control
    assert (tested["fdr"] > ALPHA).all(), tested
