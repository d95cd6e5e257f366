"""Simulate a trial-like CAR-T cohort in real Cell Ranger formats, with the truth beside it.

Entry point: ``write_cohort(sheet, ...)``. Each sheet row becomes one sample (patient, day,
tissue, batch and the files to write). Expression comes from ``simulate_expression`` (the
simulator's own programmes, realistic detection, ambient RNA, patient / batch / depth
effects); BCRs from ``simulate_bcr`` (real germline V(D)J, SHM lineage trees); the
scenarios' numbers from ``simulate_scenarios``; the files are written by ``simulate_files``.

Patients play scenarios, by their position in the sorted patient list (``SCENARIOS``,
cycling): 0 ``reference`` (DP, memory and marrow plasma-cell clones eliminated, B cells back
from day 80, IFN / BAFF fall within every cell type, low-density granulocytes at baseline);
1 ``persistent`` (one DP, one memory and one marrow plasma-cell clone persist, a convergent
clone shares a junction with another clone and a public clone one with a memory clone of
the previous patient, late recovery from day 150, platelet-monocyte
aggregates, signatures change only through composition); 2 ``same_repertoire``, the null
patient (no aplasia: baseline
and post are drawn from one repertoire, post samples 3x deeper than baseline, so nothing is
eliminated); 3 ``non_recovering`` (B cells never return, shallow baseline, a marrow-only
long-lived plasma-cell clone that persists while marrow is not resampled, composition-only
signatures). Visit days in the demo sheet are jittered around their labels (a "D28" on 27).

Truth tables (``truth_dir``):

``truth_cells.tsv``, one row per droplet: ``sample, patient, day, tissue, barcode``;
``cell_type`` (contract vocabulary) and ``subtype`` (``platelet``, ``erythroid``,
``progenitor``, ``LDG`` for ``other``; ``platelet_aggregate`` for monocytes with a platelet
attached); ``lineage`` (B, plasma, T, NK, myeloid, other); ``clone`` (true clone id, empty
for singletons and non-B cells); ``isotype`` (IgM ... IgA2); ``double_positive_cell`` (the
cell expresses the DP clone programme: CD19 and BCMA); ``mu_freq`` (true heavy-chain V SHM
frequency, empty without a BCR); ``heavy_recovered`` / ``light_recovered`` (a contig was
written); ``ambient_bcr`` (a non-B droplet with a contig from ambient Ig mRNA);
``low_quality``; ``doublet`` and ``doublet_type`` (the partner's cell type); ``car_t`` and
``car_construct`` (CAR_CD19 / CAR_BCMA); ``proliferating``; ``t_clonotype`` (true TCR
clonotype of T cells: expanded ones for CAR-T cells; a hook for TCR simulation, no TCR
files are written); ``scenario``.

``truth_clones.tsv``, one row per simulated expanded clone: ``clone, patient, scenario,
kind`` (dp, memory, llpc, convergent), ``fate`` (eliminated / persistent: the biology),
``double_positive``, ``tissues`` (where its cells were drawn, comma-separated),
``heavy_v_call, heavy_j_call, heavy_junction_aa, light_v_call``, ``n_cells``,
``n_cells_baseline``, ``n_cells_post`` (droplets simulated, day <= 0 / >= 28),
``n_heavy_baseline``, ``n_heavy_post`` (those with a heavy-chain contig written) and
``expected_status`` in the contract's vocabulary where the scenario defines it:
``persistent`` (persisting clone seen after infusion in a tissue it was seen in at
baseline), ``not_assessable`` (persisting clone whose tissue is never resampled after
infusion), ``eliminated`` (eliminated clone with at least 5 baseline heavy chains), else
empty (both counted on droplets with a heavy-chain contig).
``convergent_with`` names the clone whose heavy junction it shares (in the same patient,
or in another one for the public clone).

``truth_patients.tsv``: ``patient, scenario, aplasia, b_recovery_from_day`` (the day from
which B cells are simulated again; empty when they never recover or never left),
``null_repertoire, shallow_baseline, signature_scenario`` (true_fall / composition_only),
``novel_allele`` (the patient's undocumented V allele).

``truth_signatures.tsv``: patient x cell_type x day: ``ifn_fold`` and ``baff_fold`` (the
true within-type programme level relative to rest; BAFF acts in B-lineage cells and, as the
ligand, in monocytes), ``signature_scenario``.
"""

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cartrack import simulate_bcr as bcr
from cartrack import simulate_expression as ex
from cartrack.design import B_LINEAGE, CELL_TYPES, NAIVE_B, PRODUCT, T_CELLS
from cartrack.params import DemoParams
from cartrack.simulate_files import (
    contig_records,
    write_10x_h5,
    write_10x_mtx,
    write_contigs_10x,
    write_contigs_airr,
)
from cartrack.simulate_scenarios import (
    AGGREGATE_SHARE,
    AMBIENT_BCR,
    AMBIENT_RNA,
    B_RETURN_SHARE,
    BAFF_FOLD,
    BM_BASELINE,
    CAR_SHARE,
    CLONE_PLAN,
    FLAT_BAFF,
    FLAT_IFN,
    HEAVY_RECOVERY,
    IFN_FOLD,
    KIND_TYPE,
    LDG_SHARE,
    LIGHT_RECOVERY,
    LINEAGE,
    MONOCYTE_POST,
    PB_BASELINE,
    PLASMA_HEAVY_LOSS,
    POST_DAY,
    PROLIFERATING_CAR,
    PUBLIC_SHARE,
    RETURNING_B,
    RETURNING_B_PERSISTENT,
    SAMPLE_DEPTH,
    SCENARIOS,
    interpolate,
)
from cartrack.simulate_tcr import PRODUCT_CAR_SHARE, PRODUCT_COMPOSITION

