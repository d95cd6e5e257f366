"""The demo cohort's scenarios: what each simulated patient's story is, as numbers.

Composition of blood and marrow at baseline, B-cell return after aplasia, CAR-T expansion,
IFN / BAFF programme levels, V(D)J recovery rates, the expanded clones each scenario plans
and which of them persist. :mod:`cartrack.simulate` draws the cells from these; its
module docstring tells the four scenarios and the truth tables.
"""

import numpy as np

from cartrack import simulate_expression as ex
from cartrack.design import B_LINEAGE, CELL_TYPES

POST_DAY = 28  # tracking.post_min_day's default: truth counts use the same split
LINEAGE = {
    **dict.fromkeys(B_LINEAGE[:4], "B"),
    "plasmablast": "plasma",
    "plasma_cell": "plasma",
    "T_CD4": "T",
    "T_CD8": "T",
    "NK": "NK",
    "monocyte": "myeloid",
    "DC": "myeloid",
    "other": "other",
}
KIND_TYPE = {**{t: t for t in CELL_TYPES}, **dict.fromkeys(ex.SUBTYPES["other"], "other")}
# Composition before normalisation (shares of cells). SLE blood at baseline is lymphopenic
# with many monocytes; marrow holds plasma cells, erythroid cells and progenitors.
PB_BASELINE = {
    "B_naive": 4.0, "B_transitional": 0.4, "B_memory": 4.0, "B_atypical": 5.0,
    "plasmablast": 4.0, "T_CD4": 30, "T_CD8": 18, "NK": 10, "monocyte": 24, "DC": 2.5,
    "platelet": 1.5, "erythroid": 0.3,
}  # fmt: skip
BM_BASELINE = {
    "B_naive": 3, "B_transitional": 1.5, "B_memory": 1.5, "B_atypical": 0.5,
    "plasmablast": 0.8, "plasma_cell": 6, "T_CD4": 14, "T_CD8": 12, "NK": 5, "monocyte": 28,
    "DC": 3, "erythroid": 12, "progenitor": 4, "LDG": 2, "platelet": 1,
}  # fmt: skip
MONOCYTE_POST = 0.6  # monocytes shrink to this share of baseline once lymphocytes are back
LDG_SHARE = 0.05  # low-density granulocytes in a flagged sample's PBMCs
AGGREGATE_SHARE = 0.25  # monocytes with a platelet attached in a flagged sample
# Returning B cells: transitional and naive, few memory (Mackensen 2022); the `persistent`
# patient also regains some memory, atypical and plasmablast cells (its persisting clones).
RETURNING_B = {"B_naive": 0.62, "B_transitional": 0.33, "B_memory": 0.05, "B_atypical": 0.0}
RETURNING_B_PERSISTENT = {
    "B_naive": 0.45, "B_transitional": 0.2, "B_memory": 0.15, "B_atypical": 0.1,
    "plasmablast": 0.1,
}  # fmt: skip
B_RETURN_SHARE = [(0, 0.05), (60, 0.10), (150, 0.14)]  # by days since recovery
CAR_SHARE = [(7, 0.15), (14, 0.35), (28, 0.15), (90, 0.04), (180, 0.02), (365, 0.01)]
PROLIFERATING_CAR = (7, 21, 0.7)  # days, share of CAR-T cells cycling then
IFN_FOLD = [(0, 4.0), (14, 2.0), (28, 1.6), (90, 1.0)]
BAFF_FOLD = [(0, 3.0), (28, 2.0), (90, 1.0)]
FLAT_IFN, FLAT_BAFF = 2.5, 2.0  # composition-only patients: within-type level at all days
HEAVY_RECOVERY = (0.5, 0.8)  # per sample (10x V(D)J: heavy chains are the harder half)
LIGHT_RECOVERY = 0.88
PLASMA_HEAVY_LOSS = 0.4  # extra heavy-chain loss in plasma cells (light-only cells)
AMBIENT_BCR = 0.03  # T / NK cells that pick up an ambient Ig contig, where plasma cells are
SAMPLE_DEPTH = (0.8, 2.0)  # per-sample depth factor over REF_DEPTH profiles (2.5x range)
AMBIENT_RNA = (0.01, 0.05)  # share of each droplet's expected counts from the sample's soup
# A public clone: in the `convergent` patient, some otherwise unclonal memory / atypical B
# cells at baseline belong to a clone whose heavy junction (amino acids) equals a memory
# clone's of the previous patient (same V and J, other codons, its own V mutations and light
# chain). Drawn from its own generator, so the cohort's main random stream is unchanged.
PUBLIC_SHARE = {"B_memory": 0.5, "B_atypical": 0.5}

SCENARIOS = [
    {"scenario": "reference", "recovery": 80.0, "persist": (), "signatures": "true_fall",
     "ldg": True},
    {"scenario": "persistent", "recovery": 150.0, "persist": ("dp", "memory", "llpc"),
     "signatures": "composition_only", "aggregates": True, "convergent": True},
    {"scenario": "same_repertoire", "recovery": None, "persist": ("dp", "memory", "llpc"),
     "signatures": "true_fall", "null": True, "ldg": True},
    {"scenario": "non_recovering", "recovery": np.inf, "persist": ("llpc",),
     "signatures": "composition_only", "shallow": True, "aggregates": True,
     "marrow_only_llpc": True},
]  # fmt: skip
# Expanded clones: kind -> [(share of each cell type's cells, tissues)], per patient. Active
# SLE blood holds oligoclonal plasmablast / DN2 expansions, so the DP clones are large.
CLONE_PLAN = {
    "dp": [({"plasmablast": 0.45, "B_atypical": 0.3}, ("PB", "BM")),
           ({"plasmablast": 0.3, "B_atypical": 0.2}, ("PB", "BM"))],
    "memory": [({"B_memory": 0.3}, ("PB", "BM")), ({"B_memory": 0.2}, ("PB", "BM"))],
    "llpc": [({"plasma_cell": 0.3, "plasmablast": 0.03}, ("BM",)),
             ({"plasma_cell": 0.2}, ("BM",))],
}  # fmt: skip


def interpolate(day: float, table: list[tuple[float, float]]) -> float:
    """Piecewise-linear lookup in a (day, value) table, flat beyond its ends."""
    days, values = zip(*table, strict=True)
    return float(np.interp(day, days, values))
