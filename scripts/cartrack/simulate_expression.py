"""Gene-expression side of the demo simulator: the simulator's own gene programmes.

Levels are expected UMIs per cell at a reference depth of ``REF_DEPTH`` UMIs, before the
cell's size factor; counts are negative binomial with size ``NB_SIZE`` (detection of a gene
with mean m is 1 - (5 / (5 + m))^5: m = 0.5 -> 38 %, 1 -> 60 %, 2 -> 81 %, 5 -> 97 %).
Figures aimed at (approximate, from public 10x Genomics PBMC data such as pbmc3k /
pbmc10k 3' v3 and 5' v2, as summarised in the scanpy / sc-best-practices tutorials, and from
the marker tables of the Allen Immune Health Atlas; read off, not re-measured):

- median 3,000-7,000 UMIs per PBMC; platelets and broken cells far fewer; plasma cells 2-4x
  more, 30-50 % of them immunoglobulin; sequencing depth differs 2-3x between samples;
- MS4A1 and CD79A in ~90 % of B cells, CD19 in 30-60 % of B cells and fewer plasmablasts,
  TNFRSF17 (BCMA) in most plasmablasts / plasma cells and a few percent of memory B cells;
- LYZ, S100A8/9 at tens of UMIs in monocytes (and the main ambient transcripts with HBB,
  PPBP and Ig), CD3E/IL7R/NKG7/GNLY at several UMIs in their lineages;
- shared programmes: CD27 in memory B and T cells, CD28 in T cells and plasma cells,
  ITGAX/TBX21 in atypical B, NK and myeloid cells, CD38 in transitional B, plasmablasts,
  plasma cells, activated T and NK cells, proliferation (MKI67, TOP2A...) in plasmablasts
  and in expanding CAR-T cells at D7-D14;
- ambient RNA: 1-5 % of each droplet's counts drawn from the sample's pooled profile.

These programmes are deliberately not read from ``resources/markers.tsv``: the annotator
must recognise cells from biology, not from the simulator's own list.
"""

import numpy as np

from cartrack.design import B_CELLS, B_LINEAGE

REF_DEPTH = 5000
NB_SIZE = 5.0
CAR_FEATURES = ["CAR_CD19", "CAR_BCMA"]