log = logging.getLogger(__name__)


@dataclass
class Clone:
    """A simulated expanded clone: its chains' lineages and its place in the story."""

    clone_id: str
    patient: str
    kind: str
    fate: str
    shares: dict
    tissues: tuple
    heavy: bcr.Lineage
    light: bcr.Lineage
    double_positive: bool = False
    convergent_with: str = ""
    cells: list = field(default_factory=list)  # (day, tissue, heavy chain written)


class Cohort:
    """Generator of one cohort: genes, scenarios, clones, then sample by sample."""

    def __init__(
        self, sheet, *, ifn_genes, baff_genes, n_genes=2000, seed=0, germline=bcr.GERMLINE
    ):
        self.rng = np.random.default_rng(seed)
        self.sheet = sheet
        self.patients = sorted(sheet["patient"].unique())
        self.scenario = {p: SCENARIOS[i % len(SCENARIOS)] for i, p in enumerate(self.patients)}
        self.expr = ex.Expression(self.rng, ifn_genes=ifn_genes, baff_genes=baff_genes,
                                  n_genes=n_genes)  # fmt: skip
        self.germline = bcr.load_germline(germline)
        self.patient_effect = {
            p: self.rng.lognormal(0, 0.12, size=len(self.expr.features)) for p in self.patients
        }
        self.batch_effect: dict[str, np.ndarray] = {}
        self.v_alleles = {p: self._patient_alleles(p) for p in self.patients}
        self.clones = [c for p in self.patients for c in self._clones(p)]
        self.public_rng = np.random.default_rng([seed, 10])
        self.public = {p: c for p in self.patients if (c := self._public_clone(p))}
        self.clones += self.public.values()

    def _patient_alleles(self, patient: str) -> dict:
        """The patient's V alleles; the `persistent` patient carries a novel IGHV3-23."""
        alleles = dict(self.germline)
        if self.scenario[patient]["scenario"] == "persistent":
            heavy = list(alleles["IGH", "V"])
            k = next(i for i, s in enumerate(heavy) if s.allele == "IGHV3-23*01")
            heavy[k] = bcr.novel_allele(heavy[k], self.rng)
            alleles["IGH", "V"] = heavy
        return alleles

    def _novel_segment(self, patient: str) -> bcr.Segment | None:
        return next((s for s in self.v_alleles[patient]["IGH", "V"] if "_" in s.allele), None)

    def novel_allele(self, patient: str) -> str:
        segment = self._novel_segment(patient)
        return segment.allele if segment else ""

    # -- repertoire ---------------------------------------------------------------------
    def _lineages(self, patient: str, heavy_root=None, v=None):
        rng, germ = self.rng, self.v_alleles[patient]
        heavy = heavy_root or bcr.recombine(rng, germ, "IGH", v=v)
        light = bcr.recombine(rng, germ, str(rng.choice(["IGK", "IGL"], p=[0.6, 0.4])))
        # the clone's founder was already mutated in the germinal centre
        heavy = bcr.mutate(rng, heavy, int(rng.integers(3, 10)))
        return bcr.Lineage(rng, heavy), bcr.Lineage(rng, light)

    def _clones(self, patient: str) -> list[Clone]:
        sc = self.scenario[patient]
        clones: list[Clone] = []
        for kind, plans in CLONE_PLAN.items():
            for i, (shares, tissues) in enumerate(plans):
                persists = kind in sc["persist"] and (sc.get("null") or i == 0)
                if kind == "llpc" and sc.get("marrow_only_llpc") and i == 1:
                    persists = False
                # the persisting memory clone uses the patient's novel allele, if any
                novel = persists and kind == "memory" and self._novel_segment(patient)
                heavy, light = self._lineages(patient, v=novel or None)
                clones.append(
                    Clone(f"{patient}_true{len(clones) + 1:03d}", patient,
                          kind,
                          "persistent" if persists else "eliminated", dict(shares), tissues,
                          heavy, light, double_positive=kind == "dp")
                )  # fmt: skip
        if sc.get("convergent"):
            # an unrelated memory clone whose heavy junction matches the second memory
            # clone's amino acids (same V and J, other codons and another light chain)
            target = next(c for c in clones if c.kind == "memory" and c.fate == "eliminated")
            root = bcr.recode_junction(self.rng, target.heavy.nodes[0])
            heavy, light = self._lineages(patient, heavy_root=root)
            clones.append(
                Clone(f"{patient}_true{len(clones) + 1:03d}", patient, "convergent",
                      "eliminated", {"B_memory": 0.15}, ("PB", "BM"), heavy, light,
                      convergent_with=target.clone_id)
            )  # fmt: skip
        return clones

    def _public_clone(self, patient: str) -> Clone | None:
        """The `convergent` patient's clone sharing a heavy junction with another patient's
        memory clone (a cross-patient convergent junction; see ``PUBLIC_SHARE``)."""
        i = self.patients.index(patient)
        if not self.scenario[patient].get("convergent") or i == 0:
            return None
        rng, other = self.public_rng, self.patients[i - 1]
        targets = [c for c in self.clones if c.patient == other and c.kind == "memory"]
        targets = [c for c in targets if c.heavy.nodes[0].v.allele not in bcr.AMBIGUOUS]
        if not targets:
            return None
        target = targets[0].heavy.nodes[0]
        # the other patient's founder without its V mutations, its junction recoded
        v_part = target.germline[: target.junction_start]
        root = bcr.recode_junction(
            rng, replace(target, sequence=v_part + target.sequence[len(v_part) :])
        )
        for _ in range(100):  # a founder mutated in its own germinal centre, junction kept
            mutated = bcr.mutate(rng, root, int(rng.integers(3, 10)))
            if mutated.junction_aa == root.junction_aa:
                root = mutated
                break
        germ = self.v_alleles[patient]
        while True:  # a light chain of its own (no ambiguous call: contig draws stay as they were)
            light = bcr.recombine(rng, germ, str(rng.choice(["IGK", "IGL"], p=[0.6, 0.4])))
            if light.v.allele not in bcr.AMBIGUOUS:
                break
        n = sum(c.patient == patient for c in self.clones)
        return Clone(f"{patient}_true{n + 1:03d}", patient, "convergent", "eliminated", {},
                     ("PB", "BM"), bcr.Lineage(rng, root), bcr.Lineage(rng, light),
                     convergent_with=targets[0].clone_id)  # fmt: skip

    def _public_member(self, patient, cell_type, day, heavy, light) -> Clone | None:
        """The public clone, if this unclonal cell joins it (its own draws, made from the
        main stream, are then replaced; cells with an ambiguous V call keep theirs)."""
        clone = self.public.get(patient)
        if clone is None or cell_type not in PUBLIC_SHARE:
            return None
        if day > 0 and not self.scenario[patient].get("null"):  # eliminated clone
            return None
        if self.public_rng.random() >= PUBLIC_SHARE[cell_type]:
            return None
        if heavy.v.allele in bcr.AMBIGUOUS or light.v.allele in bcr.AMBIGUOUS:
            return None
        return clone

    def _assign_clone(self, patient: str, kind: str, day: int, tissue: str) -> Clone | None:
        alive_only = day > 0 and not self.scenario[patient].get("null")
        u, acc = self.rng.random(), 0.0
        for c in self.clones:
            if c.patient != patient or tissue not in c.tissues or kind not in c.shares:
                continue
            if alive_only and c.fate != "persistent":
                continue
            acc += c.shares[kind]
            if u < acc:
                return c
        return None

    # -- composition and programme levels -----------------------------------------------
    def composition(self, patient: str, day: int, tissue: str, sample_flags: dict) -> dict:
        """Expected shares of each kind (cell type or `other` subtype) in one sample."""
        sc = self.scenario[patient]
        if tissue == PRODUCT:
            total = sum(PRODUCT_COMPOSITION.values())
            return {k: v / total for k, v in PRODUCT_COMPOSITION.items()}
        comp = dict(PB_BASELINE if tissue == "PB" else BM_BASELINE)
        if day >= POST_DAY:
            comp["monocyte"] *= MONOCYTE_POST
        if day > 0 and not sc.get("null"):
            recovery = sc["recovery"]
            b_share = 0.0 if day < recovery else interpolate(day - recovery, B_RETURN_SHARE)
            if tissue == "BM":
                b_share *= 0.8
            non_b = {k: v for k, v in comp.items() if KIND_TYPE[k] not in B_LINEAGE}
            total = sum(non_b.values())
            comp = {k: v / total * (1 - b_share) for k, v in non_b.items()}
            returning = RETURNING_B_PERSISTENT if sc["persist"] else RETURNING_B
            for k, share in returning.items():
                comp[k] = b_share * share
            surviving_pc = "llpc" in sc["persist"] and tissue == "BM"
            comp["plasma_cell"] = 0.02 if surviving_pc else 0.0
        if sample_flags.get("ldg"):
            comp["LDG"] = comp.get("LDG", 0.0) + LDG_SHARE * sum(comp.values())
        total = sum(comp.values())
        return {k: v / total for k, v in comp.items() if v > 0}

    def folds(self, patient: str, day: int) -> tuple[float, float]:
        """True within-type IFN and BAFF programme levels (fold over rest)."""
        if self.scenario[patient]["signatures"] == "composition_only":
            return FLAT_IFN, FLAT_BAFF
        amplitude = 1 + 0.15 * self.patients.index(patient)
        ifn = interpolate(day, IFN_FOLD)
        ifn = max(1.0, 1 + (ifn - 1) * amplitude)
        return ifn, interpolate(day, BAFF_FOLD)

    def sample_flags(self, patient: str, day: int, tissue: str) -> dict:
        sc = self.scenario[patient]
        return {
            "ldg": bool(sc.get("ldg")) and day <= 0 and tissue == "PB",
            "aggregates": bool(sc.get("aggregates")) and tissue == "PB" and day in (-4, 27, 28),
        }

    def cell_factor(self, patient: str, day: int, tissue: str) -> float:
        """How many cells a sample holds relative to `cells_per_sample`."""
        sc = self.scenario[patient]
        if sc.get("null"):
            return 0.6 if day <= 0 else 1.8
        if sc.get("shallow") and day <= 0 and tissue == "PB":
            return 0.35
        return 1.0

    # -- one sample ---------------------------------------------------------------------
    def sample(self, row, n_cells: int, *, low_quality_rate: float, doublet_rate: float):
        """Counts (cells x features), per-droplet truth and contigs of one sample."""
        rng, expr = self.rng, self.expr
        day, patient, tissue = int(row["day"]), row["patient"], row["tissue"]
        sc = self.scenario[patient]
        flags = self.sample_flags(patient, day, tissue)
        comp = self.composition(patient, day, tissue, flags)
        n = int(rng.poisson(n_cells * self.cell_factor(patient, day, tissue)))
        kinds = rng.choice(list(comp), size=n, p=list(comp.values()))
        car_share = interpolate(day, CAR_SHARE) if day > 0 else 0.0
        if tissue == PRODUCT:
            car_share = PRODUCT_CAR_SHARE
        ifn_fold, baff_fold = self.folds(patient, day)
        batch = str(row.get("batch") or row["sample"])
        if batch not in self.batch_effect:
            self.batch_effect[batch] = rng.lognormal(0, 0.2, size=len(expr.features))
        effect = self.patient_effect[patient] * self.batch_effect[batch]
        effect[-len(ex.CAR_FEATURES) :] = 1.0
        depth = rng.uniform(*SAMPLE_DEPTH) * rng.lognormal(0, 0.4, size=n)
        heavy_rate = rng.uniform(*HEAVY_RECOVERY)
        barcodes = self._barcodes(n)
        means = np.empty((n, len(expr.features)))
        cells, chains = [], []
        for k, kind in enumerate(kinds):
            t = KIND_TYPE[kind]
            subtype = kind if kind != t else ""
            if t == "monocyte" and flags["aggregates"] and rng.random() < AGGREGATE_SHARE:
                subtype = "platelet_aggregate"
            p = expr.profile(t, kind if kind != t else "")
            if subtype == "platelet_aggregate":
                p += expr.profile("other", "platelet") * ex.KIND_SIZE["platelet"]
            car = t in T_CELLS and rng.random() < car_share
            construct = str(rng.choice(ex.CAR_FEATURES)) if car else ""
            lo, hi, share = PROLIFERATING_CAR
            proliferating = t == "plasmablast" or (
                t in T_CELLS and lo <= day <= hi and rng.random() < (share if car else 0.05)
            )
            if car:
                p[expr.index[construct]] += ex.CAR_UMIS
            if proliferating:
                expr.add(p, ex.PROLIFERATION)
                if t in T_CELLS:
                    expr.add(p, ex.ACTIVATION)
            clone = self._assign_clone(patient, t, day, tissue) if t in B_LINEAGE else None
            dp_cell = clone is not None and clone.double_positive
            if dp_cell:  # the DP programme: CD19 kept (plasmablasts) and BCMA gained
                p[expr.index["CD19"]] = max(p[expr.index["CD19"]], 0.7)
                p[expr.index["TNFRSF17"]] = max(p[expr.index["TNFRSF17"]], 1.8)
            isotype, heavy, light = ("", None, None)
            if t in B_LINEAGE:
                isotype, heavy, light = self._bcr(patient, t, clone)
                public = None if clone else self._public_member(patient, t, day, heavy, light)
                if public is not None:
                    clone = public
                    heavy, light = clone.heavy.draw(t), clone.light.draw(t)
            expr.finish(p, cell_type=t, kind=kind, isotype=isotype,
                        light=light.locus if light else "", ifn_fold=ifn_fold,
                        baff_fold=baff_fold, mito_factor=rng.lognormal(0, 0.25))  # fmt: skip
            means[k] = p * effect * depth[k] * ex.KIND_SIZE.get(kind, 1.0)
            got = []
            if heavy is not None:
                loss = PLASMA_HEAVY_LOSS if t in ("plasmablast", "plasma_cell") else 0.0
                if rng.random() < heavy_rate * (1 - loss):
                    got.append((heavy, ex.ISOTYPE_GENE[isotype]))
                if rng.random() < LIGHT_RECOVERY:
                    got.append((light, "IGKC" if light.locus == "IGK" else "IGLC2"))
            chains.append(got)
            if clone is not None:
                clone.cells.append((day, tissue, any(r.locus == "IGH" for r, _ in got)))
            cells.append({
                "barcode": barcodes[k], "cell_type": t, "subtype": subtype,
                "lineage": LINEAGE[t], "clone": clone.clone_id if clone else "",
                "isotype": isotype, "double_positive_cell": dp_cell,
                "mu_freq": round(heavy.mu_freq, 4) if heavy is not None else np.nan,
                "heavy_recovered": any(r.locus == "IGH" for r, _ in got),
                "light_recovered": any(r.locus != "IGH" for r, _ in got),
                "ambient_bcr": False, "low_quality": False, "doublet": False,
                "doublet_type": "", "car_t": car, "car_construct": construct,
                "proliferating": proliferating,
                "t_clonotype": self._t_clonotype(patient, row["sample"], k, car, t),
                "scenario": sc["scenario"],
            })  # fmt: skip
        truth = pd.DataFrame(cells)
        self._inject_low_quality(means, truth, low_quality_rate)
        self._inject_doublets(means, truth, chains, doublet_rate)
        self._ambient_bcr(truth, chains)
        self._ambient_rna(means)
        counts = rng.negative_binomial(ex.NB_SIZE, ex.NB_SIZE / (ex.NB_SIZE + means))
        return sp.csr_matrix(counts.astype(np.float32)), truth, chains

    def _t_clonotype(self, patient, sample, k, car, t) -> str:
        if t not in T_CELLS:
            return ""
        if car:  # CAR-T cells come from a few expanded clonotypes (Zipf-like)
            return f"{patient}_CAR{min(int(self.rng.zipf(1.6)), 40):02d}"
        return f"{sample}_T{k:05d}"

    def _bcr(self, patient: str, cell_type: str, clone: Clone | None):
        """Isotype and the (heavy, light) rearrangements of one B-lineage cell."""
        rng = self.rng
        if clone is None:
            germ = self.v_alleles[patient]
            lo, hi = bcr.SHM_RANGE[cell_type]
            heavy = bcr.recombine(rng, germ, "IGH")
            heavy = bcr.mutate(rng, heavy, int(rng.uniform(lo, hi) * heavy.v_end))
            light = bcr.recombine(rng, germ, str(rng.choice(["IGK", "IGL"], p=[0.6, 0.4])))
            light = bcr.mutate(rng, light, int(rng.uniform(lo, hi) * light.v_end))
        else:
            heavy, light = clone.heavy.draw(cell_type), clone.light.draw(cell_type)
        if cell_type in NAIVE_B:
            isotype = "IgM" if rng.random() < 0.85 else "IgD"
        elif cell_type == "B_memory" and clone is None:
            isotype = str(rng.choice(["IgM", "IgG1", "IgA1", "IgG2"]))
        else:
            isotype = str(rng.choice(["IgG1", "IgG2", "IgG3", "IgA1"], p=[0.55, 0.2, 0.05, 0.2]))
        return isotype, heavy, light

    def _barcodes(self, n: int) -> list[str]:
        """Random 16-mers from a small pool, so that samples share some barcodes."""
        pool = 40_000
        idx = self.rng.choice(pool, size=n, replace=False)
        letters = np.array(list("ACGT"))
        allbc = letters[np.random.default_rng(12345).integers(0, 4, size=(pool, 16))]
        return ["".join(allbc[i]) + "-1" for i in idx]

    def _inject_low_quality(self, means, truth, rate) -> None:
        """Broken cells: few counts, a high mitochondrial share."""
        rng, mito = self.rng, self.expr.mito
        lq = rng.random(len(truth)) < rate
        for k in np.flatnonzero(lq):
            total = means[k].sum()
            means[k] *= rng.uniform(0.15, 0.35)
            means[k, mito] = means[k, mito] / means[k, mito].sum() * total * rng.uniform(0.2, 0.4)
        truth["low_quality"] = lq

    def _inject_doublets(self, means, truth, chains, rate) -> None:
        """Two cells in one droplet: mostly of different lineages; a share of B-lineage
        droplets are B-B doublets, which carry two heavy chains."""
        rng = self.rng
        lineage = truth["lineage"].to_numpy()
        b_like = np.isin(lineage, ["B", "plasma"])
        for k in np.flatnonzero((rng.random(len(truth)) < rate) & ~truth["low_quality"]):
            same = b_like[k] and rng.random() < 0.5
            partners = np.flatnonzero(b_like if same else lineage != lineage[k])
            partners = partners[partners != k]
            if len(partners) == 0:
                continue
            j = int(rng.choice(partners))
            means[k] += means[j] * rng.uniform(0.7, 1.0)
            chains[k] = chains[k] + chains[j]
            truth.loc[k, ["doublet", "doublet_type"]] = [True, truth.at[j, "cell_type"]]

    def _ambient_bcr(self, truth, chains) -> None:
        """Low-UMI contigs from ambient Ig mRNA in some T / NK droplets."""
        rng = self.rng
        donors = [c for c, lin in zip(chains, truth["lineage"], strict=True) if lin == "plasma"]
        donors = [c for c in donors if c]
        if not donors:
            return
        for k in np.flatnonzero(truth["lineage"].isin(["T", "NK"]).to_numpy()):
            if rng.random() < AMBIENT_BCR:
                donor = donors[int(rng.integers(len(donors)))]
                chains[k] = chains[k] + [donor[int(rng.integers(len(donor)))] + ("ambient",)]
                truth.at[k, "ambient_bcr"] = True

    def _ambient_rna(self, means) -> None:
        """1-5 % of each droplet's counts from the sample's pooled profile (the soup)."""
        soup = means.sum(axis=0)
        for gene, share in ex.FREE_SOUP.items():
            soup[self.expr.index[gene]] += share * soup.sum()
        soup /= soup.sum()
        a = self.rng.uniform(*AMBIENT_RNA, size=len(means))
        means += (a / (1 - a) * means.sum(axis=1))[:, None] * soup[None, :]


