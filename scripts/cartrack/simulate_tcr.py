"""Simulated T-cell receptors for the demo cohort: CAR-T clonotypes of known fate.

Given one sample's per-cell truth (``barcode``, ``cell_type``, ``car_t``) the simulator
returns Cell Ranger ``filtered_contig_annotations.csv`` rows for its T cells:

- CAR-T cells draw their clonotype from the patient's CAR-T repertoire, with weights that
  depend on the period (the product and days 1 .. ``post_min_day - 1`` = reference, later =
  after): ``lost`` clonotypes (large in the reference period, absent after),
  ``contracted`` (their weight after is ``contraction`` times the reference weight),
  ``persistent`` (the same weight in both), ``small`` (persistent, too small to test) and
  fresh singletons (``singleton_share`` of the CAR-T cells; never seen again);
- other T cells draw from a polyclonal pool of the patient (a few expanded memory
  clonotypes, mostly singletons).

CAR clonotypes are not all fully transduced, as in a real product: the vector integrates a
day or two after activation, before or during the first divisions, into some cells of a
clone only. ``mixed_share`` of the product's CAR clonotypes (not singletons) carry the CAR
in a share ``car_fraction`` ~ Uniform(``mixed_car_fraction``) of their cells: their
untransduced sisters are drawn among the non-CAR T cells of the product and of every later
sample at the product's ratio (1 - f) / f to the clonotype's CAR-T cells (in vivo they would
not expand with CD19 and be rarer: the same ratio is the harder case for a caller).
``n_endogenous`` of the patient's expanded memory clonotypes (large before the product was
made, e.g. virus-specific) were partly transduced too (kind ``endogenous``): they stay in
the polyclonal pool, so their untransduced cells are in every sample, baseline included,
and join the CAR-T repertoire with the weight of a ``persistent`` clonotype.

Realistic noise: ``dropout`` of one chain (orphan TRA/TRB cells) and clonotypes with a second
alpha chain (dual-alpha cells, the second alpha detected in half of the cells).

Wiring (demo cohort): one :class:`TcrSimulator` per cohort; for each sample with a ``tcr``
file call :meth:`TcrSimulator.contigs` with that sample's truth table and write the rows
with :func:`write_contigs`; at the end write :meth:`TcrSimulator.truth_clonotypes` and
:meth:`TcrSimulator.truth_cells`. A product sample (tissue ``product``, day 0) needs a GEX
simulation of mostly T cells: :data:`PRODUCT_COMPOSITION`, CAR-T share
:data:`PRODUCT_CAR_SHARE`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cartrack.design import T_CELLS

#: Cell-type shares of a CAR-T product (leukapheresis T cells after manufacturing).
PRODUCT_COMPOSITION = {"T_CD4": 0.55, "T_CD8": 0.40, "NK": 0.03, "other": 0.02}
#: Share of product T cells carrying the CAR (transduction efficiency, typically 20-60%).
PRODUCT_CAR_SHARE = 0.4
#: Expected status of each kind of CAR-T clonotype (when deep enough to tell).
EXPECTED_STATUS = {
    "lost": "lost",
    "contracted": "contracted",
    "persistent": "persistent",
    "small": "persistent",
    "singleton": "not_assessable",
    "endogenous": "persistent",
}
CONTIG_COLUMNS = [
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
TRAV = ("TRAV1-2", "TRAV12-1", "TRAV13-1", "TRAV21", "TRAV8-4", "TRAV38-2/DV8", "TRAV29/DV5")
TRAJ = ("TRAJ33", "TRAJ20", "TRAJ12", "TRAJ49", "TRAJ42", "TRAJ31")
TRBV = ("TRBV20-1", "TRBV7-9", "TRBV5-1", "TRBV28", "TRBV6-5", "TRBV19", "TRBV4-1")
TRBJ = ("TRBJ2-7", "TRBJ1-1", "TRBJ2-1", "TRBJ2-3", "TRBJ1-5")
# The standard genetic code (codons in TCAG order); kept here because the demo simulation
# runs in the gene-expression conda env, which lacks the V(D)J library's awkward/airr.
_GENETIC_CODE = dict(
    zip(
        (a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        strict=True,
    )
)
_CODONS = [codon for codon, aa in _GENETIC_CODE.items() if aa != "*"]


def translate(nt: str) -> str:
    """Amino acids of a nucleotide junction (length a multiple of 3)."""
    return "".join(_GENETIC_CODE[nt[i : i + 3]] for i in range(0, len(nt), 3))


@dataclass
class TcrChain:
    locus: str
    v: str
    j: str
    cdr3_nt: str

    @property
    def cdr3_aa(self) -> str:
        return translate(self.cdr3_nt)


@dataclass
class Clonotype:
    """A simulated T-cell clonotype: its chains, kind and weights in the two periods."""

    clonotype: str
    patient: str
    kind: str
    alpha: TcrChain
    beta: TcrChain
    weight_reference: float
    weight_post: float
    second_alpha: TcrChain | None = None
    car: bool = True
    car_fraction: float = 1.0
    members: list = field(default_factory=list)
    n_car_cells: int = 0


def random_chain(rng: np.random.Generator, locus: str) -> TcrChain:
    """A productive junction (C ... F) of 11-17 amino acids with random V and J genes."""
    n = int(rng.integers(11, 18))
    middle = "".join(_CODONS[i] for i in rng.integers(0, len(_CODONS), size=n - 2))
    nt = "TGT" + middle + "TTT"
    v, j = (TRAV, TRAJ) if locus == "TRA" else (TRBV, TRBJ)
    return TcrChain(locus, str(rng.choice(v)), str(rng.choice(j)), nt)


class TcrSimulator:
    """The T-cell repertoires of a cohort's patients (see the module docstring).

    Parameters
    ----------
    patients
        Patient ids.
    seed
        Random seed (repertoires and per-cell draws).
    post_min_day
        First day of the "after" period (``tracking.post_min_day``).
    n_lost, n_contracted, n_persistent, n_small
        CAR-T clonotypes per patient of each kind.
    contraction
        Weight after / weight before of ``contracted`` clonotypes.
    singleton_share
        Share of CAR-T cells with a private clonotype of their own.
    dropout
        Share of cells that lose one chain (orphan cells).
    dual_alpha_share
        Share of clonotypes with a second alpha chain.
    mixed_share, mixed_car_fraction
        Share of CAR clonotypes only partly transduced, and the range of their transduced
        share (module docstring).
    n_endogenous
        Expanded memory clonotypes per patient partly transduced (module docstring).
    """

    def __init__(
        self,
        patients: Sequence[str],
        *,
        seed: int = 0,
        post_min_day: int = 28,
        n_lost: int = 3,
        n_contracted: int = 3,
        n_persistent: int = 4,
        n_small: int = 30,
        contraction: float = 0.15,
        singleton_share: float = 0.25,
        dropout: float = 0.1,
        dual_alpha_share: float = 0.1,
        mixed_share: float = 0.2,
        mixed_car_fraction: tuple[float, float] = (0.5, 0.9),
        n_endogenous: int = 1,
    ):
        self.rng = np.random.default_rng(seed)
        self.post_min_day = post_min_day
        self.singleton_share = singleton_share
        self.dropout = dropout
        self.dual_alpha_share = dual_alpha_share
        self.clonotypes: list[Clonotype] = []
        self._count = 0
        self._cells: list[dict] = []
        self.car: dict[str, list[Clonotype]] = {}
        self.polyclonal: dict[str, list[Clonotype]] = {}
        for p in patients:
            big = [("lost", 1.0, 0.0)] * n_lost + [("contracted", 1.0, contraction)] * (
                n_contracted
            )
            big += [("persistent", 1.0, 1.0)] * n_persistent
            car = [self._new(p, kind, 6.0 * r, 6.0 * q) for kind, r, q in big]
            car += [self._new(p, "small", 0.5, 0.5) for _ in range(n_small)]
            for c in car:
                if self.rng.random() < mixed_share:
                    c.car_fraction = float(self.rng.uniform(*mixed_car_fraction))
            memory = [self._new(p, "memory", 3.0, 3.0, car=False) for _ in range(5)]
            for c in memory[:n_endogenous]:  # same weight in both pools
                c.kind, c.car = "endogenous", True
                car.append(c)
            self.car[p] = car
            self.polyclonal[p] = memory

    def _new(self, patient: str, kind: str, w_ref: float, w_post: float, *, car: bool = True):
        rng = self.rng
        self._count += 1
        second = random_chain(rng, "TRA") if rng.random() < self.dual_alpha_share else None
        c = Clonotype(
            f"{patient}_sim{self._count}",
            patient,
            kind,
            random_chain(rng, "TRA"),
            random_chain(rng, "TRB"),
            w_ref,
            w_post,
            second_alpha=second,
            car=car,
        )
        self.clonotypes.append(c)
        return c

    def _draw(self, pool: list[Clonotype], post: bool) -> Clonotype | None:
        weights = np.array([c.weight_post if post else c.weight_reference for c in pool])
        if weights.sum() <= 0:
            return None
        return pool[int(self.rng.choice(len(pool), p=weights / weights.sum()))]

    def _sister_probabilities(
        self, patient: str, post: bool, n_car: int, n_other: int
    ) -> tuple[list[Clonotype], np.ndarray]:
        """Partly transduced clonotypes and the chance that a non-CAR T cell of the sample is
        one of their untransduced cells: expected CAR-T cells of the clonotype x (1 - f) / f,
        over the sample's non-CAR T cells (summing to at most a half)."""
        pool = self.car[patient]
        w = np.array([c.weight_post if post else c.weight_reference for c in pool])
        mixed = [i for i, c in enumerate(pool) if c.car_fraction < 1 and c.kind != "endogenous"]
        if not mixed or w.sum() <= 0 or n_other == 0:
            return [], np.zeros(0)
        f = np.array([pool[i].car_fraction for i in mixed])
        expected = n_car * (1 - self.singleton_share) * w[mixed] / w.sum() * (1 - f) / f
        p = expected / n_other
        return [pool[i] for i in mixed], p / max(1.0, 2 * p.sum())

    def contigs(
        self, truth: pd.DataFrame, *, sample: str, patient: str, day: int, tissue: str
    ) -> pd.DataFrame:
        """Contig rows (:data:`CONTIG_COLUMNS`) for the T cells of one sample.

        Parameters
        ----------
        truth
            The sample's per-cell truth: ``barcode``, ``cell_type``, ``car_t`` (bool).
        sample, patient, day, tissue
            The sheet's row; ``tissue == "product"`` or ``0 < day < post_min_day`` draws
            with the reference weights, ``day >= post_min_day`` with the weights after.

        Returns
        -------
        One row per contig, as in a Cell Ranger ``filtered_contig_annotations.csv``.
        """
        rng = self.rng
        post = tissue != "product" and int(day) >= self.post_min_day
        rows = []
        t_cells = truth.loc[truth["cell_type"].astype(str).isin(T_CELLS)]
        is_car = t_cells["car_t"].astype(bool).to_numpy()
        sisters, p_sister = self._sister_probabilities(
            patient, post, int(is_car.sum()), int((~is_car).sum())
        )
        for barcode, car in zip(t_cells["barcode"], is_car, strict=True):
            u = rng.random()
            if car and u < self.singleton_share:
                clono = self._new(patient, "singleton", 0.0, 0.0)
            elif car:
                clono = self._draw(self.car[patient], post)
            elif u < p_sister.sum():  # an untransduced sister of a partly transduced clonotype
                clono = sisters[int(np.searchsorted(np.cumsum(p_sister), u, side="right"))]
            else:
                clono = None
                if rng.random() < 0.3:
                    clono = self._draw(self.polyclonal[patient], post)
                if clono is None:
                    clono = self._new(patient, "naive", 0.0, 0.0, car=False)
            clono.members.append(sample)
            clono.n_car_cells += int(car)
            self._cells.append(
                {"sample": sample, "barcode": barcode, "clonotype": clono.clonotype, "car_t": car}
            )
            chains = [clono.alpha, clono.beta]
            if clono.second_alpha is not None and rng.random() < 0.5:
                chains.append(clono.second_alpha)
            if rng.random() < self.dropout:
                chains.pop(int(rng.integers(0, 2)))
            for k, chain in enumerate(chains, start=1):
                umis = int(rng.integers(2, 20))
                rows.append(
                    {
                        "barcode": barcode,
                        "is_cell": "True",
                        "contig_id": f"{barcode}_contig_{k}",
                        "high_confidence": "True",
                        "length": 520,
                        "chain": chain.locus,
                        "v_gene": chain.v,
                        "d_gene": "TRBD1" if chain.locus == "TRB" else "None",
                        "j_gene": chain.j,
                        "c_gene": "TRAC" if chain.locus == "TRA" else "TRBC2",
                        "full_length": "True",
                        "productive": "True",
                        "cdr3": chain.cdr3_aa,
                        "cdr3_nt": chain.cdr3_nt,
                        "reads": umis * 50,
                        "umis": umis,
                        "raw_clonotype_id": "",
                        "raw_consensus_id": "",
                    }
                )
        return pd.DataFrame(rows, columns=CONTIG_COLUMNS)

    def truth_clonotypes(self) -> pd.DataFrame:
        """CAR-T clonotypes drawn at least once: ``patient, clonotype, kind,
        expected_status, tra_cdr3_nt, trb_cdr3_nt, n_cells, n_car_cells, car_fraction``
        (``car_fraction``: the share transduced, NaN for ``endogenous`` clonotypes, whose
        untransduced cells come from the polyclonal pool)."""
        rows = [
            {
                "patient": c.patient,
                "clonotype": c.clonotype,
                "kind": c.kind,
                "expected_status": EXPECTED_STATUS[c.kind],
                "tra_cdr3_nt": c.alpha.cdr3_nt,
                "trb_cdr3_nt": c.beta.cdr3_nt,
                "n_cells": len(c.members),
                "n_car_cells": c.n_car_cells,
                "car_fraction": np.nan if c.kind == "endogenous" else c.car_fraction,
            }
            for c in self.clonotypes
            if c.car and c.members
        ]
        return pd.DataFrame(
            rows,
            columns=[
                "patient",
                "clonotype",
                "kind",
                "expected_status",
                "tra_cdr3_nt",
                "trb_cdr3_nt",
                "n_cells",
                "n_car_cells",
                "car_fraction",
            ],
        )

    def truth_cells(self) -> pd.DataFrame:
        """Per simulated T cell: ``sample, barcode, clonotype, car_t``."""
        return pd.DataFrame(self._cells, columns=["sample", "barcode", "clonotype", "car_t"])


