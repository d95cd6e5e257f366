"""Interferon and BAFF signatures on the tiny simulated cohort, against its truth."""

import pytest
from workflow_helpers import read_table

pytestmark = pytest.mark.workflow

HALLMARK_IFN = {"HALLMARK_INTERFERON_ALPHA_RESPONSE", "HALLMARK_INTERFERON_GAMMA_RESPONSE"}


@pytest.fixture(scope="module")
def changes(tiny_run):
    return read_table(tiny_run, "signature_changes")


def test_ifn_falls_at_every_post_time_point_from_day_90(changes):
    ifn = changes[
        (changes["signature"] == "IFN") & (changes["cell_type"] == "all") & (changes["day"] >= 90)
    ]
    assert len(ifn) >= 3
    assert (ifn["delta"] < 0).all(), ifn
    assert (ifn["p_value"] < 0.05).all(), ifn


def test_baff_falls_in_b_cells_once_they_are_back(changes):
    baff = changes[
        (changes["signature"] == "BAFF")
        & (changes["cell_type"] == "B_cells")
        & (changes["day"] >= 90)
    ]
    assert len(baff) >= 1
    assert (baff["delta"] < 0).all(), baff


def test_random_genes_show_no_change(changes):
    control = changes[(changes["signature"] == "RANDOM_CONTROL") & changes["p_value"].notna()]
    assert len(control) >= 10
    # in all cells no change at all; across the cell types no more false positives than the
    # 5% level allows (about one in 20 tests with three patients)
    assert (control.loc[control["cell_type"] == "all", "p_value"] >= 0.05).all(), control
    assert (control["p_value"] < 0.05).mean() <= 0.1, control
    ifn = changes[(changes["signature"] == "IFN") & (changes["day"] >= 90)]
    assert control["delta"].abs().max() < ifn["delta"].abs().median()


@pytest.mark.parametrize("cell_type", ["monocyte", "all"])
def test_gsea_puts_interferon_hallmarks_on_top_for_baseline(tiny_run, cell_type):
    gsea = read_table(tiny_run, "gsea")
    res = gsea[(gsea["cell_type"] == cell_type) & (gsea["comparison"] == "baseline_vs_post")]
    res = res.sort_values("nes", ascending=False)
    hallmarks = res[res["term"].isin(HALLMARK_IFN)]
    assert len(hallmarks) == 2
    assert (hallmarks["nes"] > 0).all()
    assert res.iloc[0]["term"] in HALLMARK_IFN | {"IFN"}, res
    assert hallmarks["fdr"].min() < 0.25