_B = dict.fromkeys(B_CELLS, 1.0)
_T = {"T_CD4": 1.0, "T_CD8": 1.0}
# gene -> {cell_type: expected UMIs at REF_DEPTH}; keys may be subtypes (see SUBTYPES).
PROGRAMMES: dict[str, dict[str, float]] = {
    # B-cell identity; CD19 at 0.45-0.6 UMIs is detected in 30-60 % of B cells
    "MS4A1": {**{t: 4.0 for t in _B}, "plasmablast": 0.3},
    "CD79A": {**{t: 6.0 for t in _B}, "plasmablast": 3.0, "plasma_cell": 1.5},
    "CD79B": {**{t: 4.0 for t in _B}, "plasmablast": 1.0},
    "CD19": {**{t: 0.45 for t in _B}, "B_transitional": 0.6, "plasmablast": 0.08},
    "CD22": {t: 1.2 for t in _B},
    "PAX5": {t: 1.0 for t in _B},
    "BANK1": {**{t: 1.5 for t in _B}, "B_atypical": 0.6},
    "CR2": {"B_naive": 0.8, "B_transitional": 1.0, "B_memory": 0.8},
    "FCRL1": {"B_naive": 0.8, "B_memory": 0.5},
    # naive / transitional
    "TCL1A": {"B_naive": 3.0, "B_transitional": 5.0},
    "FCER2": {"B_naive": 1.5, "B_transitional": 0.8},
    "IL4R": {"B_naive": 1.2, "B_transitional": 0.8, "T_CD4": 0.3},
    "BACH2": {"B_naive": 0.8, "B_transitional": 0.6, "T_CD4": 0.3},
    "YBX3": {"B_naive": 0.6},
    "MME": {"B_transitional": 1.2, "progenitor": 0.8, "LDG": 0.5},
    "CD24": {"B_transitional": 2.0, "B_naive": 0.4, "LDG": 1.0},
    "ACSM3": {"B_transitional": 0.5},
    # memory and shared CD27 / CD28
    "CD27": {"B_memory": 1.5, "plasmablast": 2.0, "plasma_cell": 1.0, "T_CD4": 1.2, "T_CD8": 1.0},
    "AIM2": {"B_memory": 0.8, "B_atypical": 0.5},
    "CD28": {"T_CD4": 1.0, "T_CD8": 0.6, "plasma_cell": 0.6},
    # atypical (DN2) B, shared with NK and myeloid cells
    "ITGAX": {"B_atypical": 1.5, "monocyte": 0.8, "DC": 1.2, "NK": 0.4},
    "TBX21": {"B_atypical": 1.0, "NK": 1.2, "T_CD8": 0.4},
    "FCRL5": {"B_atypical": 1.5, "B_memory": 0.2, "plasmablast": 0.3},
    "ZEB2": {"B_atypical": 1.2, "monocyte": 1.5, "NK": 0.8, "DC": 0.8},
    # antibody-secreting cells; BCMA (TNFRSF17) in most of them, a few % of memory B cells
    "MZB1": {"plasmablast": 6.0, "plasma_cell": 8.0, "B_atypical": 0.3, "DC": 0.5},
    "JCHAIN": {"plasmablast": 8.0, "plasma_cell": 10.0},
    "XBP1": {"plasmablast": 3.0, "plasma_cell": 4.0, "B_atypical": 0.3},
    "PRDM1": {"plasmablast": 1.0, "plasma_cell": 1.2, "T_CD8": 0.2, "NK": 0.2},
    "IRF4": {"plasmablast": 1.5, "plasma_cell": 1.2, "B_memory": 0.2},
    "SDC1": {"plasma_cell": 1.2, "plasmablast": 0.3},
    "TNFRSF17": {"plasmablast": 2.0, "plasma_cell": 2.5, "B_memory": 0.03, "B_atypical": 0.05},
    "BCL2": {"plasma_cell": 1.0, "T_CD4": 0.6, "B_naive": 0.5},
    "CD38": {
        "plasmablast": 3.0,
        "plasma_cell": 3.0,
        "B_transitional": 1.5,
        "NK": 0.6,
        "T_CD8": 0.2,
        "monocyte": 0.4,
    },
    "HLA-DRA": {**{t: 8.0 for t in _B}, "monocyte": 10.0, "DC": 15.0, "plasmablast": 2.0},
    # T cells
    "CD3E": {**_T, "T_CD4": 4.0, "T_CD8": 4.0},
    "CD3D": {"T_CD4": 3.0, "T_CD8": 3.0},
    "TRBC2": {"T_CD4": 4.0, "T_CD8": 4.0, "NK": 0.3},
    "IL7R": {"T_CD4": 3.0, "T_CD8": 0.8},
    "CCR7": {"T_CD4": 1.5, "T_CD8": 0.6, "B_naive": 0.3},
    "LEF1": {"T_CD4": 1.2, "T_CD8": 0.8},
    "TCF7": {"T_CD4": 1.0, "T_CD8": 0.6},
    "CD4": {"T_CD4": 0.8, "monocyte": 0.4, "DC": 0.3},
    "CD8A": {"T_CD8": 2.0},
    "CD8B": {"T_CD8": 1.5},
    "GZMK": {"T_CD8": 1.5, "NK": 0.3},
    "CCL5": {"T_CD8": 5.0, "NK": 4.0, "T_CD4": 0.3},
    "GZMH": {"T_CD8": 1.5, "NK": 1.0},
    "GZMB": {"NK": 4.0, "T_CD8": 0.5, "DC": 0.5},
    # NK
    "GNLY": {"NK": 15.0, "T_CD8": 1.0},
    "NKG7": {"NK": 10.0, "T_CD8": 2.0},
    "KLRD1": {"NK": 3.0, "T_CD8": 0.5},
    "FCGR3A": {"NK": 3.0, "monocyte": 0.8},
    "NCAM1": {"NK": 0.6, "plasma_cell": 0.2},
    "PRF1": {"NK": 3.0, "T_CD8": 0.6},
    "TYROBP": {"NK": 5.0, "monocyte": 6.0, "DC": 3.0},
    "KLRF1": {"NK": 1.5},
    # myeloid and DC
    "CD14": {"monocyte": 3.0},
    "LYZ": {"monocyte": 40.0, "DC": 15.0, "LDG": 5.0},
    "FCN1": {"monocyte": 6.0},
    "S100A8": {"monocyte": 25.0, "LDG": 40.0, "DC": 2.0},
    "S100A9": {"monocyte": 30.0, "LDG": 50.0, "DC": 3.0},
    "CSF1R": {"monocyte": 1.0},
    "VCAN": {"monocyte": 2.0},
    "CST3": {"monocyte": 8.0, "DC": 12.0},
    "CLEC10A": {"DC": 1.5},
    "FCER1A": {"DC": 2.0},
    "CD1C": {"DC": 1.2},
    "LILRA4": {"DC": 0.6},
    "IL3RA": {"DC": 0.6},
    "HLA-DQA1": {"DC": 2.0, "monocyte": 0.8, "B_naive": 1.0, "B_memory": 1.0},
    "CLEC4C": {"DC": 0.3},
    # other: platelets, erythroid cells, progenitors, low-density granulocytes
    "PPBP": {"platelet": 30.0},
    "PF4": {"platelet": 15.0},
    "GP9": {"platelet": 2.0},
    "HBB": {"erythroid": 60.0},
    "HBA1": {"erythroid": 30.0},
    "HBA2": {"erythroid": 25.0},
    "GYPA": {"erythroid": 2.0},
    "CD34": {"progenitor": 2.0},
    "SPINK2": {"progenitor": 1.5},
    "CSF3R": {"LDG": 4.0, "monocyte": 0.5},
    "FCGR3B": {"LDG": 8.0},
    "CXCL8": {"LDG": 5.0, "monocyte": 1.0},
    "MNDA": {"LDG": 3.0, "monocyte": 3.0},
}
# Proliferation (cycling plasmablasts, expanding CAR-T cells) and T-cell activation.
PROLIFERATION = {"MKI67": 1.2, "TOP2A": 1.5, "STMN1": 3.0, "TUBB": 3.0, "CDK1": 0.8}
ACTIVATION = {"CD38": 2.0, "IRF4": 1.0, "HLA-DRA": 3.0, "GZMB": 2.0, "CD69": 1.5}
# Relative RNA content: platelets and red cells hold little, plasma cells and monocytes more.
KIND_SIZE = {"platelet": 0.12, "erythroid": 0.35, "LDG": 0.5, "monocyte": 1.3,
             "plasmablast": 1.6, "plasma_cell": 1.8}  # fmt: skip
