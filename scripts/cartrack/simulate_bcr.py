"""BCR side of the demo simulator: V(D)J recombination from real germline segments,
somatic hypermutation along a lineage tree per clone, and contig records.

Recombination follows the usual generative model (as in OLGA / IGoR, whose human model
files supply the germline segments in ``resources/germline``): choose V, (D,) J alleles;
trim 0-7 nt from the V 3' end, D ends and J 5' end (never into the conserved Cys / Trp-Phe
codons); add N nucleotides (Poisson, mean 4 at each heavy junction, 1.5 in light chains);
keep in-frame, stop-free rearrangements whose junction runs C ... W/F. Unrelated junctions
thus share germline-encoded ends. SHM substitutes bases uniformly over the V region and
the junction (conserved codons kept, no stop codons); a clone grows as a tree (:class:`Lineage`):
each new cell follows the branches of earlier cells down to its own mutation load, so
relatives share the mutations of their common ancestors.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

GERMLINE = Path(__file__).resolve().parents[2] / "resources" / "germline" / "human_ig_segments.tsv"
# V-region SHM frequency ranges by cell type (issue 10: naive 0-2 %, memory 3-10 %,
# plasmablast / plasma cell 5-15 %); atypical B cells as memory.
SHM_RANGE = {
    "B_naive": (0.0, 0.02),
    "B_transitional": (0.0, 0.01),
    "B_memory": (0.03, 0.10),
    "B_atypical": (0.03, 0.10),
    "plasmablast": (0.05, 0.15),
    "plasma_cell": (0.05, 0.15),
}
# Genes an aligner cannot tell apart: near-identical (IGHV3-30 / IGHV3-33) or identical
# duplicated copies (IGKV1-39 / IGKV1D-39). Calls list both, or name either one.
AMBIGUOUS = {
    "IGHV3-30*03": ("IGHV3-30*03", "IGHV3-33*01"),
    "IGHV3-33*01": ("IGHV3-30*03", "IGHV3-33*01"),
    "IGKV1-39*01": ("IGKV1-39*01", "IGKV1D-39*01"),
}
N_MEAN = {"IGH": 4.0, "IGK": 1.5, "IGL": 1.5}
STOPS = {"TAA", "TAG", "TGA"}
CODE = {
    a + b + c: "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"[
        "TCAG".index(a) * 16 + "TCAG".index(b) * 4 + "TCAG".index(c)
    ]
    for a in "TCAG"
    for b in "TCAG"
    for c in "TCAG"
}
SYNONYMS = {aa: [c for c, a in CODE.items() if a == aa] for aa in set(CODE.values())}


def translate(nt: str) -> str:
    return "".join(CODE.get(nt[i : i + 3], "X") for i in range(0, len(nt) - len(nt) % 3, 3))


@dataclass(frozen=True)
class Segment:
    locus: str
    kind: str  # V, D or J
    allele: str
    anchor: int  # start of the conserved codon (V: Cys, J: Trp/Phe); -1 for D
    sequence: str

    @property
    def gene(self) -> str:
        return self.allele.split("*")[0]


def load_germline(path: Path = GERMLINE) -> dict[tuple[str, str], list[Segment]]:
    """Germline alleles by (locus, V/D/J)."""
    table = pd.read_csv(path, sep="\t", keep_default_na=False)
    out: dict[tuple[str, str], list[Segment]] = {}
    for r in table.itertuples():
        if r.allele == "IGKV1D-39*01" or "/OR" in r.allele:  # alias; orphons never used
            continue
        anchor = int(r.cdr3_anchor) if str(r.cdr3_anchor) else -1
        out.setdefault((r.locus, r.segment), []).append(
            Segment(r.locus, r.segment, r.allele, anchor, r.sequence)
        )
    return out


def novel_allele(segment: Segment, rng: np.random.Generator) -> Segment:
    """A patient's undocumented allele: one substitution in the V gene (outside the CDR3),
    named as TIgGER does (``IGHV3-23*01_A85G``, 1-based position)."""
    while True:
        pos = int(rng.integers(30, segment.anchor - 30))
        new = str(rng.choice([b for b in "ACGT" if b != segment.sequence[pos]]))
        seq = segment.sequence[:pos] + new + segment.sequence[pos + 1 :]
        if "*" not in translate(seq):
            name = f"{segment.allele}_{segment.sequence[pos]}{pos + 1}{new}"
            return replace(segment, allele=name, sequence=seq)


@dataclass(frozen=True)
class Rearrangement:
    """One V(D)J sequence (V start to J end) and its germline (N additions as ``N``)."""

    locus: str
    v: Segment
    d: Segment | None
    j: Segment
    sequence: str
    germline: str
    v_end: int  # exclusive end of the V part
    d_start: int  # -1 without D
    d_end: int
    j_start: int
    junction_start: int
    junction_end: int

    @property
    def junction(self) -> str:
        return self.sequence[self.junction_start : self.junction_end]

    @property
    def junction_aa(self) -> str:
        return translate(self.junction)

    def v_mismatches(self) -> int:
        return sum(a != b for a, b in zip(self.sequence[: self.v_end], self.germline, strict=False))

    @property
    def mu_freq(self) -> float:
        """V-region SHM frequency: mismatches to germline over the V part's length."""
        return self.v_mismatches() / self.v_end


