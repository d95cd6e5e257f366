"""Simulate a trial-like CAR-T cohort in real Cell Ranger formats, with the truth beside it.

The design comes from the sample sheet itself (patient, day, tissue and the file names to
write): each row becomes one sample. Biology follows DOMAIN.md: B-cell aplasia after
infusion, CAR-T expansion peaking around day 14, transitional/naive B cells returning from
about day 90, expanded CD19+BCMA+ clones at baseline that are gone afterwards, CD19-BCMA+
long-lived plasma cells in marrow, interferon and BAFF genes high at baseline and lower later.
Counts are negative binomial around cell-type profiles; low-quality cells and doublets are
injected. The same sheet and seed give the same files.
"""

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from cartrack.design import B_CELLS, B_LINEAGE, NAIVE_B

log = logging.getLogger(__name__)

B_TYPES = B_CELLS
LINEAGE = {
    **{t: "B" for t in B_TYPES},
    "plasmablast": "plasma",
    "plasma_cell": "plasma",
    "T_CD4": "T",
    "T_CD8": "T",
    "NK": "NK",
    "monocyte": "myeloid",
    "DC": "myeloid",
    "other": "other",
}

# Genes that define each simulated cell type (multiplied over the base profile).
B_CORE = ["MS4A1", "CD19", "CD79A", "CD79B", "CD22", "PAX5", "BANK1", "TNFRSF13C"]
PROFILE_MARKERS = {
    "B_naive": [*B_CORE, "IGHM", "IGHD", "TCL1A", "FCER2", "IL4R", "BACH2", "YBX3"],
    "B_transitional": [*B_CORE, "IGHM", "IGHD", "TCL1A", "MME", "CD24", "CD38", "ACSM3"],
    "B_memory": [*B_CORE, "CD27", "AIM2", "TNFRSF13B", "IGHG1", "IGHA1"],
    "B_atypical": [*B_CORE, "ITGAX", "TBX21", "FCRL5", "ZEB2", "IGHG1"],
    # CD19 fades as plasmablasts differentiate; the CD19+BCMA+ ones are the DP clones' cells.
    "plasmablast": [
        "MZB1",
        "JCHAIN",
        "XBP1",
        "PRDM1",
        "IRF4",
        "MKI67",
        "TOP2A",
        "CD38",
        "TNFRSF17",
        "IGHG1",
        "IGKC",
    ],
    "plasma_cell": [
        "SDC1",
        "TNFRSF17",
        "MZB1",
        "JCHAIN",
        "XBP1",
        "PRDM1",
        "CD38",
        "BCL2",
        "CD28",
        "IGHG1",
        "IGKC",
    ],
    "T_CD4": ["CD3E", "CD3D", "CD4", "IL7R", "CCR7", "TRBC2", "LEF1", "TCF7"],
    "T_CD8": ["CD3E", "CD3D", "CD8A", "CD8B", "GZMK", "CCL5", "TRBC2", "GZMH"],
    "NK": ["GNLY", "NKG7", "KLRD1", "FCGR3A", "NCAM1", "PRF1", "TYROBP", "KLRF1"],
    "monocyte": ["CD14", "LYZ", "FCN1", "S100A8", "S100A9", "CSF1R", "VCAN", "SIGLEC1"],
    "DC": ["CLEC10A", "FCER1A", "CST3", "CD1C", "LILRA4", "IL3RA", "HLA-DQA1", "CLEC4C"],
    "other": ["PPBP", "PF4", "HBB", "HBA1", "HBA2", "GYPA", "CD34", "SPINK2"],
}
# Immunoglobulin transcripts dominate plasma cells: this share of their counts is Ig, on top
# of a normal transcriptome (so their libraries are larger by 1 / (1 - share)).
IG_SHARE = {"plasmablast": 0.35, "plasma_cell": 0.5}
ISOTYPE_GENE = {
    "IgM": "IGHM",
    "IgD": "IGHD",
    "IgG1": "IGHG1",
    "IgG2": "IGHG2",
    "IgA1": "IGHA1",
    "IgA2": "IGHA2",
}
MITO = [
    f"MT-{g}"
    for g in [
        "ND1",
        "ND2",
        "CO1",
        "CO2",
        "ATP8",
        "ATP6",
        "CO3",
        "ND3",
        "ND4L",
        "ND4",
        "ND5",
        "ND6",
        "CYB",
    ]
]
RIBO = [f"RPS{i}" for i in range(2, 22)] + [f"RPL{i}" for i in range(3, 23)]
IG_GENES = [
    "IGHM",
    "IGHD",
    "IGHG1",
    "IGHG2",
    "IGHG3",
    "IGHG4",
    "IGHA1",
    "IGHA2",
    "IGHE",
    "IGKC",
    "IGLC1",
    "IGLC2",
    "IGLC3",
    "JCHAIN",
]
CAR_FEATURES = ["CAR_CD19", "CAR_BCMA"]