def write_cohort(
    sheet: pd.DataFrame,
    *,
    ifn_genes: list[str],
    baff_genes: list[str],
    truth_dir: Path,
    demo: DemoParams,
    seed: int,
    germline: Path = bcr.GERMLINE,
) -> None:
    """Write every sample of `sheet` (absolute `gex` / `bcr` paths) and the truth tables.

    The format follows the file name: `.h5` -> Cell Ranger HDF5, a folder -> mtx folder;
    `.csv` -> 10x contig CSV, `.tsv` -> AIRR rearrangement. `demo` (config section ``demo``)
    gives the cells per sample (before each scenario's factor) and the rates of low-quality
    cells and doublets. `seed` is the config's ``seed`` (default in the config schema).
    """
    cohort = Cohort(sheet, ifn_genes=ifn_genes, baff_genes=baff_genes, seed=seed, germline=germline)
    truth_dir.mkdir(parents=True, exist_ok=True)
    all_truth = []
    for _, row in sheet.iterrows():
        counts, truth, chains = cohort.sample(
            row,
            demo.cells_per_sample,
            low_quality_rate=demo.low_quality_rate,
            doublet_rate=demo.doublet_rate,
        )
        barcodes = truth["barcode"].tolist()
        gex = Path(row["gex"])
        writer = write_10x_h5 if gex.suffix == ".h5" else write_10x_mtx
        writer(gex, counts, barcodes, cohort.expr.features)
        bcr_path = row.get("bcr")
        if isinstance(bcr_path, str) and bcr_path:
            airr = Path(bcr_path).suffix == ".tsv"
            rows = contig_records(truth, chains, cohort.rng, airr=airr)
            (write_contigs_airr if airr else write_contigs_10x)(Path(bcr_path), rows)
        for i, name in enumerate(["sample", "patient", "day", "tissue"]):
            truth.insert(i, name, int(row[name]) if name == "day" else row[name])
        all_truth.append(truth)
        log.info("simulated %s: %d droplets", row["sample"], len(truth))
    pd.concat(all_truth, ignore_index=True).to_csv(
        truth_dir / "truth_cells.tsv", sep="\t", index=False
    )
    clone_table(cohort, sheet).to_csv(truth_dir / "truth_clones.tsv", sep="\t", index=False)
    patient_table(cohort).to_csv(truth_dir / "truth_patients.tsv", sep="\t", index=False)
    signature_table(cohort, sheet).to_csv(truth_dir / "truth_signatures.tsv", sep="\t", index=False)