def _trim(rng: np.random.Generator) -> int:
    return int(min(rng.geometric(0.35) - 1, 7))


def recombine(
    rng: np.random.Generator, germline: dict, locus: str, v: Segment | None = None
) -> Rearrangement:
    """A productive rearrangement of `locus` (optionally with a given V allele)."""
    while True:
        vs = v or germline[locus, "V"][int(rng.integers(len(germline[locus, "V"])))]
        js = germline[locus, "J"][int(rng.integers(len(germline[locus, "J"])))]
        v_seq = vs.sequence[: max(len(vs.sequence) - _trim(rng), vs.anchor + 3)]
        j_cut = min(_trim(rng), js.anchor)
        j_seq = js.sequence[j_cut:]
        n1 = "".join(rng.choice(list("ACGT"), size=rng.poisson(N_MEAN[locus])))
        d_seq, n2, ds = "", "", None
        if locus == "IGH":
            ds = germline["IGH", "D"][int(rng.integers(len(germline["IGH", "D"])))]
            a, b = _trim(rng), _trim(rng)
            d_seq = ds.sequence[a : max(len(ds.sequence) - b, a + 3)]
            n2 = "".join(rng.choice(list("ACGT"), size=rng.poisson(N_MEAN[locus])))
        seq = v_seq + n1 + d_seq + n2 + j_seq
        germ = v_seq + "N" * len(n1) + d_seq + "N" * len(n2) + j_seq
        j_start = len(seq) - len(j_seq)
        junction_end = j_start + js.anchor - j_cut + 3
        if (junction_end - vs.anchor) % 3 or "*" in translate(seq[vs.anchor % 3 :]):
            continue
        d_start = len(v_seq) + len(n1) if ds else -1
        r = Rearrangement(
            locus, vs, ds, js, seq, germ, len(v_seq), d_start,
            d_start + len(d_seq) if ds else -1, j_start, vs.anchor, junction_end,
        )  # fmt: skip
        aa = r.junction_aa
        if aa[0] == "C" and aa[-1] in "WF" and len(aa) >= 7:
            return r


def mutate(rng: np.random.Generator, r: Rearrangement, n: int) -> Rearrangement:
    """`n` substitutions over the V region and junction, keeping the conserved codons and
    the reading frame free of stop codons."""
    seq = list(r.sequence)
    conserved = set(range(r.junction_start, r.junction_start + 3)) | set(
        range(r.junction_end - 3, r.junction_end)
    )
    frame = r.v.anchor % 3
    done = tries = 0
    while done < n and tries < 20 * n + 20:
        tries += 1
        pos = int(rng.integers(0, r.junction_end))
        if pos in conserved:
            continue
        old = seq[pos]
        seq[pos] = str(rng.choice([b for b in "ACGT" if b != old]))
        start = pos - (pos - frame) % 3
        if "".join(seq[start : start + 3]) in STOPS:
            seq[pos] = old
            continue
        done += 1
    return replace(r, sequence="".join(seq))


def recode_junction(rng: np.random.Generator, r: Rearrangement) -> Rearrangement:
    """Same junction amino acids from other codons (a convergent, unrelated junction)."""
    inner = range(r.junction_start + 3, r.junction_end - 3, 3)
    seq = list(r.sequence)
    for i in inner:
        codon = "".join(seq[i : i + 3])
        options = [c for c in SYNONYMS[CODE[codon]] if c != codon] or [codon]
        seq[i : i + 3] = str(rng.choice(options))
    germ = list(r.germline)
    for i in range(r.junction_start + 3, r.junction_end - 3):
        germ[i] = "N" if seq[i] != r.sequence[i] else germ[i]
    return replace(r, sequence="".join(seq), germline="".join(germ))


