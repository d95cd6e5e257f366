"""Clone definition on generated hypermutated repertoires (own generator, seeded).

Each patient: expanded clones that evolve as trees (somatic mutation along unobserved
ancestors, sampled at three time points), naive singletons, ambiguous and flipping V calls
between duplicated / near-identical germline genes, convergent clones (same heavy amino-acid
junction, other codons and other light chain), cells with a heavy or a light chain only.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from cartrack.airr_fields import translate
from cartrack.bcr import build_airr, clean_chains, index_chains, merge_bcr, read_bcr
from cartrack.clones import define_clones
from cartrack.params import CloneParams

BASES = "ACGT"
CODONS = {}
for _a in BASES:
    for _b in BASES:
        for _c in BASES:
            CODONS.setdefault(translate(_a + _b + _c), []).append(_a + _b + _c)
# V genes with their germline-encoded 3' junction start; families whose members aligners
# confuse (IMGT duplicates, IGHV3-30/33): a cell's call is drawn from its clone's family
HEAVY_V = {
    "IGHV3-23": ["IGHV3-23", "IGHV3-23D"],
    "IGHV3-30": ["IGHV3-30", "IGHV3-30-3", "IGHV3-33"],
    "IGHV1-69": ["IGHV1-69", "IGHV1-69D"],
    "IGHV4-34": ["IGHV4-34"],
    "IGHV1-2": ["IGHV1-2"],
    "IGHV3-7": ["IGHV3-7"],
    "IGHV4-39": ["IGHV4-39"],
    "IGHV5-51": ["IGHV5-51"],
}
HEAVY_J = {"IGHJ4": "TACTTTGACTACTGG", "IGHJ6": "TACTACGGTATGGACGTCTGG", "IGHJ3": "GCTTTTGATATCTGG"}
V_END = "TGTGCGAGAGAT"  # germline-encoded C-A-R-D start of IGHV junctions
LIGHT_V = {
    "IGKV1-39": ["IGKV1-39", "IGKV1D-39"],
    "IGKV3-20": ["IGKV3-20"],
    "IGKV3-15": ["IGKV3-15"],
    "IGLV2-14": ["IGLV2-14"],
}
LIGHT_J = {"IGKV": ["IGKJ1", "IGKJ2", "IGKJ4"], "IGLV": ["IGLJ2", "IGLJ3"]}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _random(rng, n: int) -> str:
    return "".join(rng.choice(list(BASES), size=n))


def _no_stop(rng, seq: str) -> str:
    """Replace stop codons (keeps the junction translatable and in frame)."""
    out = []
    for i in range(0, len(seq), 3):
        codon = seq[i : i + 3]
        while translate(codon) == "*":
            codon = _random(rng, 3)
        out.append(codon)
    return "".join(out)


def _mutate(rng, seq: str, n: int, keep: int = 3) -> str:
    """`n` point mutations outside the conserved first and last codon."""
    s = list(seq)
    for pos in rng.choice(np.arange(keep, len(s) - keep), size=min(n, len(s) - 2 * keep)):
        s[pos] = rng.choice([b for b in BASES if b != s[pos]])
    return _no_stop(rng, "".join(s))


def heavy_junction(rng, j_gene: str, n_middle: int) -> str:
    return V_END + _no_stop(rng, _random(rng, n_middle)) + HEAVY_J[j_gene]


def light_junction(rng) -> str:
    return "TGTCAGCAG" + _no_stop(rng, _random(rng, 15)) + "ACGTTCGGC"


def _lineage(rng, root: str, n_cells: int, rate: float) -> list[str]:
    """Junctions of `n_cells` sampled from a mutating tree with 2 n unobserved ancestors."""
    nodes = [root]
    for _ in range(3 * n_cells):
        parent = nodes[int(rng.integers(len(nodes)))]
        nodes.append(_mutate(rng, parent, int(rng.poisson(rate * len(root)))))
    picks = rng.choice(np.arange(1, len(nodes)), size=n_cells, replace=False)
    return [nodes[i] for i in picks]


def _call(rng, family: list[str], ambiguous: float) -> str:
    gene = family[int(rng.integers(len(family)))]
    if len(family) > 1 and rng.random() < ambiguous:
        other = next(g for g in family if g != gene)
        return f"{gene}*01,{other}*01"
    return f"{gene}*0{int(rng.integers(1, 3))}"


def generate_patient(rng, patient: str, *, n_clones=40, n_singletons=900, convergent=6):
    """Chain rows per sample and the true clone of each cell."""
    samples = [f"{patient}_base", f"{patient}_d90", f"{patient}_d180"]
    rows, truth = {s: [] for s in samples}, {}
    heavy_vs = list(HEAVY_V)

    def light_spec():
        v = list(LIGHT_V)[int(rng.integers(len(LIGHT_V)))]
        j = LIGHT_J[v[:4]][int(rng.integers(len(LIGHT_J[v[:4]])))]
        return v, j, light_junction(rng)

    specs = []
    for k in range(n_clones):
        v, j = heavy_vs[int(rng.integers(len(heavy_vs)))], list(HEAVY_J)[k % 3]
        specs.append((v, j, heavy_junction(rng, j, 3 * int(rng.integers(5, 10))), light_spec()))
    for k in range(convergent):  # same heavy V/J and amino-acid junction, other codons, light
        v, j, junction, _ = specs[k]
        aa = translate(junction)
        synonymous = "".join(CODONS[a][int(rng.integers(len(CODONS[a])))] for a in aa)
        specs.append((v, j, synonymous, light_spec()))
    cell = 0
    for k, (v, j, junction, (lv, lj, ljunction)) in enumerate(specs):
        n = int(rng.integers(3, 40)) if k < n_clones else int(rng.integers(3, 8))
        heavies = _lineage(rng, junction, n, rate=0.02)
        lights = _lineage(rng, ljunction, n, rate=0.008)
        for h, lt in zip(heavies, lights, strict=True):
            sample = samples[int(rng.integers(3))]
            bc = f"c{cell}"
            cell += 1
            truth[f"{sample}_{bc}"] = f"{patient}_T{k}"
            kind = rng.random()
            if kind < 0.95:
                rows[sample].append(
                    _chain(bc, "IGH", _call(rng, HEAVY_V[v], 0.3), j + "*01", h, c="IGHG1")
                )
            if kind < 0.85 or kind >= 0.95:
                rows[sample].append(_chain(bc, lv[:3], _call(rng, LIGHT_V[lv], 0.3), lj, lt))
    for _ in range(n_singletons):  # naive, unmutated, unrelated
        sample = samples[int(rng.integers(3))]
        bc = f"c{cell}"
        cell += 1
        truth[f"{sample}_{bc}"] = f"{patient}_S{cell}"
        v, j = heavy_vs[int(rng.integers(len(heavy_vs)))], list(HEAVY_J)[int(rng.integers(3))]
        h = heavy_junction(rng, j, 3 * int(rng.integers(5, 10)))
        lv, lj, lt = light_spec()
        rows[sample].append(_chain(bc, "IGH", _call(rng, HEAVY_V[v], 0.3), j, h, c="IGHM"))
        rows[sample].append(_chain(bc, lv[:3], _call(rng, LIGHT_V[lv], 0.3), lj, lt))
    return rows, truth


def _chain(bc, locus, v, j, junction, c=None):
    return {
        "barcode": bc,
        "locus": locus,
        "v_call": v,
        "j_call": j,
        "c_call": c or (locus + "C"),
        "junction": junction,
        "junction_aa": translate(junction),
        "productive": True,
        "umi_count": 10,
    }


def airr_of(rows: dict[str, list[dict]], patients: dict[str, str]):
    parts = [build_airr(clean_chains(pd.DataFrame(r)), sample=s) for s, r in rows.items() if r]
    airr = merge_bcr(parts)
    airr.obs["patient"] = airr.obs["sample"].map(patients).to_numpy()
    index_chains(airr, productive_only=True)
    return airr


def pairwise_scores(called: pd.Series, true: pd.Series) -> tuple[float, float]:
    """Pairwise precision and recall of a partition against the truth (same cells)."""
    frame = pd.DataFrame({"c": called, "t": true}).dropna()

    def pairs(counts):
        return float((counts * (counts - 1) / 2).sum())

    both = pairs(frame.groupby(["c", "t"]).size())
    return both / pairs(frame.groupby("c").size()), both / pairs(frame.groupby("t").size())


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(11)
    rows, truth, patients = {}, {}, {}
    for patient in ("P1", "P2"):
        r, t = generate_patient(rng, patient)
        rows |= r
        truth |= t
        patients |= {s: patient for s in r}
    airr = airr_of(rows, patients)
    return airr, pd.Series(truth)


def test_pairwise_precision_and_recall(cohort, caplog):
    airr, truth = cohort
    thresholds = define_clones(airr)
    assert list(thresholds["patient"]) == ["P1", "P2"]
    assert set(thresholds["method"]) == {"density"}  # bimodal: no fallback
    assert thresholds["threshold"].between(0.05, 0.3).all()
    called = airr.obs["clone_id"]
    heavy = called.notna()
    precision, recall = pairwise_scores(called[heavy], truth[called.index[heavy]])
    assert precision >= 0.98, precision
    assert recall >= 0.95, recall
    assert not called.dropna().str.split("_").str[0].ne(airr.obs["patient"][heavy]).any()


def test_old_amino_acid_rule_misses_recall(cohort):
    """The 85% amino-acid rule this replaces loses pairs of hypermutated clones."""
    airr, truth = cohort
    a = airr.copy()
    define_clones(a, CloneParams.from_config(sequence="aa", threshold=0.155, equivalent_genes=()))
    called = a.obs["clone_id"].dropna()
    _, recall = pairwise_scores(called, truth[called.index])
    assert recall < 0.95


def test_convergent_clones_split_by_light_chain(cohort):
    airr, truth = cohort
    define_clones(airr)
    called = airr.obs["clone_id"]
    for patient in ("P1", "P2"):
        for k in range(6):  # T{40+k} copies T{k}'s heavy amino acids with other codons
            a = called[truth.reindex(called.index).eq(f"{patient}_T{k}")].dropna()
            b = called[truth.reindex(called.index).eq(f"{patient}_T{40 + k}")].dropna()
            assert not set(a) & set(b), (patient, k)
    no_split = airr.copy()
    define_clones(no_split, CloneParams.from_config(split_light=False))
    merged = sum(
        bool(
            set(no_split.obs["clone_id"][truth.reindex(no_split.obs_names).eq(f"P1_T{k}")])
            & set(no_split.obs["clone_id"][truth.reindex(no_split.obs_names).eq(f"P1_T{40 + k}")])
        )
        for k in range(6)
    )
    assert merged >= 1  # the heavy chain alone merges some convergent pairs


def test_unrelated_cells_with_germline_ends_not_merged():
    """30 naive cells, same V, J and length, identical germline-encoded junction ends."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(30):
        junction = heavy_junction(rng, "IGHJ6", 24)
        rows.append(_chain(f"n{i}", "IGH", "IGHV3-23*01", "IGHJ6*02", junction))
        rows.append(_chain(f"n{i}", "IGK", "IGKV3-20*01", "IGKJ1*01", light_junction(rng)))
    airr = airr_of({"S1": rows}, {"S1": "P1"})
    for threshold in ("auto", 0.15):
        define_clones(airr, CloneParams.from_config(threshold=threshold))
        assert airr.obs["clone_id"].nunique() == 30