def expected_status(clone: Clone, sheet: pd.DataFrame) -> str:
    """The status a correct analysis must give, where the scenario defines one (counting
    droplets whose heavy chain was written, as the analysis can only see those)."""
    base = {t for d, t, h in clone.cells if d <= 0 and h}
    post = {t for d, t, h in clone.cells if d >= POST_DAY and h}
    mine = sheet[sheet["patient"] == clone.patient]
    resampled = set(mine.loc[pd.to_numeric(mine["day"]) >= POST_DAY, "tissue"])
    if clone.fate == "persistent":
        if base & post:
            return "persistent"
        return "not_assessable" if base and not (base & resampled) else ""
    return "eliminated" if sum(d <= 0 and h for d, _, h in clone.cells) >= 5 else ""


def clone_table(cohort: Cohort, sheet: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for c in cohort.clones:
        root, light = c.heavy.nodes[0], c.light.nodes[0]
        rows.append({
            "clone": c.clone_id, "patient": c.patient,
            "scenario": cohort.scenario[c.patient]["scenario"], "kind": c.kind,
            "fate": c.fate, "double_positive": c.double_positive,
            "tissues": ",".join(sorted({t for _, t, _ in c.cells})),
            "heavy_v_call": root.v.allele, "heavy_j_call": root.j.allele,
            "heavy_junction_aa": root.junction_aa, "light_v_call": light.v.allele,
            "n_cells": len(c.cells), "n_cells_baseline": sum(d <= 0 for d, _, _ in c.cells),
            "n_cells_post": sum(d >= POST_DAY for d, _, _ in c.cells),
            "n_heavy_baseline": sum(d <= 0 and h for d, _, h in c.cells),
            "n_heavy_post": sum(d >= POST_DAY and h for d, _, h in c.cells),
            "expected_status": expected_status(c, sheet), "convergent_with": c.convergent_with,
        })  # fmt: skip
    return pd.DataFrame(rows)


def patient_table(cohort: Cohort) -> pd.DataFrame:
    rows = []
    for p in cohort.patients:
        sc = cohort.scenario[p]
        recovery = sc["recovery"]
        rows.append({
            "patient": p, "scenario": sc["scenario"], "aplasia": not sc.get("null"),
            "b_recovery_from_day": recovery if recovery and np.isfinite(recovery) else np.nan,
            "null_repertoire": bool(sc.get("null")), "shallow_baseline": bool(sc.get("shallow")),
            "signature_scenario": sc["signatures"], "novel_allele": cohort.novel_allele(p),
        })  # fmt: skip
    return pd.DataFrame(rows)


def signature_table(cohort: Cohort, sheet: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (patient, day), _ in sheet.groupby(["patient", pd.to_numeric(sheet["day"])]):
        ifn, baff = cohort.folds(patient, int(day))
        for t in CELL_TYPES:
            rows.append({
                "patient": patient, "cell_type": t, "day": int(day), "ifn_fold": ifn,
                "baff_fold": baff if t in B_LINEAGE or t == "monocyte" else 1.0,
                "signature_scenario": cohort.scenario[patient]["signatures"],
            })  # fmt: skip
    return pd.DataFrame(rows)