class Lineage:
    """A clone's tree (a germinal-centre genealogy): the founder, recorded ancestors every
    few mutations, and the sampled cells as leaves.

    Each cell gets a mutation load from its type's range (:data:`SHM_RANGE`) and reaches it
    down the tree: from the founder it follows existing branches (chosen in proportion to
    the cells already below them; a new branch with weight :attr:`NEW_BRANCH`, as in a
    Chinese-restaurant process) while their ancestors carry no more mutations than it will,
    then extends its own branch through new ancestors (:attr:`STEP` mutations apart on
    average) and adds a few private mutations (Poisson, mean :attr:`PRIVATE`). Cells of one
    clone thus share the mutations of their common ancestors, as clonally related B cells
    do, and differ by those acquired after their branches split (a star tree, every cell
    mutated independently from the founder, makes two plasma cells differ by the sum of
    their loads, about 0.2 of the junction).
    """

    STEP = 5.0
    NEW_BRANCH = 0.05
    PRIVATE = 1.5

    def __init__(self, rng: np.random.Generator, root: Rearrangement):
        self.rng = rng
        self.nodes = [root]
        self._load = [root.v_mismatches()]
        self._children: list[list[int]] = [[]]
        self._cells = [0]  # sampled cells below each node

    def _add(self, parent: int, n: int) -> int:
        self.nodes.append(mutate(self.rng, self.nodes[parent], n))
        self._load.append(self.nodes[-1].v_mismatches())
        self._children.append([])
        self._cells.append(0)
        self._children[parent].append(len(self.nodes) - 1)
        return len(self.nodes) - 1

    def draw(self, cell_type: str) -> Rearrangement:
        rng = self.rng
        lo, hi = SHM_RANGE[cell_type]
        target = int(round(rng.uniform(lo, hi) * self.nodes[0].v_end))
        private = int(rng.poisson(self.PRIVATE))
        limit = target - private
        node, path = 0, [0]
        while True:  # down existing branches
            kids = [k for k in self._children[node] if self._load[k] <= limit]
            weights = np.array([self._cells[k] for k in kids] + [self.NEW_BRANCH], dtype=float)
            pick = int(rng.choice(len(weights), p=weights / weights.sum()))
            if pick == len(kids):
                break
            node = kids[pick]
            path.append(node)
        for _ in range(200):  # its own branch: new ancestors up to its load
            if self._load[node] >= limit:
                break
            step = min(1 + int(rng.poisson(self.STEP - 1)), limit - self._load[node])
            node = self._add(node, step)
            path.append(node)
        for k in path:
            self._cells[k] += 1
        return mutate(rng, self.nodes[node], max(target - self._load[node], private))


def call(segment: Segment, rng: np.random.Generator, *, allele_level: bool) -> str:
    """The gene call an annotator writes: AIRR (IgBLAST-like) files list alleles and
    ambiguous calls; Cell Ranger CSVs one allele-free gene."""
    options = AMBIGUOUS.get(segment.allele)
    if options is None:
        return segment.allele if allele_level else segment.gene
    if allele_level:
        u = rng.random()
        return ",".join(options) if u < 0.5 else options[int(u < 0.75)]
    return str(rng.choice(options)).split("*")[0]


AIRR_COLUMNS = [
    "cell_id", "sequence_id", "sequence", "locus", "productive", "rev_comp", "v_call",
    "d_call", "j_call", "c_call", "sequence_alignment", "germline_alignment", "junction",
    "junction_aa", "junction_length", "v_sequence_start", "v_sequence_end",
    "v_germline_start", "v_germline_end", "d_sequence_start", "d_sequence_end",
    "j_sequence_start", "j_sequence_end", "v_identity", "umi_count", "consensus_count",
]  # fmt: skip


def airr_record(
    r: Rearrangement, rng, *, cell_id: str, contig_id: str, c_call: str, umis: int
) -> dict:
    """One AIRR rearrangement row with alignments and 1-based segment coordinates."""
    v_identity = 1 - r.v_mismatches() / r.v_end
    d = r.d is not None
    return {
        "cell_id": cell_id,
        "sequence_id": contig_id,
        "sequence": r.sequence,
        "locus": r.locus,
        "productive": "T",
        "rev_comp": "F",
        "v_call": call(r.v, rng, allele_level=True),
        "d_call": r.d.allele if d else "",
        "j_call": r.j.allele,
        "c_call": c_call,
        "sequence_alignment": r.sequence,
        "germline_alignment": r.germline,
        "junction": r.junction,
        "junction_aa": r.junction_aa,
        "junction_length": len(r.junction),
        "v_sequence_start": 1,
        "v_sequence_end": r.v_end,
        "v_germline_start": 1,
        "v_germline_end": r.v_end,
        "d_sequence_start": r.d_start + 1 if d else "",
        "d_sequence_end": r.d_end if d else "",
        "j_sequence_start": r.j_start + 1,
        "j_sequence_end": len(r.sequence),
        "v_identity": round(v_identity, 4),
        "umi_count": umis,
        "consensus_count": umis * 40,
    }


def tenx_record(
    r: Rearrangement, rng, *, barcode: str, contig_id: str, c_gene: str, umis: int
) -> dict:
    """One filtered_contig_annotations.csv row (Cell Ranger 3-5 classic columns)."""
    return {
        "barcode": barcode,
        "is_cell": "True",
        "contig_id": contig_id,
        "high_confidence": "True",
        "length": len(r.sequence) + 120,
        "chain": r.locus,
        "v_gene": call(r.v, rng, allele_level=False),
        "d_gene": r.d.gene if r.d is not None else "None",
        "j_gene": r.j.gene,
        "c_gene": c_gene or "None",
        "full_length": "True",
        "productive": "True",
        "cdr3": r.junction_aa,
        "cdr3_nt": r.junction,
        "reads": umis * 40,
        "umis": umis,
        "raw_clonotype_id": "",
        "raw_consensus_id": "",
    }