def write_contigs(path: str | Path, rows: pd.DataFrame) -> None:
    """Write contig rows as ``filtered_contig_annotations.csv``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.reindex(columns=CONTIG_COLUMNS).to_csv(path, index=False)


def simulate_tcr_files(
    sheet: pd.DataFrame,
    truth_cells: pd.DataFrame,
    *,
    truth_dir: str | Path,
    seed: int = 0,
    post_min_day: int = 28,
) -> None:
    """Write the ``tcr`` file of every sheet row that names one, and the TCR truth tables.

    Parameters
    ----------
    sheet
        Sheet rows (``sample, patient, day, tissue``, absolute ``tcr`` paths or empty).
    truth_cells
        The GEX simulation's per-cell truth of all samples: ``sample``, ``barcode``,
        ``cell_type``, ``car_t``.
    truth_dir
        Folder for ``truth_car_t_clonotypes.tsv`` and ``truth_tcr_cells.tsv``.
    seed, post_min_day
        As for :class:`TcrSimulator`.
    """
    rows = sheet[sheet.get("tcr", pd.Series("", index=sheet.index)).fillna("").astype(str) != ""]
    sim = TcrSimulator(
        sorted(rows["patient"].astype(str).unique()), seed=seed, post_min_day=post_min_day
    )
    by_sample = {s: t for s, t in truth_cells.groupby(truth_cells["sample"].astype(str))}
    for _, row in rows.iterrows():
        truth = by_sample.get(str(row["sample"]), truth_cells.iloc[:0])
        contigs = sim.contigs(
            truth,
            sample=str(row["sample"]),
            patient=str(row["patient"]),
            day=int(row["day"]),
            tissue=str(row["tissue"]),
        )
        write_contigs(row["tcr"], contigs)
    truth_dir = Path(truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    sim.truth_clonotypes().to_csv(truth_dir / "truth_car_t_clonotypes.tsv", sep="\t", index=False)
    sim.truth_cells().to_csv(truth_dir / "truth_tcr_cells.tsv", sep="\t", index=False)