# Composition of blood and marrow (shares of cells before normalisation).
PB_BASELINE = {
    "B_naive": 4.0,
    "B_transitional": 0.4,
    "B_memory": 3.0,
    "B_atypical": 5.0,
    "plasmablast": 3.0,
    "plasma_cell": 0.0,
    "T_CD4": 33,
    "T_CD8": 20,
    "NK": 10,
    "monocyte": 20,
    "DC": 2.5,
    "other": 2,
}
BM_BASELINE = {
    "B_naive": 3,
    "B_transitional": 1.5,
    "B_memory": 1.5,
    "B_atypical": 0.5,
    "plasmablast": 0.8,
    "plasma_cell": 6,
    "T_CD4": 14,
    "T_CD8": 12,
    "NK": 5,
    "monocyte": 32,
    "DC": 3,
    "other": 20,
}
# Returning B cells are transitional and naive, with few memory cells (Mackensen 2022).
RETURNING_B = {"B_naive": 0.62, "B_transitional": 0.33, "B_memory": 0.05, "B_atypical": 0.0}
# Share of blood cells that are B cells once B cells are back, by days since recovery
# (naive B cells often overshoot healthy levels during reconstitution).
B_RETURN_SHARE = [(0, 0.05), (60, 0.10), (150, 0.14)]
# CAR-T cells as a share of T cells: expansion peaks around day 14, contracts by day 28.
CAR_SHARE = [(7, 0.15), (14, 0.35), (28, 0.15), (90, 0.04), (180, 0.02), (365, 0.01)]
# Interferon and BAFF programme strength (fold over resting) by day.
IFN_FOLD = [(0, 4.0), (14, 2.0), (28, 1.6), (90, 1.0)]
BAFF_FOLD = [(0, 3.0), (28, 2.0), (90, 1.0)]

V_GENES = [
    f"IGHV{f}"
    for f in [
        "1-2",
        "1-18",
        "1-69",
        "3-7",
        "3-9",
        "3-11",
        "3-15",
        "3-21",
        "3-23",
        "3-30",
        "3-33",
        "3-48",
        "4-34",
        "4-39",
        "4-59",
        "5-51",
    ]
]
J_GENES = ["IGHJ3", "IGHJ4", "IGHJ5", "IGHJ6"]
KV_GENES = ["IGKV1-5", "IGKV1-39", "IGKV3-11", "IGKV3-15", "IGKV3-20", "IGKV4-1"]
LV_GENES = ["IGLV1-40", "IGLV1-44", "IGLV2-14", "IGLV3-21"]
CODONS = {
    "A": "GCC",
    "R": "CGG",
    "N": "AAC",
    "D": "GAC",
    "C": "TGC",
    "Q": "CAG",
    "E": "GAG",
    "G": "GGC",
    "H": "CAC",
    "I": "ATC",
    "L": "CTG",
    "K": "AAG",
    "M": "ATG",
    "F": "TTC",
    "P": "CCC",
    "S": "AGC",
    "T": "ACC",
    "W": "TGG",
    "Y": "TAC",
    "V": "GTG",
}
AA = "ARNDQEGHILKMFPSTWYV"
GENETIC_CODE = {
    a + b + c: aa
    for a in "TCAG"
    for b in "TCAG"
    for c in "TCAG"
    for aa in [
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"[
            "TCAG".index(a) * 16 + "TCAG".index(b) * 4 + "TCAG".index(c)
        ]
    ]
}