def test_light_miscall_does_not_split_a_clone():
    rng = np.random.default_rng(5)
    junction, light = heavy_junction(rng, "IGHJ4", 21), light_junction(rng)
    rows = []
    for i, lv in enumerate(["IGKV1-39*01", "IGKV1D-39*01", "IGKV1-39*01,IGKV1D-39*01"] * 2):
        rows.append(_chain(f"c{i}", "IGH", "IGHV1-69*01", "IGHJ4*02", _mutate(rng, junction, 2)))
        rows.append(_chain(f"c{i}", "IGK", lv, "IGKJ1*01", _mutate(rng, light, 1)))
    rows.append(_chain("other_v", "IGH", "IGHV1-69D*01", "IGHJ4*02", junction))
    rows.append(_chain("other_v", "IGK", "IGKV3-15*01", "IGKJ2*01", light))  # junction close
    airr = airr_of({"S1": rows}, {"S1": "P1"})
    define_clones(airr, CloneParams.from_config(threshold=0.15))
    assert airr.obs["clone_id"].nunique() == 1


def test_average_linkage_is_not_looser_than_single(cohort):
    airr, truth = cohort
    a = airr.copy()
    define_clones(a, CloneParams.from_config(threshold=0.15, linkage="average"))
    s = airr.copy()
    define_clones(s, CloneParams.from_config(threshold=0.15))
    assert a.obs["clone_id"].nunique() >= s.obs["clone_id"].nunique()


