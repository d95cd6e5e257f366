"""Assembling cohort.h5mu: per-cell tables joined into gex.obs, airr and prot modalities."""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd


def gex(n: int = 4) -> ad.AnnData:
    a = ad.AnnData(np.ones((n, 3), dtype=np.float32))
    a.obs_names = [f"S1_c{i}" for i in range(n)]
    a.obs["sample"] = "S1"
    return a


def test_tables_join_and_clone_id_is_empty_without_bcr(tmp_path):
    from cartrack.cohort import assemble

    clones = pd.DataFrame({"clone_id": ["P1_C1"], "isotype": ["IgM"]}, index=["S1_c1"])
    scores = pd.DataFrame({"IFN_score": [0.1, 0.2, 0.3, 0.4]}, index=gex().obs_names)
    airr = ad.AnnData(obs=pd.DataFrame(index=["S1_c1", "S1_x"]))
    mdata = assemble(gex(), per_cell=[scores, clones], airr=airr)
    obs = mdata["gex"].obs
    assert obs["clone_id"].tolist() == ["", "P1_C1", "", ""]
    assert obs["IFN_score"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert set(mdata.mod) == {"gex", "airr"}
    mdata.write(tmp_path / "c.h5mu")
    assert md.read_h5mu(tmp_path / "c.h5mu")["airr"].n_obs == 2


def test_antibody_capture_becomes_a_clr_normalised_prot_modality():
    from cartrack.cohort import assemble

    g = gex()
    g.obsm["prot_counts"] = pd.DataFrame(
        {"CD19": [10.0, 0, 50, np.nan], "CD269": [1.0, 30, 2, np.nan]}, index=g.obs_names
    )
    mdata = assemble(g, per_cell=[], airr=None)
    prot = mdata["prot"]
    assert prot.n_obs == 3  # the cell of a sample without antibodies is left out
    assert prot.layers["counts"][1, 1] == 30
    assert prot.X[2, 0] > prot.X[1, 0]  # CLR keeps the order within an antibody
    assert not np.allclose(prot.X, prot.layers["counts"])