def interpolate(day: float, table: list[tuple[float, float]]) -> float:
    """Piecewise-linear lookup in a (day, value) table, flat beyond its ends."""
    days, values = zip(*table, strict=True)
    return float(np.interp(day, days, values))


def translate(nt: str) -> str:
    return "".join(GENETIC_CODE[nt[i : i + 3]] for i in range(0, len(nt) - len(nt) % 3, 3))


@dataclass
class Chain:
    """One rearranged chain: gene calls and a CDR3 (junction) sequence."""

    locus: str
    v: str
    j: str
    cdr3_nt: str
    c: str = ""
    d: str = ""

    @property
    def cdr3_aa(self) -> str:
        return translate(self.cdr3_nt)


@dataclass
class Clone:
    """A simulated B-lineage clone and its role in the trial's story."""

    clone_id: str
    patient: str
    kind: str  # dp | memory | persistent | llpc | llpc_persistent | singleton
    heavy: Chain
    light: Chain
    double_positive: bool = False
    weight: float = 1.0
    shm: float = 0.0
    members: list = field(default_factory=list)


def random_cdr3(rng: np.random.Generator, n_aa: int) -> str:
    """A productive CDR3 (junction) in nucleotides: C ... W/F with random codons between."""
    middle = rng.choice(list(AA), size=n_aa - 2)
    return CODONS["C"] + "".join(CODONS[a] for a in middle) + CODONS["W"]


def random_chain(rng: np.random.Generator, locus: str, n_aa: tuple[int, int]) -> Chain:
    length = int(rng.integers(*n_aa))
    if locus == "IGH":
        return Chain(
            "IGH",
            str(rng.choice(V_GENES)),
            str(rng.choice(J_GENES)),
            random_cdr3(rng, length),
            d="IGHD3-10",
        )
    if locus == "IGK":
        return Chain("IGK", str(rng.choice(KV_GENES)), "IGKJ1", random_cdr3(rng, length), c="IGKC")
    return Chain("IGL", str(rng.choice(LV_GENES)), "IGLJ2", random_cdr3(rng, length), c="IGLC2")


def mutate(rng: np.random.Generator, nt: str, n: int) -> str:
    """Substitute n nucleotides inside the CDR3, keeping the conserved first and last codon
    and avoiding stop codons (so the chain stays productive)."""
    seq = list(nt)
    done = 0
    while done < n:
        pos = int(rng.integers(3, len(seq) - 3))
        old = seq[pos]
        seq[pos] = str(rng.choice([b for b in "ACGT" if b != old]))
        if "*" in translate("".join(seq)):
            seq[pos] = old
            continue
        done += 1
    return "".join(seq)


