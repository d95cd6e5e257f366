"""V(D)J chain fields and their values, whatever the input format: missing values, booleans,
gene calls and loci, junction translation, the one awkward type per field, and the V-region
mutation frequency (SHazaM's ``mu_freq``).

:mod:`cartrack.bcr` uses these to clean the chains it reads (its module docstring gives the
order); :mod:`cartrack.clones` and :mod:`cartrack.checks` use the same value rules.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

#: V(D)J file formats (:func:`cartrack.bcr.detect_format`).
Format = Literal["10x_csv", "10x_json", "airr"]

#: Loci of B-cell receptors (IMGT names) and of the T-cell receptor chains that get dropped.
IG_LOCI = ("IGH", "IGK", "IGL")
TR_LOCI = ("TRA", "TRB", "TRG", "TRD")
#: Strings that mean "missing" in V(D)J tables (R writes NA, Cell Ranger writes None).
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan", "None", "none", "NULL", "null")
_TRUE = {"true", "t", "1"}
_FALSE = {"false", "f", "0"}
#: Gene-call fields: the gene of the first call is kept, the input call in `<field>_raw`.
CALL_FIELDS = ("v_call", "d_call", "j_call", "c_call")
#: Fields every sample carries, even an empty one (AIRR required fields plus what we use).
CORE_FIELDS = (
    "sequence_id",
    "sequence",
    "rev_comp",
    "productive",
    "locus",
    "v_call",
    "d_call",
    "j_call",
    "c_call",
    "v_call_raw",
    "d_call_raw",
    "j_call_raw",
    "c_call_raw",
    "sequence_alignment",
    "germline_alignment",
    "v_sequence_start",
    "v_sequence_end",
    "v_alignment_start",
    "v_alignment_end",
    "mu_freq",
    "junction",
    "junction_aa",
    "cdr3",
    "cdr3_aa",
    "v_cigar",
    "d_cigar",
    "j_cigar",
    "v_identity",
    "umi_count",
    "consensus_count",
    "duplicate_count",
    "is_cell",
    "high_confidence",
)
#: Non-AIRR fields with a known type (Cell Ranger cell calls).
_EXTRA_TYPES = {"is_cell": "bool", "high_confidence": "bool", "mu_freq": "float64"}
#: IMGT-gapped V region without CDR3 (FWR1-FWR3, positions 1-312; SHazaM's IMGT_V).
_IMGT_V_LENGTH = 312
_ANCHOR = 12
_AIRR_TYPES = {"boolean": "bool", "integer": "int64", "number": "float64", "string": "string"}
_10X_CSV_COLUMNS = ("barcode", "contig_id", "chain", "v_gene", "j_gene", "cdr3", "cdr3_nt")
_SUFFIXES = (
    "a Cell Ranger contig table (.csv[.gz]), all_contig_annotations.json or an AIRR .tsv[.gz]"
)
_CODONS = {
    a + b + c: aa
    for (a, b, c), aa in zip(
        ((a, b, c) for a in "TCAG" for b in "TCAG" for c in "TCAG"),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        strict=True,
    )
}


# --------------------------------------------------------------------------------------
# small value helpers
# --------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    """True for None, NaN and the missing-value strings of :data:`NA_STRINGS`."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in NA_STRINGS


def gene_name(call: Any) -> str | None:
    """Gene of the first call in a V/D/J/C call, allele removed.

    Parameters
    ----------
    call
        A gene call as written by Cell Ranger (``IGHV3-23``), IgBLAST/Change-O
        (``IGHV3-23*01,IGHV3-30*02``, novel ``IGHV3-9*01_T194C``) or IMGT
        (``Homsap IGHV1-2*02 F, or Homsap IGHV1-2*04 F``).

    Returns
    -------
    The gene (``IGHV3-23``), or None when the call is missing.
    """
    if is_missing(call):
        return None
    first = re.split(r",|\bor\b", str(call))[0].strip()
    tokens = first.split()
    if not tokens:
        return None
    token = next((t for t in tokens if t[:2].upper() in ("IG", "TR")), tokens[0])
    gene = token.split("*")[0].strip()
    return gene or None


def infer_locus(genes: Iterable[str | None]) -> str | None:
    """IMGT locus shared by all given gene names (``IGHV1-2``, ``IGHJ4`` -> ``IGH``), else None."""
    loci = {g[:3].upper() for g in genes if g}
    if len(loci) == 1:
        (locus,) = loci
        if locus in IG_LOCI + TR_LOCI:
            return locus
    return None


def translate(nt: str) -> str | None:
    """Translate a nucleotide junction (length a multiple of 3) to amino acids; else None."""
    nt = nt.upper()
    if len(nt) == 0 or len(nt) % 3:
        return None
    return "".join(_CODONS.get(nt[i : i + 3], "X") for i in range(0, len(nt), 3))