# Subtypes of the contract's cell types (truth column `subtype`).
SUBTYPES = {"other": ["platelet", "erythroid", "progenitor", "LDG"]}
HOUSEKEEPING = {
    "MALAT1": 150.0,
    "B2M": 120.0,
    "TMSB4X": 120.0,
    "EEF1A1": 80.0,
    "ACTB": 60.0,
    "TPT1": 50.0,
    "FTL": 40.0,
    "GAPDH": 15.0,
}
MITO = [f"MT-{g}" for g in "ND1 ND2 CO1 CO2 ATP8 ATP6 CO3 ND3 ND4L ND4 ND5 ND6 CYB".split()]
MITO_SHARE = 0.04
RIBO = [f"RPS{i}" for i in range(2, 22)] + [f"RPL{i}" for i in range(3, 23)]
RIBO_UMIS = 900.0
IG_GENES = "IGHM IGHD IGHG1 IGHG2 IGHG3 IGHG4 IGHA1 IGHA2 IGHE IGKC IGLC1 IGLC2 IGLC3".split()
# Share of a cell's counts that are immunoglobulin (heavy constant + light constant).
IG_SHARE = {"plasmablast": 0.35, "plasma_cell": 0.5, **dict.fromkeys(B_CELLS, 0.03)}
ISOTYPE_GENE = {
    "IgM": "IGHM",
    "IgD": "IGHD",
    "IgG1": "IGHG1",
    "IgG2": "IGHG2",
    "IgG3": "IGHG3",
    "IgA1": "IGHA1",
    "IgA2": "IGHA2",
}
# Interferon-stimulated genes at rest (fold 1), per cell type; SIGLEC1 is monocyte-only.
IFN_REST = {"monocyte": 0.8, "DC": 0.8, "LDG": 0.8}
IFN_REST_DEFAULT = 0.3
BAFF_DEPENDENT = ["TNFRSF13C", "TNFRSF13B", "NFKB2", "RELB", "MAP3K14", "TRAF1", "BIRC3"]
BAFF_REST = 0.5  # UMIs of each BAFF-dependent gene in B-lineage cells at rest
BAFF_LIGAND_REST = 0.3  # TNFSF13B (BAFF) in monocytes at rest
CAR_UMIS = 3.0  # CAR transcript in a CAR-T cell (~90 % detected)
# Soup: besides the cells, lysed red cells and platelets add free HBB / PPBP to the pool.
FREE_SOUP = {"HBB": 0.3, "HBA1": 0.15, "PPBP": 0.05}


