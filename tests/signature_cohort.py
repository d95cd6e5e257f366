"""A small paired cohort with cell subsets, for the within-cell-type signature tests.

Six patients, a baseline (day -7 + i) and an M3 (day 90 + i) blood sample each; four cell
types. Interferon genes are expressed by every type but most by monocytes; the BAFF-R
response genes more in memory than in naive B cells; TNFRSF13B marks memory, TNFRSF13C
naive B cells. Scenarios:

- ``composition``: every cell type keeps its programme; only the mix changes (memory-rich
  B cells and few monocytes at baseline, naive-rich B cells and many monocytes at M3), as
  after CAR-T. Nothing changes within a cell type.
- ``fall``: the mix stays; interferon genes fall within monocytes and T cells, BAFF-R
  response genes within naive B cells.
"""

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

IFN = ["IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1", "MX1", "OAS1"]
BAFF = ["NFKB2", "RELB", "BCL2L1", "BCL2A1", "MCL1", "PIM2"]
IDENTITY = {"B_memory": "TNFRSF13B", "B_naive": "TNFRSF13C", "monocyte": "CD14", "T_CD4": "CD3E"}
N_BACKGROUND = 400
BACKGROUND = [f"GENE{i}" for i in range(N_BACKGROUND)]
GENES = IFN + BAFF + list(IDENTITY.values()) + BACKGROUND
GENE_SETS = {"IFN": IFN, "BAFF": BAFF}
PATIENTS = [f"P{i}" for i in range(1, 7)]
CELL_TYPES = ["monocyte", "B_naive", "B_memory", "T_CD4"]
# cells per type at baseline and at M3
COMPOSITION = {
    "composition": {
        "baseline": {"monocyte": 30, "B_naive": 25, "B_memory": 75, "T_CD4": 60},
        "M3": {"monocyte": 90, "B_naive": 75, "B_memory": 25, "T_CD4": 60},
    },
    "fall": {
        "baseline": {"monocyte": 50, "B_naive": 50, "B_memory": 50, "T_CD4": 60},
        "M3": {"monocyte": 50, "B_naive": 50, "B_memory": 50, "T_CD4": 60},
    },
}
# extra rate of the interferon genes per cell type (baseline)
IFN_RATE = {"monocyte": 4.0, "B_naive": 1.0, "B_memory": 1.0, "T_CD4": 1.5}
# extra rate of the BAFF-R response genes per B subset (baseline)
BAFF_RATE = {"B_naive": 2.0, "B_memory": 4.0}


def make_cohort(scenario: str, *, seed: int = 0, patients=PATIENTS) -> ad.AnnData:
    """Counts (``layers["counts"]``) and log-normalised ``.X`` for one scenario."""
    rng = np.random.default_rng(seed)
    base_rate = rng.lognormal(mean=-0.3, sigma=0.8, size=len(GENES))
    idx = {g: i for i, g in enumerate(GENES)}
    blocks, obs = [], []
    for p_i, patient in enumerate(patients):
        patient_level = rng.lognormal(0, 0.15, size=len(GENES))  # patients differ
        for label, day in (("baseline", -7), ("M3", 90)):
            sample = f"{patient}_{label}"
            for cell_type, n in COMPOSITION[scenario][label].items():
                rate = np.tile(base_rate * patient_level, (n, 1))
                rate[:, idx[IDENTITY[cell_type]]] += 6.0
                falls = scenario == "fall" and label == "M3"
                ifn = IFN_RATE[cell_type]
                if falls and cell_type in ("monocyte", "T_CD4"):
                    ifn *= 0.25
                rate[:, [idx[g] for g in IFN]] += ifn
                if cell_type in BAFF_RATE:
                    baff = BAFF_RATE[cell_type]
                    if falls and cell_type == "B_naive":
                        baff *= 0.25
                    rate[:, [idx[g] for g in BAFF]] += baff
                blocks.append(rng.poisson(rate))
                obs.append(
                    pd.DataFrame(
                        {
                            "sample": sample,
                            "patient": patient,
                            "day": day + p_i,
                            "tissue": "PB",
                            "timepoint": label,
                            "cell_type": cell_type,
                        },
                        index=[f"{sample}_{cell_type}_{k}" for k in range(n)],
                    )
                )
    counts = sparse.csr_matrix(np.vstack(blocks).astype(np.float32))
    adata = ad.AnnData(X=counts.copy(), obs=pd.concat(obs), var=pd.DataFrame(index=GENES))
    adata.layers["counts"] = counts
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata
