"""End-to-end: the real Snakemake workflow on the tiny simulated cohort recovers the truth."""

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from workflow_helpers import REPO, read_table

from cartrack.design import B_CELLS
from cartrack.simulate_scenarios import LINEAGE

pytestmark = pytest.mark.workflow


def test_contract_checker_passes(tiny_run):
    """The shared contract checker in --strict mode (every item, new ones included), on
    every table and figure of the run."""
    checker = REPO.parent / "shared" / "tools" / "check_contract.py"
    if not checker.exists():
        pytest.skip("shared/tools/check_contract.py not found")
    proc = subprocess.run(
        [sys.executable, str(checker), str(tiny_run / "results"), "--strict"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line.startswith("FAIL")], proc.stdout


def test_qc_removes_injected_bad_cells_and_keeps_good_ones(tiny_run, truth):
    cells = truth["cells"]
    flags = read_qc_cells(tiny_run).reindex(cells.index)
    removed = flags["low_quality"] | flags["doublet"]
    bad_lq = cells["low_quality"]
    bad_dbl = cells["doublet"]
    good = ~bad_lq & ~bad_dbl
    assert removed[bad_lq].mean() >= 0.9
    assert removed[bad_dbl].mean() >= 0.5
    assert removed[bad_lq | bad_dbl].mean() >= 0.75
    assert (~removed[good]).mean() >= 0.95
    # plasma cells, whose counts are dominated by Ig transcripts, survive QC
    plasma = good & cells["cell_type"].isin(["plasma_cell", "plasmablast"])
    assert plasma.sum() > 20
    assert (~removed[plasma]).mean() >= 0.9

    qc = read_table(tiny_run, "qc")
    assert (
        qc["n_cells_input"] == qc["n_cells_passed"] + qc["n_doublets"] + qc["n_low_quality"]
    ).all()


def read_qc_cells(workdir):
    """Every cell's QC flags, from the cell tables of all gex_qc jobs."""
    import pandas as pd

    files = sorted((workdir / "results" / "gex" / "qc").glob("*.cells.tsv"))
    t = pd.concat([pd.read_csv(p, sep="\t") for p in files]).set_index("cell")
    return t[["low_quality", "doublet"]].astype(bool)


def test_lineage_accuracy(tiny_run, truth):
    gex = ad.read_h5ad(tiny_run / "results" / "gex" / "annotated.h5ad")
    cells = truth["cells"].loc[gex.obs_names]
    good = (~cells["low_quality"] & ~cells["doublet"]).to_numpy()
    called = gex.obs["cell_type"].astype(str).map(LINEAGE).to_numpy()
    accuracy = (called[good] == cells["lineage"].to_numpy()[good]).mean()
    assert accuracy >= 0.95  # issue 13
    # CAR-T cells: the published call (cohort.h5mu) agrees with the simulated CAR transcripts
    car = cells["car_t"].to_numpy()[good]
    called_car = cohort_obs(tiny_run).loc[gex.obs_names, "car_t"].to_numpy(dtype=bool)
    assert (called_car[good] == car).mean() >= 0.95


def annotated_singlets(tiny_run, truth):
    """Annotated obs and the truth rows of the cells that are neither doublets nor low quality."""
    obs = ad.read_h5ad(tiny_run / "results" / "gex" / "annotated.h5ad", backed="r").obs.copy()
    cells = truth["cells"].loc[obs.index]
    good = (~cells["low_quality"] & ~cells["doublet"]).to_numpy()
    return obs[good], cells[good]


def test_b_subset_accuracy(tiny_run, truth):
    """Issue 13: >= 85 % of true B cells get their B subset. A true B cell called anything
    else (plasma, T, `other`) counts as wrong, so this is subset accuracy among true B cells."""
    obs, cells = annotated_singlets(tiny_run, truth)
    true_b = cells["cell_type"].isin(B_CELLS).to_numpy()
    assert true_b.sum() >= 200
    called = obs["cell_type"].astype(str).to_numpy()[true_b]
    accuracy = (called == cells["cell_type"].to_numpy()[true_b]).mean()
    assert accuracy >= 0.85, accuracy


def test_proliferating_car_t_are_never_plasmablasts(tiny_run, truth):
    """Issue 13: cycling CAR-T cells (D7-D21) express MKI67/TOP2A; no plasmablast call."""
    obs, cells = annotated_singlets(tiny_run, truth)
    cycling = (cells["proliferating"].astype(bool) & cells["car_t"].astype(bool)).to_numpy()
    assert cycling.sum() >= 50
    assert not (obs["cell_type"].astype(str).to_numpy()[cycling] == "plasmablast").any()


def cohort_obs(tiny_run):
    """gex.obs of cohort.h5mu (its car_t: the call by UMIs or through the TCR clonotype)."""
    import mudata as md

    return md.read_h5mu(tiny_run / "results" / "cohort.h5mu", backed=True).mod["gex"].obs.copy()


def test_proliferating_car_t_are_called_car_t(tiny_run, truth):
    """Issue 13: >= 90 % of proliferating CAR-T singlets are CAR-T in cohort.h5mu. By UMIs
    alone 82 % were (the simulator gives a CAR-T cell NB(mean 3)-like CAR UMIs: a fifth carry
    0-1); the rest come through their TCR clonotype."""
    obs = cohort_obs(tiny_run)
    cells = truth["cells"].loc[obs.index]
    good = (~cells["low_quality"] & ~cells["doublet"]).to_numpy()
    cycling = good & (cells["proliferating"].astype(bool) & cells["car_t"].astype(bool)).to_numpy()
    assert cycling.sum() >= 50
    share = obs["car_t"].to_numpy(dtype=bool)[cycling].mean()
    assert share >= 0.9, share


def test_car_t_calls_through_clonotypes_call_few_untransduced_t_cells(tiny_run, truth):
    """Issue 13, the false-positive side of the clonotype call. The simulation holds
    untransduced T cells in CAR clonotypes (sisters of partly transduced clones, endogenous
    clones), the cells such a call could get wrong. Among true non-CAR T singlets at most
    0.5 % are CAR-T (the UMI call alone: about 0.1 % by its alpha), and >= 90 % of the cells
    called through their clonotype are CAR-T cells (so the calls stay >= 99 % right)."""
    obs = cohort_obs(tiny_run)
    cells = truth["cells"].loc[obs.index]
    tcr = pd.read_csv(tiny_run / "resources" / "demo" / "truth" / "truth_tcr_cells.tsv", sep="\t")
    tcr.index = tcr["sample"] + "_" + tcr["barcode"]
    car_clonotypes = set(tcr.loc[tcr["car_t"].astype(bool), "clonotype"])
    sisters = tcr["clonotype"].isin(car_clonotypes) & ~tcr["car_t"].astype(bool)
    assert sisters.sum() >= 100  # the null is in the simulation
    good = (~cells["low_quality"] & ~cells["doublet"]).to_numpy()
    true_car = cells["car_t"].astype(bool).to_numpy()
    non_car_t = good & cells["cell_type"].isin(["T_CD4", "T_CD8"]).to_numpy() & ~true_car
    called = obs["car_t"].to_numpy(dtype=bool)
    assert called[non_car_t].mean() <= 0.005, called[non_car_t].sum()
    by_clonotype = good & (obs["car_t_call"].astype(str) == "clonotype").to_numpy()
    assert by_clonotype.sum() >= 30
    assert true_car[by_clonotype].mean() >= 0.9


@pytest.mark.parametrize("cell_type", ["B_memory", "plasmablast"])
def test_memory_b_and_plasmablast_singlets_survive_qc(tiny_run, truth, cell_type):
    """Issue 13: >= 95 % of true singlets (not doublets, not low quality) of these types are
    still there after QC (doublet removal once took 32 % of memory B cells)."""
    obs = ad.read_h5ad(tiny_run / "results" / "gex" / "annotated.h5ad", backed="r").obs
    cells = truth["cells"]
    singlets = cells[~cells["low_quality"] & ~cells["doublet"] & (cells["cell_type"] == cell_type)]
    assert len(singlets) >= 100
    kept = singlets.index.isin(obs.index).mean()
    assert kept >= 0.95, kept


def test_b_cell_aplasia_and_recovery(tiny_run, truth):
    """Aplasia where the scenario depletes B cells; B cells back where it lets them return."""
    types = read_table(tiny_run, "cell_types")
    blood = types[types["tissue"] == "PB"]
    b = blood[blood["cell_type"].isin(B_CELLS)].groupby(["patient", "day"])["fraction"].sum()
    b = b.reset_index()
    patients = truth["patients"].set_index("patient")
    depleted = patients.index[patients["aplasia"].astype(bool)]
    recovering = patients.index[patients["b_recovery_from_day"].notna()]
    assert len(depleted) >= 2 and len(recovering) >= 2
    aplasia = b[(b["day"] >= 10) & (b["day"] <= 30) & b["patient"].isin(depleted)]
    assert len(aplasia) and (aplasia["fraction"] < 0.005).all(), aplasia
    late = b[(b["day"] >= 170) & b["patient"].isin(recovering)]
    assert len(late) and (late["fraction"] > 0.03).all(), late
    baseline = b[b["day"] <= 0]
    assert (baseline["fraction"] > 0.05).all(), baseline


def test_returning_b_cells_are_naive(tiny_run, truth):
    """In the reference scenario (B cells return as naive cells, as in the trial)."""
    patients = truth["patients"]
    reference = patients.loc[patients["scenario"] == "reference", "patient"]
    types = read_table(tiny_run, "cell_types")
    types = types[types["patient"].isin(reference)]
    blood = types[(types["tissue"] == "PB") & types["cell_type"].isin(B_CELLS)]
    post = blood[blood["day"] >= 90]
    n = post.groupby(["sample"])["n_cells"].sum()
    naive = post[post["cell_type"].isin(["B_naive", "B_transitional"])]
    naive = naive.groupby("sample")["n_cells"].sum().reindex(n.index, fill_value=0)
    share = (naive / n)[n >= 5]
    assert len(share) >= 3
    assert np.all(share >= 0.8), share
    base = blood[blood["day"] <= 0]
    base_naive = base[base["cell_type"].isin(["B_naive", "B_transitional"])]["n_cells"].sum()
    assert base_naive / base["n_cells"].sum() < 0.6


def test_qc_by_cell_type_labels_product_cells(tiny_run, truth):
    """Issue 13: qc_by_cell_type.tsv's labels are right for product samples (95 % T cells),
    which a sample scored alone mislabelled (17 % right). Kept cells carry the cohort
    annotation: >= 95 % right at lineage level, issue 13's bar. Removed cells that are not
    doublets (a doublet has two lineages; most are low quality, with few counts) are scored
    against the cohort: >= 75 %, the level the per-sample labels reached for blood's removed
    cells (74-80 %, doublets included), where that labelling worked. The kept counts are
    cell_types.tsv's."""
    labels = pd.read_csv(tiny_run / "results" / "gex" / "qc" / "cell_types_before_qc.tsv", sep="\t")
    labels = labels.set_index("cell")
    cells = truth["cells"].loc[labels.index]
    product = cells["sample"].str.endswith("_product").to_numpy()
    kept = labels.index.isin(
        ad.read_h5ad(tiny_run / "results/gex/annotated.h5ad", backed="r").obs_names
    )
    right = (labels["qc_cell_type"].map(LINEAGE) == cells["lineage"]).to_numpy()
    singlet = ~cells["doublet"].to_numpy()
    assert (product & kept).sum() >= 1000 and (product & ~kept & singlet).sum() >= 20
    assert right[product & kept & singlet].mean() >= 0.95
    assert right[product & ~kept & singlet].mean() >= 0.75
    table = read_table(tiny_run, "qc_by_cell_type").set_index(["sample", "cell_type"])
    types = read_table(tiny_run, "cell_types").set_index(["sample", "cell_type"])
    passed = table["n_cells_passed"].to_numpy()
    assert (passed == types.loc[table.index, "n_cells"].to_numpy()).all()