class Expression:
    """The gene universe and the per-cell expected UMIs."""

    def __init__(self, rng, *, ifn_genes, baff_genes, n_genes: int):
        named = dict.fromkeys(
            [*PROGRAMMES, *PROLIFERATION, *ACTIVATION, *HOUSEKEEPING, *MITO, *RIBO, *IG_GENES]
            + [*ifn_genes, *baff_genes, *BAFF_DEPENDENT, "TNFSF13B", "SIGLEC1"]
        )
        fillers = [f"SIMG{i:04d}" for i in range(max(0, n_genes - len(named)))]
        self.genes = list(named) + fillers
        self.features = self.genes + CAR_FEATURES
        self.index = {g: i for i, g in enumerate(self.features)}
        self.ifn = np.array([self.index[g] for g in dict.fromkeys(ifn_genes)])
        self.baff = np.array([self.index[g] for g in BAFF_DEPENDENT])
        self.mito = np.array([self.index[g] for g in MITO])
        self.ig = np.array([self.index[g] for g in IG_GENES])
        self.filler = np.array([self.index[g] for g in fillers], dtype=int)
        n = len(self.features)
        # Background transcriptome: most genes at a fraction of a UMI, a long tail higher.
        self.background = np.zeros(n)
        self.background[self.filler] = rng.lognormal(np.log(0.25), 1.3, size=len(fillers))
        # named genes: a trace elsewhere (markers are rarely exactly 0 outside their type)
        named_idx = np.array([self.index[g] for g in named if g not in (*MITO, *RIBO, *IG_GENES)])
        self.background[named_idx] = rng.lognormal(np.log(0.02), 1.0, size=len(named_idx))
        for g, v in HOUSEKEEPING.items():
            self.background[self.index[g]] = v
        ribo = np.array([self.index[g] for g in RIBO])
        self.background[ribo] = RIBO_UMIS * rng.dirichlet(np.full(len(ribo), 5.0))
        self.type_effect = {}  # each cell type shifts the background a little
        self.rng = rng

    def _type_effect(self, kind: str) -> np.ndarray:
        if kind not in self.type_effect:
            eff = np.ones(len(self.features))
            eff[self.filler] = self.rng.lognormal(0.0, 0.35, size=len(self.filler))
            self.type_effect[kind] = eff
        return self.type_effect[kind]

    def profile(self, cell_type: str, subtype: str) -> np.ndarray:
        """Expected UMIs at REF_DEPTH of a resting cell (no IFN/BAFF/Ig/mito yet)."""
        kind = subtype or cell_type
        p = self.background * self._type_effect(kind)
        for gene, levels in PROGRAMMES.items():
            level = levels.get(kind, levels.get(cell_type, 0.0))
            if level:
                p[self.index[gene]] += level
        return p

    def add(self, p: np.ndarray, programme: dict[str, float], scale: float = 1.0) -> None:
        for gene, level in programme.items():
            p[self.index[gene]] += level * scale

    def finish(self, p, *, cell_type, kind, isotype, light, ifn_fold, baff_fold, mito_factor):
        """Add the IFN / BAFF programmes at their folds (over rest), immunoglobulin and
        mitochondrial shares (in place)."""
        ifn = IFN_REST.get(kind, IFN_REST.get(cell_type, IFN_REST_DEFAULT)) * ifn_fold
        p[self.ifn] += ifn
        p[self.index["SIGLEC1"]] = ifn if cell_type == "monocyte" else 0.0
        if cell_type in B_LINEAGE:
            p[self.baff] += BAFF_REST * baff_fold
        if cell_type == "monocyte":
            p[self.index["TNFSF13B"]] += BAFF_LIGAND_REST * baff_fold
        p[self.ig] = 0.0
        share = IG_SHARE.get(cell_type, 0.0)
        if isotype:
            ig = p.sum() * share / (1 - share)
            p[self.index[ISOTYPE_GENE[isotype]]] += ig * (0.55 if isotype != "IgM" else 0.45)
            if isotype == "IgM":
                p[self.index["IGHD"]] += ig * 0.1
            p[self.index["IGKC" if light == "IGK" else "IGLC2"]] += ig * 0.45
        total = p.sum()
        p[self.mito] = 0.0
        p[self.mito] = (
            total * MITO_SHARE * mito_factor * np.linspace(2, 0.5, len(self.mito)) / 16.25
        )
        return p