def field_type(name: str) -> str:
    """Awkward type of a chain field: the AIRR schema's type, ``string`` for unknown fields.

    One type per field name, whatever the input format, is what lets samples read from
    different formats be concatenated (scirpy infers types from the values, so ``is_cell``
    is a bool in a 10x table and a string in an AIRR table).
    """
    from airr import RearrangementSchema

    if name in _EXTRA_TYPES:
        return _EXTRA_TYPES[name]
    return _AIRR_TYPES.get(RearrangementSchema.type(name), "string")


def to_bool(value: Any) -> bool | None:
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _to_number(value: Any, kind: str) -> int | float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if np.isnan(number):
        return None
    return int(number) if kind == "int64" else number


def canonical(value: Any, kind: str) -> Any:
    """A value converted to the Python type of its field's awkward type (None if missing)."""
    if kind == "bool":
        return to_bool(value)
    if kind in ("int64", "float64"):
        return _to_number(value, kind)
    return None if is_missing(value) else str(value)


def _v_segment_offset(segment: str, germline: str) -> int | None:
    """Where an ungapped V segment lies on an ungapped germline: the offset most of its
    12-mers (every 6 nt) agree on, or None when fewer than two agree."""
    votes: dict[int, int] = {}
    for i in range(0, len(segment) - _ANCHOR + 1, _ANCHOR // 2):
        hit = germline.find(segment[i : i + _ANCHOR])
        if hit >= 0:
            votes[hit - i] = votes.get(hit - i, 0) + 1
    if not votes:
        return None
    offset, n = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))
    return offset if n >= 2 else None


def _mismatch_frequency(seq: str, germ: str) -> float | None:
    """Mismatches / positions where both are A, C, G or T (gaps, N and masks not counted)."""
    s = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)
    g = np.frombuffer(germ.upper().encode("ascii"), dtype=np.uint8)
    n = min(len(s), len(g))
    s, g = s[:n], g[:n]
    acgt = np.frombuffer(b"ACGT", dtype=np.uint8)
    informative = np.isin(s, acgt) & np.isin(g, acgt)
    if not informative.any():
        return None
    return float((s[informative] != g[informative]).sum() / informative.sum())


def mu_freq(chain: Mapping[str, Any]) -> float | None:
    """V-region somatic mutation frequency of one chain (SHazaM's ``mu_freq``).

    As SHazaM ``observedMutations(sequenceColumn="sequence_alignment",
    germlineColumn="germline_alignment", regionDefinition=IMGT_V, frequency=TRUE,
    combine=TRUE)``: mismatches over the positions where both sequence and germline have a
    base (gaps, ``N`` and masked positions do not count), in the V region, found as

    1. ``v_alignment_start``..``v_alignment_end`` (AIRR alignment coordinates) when the two
       alignments have equal length (IgBLAST/Change-O);
    2. else, for equal-length IMGT-gapped alignments (``.`` gaps), positions 1-312;
    3. else (Cell Ranger's ``airr_rearrangement.tsv``, whose ``germline_alignment`` is the
       concatenated reference segments and not position-aligned to the contig) the contig's
       ``v_sequence_start``..``v_sequence_end`` placed on the germline at the offset its
       12-mers agree on (an indel inside V is not modelled there).

    Coordinates are those scirpy hands on: its AIRR reader (the ``airr`` library) turns the
    1-based ``*_start`` fields into 0-based ones, so ``[start:end]`` is the segment.

    Returns None when the chain has no alignment or none of these applies.
    """
    seq, germ = chain.get("sequence_alignment"), chain.get("germline_alignment")
    if is_missing(seq) or is_missing(germ):
        return None
    seq, germ = str(seq), str(germ)
    start, end = chain.get("v_alignment_start"), chain.get("v_alignment_end")
    if len(seq) == len(germ):
        if not is_missing(start) and not is_missing(end):
            a, b = int(start), int(end)
            return _mismatch_frequency(seq[a:b], germ[a:b])
        if "." in seq or "." in germ:
            return _mismatch_frequency(seq[:_IMGT_V_LENGTH], germ[:_IMGT_V_LENGTH])
    start, end = chain.get("v_sequence_start"), chain.get("v_sequence_end")
    if is_missing(start) or is_missing(end):
        return None
    contig = chain.get("sequence")
    contig = str(seq if is_missing(contig) else contig).replace("-", "").replace(".", "")
    segment = contig[int(start) : int(end)].upper()
    germline = germ.replace("-", "").replace(".", "").upper()
    offset = _v_segment_offset(segment, germline)
    if offset is None or offset < 0:
        return None
    return _mismatch_frequency(segment, germline[offset : offset + len(segment)])


def record_type(fields: Iterable[str]) -> str:
    """Awkward type string of a cell's list of chains with the given fields."""
    inner = ", ".join(f"{json.dumps(f)}: ?{field_type(f)}" for f in sorted(set(fields)))
    return f"var * {{{inner}}}"
