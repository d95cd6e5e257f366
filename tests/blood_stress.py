"""Stress data for annotation, CAR-T, doublet and CD19+BCMA+ tests (not the cohort simulator).

Cells draw Poisson counts from a cell-type profile plus a share of ambient RNA (the sample's
mean profile with extra plasma-cell immunoglobulin and haemoglobin, as in real blood).
Proliferating CD8 CAR-T cells carry the genes that fooled the old annotator: MKI67, TOP2A,
PRDM1, IRF4, XBP1, CD38, plus effector GZMB/NKG7/GNLY/PRF1/KLRD1 and CAR transcripts.
"""

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

PAN_B = ["MS4A1", "CD79A", "CD79B", "CD19", "CD22", "BANK1", "PAX5"]
PLASMA = [
    "MZB1",
    "JCHAIN",
    "TNFRSF17",
    "TXNDC5",
    "DERL3",
    "FKBP11",
    "XBP1",
    "PRDM1",
    "IRF4",
    "CD38",
    "IGKC",
    "IGHG1",
]
T = [
    "CD3E",
    "CD3D",
    "CD3G",
    "TRAC",
    "TRBC1",
    "TRBC2",
    "CD5",
    "CD6",
    "BCL11B",
    "CD27",
    "CD28",
    "IL7R",
]
PROLIF = ["MKI67", "TOP2A", "TYMS", "UBE2C", "BIRC5", "CENPF", "NUSAP1", "TPX2", "CDK1", "RRM2"]
EFFECTOR = [
    "GZMB",
    "NKG7",
    "GNLY",
    "PRF1",
    "KLRD1",
    "ZEB2",
    "TBX21",
    "PRDM1",
    "IRF4",
    "XBP1",
    "CD38",
]
PROFILES = {
    "B_naive": PAN_B
    + ["TCL1A", "FCER2", "IL4R", "IGHD", "IGHM", "YBX3", "BACH2", "CR2", "CXCR5", "HLA-DRA"],
    "B_memory": PAN_B
    + ["AIM2", "TNFRSF13B", "SSPN", "COCH", "SCIMP", "CD27", "IGHG1", "CR2", "HLA-DRA"],
    "plasmablast": PLASMA + PROLIF + ["HLA-DRA", "HLA-DRB1", "CD19", "CD79A"],
    "plasma_cell": PLASMA + ["SDC1", "BCL2", "CD79A"],
    "T_CD4": T + ["CD4", "CD40LG", "CCR7", "LEF1", "TCF7"],
    "T_CD8": T + ["CD8A", "CD8B", "GZMK", "CCL5"],
    "CAR_T": T + ["CD8A", "CD8B", "CAR_CD19", "CAR_BCMA"] + PROLIF + EFFECTOR,
    "NK": [
        "KLRF1",
        "NCAM1",
        "SH2D1B",
        "NCR1",
        "GNLY",
        "NKG7",
        "FCER1G",
        "TYROBP",
        "PRF1",
        "GZMB",
        "KLRD1",
    ],
    "monocyte": [
        "CD14",
        "LYZ",
        "FCN1",
        "S100A8",
        "S100A9",
        "VCAN",
        "CSF1R",
        "MS4A7",
        "CST3",
        "HLA-DRA",
    ],
}
OTHER_GENES = [
    "HBB",
    "HBA1",
    "HBA2",
    "PPBP",
    "PF4",
    "LILRA4",
    "SDC1",
    "ITGAX",
    "FCRL5",
    "MME",
    "CD24",
]
N_BACKGROUND = 400


def genes() -> list[str]:
    named = sorted({g for p in PROFILES.values() for g in p} | set(OTHER_GENES))
    return [f"MT-G{i}" for i in range(5)] + named + [f"BG{i}" for i in range(N_BACKGROUND)]


def make_blood(
    composition: dict[str, int],
    *,
    seed: int = 0,
    depth: float = 2500,
    ambient: float = 0.05,
    marker_share: float = 0.0012,
    doublet_rate: float = 0.0,
    sample: str = "S1",
    car_share: float = 0.002,
) -> ad.AnnData:
    """Raw-count AnnData; obs ``truth`` (cell type, ``doublet`` for doublets) and ``sample``.

    Each expressed marker takes about `marker_share` of a cell's UMIs (about 3 UMIs at the
    default depth: typical of 10x blood), scaled by a per-gene lognormal factor.
    """
    rng = np.random.default_rng(seed)
    names = genes()
    col = {g: i for i, g in enumerate(names)}
    background = rng.lognormal(0, 1.2, len(names))
    background[[col[g] for g in names if not g.startswith(("BG", "MT-"))]] = 0
    background /= background.sum()
    gene_factor = rng.lognormal(0, 0.4, len(names))
    profiles = {}
    for t, markers in PROFILES.items():
        p = background * (1 - marker_share * len(markers))
        for g in markers:
            share = car_share if g.startswith("CAR_") else marker_share
            if t in ("plasmablast", "plasma_cell") and g in ("JCHAIN", "IGKC", "IGHG1", "MZB1"):
                share = 0.03  # plasma cells spend much of their library on these
            p[col[g]] += share * gene_factor[col[g]]
        profiles[t] = p / p.sum()
    truth = [t for t, n in composition.items() for _ in range(n)]
    mix = np.array([profiles[t] for t in truth])
    amb = mix.mean(axis=0)
    for g, extra in (("JCHAIN", 0.01), ("IGKC", 0.01), ("HBB", 0.01), ("S100A8", 0.003)):
        amb[col[g]] += extra
    amb /= amb.sum()
    lib = rng.lognormal(np.log(depth), 0.35, len(truth))
    mean = lib[:, None] * ((1 - ambient) * mix + ambient * amb[None, :])
    x = rng.poisson(mean).astype(np.float32)
    n_dbl = int(round(doublet_rate * len(truth)))
    if n_dbl:
        pairs = rng.choice(len(truth), size=(n_dbl, 2), replace=False)
        x = np.vstack([x, x[pairs[:, 0]] + x[pairs[:, 1]]])
        truth = truth + ["doublet"] * n_dbl
    a = ad.AnnData(sp.csr_matrix(x), var=pd.DataFrame(index=names))
    a.obs_names = [f"{sample}_c{i}" for i in range(a.n_obs)]
    a.obs["truth"] = truth
    a.obs["sample"] = sample
    return a


def normalised(a: ad.AnnData) -> ad.AnnData:
    """Counts in layers["counts"], log1p(CP10k) in X (as gex_integrate leaves them)."""
    a = a.copy()
    a.layers["counts"] = a.X.copy()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    return a


def downsample(a: ad.AnnData, share: float, seed: int = 0) -> ad.AnnData:
    """Binomial thinning of every UMI (keeps each with probability `share`)."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(a.X, copy=True)
    x.data = rng.binomial(x.data.astype(np.int64), share).astype(np.float32)
    x.eliminate_zeros()
    out = a.copy()
    out.X = x
    return out