def test_airr_and_10x_csv_of_one_clone_give_one_clone(tmp_path):
    rng = np.random.default_rng(7)
    junction, light = heavy_junction(rng, "IGHJ6", 24), light_junction(rng)
    heavies = _lineage(rng, junction, 8, rate=0.02)
    lights = _lineage(rng, light, 8, rate=0.008)
    csv_rows, airr_rows = [], []
    for i, (h, lt) in enumerate(zip(heavies, lights, strict=True)):
        for locus, v, j, c, junc in [
            ("IGH", "IGHV3-30", "IGHJ6", "IGHG1", h),
            ("IGK", "IGKV1-39", "IGKJ1", "IGKC", lt),
        ]:
            bc = f"AAAC{i:04d}-1"
            if i < 4:  # Cell Ranger contig table: gene names, cdr3 with C and W
                csv_rows.append(
                    {
                        "barcode": bc,
                        "is_cell": True,
                        "contig_id": f"{bc}_{locus}",
                        "high_confidence": True,
                        "chain": locus,
                        "v_gene": v,
                        "d_gene": "None",
                        "j_gene": j,
                        "c_gene": c,
                        "full_length": True,
                        "productive": True,
                        "cdr3": translate(junc),
                        "cdr3_nt": junc,
                        "reads": 500,
                        "umis": 10,
                    }
                )
            else:  # IgBLAST AIRR: allele calls, ambiguous, duplicated / near-identical genes
                vcall = {"IGH": "IGHV3-33*01,IGHV3-30-3*01", "IGK": "IGKV1D-39*01"}[locus]
                airr_rows.append(
                    {
                        "cell_id": bc,
                        "sequence_id": f"{bc}_{locus}",
                        "locus": locus,
                        "productive": "T",
                        "v_call": vcall,
                        "j_call": j + "*01",
                        "c_call": c,
                        "junction": junc,
                        "junction_aa": translate(junc),
                        "umi_count": 10,
                    }
                )
    pd.DataFrame(csv_rows).to_csv(tmp_path / "contigs.csv", index=False)
    pd.DataFrame(airr_rows).to_csv(tmp_path / "airr.tsv", sep="\t", index=False)
    parts = [
        read_bcr(tmp_path / "contigs.csv", sample="base", cells_only=True, productive_only=True),
        read_bcr(tmp_path / "airr.tsv", sample="m6", cells_only=True, productive_only=True),
    ]
    airr = merge_bcr(parts)
    airr.obs["patient"] = "P1"
    index_chains(airr, productive_only=True)
    define_clones(airr)
    assert airr.obs["clone_id"].notna().all() and airr.obs["clone_id"].nunique() == 1