class Cohort:
    """Generator of one cohort: gene universe, profiles, clones, then sample by sample."""

    def __init__(
        self,
        sheet: pd.DataFrame,
        *,
        ifn_genes: list[str],
        baff_genes: list[str],
        n_genes: int = 2000,
        seed: int = 0,
    ):
        self.rng = np.random.default_rng(seed)
        self.sheet = sheet
        self.patients = sorted(sheet["patient"].unique())
        named = dict.fromkeys(
            [g for genes in PROFILE_MARKERS.values() for g in genes]
            + MITO
            + RIBO
            + IG_GENES
            + list(ifn_genes)
            + list(baff_genes)
            + ["ACTB", "GAPDH", "B2M", "MALAT1", "TMSB4X", "EEF1A1", "TPT1", "FTL"]
        )
        fillers = [f"SIMG{i:04d}" for i in range(max(0, n_genes - len(named)))]
        self.genes = list(named) + fillers
        self.features = self.genes + CAR_FEATURES
        self.gidx = {g: i for i, g in enumerate(self.features)}
        self.gidx_mito = [self.gidx[g] for g in MITO]
        self.ifn = [self.gidx[g] for g in dict.fromkeys(ifn_genes)]
        self.baff_b = [self.gidx[g] for g in dict.fromkeys(baff_genes) if g != "TNFSF13B"]
        self.profiles = self._profiles()
        self.recovery = self._recovery_days()
        self.clones = self._clones()

    # -- expression ---------------------------------------------------------------------
    def _profiles(self) -> dict[str, np.ndarray]:
        rng = self.rng
        n = len(self.features)
        base = rng.lognormal(mean=0.0, sigma=1.2, size=n)
        quiet = (
            MITO
            + RIBO
            + IG_GENES
            + CAR_FEATURES
            + ["CD19", "TNFRSF17", "HBB", "HBA1", "HBA2", "SIGLEC1", "TNFSF13B"]
        )
        for g in quiet:
            base[self.gidx[g]] = 0.0
        for g in self.ifn:
            base[g] = max(base[g], 0.5)
        for g in ["ACTB", "GAPDH", "B2M", "MALAT1", "TMSB4X", "EEF1A1", "TPT1", "FTL"]:
            base[self.gidx[g]] = 40.0
        base /= base.sum()
        profiles = {}
        for t, markers in PROFILE_MARKERS.items():
            p = base.copy()
            for g in markers:
                p[self.gidx[g]] += 0.004 * rng.uniform(0.6, 1.4)
            p[[self.gidx[g] for g in MITO]] = 0.04 / len(MITO)
            p[[self.gidx[g] for g in RIBO]] = 0.12 / len(RIBO)
            if t == "monocyte":
                p[self.gidx["TNFSF13B"]] = 0.0005
            p /= p.sum()
            profiles[t] = p
        return profiles

    def _recovery_days(self) -> dict[str, float]:
        """Day from which each patient's B cells are back: alternately early and late, so the
        cohort holds both kinds (Mackensen 2022: 110 +/- 32 days)."""
        return {p: (80.0 if i % 2 == 0 else 150.0) for i, p in enumerate(self.patients)}

    # -- repertoire ---------------------------------------------------------------------
    def _clones(self) -> list[Clone]:
        """Expanded clones per patient: two double-positive (CD19+BCMA+) ones, two memory
        ones, two marrow plasma-cell ones; the second patient keeps a memory clone and a
        plasma-cell clone after infusion."""
        rng = self.rng
        clones = []

        def new(patient, kind, weight, dp=False, shm=0.06):
            light = random_chain(rng, str(rng.choice(["IGK", "IGL"])), (10, 13))
            heavy = random_chain(rng, "IGH", (17, 23))
            clone_id = f"{patient}_true{len(clones) + 1:03d}"
            clones.append(Clone(clone_id, patient, kind, heavy, light, dp, weight, shm))

        for i, patient in enumerate(self.patients):
            for w in (0.55, 0.45):
                new(patient, "dp", w, dp=True)
            for w in (0.6, 0.4):
                new(patient, "persistent" if (i == 1 and w == 0.6) else "memory", w)
            for w in (0.6, 0.4):
                new(patient, "llpc_persistent" if (i == 1 and w == 0.6) else "llpc", w, shm=0.08)
        return clones

    def _patient_clones(self, patient: str, kinds: tuple[str, ...]) -> list[Clone]:
        return [c for c in self.clones if c.patient == patient and c.kind in kinds]

    def _assign_clone(
        self, patient: str, cell_type: str, post: bool, tissue: str, is_dp_cell: bool
    ) -> Clone | None:
        """Which expanded clone a B-lineage cell belongs to (None: a fresh singleton)."""
        rng = self.rng

        def pick(kinds):
            cands = self._patient_clones(patient, kinds)
            if not cands:
                return None
            w = np.array([c.weight for c in cands])
            return cands[int(rng.choice(len(cands), p=w / w.sum()))]

        if not post:
            if is_dp_cell:
                return pick(("dp",))
            if cell_type == "B_memory" and rng.random() < 0.8:
                return pick(("memory", "persistent"))
            if cell_type == "plasma_cell" and tissue == "BM" and rng.random() < 0.7:
                return pick(("llpc", "llpc_persistent"))
            if cell_type == "plasmablast" and rng.random() < 0.5:
                return pick(("llpc", "llpc_persistent"))
            return None
        if cell_type == "B_memory" and rng.random() < 0.8:
            return pick(("persistent",))
        if cell_type == "plasma_cell" and tissue == "BM" and rng.random() < 0.7:
            return pick(("llpc_persistent",))
        return None

    # -- one sample ---------------------------------------------------------------------
    def composition(self, patient: str, day: int, tissue: str) -> dict[str, float]:
        """Expected cell-type shares of one sample."""
        comp = dict(PB_BASELINE if tissue == "PB" else BM_BASELINE)
        if day > 0:
            recovery = self.recovery[patient]
            b_share = 0.0 if day < recovery else interpolate(day - recovery, B_RETURN_SHARE)
            if tissue == "BM":
                b_share *= 0.8
            non_b = {t: v for t, v in comp.items() if t not in B_LINEAGE}
            total = sum(non_b.values())
            comp = {t: v / total * (1 - b_share) for t, v in non_b.items()}
            for t, share in RETURNING_B.items():
                comp[t] = b_share * share
            comp["plasmablast"] = 0.002 if day >= recovery + 60 else 0.0
            persistent_pc = any(
                c.kind == "llpc_persistent" for c in self.clones if c.patient == patient
            )
            # BCMA co-targeting depletes marrow plasma cells; a few survive in one patient.
            comp["plasma_cell"] = (0.02 if persistent_pc else 0.0) if tissue == "BM" else 0.0
            if patient == self.patients[min(1, len(self.patients) - 1)] and day >= recovery:
                comp["B_memory"] = max(comp["B_memory"], 0.01)
        total = sum(comp.values())
        return {t: v / total for t, v in comp.items()}

    def sample(
        self, row: pd.Series, n_cells: int, *, low_quality_rate: float, doublet_rate: float
    ) -> tuple[sp.csr_matrix, pd.DataFrame, list[dict]]:
        """Counts (cells x features), per-cell truth and BCR contigs of one sample."""
        rng = self.rng
        day, patient, tissue = int(row["day"]), row["patient"], row["tissue"]
        comp = self.composition(patient, day, tissue)
        n = int(rng.poisson(n_cells))
        types = rng.choice(list(comp), size=n, p=list(comp.values()))
        car_share = interpolate(day, CAR_SHARE) if day > 0 else 0.0
        ifn_fold = interpolate(day, IFN_FOLD) * (1 + 0.15 * self.patients.index(patient))
        ifn_fold = max(1.0, ifn_fold) if day <= 28 else 1.0
        baff_fold = interpolate(day, BAFF_FOLD)

        lib = rng.lognormal(np.log(2500), 0.35, size=n)
        means = np.empty((n, len(self.features)))
        cells = []
        contigs = []
        barcodes = self._barcodes(n)
        for k, t in enumerate(types):
            p = self.profiles[t].copy()
            p[self.ifn] *= ifn_fold
            if t in B_LINEAGE:
                p[self.baff_b] *= baff_fold
            if t == "monocyte":
                p[self.gidx["TNFSF13B"]] *= baff_fold
            car = t in ("T_CD4", "T_CD8") and rng.random() < car_share
            if car:
                p[self.gidx[str(rng.choice(CAR_FEATURES))]] += 0.002
            post = day >= 28
            is_dp_cell = (
                not post
                and day <= 0
                and tissue == "PB"
                and (t in ("plasmablast", "B_atypical"))
                and rng.random() < 0.9
            )
            if is_dp_cell:
                p[self.gidx["CD19"]] += 0.0015
                p[self.gidx["TNFRSF17"]] += 0.0015
            clone = (
                self._assign_clone(patient, t, post, tissue, is_dp_cell) if t in B_LINEAGE else None
            )
            isotype = ""
            if t in B_LINEAGE:
                isotype, chains = self._bcr(t, clone, patient)
                p = self._with_isotype(p, t, isotype)
                contigs += [
                    {"barcode": barcodes[k], "chain": c, "umis": int(rng.integers(2, 30))}
                    for c in chains
                ]
            p[self.gidx_mito] *= rng.lognormal(0, 0.25)  # cells differ in mitochondrial content
            p /= p.sum()
            means[k] = p * lib[k] / (1 - IG_SHARE.get(t, 0.0))
            cells.append(
                {
                    "barcode": barcodes[k],
                    "cell_type": t,
                    "lineage": LINEAGE[t],
                    "car_t": car,
                    "double_positive_cell": is_dp_cell,
                    "clone": clone.clone_id if clone else "",
                    "isotype": isotype,
                    "low_quality": False,
                    "doublet": False,
                }
            )
        truth = pd.DataFrame(cells)
        means = self._inject_low_quality(means, truth, low_quality_rate)
        means = self._inject_doublets(means, truth, doublet_rate)
        counts = rng.negative_binomial(5, 5 / (5 + means)).astype(np.float32)
        return sp.csr_matrix(counts), truth, contigs

    def _barcodes(self, n: int) -> list[str]:
        """Random 16-mers; drawn from a small pool so that samples share some barcodes."""
        pool = 40_000
        idx = self.rng.choice(pool, size=n, replace=False)
        rng = np.random.default_rng(12345)
        letters = np.array(list("ACGT"))
        allbc = letters[rng.integers(0, 4, size=(pool, 16))]
        return ["".join(allbc[i]) + "-1" for i in idx]

    def _with_isotype(self, p: np.ndarray, cell_type: str, isotype: str) -> np.ndarray:
        """Put the cell's Ig transcripts on its isotype (Ig dominate plasma cells)."""
        ig = [self.gidx[g] for g in IG_GENES if g not in ("IGKC", "JCHAIN")]
        p[ig] = 0.0
        share = IG_SHARE.get(cell_type, 0.02)
        rest = p.sum()
        p = p / rest * (1 - share)
        p[self.gidx[ISOTYPE_GENE[isotype]]] += share * 0.6
        p[self.gidx["IGKC"]] += share * 0.4
        if isotype == "IgM":
            p[self.gidx["IGHD"]] += share * 0.1
        return p

    def _bcr(self, cell_type: str, clone: Clone | None, patient: str):
        """Isotype and contigs (as dicts of chain fields) of one B-lineage cell."""
        rng = self.rng
        if clone is None:
            heavy = random_chain(rng, "IGH", (12, 20))
            light = random_chain(rng, str(rng.choice(["IGK", "IGL"])), (10, 13))
            shm = 0.0 if cell_type in NAIVE_B else 0.04
        else:
            muts = int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))
            heavy = Chain(
                "IGH",
                clone.heavy.v,
                clone.heavy.j,
                mutate(rng, clone.heavy.cdr3_nt, muts),
                d=clone.heavy.d,
            )
            light = clone.light
            shm = clone.shm
            clone.members.append(cell_type)
        if cell_type in NAIVE_B:
            isotype = "IgM" if rng.random() < 0.85 else "IgD"
        elif cell_type == "B_memory" and clone is None:
            isotype = str(rng.choice(["IgM", "IgG1", "IgA1", "IgG2"]))
        else:
            isotype = str(rng.choice(["IgG1", "IgG2", "IgA1"], p=[0.6, 0.2, 0.2]))
        heavy.c = {"IgM": "IGHM", "IgD": "IGHD"}.get(isotype, ISOTYPE_GENE[isotype])
        chains = []
        # Plasma cells often lose the heavy chain in V(D)J capture; some cells lose either.
        if (
            not (cell_type in ("plasma_cell", "plasmablast") and rng.random() < 0.25)
            and rng.random() > 0.03
        ):
            chains.append(("heavy", heavy, shm))
        if rng.random() > 0.12:
            chains.append(("light", light, shm))
        return isotype, chains

    def _inject_low_quality(self, means, truth, rate):
        """Broken cells: few counts, a high mitochondrial share."""
        rng = self.rng
        lq = rng.random(len(truth)) < rate
        mito = [self.gidx[g] for g in MITO]
        for k in np.flatnonzero(lq):
            total = means[k].sum()
            means[k] *= rng.uniform(0.15, 0.35)
            means[k, mito] = means[k, mito] / means[k, mito].sum() * total * rng.uniform(0.2, 0.4)
        truth["low_quality"] = lq
        return means

    def _inject_doublets(self, means, truth, rate):
        """Two cells of different lineages in one droplet."""
        rng = self.rng
        n = len(truth)
        dbl = np.flatnonzero((rng.random(n) < rate) & ~truth["low_quality"].to_numpy())
        for k in dbl:
            partners = np.flatnonzero(truth["lineage"].to_numpy() != truth.at[k, "lineage"])
            if len(partners) == 0:
                continue
            j = int(rng.choice(partners))
            means[k] = means[k] + means[j] * rng.uniform(0.7, 1.0)
            truth.at[k, "doublet"] = True
        return means


# -- writers (real Cell Ranger formats) --------------------------------------------------
def write_10x_h5(
    path: Path, counts: sp.csr_matrix, barcodes: list[str], features: list[str]
) -> None:
    """Cell Ranger >= 3 filtered_feature_bc_matrix.h5 (genes x cells, CSC)."""
    m = sp.csc_matrix(counts.T.astype(np.int32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("data", data=m.data, compression="gzip")
        g.create_dataset("indices", data=m.indices.astype(np.int64), compression="gzip")
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(features)))
        fg.create_dataset("genome", data=np.array([b"GRCh38"] * len(features)))
        fg.create_dataset("id", data=np.array([feature_id(f) for f in features], dtype="S"))
        fg.create_dataset("name", data=np.array(features, dtype="S"))


def write_10x_mtx(
    folder: Path, counts: sp.csr_matrix, barcodes: list[str], features: list[str]
) -> None:
    """Cell Ranger >= 3 filtered_feature_bc_matrix/ folder (gzipped mtx and tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "matrix.mtx.gz", "wb") as f:
        scipy.io.mmwrite(f, sp.coo_matrix(counts.T.astype(np.int32)), field="integer")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as f:
        f.write("\n".join(barcodes) + "\n")
    with gzip.open(folder / "features.tsv.gz", "wt") as f:
        f.writelines(f"{feature_id(g)}\t{g}\tGene Expression\n" for g in features)


def feature_id(name: str) -> str:
    return name if name.startswith("CAR_") else f"ENSG{abs(hash_str(name)) % 10**11:011d}"


def hash_str(s: str) -> int:
    """A stable string hash (Python's hash() is salted per process)."""
    h = 0
    for ch in s:
        h = (h * 131 + ord(ch)) % (2**61 - 1)
    return h


def contig_rows(contigs: list[dict], *, sample: str) -> list[dict]:
    """Flatten simulated chains into AIRR-like contig records."""
    rows = []
    counters: dict[str, int] = {}
    for c in contigs:
        kind, chain, shm = c["chain"]
        counters[c["barcode"]] = counters.get(c["barcode"], 0) + 1
        rows.append(
            {
                "barcode": c["barcode"],
                "contig_id": f"{c['barcode']}_contig_{counters[c['barcode']]}",
                "locus": chain.locus,
                "v": chain.v,
                "d": chain.d if kind == "heavy" else "",
                "j": chain.j,
                "c": chain.c,
                "cdr3_nt": chain.cdr3_nt,
                "cdr3": chain.cdr3_aa,
                "umis": c["umis"],
                "v_identity": round(1 - shm, 4),
                "productive": True,
                "is_cell": True,
            }
        )
    return rows


def write_contigs_10x(path: Path, rows: list[dict], rng: np.random.Generator) -> None:
    """filtered_contig_annotations.csv (Cell Ranger 3-5 classic columns), with a few
    non-productive contigs and non-cell barcodes as real files have."""
    cols = [
        "barcode",
        "is_cell",
        "contig_id",
        "high_confidence",
        "length",
        "chain",
        "v_gene",
        "d_gene",
        "j_gene",
        "c_gene",
        "full_length",
        "productive",
        "cdr3",
        "cdr3_nt",
        "reads",
        "umis",
        "raw_clonotype_id",
        "raw_consensus_id",
    ]
    out = []
    for r in rows:
        out.append(
            {
                "barcode": r["barcode"],
                "is_cell": "True",
                "contig_id": r["contig_id"],
                "high_confidence": "True",
                "length": 550,
                "chain": r["locus"],
                "v_gene": r["v"],
                "d_gene": r["d"] or "None",
                "j_gene": r["j"],
                "c_gene": r["c"] or "None",
                "full_length": "True",
                "productive": "True",
                "cdr3": r["cdr3"],
                "cdr3_nt": r["cdr3_nt"],
                "reads": r["umis"] * 40,
                "umis": r["umis"],
                "raw_clonotype_id": "",
                "raw_consensus_id": "",
            }
        )
    for r in rows[: max(1, len(rows) // 40)]:  # non-productive extra contigs
        out.append(
            {
                **out[0],
                "barcode": r["barcode"],
                "contig_id": r["contig_id"] + "_np",
                "productive": "False",
                "cdr3": "None",
                "cdr3_nt": "None",
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out, columns=cols).to_csv(path, index=False) if out else pd.DataFrame(
        columns=cols
    ).to_csv(path, index=False)


def write_contigs_airr(path: Path, rows: list[dict]) -> None:
    """AIRR rearrangement TSV as Cell Ranger writes it (plus v_identity for SHM)."""
    cols = [
        "cell_id",
        "sequence_id",
        "locus",
        "productive",
        "rev_comp",
        "v_call",
        "d_call",
        "j_call",
        "c_call",
        "junction",
        "junction_aa",
        "umi_count",
        "consensus_count",
        "v_identity",
    ]
    out = [
        {
            "cell_id": r["barcode"],
            "sequence_id": r["contig_id"],
            "locus": r["locus"],
            "productive": "T",
            "rev_comp": "F",
            "v_call": r["v"],
            "d_call": r["d"],
            "j_call": r["j"],
            "c_call": r["c"],
            "junction": r["cdr3_nt"],
            "junction_aa": r["cdr3"],
            "umi_count": r["umis"],
            "consensus_count": r["umis"] * 40,
            "v_identity": r["v_identity"],
        }
        for r in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out, columns=cols).to_csv(path, sep="\t", index=False)


def simulate_cohort(
    sheet: pd.DataFrame,
    *,
    ifn_genes: list[str],
    baff_genes: list[str],
    truth_dir: Path,
    cells_per_sample: int = 500,
    low_quality_rate: float = 0.05,
    doublet_rate: float = 0.04,
    seed: int = 0,
) -> None:
    """Write every sample of `sheet` (absolute `gex` / `bcr` paths) and the truth tables.

    The format follows the file name: `.h5` -> Cell Ranger HDF5, a folder -> mtx folder;
    `.csv` -> 10x contig CSV, `.tsv` -> AIRR rearrangement.
    """
    cohort = Cohort(sheet, ifn_genes=ifn_genes, baff_genes=baff_genes, seed=seed)
    truth_dir.mkdir(parents=True, exist_ok=True)
    all_truth = []
    for _, row in sheet.iterrows():
        counts, truth, contigs = cohort.sample(
            row, cells_per_sample, low_quality_rate=low_quality_rate, doublet_rate=doublet_rate
        )
        barcodes = truth["barcode"].tolist()
        gex = Path(row["gex"])
        if gex.suffix == ".h5":
            write_10x_h5(gex, counts, barcodes, cohort.features)
        else:
            write_10x_mtx(gex, counts, barcodes, cohort.features)
        bcr = row.get("bcr")
        if isinstance(bcr, str) and bcr:
            rows = contig_rows(contigs, sample=row["sample"])
            if Path(bcr).suffix == ".tsv":
                write_contigs_airr(Path(bcr), rows)
            else:
                write_contigs_10x(Path(bcr), rows, cohort.rng)
        truth.insert(0, "sample", row["sample"])
        truth.insert(1, "patient", row["patient"])
        truth.insert(2, "day", int(row["day"]))
        truth.insert(3, "tissue", row["tissue"])
        all_truth.append(truth)
        log.info("simulated %s: %d cells, %d contigs", row["sample"], len(truth), len(contigs))
    cells = pd.concat(all_truth, ignore_index=True)
    cells.to_csv(truth_dir / "truth_cells.tsv", sep="\t", index=False)
    clones = pd.DataFrame(
        [
            {
                "patient": c.patient,
                "clone": c.clone_id,
                "kind": c.kind,
                "double_positive": c.double_positive,
                "heavy_v_gene": c.heavy.v,
                "heavy_j_gene": c.heavy.j,
                "heavy_cdr3_aa": c.heavy.cdr3_aa,
                "n_cells": len(c.members),
                "expected_status": {
                    "dp": "eliminated",
                    "memory": "eliminated",
                    "llpc": "eliminated",
                    "persistent": "persistent",
                    "llpc_persistent": "persistent",
                }[c.kind],
            }
            for c in cohort.clones
        ]
    )
    clones.to_csv(truth_dir / "truth_clones.tsv", sep="\t", index=False)
    patients = pd.DataFrame(
        [{"patient": p, "recovery_from_day": d} for p, d in cohort.recovery.items()]
    )
    patients.to_csv(truth_dir / "truth_patients.tsv", sep="\t", index=False)
