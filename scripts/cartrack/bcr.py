"""B-cell receptor (V(D)J) ingest: one sample's file to scirpy's AnnData layout, and merging.

Accepted inputs (the sample sheet's ``bcr`` column), told apart by file name:

- ``*.csv`` / ``*.csv.gz``: a Cell Ranger contig table (``filtered_contig_annotations.csv``,
  ``all_contig_annotations.csv``), read with :func:`scirpy.io.read_10x_vdj`;
- ``*.json``: Cell Ranger ``all_contig_annotations.json``, read with
  :func:`scirpy.io.read_10x_vdj`;
- ``*.tsv`` / ``*.tsv.gz``: an AIRR rearrangement table with a ``cell_id`` column (Cell
  Ranger's ``airr_rearrangement.tsv``, IgBLAST/Change-O, dandelion), read with
  :func:`scirpy.io.read_airr`. Bulk AIRR files (no ``cell_id``) are refused.

Every sample comes out with the same layout, whatever its format: ``obsm["airr"]`` holds the
chains of each cell with one fixed type per field (see :func:`field_type`), so samples in
different formats concatenate into one awkward array that :func:`scirpy.pp.index_chains` can
slice. Cleaning, in this order:

1. A ``sample`` column (immunarch-style tables of several lanes) selects the rows of the
   sheet's sample; a file with several samples of which none is the sheet's is refused,
   because their barcodes can collide.
2. Missing-value strings written by R and others (``NA``, ``N/A``, ``None``, ``nan``, empty)
   become missing; booleans (``T``/``TRUE``/``True``/...) become booleans.
3. Gene calls: ``v_call``, ``d_call``, ``j_call`` and ``c_call`` keep the gene of the *first*
   call with the allele stripped (``IGHV3-23*01,IGHV3-30*02`` -> ``IGHV3-23``,
   ``IGHV3-9*01_T194C`` -> ``IGHV3-9``, ``Homsap IGHV1-2*02 F`` -> ``IGHV1-2``). The first call
   is the aligner's best hit; taking it keeps every chain usable for clone calling at the cost
   of occasionally splitting a clone whose members got different best hits among tied genes.
   The input calls are kept in ``v_call_raw`` etc.
4. ``locus`` missing or not an IMGT locus (Cell Ranger's ``Multi`` / ``None``) is inferred
   from the gene calls when all of them agree (``IGHV..``/``IGHJ..`` -> ``IGH``), else the
   chain has no locus and is dropped.
5. ``junction_aa`` missing while ``junction`` is present is translated; ``cdr3``/``cdr3_aa``
   are derived from the junction when missing; ``mu_freq`` (V-region mutation frequency,
   :func:`mu_freq`) is computed from ``sequence_alignment`` / ``germline_alignment`` where
   the input has them (IgBLAST, Cell Ranger AIRR files), else left missing.
6. Contigs outside cells (``is_cell``/``high_confidence`` false) and non-productive contigs
   are dropped when configured; chains of other loci (by default the T-cell receptor; the
   ``loci`` argument of :func:`read_bcr`, which :mod:`cartrack.tcr` uses for TCRs) and chains
   without a locus are always dropped. What was dropped is counted in ``uns["bcr_ingest"]``.

Cells are named with :func:`cartrack.io.cell_names` (``f"{sample}_{barcode}"``), exactly as
the gene-expression cells, so equal barcodes of different samples never merge.
"""

import csv
import gzip
import json
import logging
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import awkward as ak
import numpy as np
import pandas as pd

from cartrack.design import InputError
from cartrack.io import cell_names

log = logging.getLogger(__name__)

Format = Literal["10x_csv", "10x_json", "airr"]

#: Loci of B-cell receptors (IMGT names) and of the T-cell receptor chains that get dropped.
IG_LOCI = ("IGH", "IGK", "IGL")
TR_LOCI = ("TRA", "TRB", "TRG", "TRD")
#: Strings that mean "missing" in V(D)J tables (R writes NA, Cell Ranger writes None).
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan", "None", "none", "NULL", "null")
_TRUE = {"true", "t", "1"}
_FALSE = {"false", "f", "0"}
_CALL_FIELDS = ("v_call", "d_call", "j_call", "c_call")
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
def _is_missing(value: Any) -> bool:
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
    if _is_missing(call):
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


def _to_bool(value: Any) -> bool | None:
    if _is_missing(value):
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
    if _is_missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if np.isnan(number):
        return None
    return int(number) if kind == "int64" else number


def _canonical(value: Any, kind: str) -> Any:
    """A value converted to the Python type of its field's awkward type (None if missing)."""
    if kind == "bool":
        return _to_bool(value)
    if kind in ("int64", "float64"):
        return _to_number(value, kind)
    return None if _is_missing(value) else str(value)


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
    if _is_missing(seq) or _is_missing(germ):
        return None
    seq, germ = str(seq), str(germ)
    start, end = chain.get("v_alignment_start"), chain.get("v_alignment_end")
    if len(seq) == len(germ):
        if not _is_missing(start) and not _is_missing(end):
            a, b = int(start), int(end)
            return _mismatch_frequency(seq[a:b], germ[a:b])
        if "." in seq or "." in germ:
            return _mismatch_frequency(seq[:_IMGT_V_LENGTH], germ[:_IMGT_V_LENGTH])
    start, end = chain.get("v_sequence_start"), chain.get("v_sequence_end")
    if _is_missing(start) or _is_missing(end):
        return None
    contig = chain.get("sequence")
    contig = str(seq if _is_missing(contig) else contig).replace("-", "").replace(".", "")
    segment = contig[int(start) : int(end)].upper()
    germline = germ.replace("-", "").replace(".", "").upper()
    offset = _v_segment_offset(segment, germline)
    if offset is None or offset < 0:
        return None
    return _mismatch_frequency(segment, germline[offset : offset + len(segment)])


def _record_type(fields: Iterable[str]) -> str:
    """Awkward type string of a cell's list of chains with the given fields."""
    inner = ", ".join(f"{json.dumps(f)}: ?{field_type(f)}" for f in sorted(set(fields)))
    return f"var * {{{inner}}}"


# --------------------------------------------------------------------------------------
# --- scirpy workarounds ---
# Each helper below works around one scirpy (0.22) behaviour; the reason is on its first line.
# The last two served the scirpy-based clone calling that clones.py replaced (issue 11); only
# benchmarks/bench_clones.py (which times the old code) still uses them.
# --------------------------------------------------------------------------------------
def _read_airr_table(path: Path) -> pd.DataFrame:
    """read_airr keeps R's "NA" strings (so locus inference fails): pre-read with pandas."""
    return pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        na_values=list(NA_STRINGS),
        compression="infer",
    )


def _scirpy_read(
    path: Path, fmt: Format, table: pd.DataFrame, *, subset: bool
) -> ad.AnnData | None:
    """scirpy readers crash on inputs without cells (KeyError 'cell_id'): return None then."""
    import scirpy as ir

    if len(table) == 0:
        return None
    if fmt == "airr":
        # a data frame, not the path: NA strings already removed (see _read_airr_table);
        # its locus inference needs every *_call column (KeyError 'c_call' otherwise)
        table = table.reindex(columns=[*table.columns, *(set(_CALL_FIELDS) - set(table.columns))])
        return ir.io.read_airr(table.fillna(""))
    if subset:
        # read_10x_vdj only reads a path; the table was subset to one sample's rows
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "contigs.csv"
            table.to_csv(staged, index=False)
            return ir.io.read_10x_vdj(staged, filtered=False)
    # filtered=False: cell/confidence filtering is ours, so it is counted and configurable
    return ir.io.read_10x_vdj(path, filtered=False)


def _airr_array(adata: ad.AnnData, key: str = "airr") -> ak.Array:
    """anndata.concat turns awkward *views* into union types: always hand on a real copy."""
    arr = adata.obsm[key]
    return ak.Array(arr.layout) if adata.is_view else arr


def _exclude_missing_genes(cells: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """ClonotypeNeighbors compares missing genes as the string "nan" (so they match): mask."""
    return cells[list(columns)].notna().all(axis=1)


def _clonotype_clusters(adata: ad.AnnData, *, key_added: str, **kwargs) -> pd.Series:
    """define_clonotype_clusters raises ValueError on data without cells: return empty then."""
    import scirpy as ir

    if adata.n_obs == 0:
        return pd.Series(index=adata.obs_names, dtype=object)
    ir.tl.define_clonotype_clusters(adata, key_added=key_added, **kwargs)
    return adata.obs[key_added].astype(object)


# Not code, but scirpy behaviour the design relies on:
# - read_10x_vdj/read_airr pass cell_attribute_fields=("is_cell") (a string, not a tuple), so
#   is_cell stays a chain field typed by its values (bool or str): field_type() fixes types.
# - define_clonotype_clusters(receptor_arms="all") only links cells with the same number of
#   arms, so heavy-only cells never join paired ones; same_v_gene compares V calls as exact
#   strings. clones.py therefore defines clones itself (heavy chains first, then light).


# --------------------------------------------------------------------------------------
# reading one sample
# --------------------------------------------------------------------------------------
def detect_format(path: str | Path) -> Format:
    """V(D)J file format from the file name.

    Parameters
    ----------
    path
        The sheet's ``bcr`` entry.

    Returns
    -------
    ``"10x_csv"``, ``"10x_json"`` or ``"airr"``.
    """
    name = Path(path).name.lower()
    if name.endswith(".json"):
        return "10x_json"
    if name.endswith((".csv", ".csv.gz")):
        return "10x_csv"
    if name.endswith((".tsv", ".tsv.gz")):
        return "airr"
    raise InputError(f"BCR file {path}: unknown format; expected {_SUFFIXES}")


def _select_sample(table: pd.DataFrame, *, sample: str, path: Path) -> pd.DataFrame:
    """Rows of one sample when the table has a ``sample`` column naming several."""
    if "sample" not in table.columns:
        return table
    names = table["sample"].dropna().astype(str).unique()
    if len(names) <= 1:
        return table
    if sample in names:
        rows = table.loc[table["sample"].astype(str) == sample]
        log.info("%s: keeping the %d rows of sample %s (column `sample`)", path, len(rows), sample)
        return rows
    shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    raise InputError(
        f"BCR file {path} holds {len(names)} samples in its column `sample` ({shown}) and "
        f"none is the sheet's sample {sample!r}. Their barcodes can collide, so they cannot be "
        "read as one sample: split the file per sample, or name the sheet rows after the "
        "values of `sample` (each row then reads its own rows of the file)."
    )


def _check_complete(table: pd.DataFrame, path: Path) -> None:
    """Ingest checks: a comma-separated Cell Ranger table named ``.tsv`` (it reads as one
    AIRR column), and a table cut off mid-row (pandas fills the missing fields with NaN)."""
    if len(table.columns) == 1 and set(_10X_CSV_COLUMNS) <= set(str(table.columns[0]).split(",")):
        raise InputError(
            f"BCR file {path}: a comma-separated Cell Ranger contig table named .tsv (AIRR "
            "tables are tab-separated): rename it to .csv"
        )
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    sep = "\t" if len(table.columns) > 1 and "\t" in lines[0] else ","
    if len(lines) > 1:
        n_fields = len(next(csv.reader([lines[-1]], delimiter=sep)))
        if n_fields < len(table.columns):
            raise InputError(
                f"BCR file {path}: its last line ({len(lines)}) has {n_fields} of "
                f"{len(table.columns)} fields: the file is cut off; copy it again"
            )


def _pre_read(
    path: Path, fmt: Format, *, sample: str, productive_only: bool
) -> tuple[pd.DataFrame, bool]:
    """Check a file's structure before scirpy reads it.

    Returns the table (for JSON only its length matters) and whether rows of other samples
    were removed from it.
    """
    if fmt == "10x_json":
        try:
            with open(path) as fh:
                contigs = json.load(fh)
        except (OSError, ValueError) as err:
            raise InputError(f"BCR file {path}: not readable as JSON ({err})") from err
        if not isinstance(contigs, list) or any(
            not isinstance(c, dict) or "barcode" not in c for c in contigs
        ):
            raise InputError(
                f"BCR file {path}: expected Cell Ranger all_contig_annotations.json "
                "(a list of contig records with a `barcode`)"
            )
        return pd.DataFrame(index=range(len(contigs))), False
    try:
        if fmt == "10x_csv":
            table = pd.read_csv(path, compression="infer")
        else:
            table = _read_airr_table(path)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as err:
        raise InputError(f"BCR file {path}: not readable ({err})") from err
    _check_complete(table, path)
    if fmt == "10x_csv":
        missing = [c for c in _10X_CSV_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(
                f"BCR file {path}: not a Cell Ranger contig table, missing columns "
                f"{', '.join(missing)}"
            )
    else:
        if "cell_id" not in table.columns:
            raise InputError(
                f"BCR file {path}: AIRR table without a `cell_id` column. Bulk (not single-cell) "
                "rearrangements cannot be assigned to cells; give single-cell data (e.g. Cell "
                "Ranger's airr_rearrangement.tsv) or add `cell_id`."
            )
        if "junction" not in table.columns and "junction_aa" not in table.columns:
            raise InputError(f"BCR file {path}: AIRR table without `junction` or `junction_aa`")
        if "productive" in table.columns:
            bad = sorted({v for v in table["productive"].dropna().unique() if _to_bool(v) is None})
            if bad:
                raise InputError(
                    f"BCR file {path}: column `productive` must be T/F/TRUE/FALSE, found "
                    f"{', '.join(map(repr, bad[:5]))}"
                )
        elif productive_only:
            raise InputError(
                f"BCR file {path}: no `productive` column, so non-productive chains cannot be "
                "dropped; set bcr.productive_only: false to keep all chains"
            )
        if table["cell_id"].isna().any():
            raise InputError(f"BCR file {path}: {table['cell_id'].isna().sum()} rows lack cell_id")
    selected = _select_sample(table, sample=sample, path=path)
    return selected, len(selected) < len(table)


def _chains_of(adata: ad.AnnData) -> pd.DataFrame:
    """One row per chain of a scirpy AnnData, with the cell's barcode in ``barcode``."""
    records = []
    for barcode, chains in zip(adata.obs_names, ak.to_list(_airr_array(adata)), strict=True):
        for chain in chains:
            records.append({**chain, "barcode": str(barcode)})
    return pd.DataFrame.from_records(records)


def _clean_chain(chain: dict) -> dict:
    """Canonical values, gene names, locus and junctions of one chain (see module doc)."""
    out = {}
    for key, value in chain.items():
        out[key] = _canonical(value, field_type(key))
    for field in _CALL_FIELDS:
        out[f"{field}_raw"] = out.get(field)
        out[field] = gene_name(out.get(field))
    if out.get("locus") not in IG_LOCI + TR_LOCI:
        out["locus"] = infer_locus(out[f] for f in _CALL_FIELDS)
    if out.get("junction_aa") is None and out.get("junction"):
        out["junction_aa"] = translate(out["junction"])
    junction_aa, junction = out.get("junction_aa"), out.get("junction")
    if (
        out.get("cdr3_aa") is None
        and junction_aa
        and junction_aa[0] == "C"
        and len(junction_aa) > 2
    ):
        out["cdr3_aa"] = junction_aa[1:-1]
    if out.get("cdr3") is None and junction and len(junction) > 6:
        out["cdr3"] = junction[3:-3]
    if out.get("mu_freq") is None:
        out["mu_freq"] = mu_freq(out)
    return out


def clean_chains(chains: pd.DataFrame) -> pd.DataFrame:
    """Clean a chain table (one row per chain): steps 2-5 of the module docstring.

    Parameters
    ----------
    chains
        One row per chain with AIRR field names and a ``barcode`` column.

    Returns
    -------
    A new table with canonical values, gene names (input calls in ``*_call_raw``), inferred
    loci, translated junctions and derived CDR3s; nothing is dropped here.
    """
    cleaned = pd.DataFrame.from_records([_clean_chain(c) for c in chains.to_dict("records")])
    if len(cleaned) == 0:
        cleaned = pd.DataFrame(columns=["barcode", *CORE_FIELDS])
    return cleaned


def _empty_airr(sample: str, stats: dict) -> ad.AnnData:
    """A sample without B-cell receptors (B-cell aplasia, TCR-only or empty file)."""
    arr = ak.enforce_type(ak.Array([[]])[:0], _record_type(CORE_FIELDS))
    obs = pd.DataFrame({"sample": pd.Series(dtype=str), "barcode": pd.Series(dtype=str)})
    obs.index = pd.Index([], dtype=str)
    return ad.AnnData(obs=obs, obsm={"airr": arr}, uns={"bcr_ingest": stats})


def build_airr(chains: pd.DataFrame, *, sample: str, uns: dict | None = None) -> ad.AnnData:
    """Scirpy AnnData from a chain table (one row per chain, column ``barcode``).

    Parameters
    ----------
    chains
        Cleaned chains; every column except ``barcode`` becomes a chain field with the type
        of :func:`field_type`, plus the fields of :data:`CORE_FIELDS`.
    sample
        Sample id: ``obs["sample"]`` and the prefix of the cell names.
    uns
        Stored as ``uns`` of the result.

    Returns
    -------
    AnnData with ``obs`` (``sample``, ``barcode``), ``obs_names`` from
    :func:`cartrack.io.cell_names` and the chains in ``obsm["airr"]``.
    """
    fields = sorted(set(CORE_FIELDS) | (set(chains.columns) - {"barcode"}))
    if len(chains) == 0:
        return _empty_airr(sample, uns or {})
    kinds = {f: field_type(f) for f in fields}
    barcodes = pd.unique(chains["barcode"])
    order = {b: i for i, b in enumerate(barcodes)}
    chains = chains.assign(_cell=chains["barcode"].map(order)).sort_values("_cell", kind="stable")
    per_cell: list[list[dict]] = [[] for _ in barcodes]
    columns = {f: chains[f].tolist() if f in chains.columns else None for f in fields}
    for row, cell in enumerate(chains["_cell"].to_numpy()):
        per_cell[cell].append(
            {
                f: (None if columns[f] is None else _canonical(columns[f][row], kinds[f]))
                for f in fields
            }
        )
    arr = ak.enforce_type(ak.from_iter(per_cell), _record_type(fields))
    obs = pd.DataFrame(
        {"sample": sample, "barcode": [str(b) for b in barcodes]},
        index=cell_names(sample, barcodes),
    )
    return ad.AnnData(obs=obs, obsm={"airr": arr}, uns={"bcr_ingest": dict(uns or {})})


def read_bcr(
    path: str | Path,
    *,
    sample: str,
    cells_only: bool = True,
    productive_only: bool = True,
    loci: Sequence[str] = IG_LOCI,
) -> ad.AnnData:
    """Read one sample's B-cell V(D)J file into scirpy's AnnData layout.

    Parameters
    ----------
    path
        ``filtered_contig_annotations.csv[.gz]``, ``all_contig_annotations.json`` or an AIRR
        rearrangement ``.tsv[.gz]`` with ``cell_id``.
    sample
        Sample id from the sheet (cell names are ``f"{sample}_{barcode}"``).
    cells_only
        Drop contigs that Cell Ranger did not assign to a cell or marked low-confidence
        (``is_cell`` / ``high_confidence`` false, where the input has these fields).
    productive_only
        Drop non-productive contigs (and those whose productivity is unknown).
    loci
        IMGT loci kept; chains of the other loci are dropped and counted. The default reads
        B-cell receptors; :func:`cartrack.tcr.read_tcr` passes :data:`TR_LOCI`.

    Returns
    -------
    AnnData with ``obs`` columns ``sample`` and ``barcode``, the IG chains of each cell in
    ``obsm["airr"]`` (fixed field types, see :func:`field_type`) and the counts of what was
    dropped in ``uns["bcr_ingest"]``. A file without B-cell chains gives zero cells (with a
    warning), not an error: a sample in B-cell aplasia may have none.

    Raises
    ------
    InputError
        Unknown format, unreadable file, AIRR table without ``cell_id`` (bulk data) or with
        invalid ``productive`` values, several samples in one file none of which is
        `sample`. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"BCR file {path} (sample {sample}) does not exist")
    fmt = detect_format(path)
    table, subset = _pre_read(path, fmt, sample=sample, productive_only=productive_only)
    try:
        raw = _scirpy_read(path, fmt, table, subset=subset)
    except InputError:
        raise
    except (KeyError, ValueError, TypeError, AssertionError) as err:
        raise InputError(
            f"BCR file {path} (sample {sample}): scirpy cannot read it: {err}"
        ) from err
    stats = {"sample": sample, "path": str(path), "format": fmt}
    chains = pd.DataFrame(columns=["barcode"]) if raw is None else _chains_of(raw)
    stats["n_contigs"] = len(chains)
    cleaned = clean_chains(chains)
    keep = np.ones(len(cleaned), dtype=bool)
    not_cell = np.zeros(len(cleaned), dtype=bool)
    if cells_only:
        for col in ("is_cell", "high_confidence"):
            if col in cleaned.columns:
                not_cell |= cleaned[col].map(lambda v: v is False).to_numpy(dtype=bool)
    keep &= ~not_cell
    stats["n_contigs_not_cell"] = int(not_cell.sum())
    nonprod = ~cleaned["productive"].map(lambda v: v is True).to_numpy(dtype=bool)
    nonprod = nonprod & keep if productive_only else np.zeros(len(cleaned), dtype=bool)
    keep &= ~nonprod
    stats["n_contigs_nonproductive"] = int(nonprod.sum())
    locus = cleaned["locus"]
    other = keep & locus.isin(IG_LOCI + TR_LOCI).to_numpy() & ~locus.isin(loci).to_numpy()
    tcr = other & locus.isin(TR_LOCI).to_numpy()
    no_locus = keep & ~locus.isin(IG_LOCI + TR_LOCI).to_numpy()
    keep &= ~(other | no_locus)
    stats["n_contigs_tcr"] = int(tcr.sum())
    stats["n_contigs_bcr"] = int((other & ~tcr).sum())
    stats["n_contigs_no_locus"] = int(no_locus.sum())
    kept = cleaned.loc[keep]
    stats["n_contigs_kept"] = len(kept)
    stats["n_cells"] = int(kept["barcode"].nunique())
    kind = "TCR" if set(loci) <= set(TR_LOCI) else "BCR"
    if stats["n_cells"] == 0:
        other_kind = "B-cell" if kind == "TCR" else "T-cell"
        what = f"a {other_kind} receptor file?" if other.any() else "no usable contigs"
        log.warning(
            "%s file %s (sample %s): no %s chains of loci %s kept (%s); the sample gets "
            "zero %s cells",
            kind,
            path,
            sample,
            kind,
            "/".join(loci),
            what,
            kind,
        )
    else:
        log.info(
            "%s file %s (sample %s, %s): %d contigs, %d kept in %d cells",
            kind,
            path,
            sample,
            fmt,
            stats["n_contigs"],
            stats["n_contigs_kept"],
            stats["n_cells"],
        )
    return build_airr(kept, sample=sample, uns=stats)


# --------------------------------------------------------------------------------------
# merging samples
# --------------------------------------------------------------------------------------
def _canonical_array(arr: ak.Array, fields: Sequence[str]) -> ak.Array:
    """Slow path for arrays not written by :func:`build_airr`: convert values field by field."""
    kinds = {f: field_type(f) for f in fields}
    cells = [
        [{f: _canonical(chain.get(f), kinds[f]) for f in fields} for chain in chains]
        for chains in ak.to_list(arr)
    ]
    if not cells:
        return ak.enforce_type(ak.Array([[]])[:0], _record_type(fields))
    return ak.enforce_type(ak.from_iter(cells), _record_type(fields))


def harmonise_airr(arrays: Sequence[ak.Array]) -> list[ak.Array]:
    """Give per-sample chain arrays one common record type (union of fields, fixed types).

    Parameters
    ----------
    arrays
        ``obsm["airr"]`` of each sample.

    Returns
    -------
    The arrays with every field of any of them (missing ones filled with None) and the type
    of :func:`field_type` for each field, so that they concatenate without union types.
    """
    fields = set(CORE_FIELDS)
    for arr in arrays:
        fields |= set(ak.fields(arr))
    fields = sorted(fields)
    target = _record_type(fields)
    out = []
    for arr in arrays:
        try:
            out.append(ak.enforce_type(arr, target))
        except (TypeError, ValueError):
            out.append(_canonical_array(arr, fields))
    return out


def _ingest_rows(ingest: Mapping | pd.DataFrame) -> pd.DataFrame:
    """Ingest counts as rows: one for a sample's dict, all of a merged object's table."""
    return ingest if isinstance(ingest, pd.DataFrame) else pd.DataFrame([dict(ingest)])


def merge_bcr(samples: Sequence[ad.AnnData] | Mapping[str, ad.AnnData]) -> ad.AnnData:
    """Concatenate per-sample BCR AnnData objects (any mix of input formats).

    Parameters
    ----------
    samples
        Outputs of :func:`read_bcr` (or any scirpy AnnData with ``obs["sample"]``), or
        objects merged before (rule bcr_read writes the cohort's reads as one).

    Returns
    -------
    One AnnData: ``obs`` = union of the samples' ``obs`` columns, ``obsm["airr"]`` with
    harmonised fields (:func:`harmonise_airr`), and ``uns["bcr_ingest"]`` a data frame with
    one row of ingest counts per sample.

    Raises
    ------
    InputError
        The same cell name occurs in two inputs.
    """
    adatas = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
    obs = pd.concat([a.obs for a in adatas], axis=0) if adatas else pd.DataFrame()
    if not obs.index.is_unique:
        dup = obs.index[obs.index.duplicated()][:3].tolist()
        raise InputError(
            f"BCR samples share cell names ({', '.join(dup)}): is a sample read twice?"
        )
    arrays = harmonise_airr([_airr_array(a) for a in adatas])
    arr = ak.concatenate(arrays) if arrays else _canonical_array(ak.Array([[]])[:0], CORE_FIELDS)
    obs.index = obs.index.astype(str)
    # one row per sample read; an input merged before brings its rows along
    stats = pd.concat(
        [_ingest_rows(a.uns.get("bcr_ingest", {})) for a in adatas], ignore_index=True
    )
    merged = ad.AnnData(obs=obs, obsm={"airr": arr})
    merged.uns["bcr_ingest"] = stats
    return merged


def index_chains(adata: ad.AnnData, *, productive_only: bool = True) -> None:
    """Run :func:`scirpy.pp.index_chains` and :func:`scirpy.tl.chain_qc` in place.

    Parameters
    ----------
    adata
        Merged BCR AnnData (:func:`merge_bcr`).
    productive_only
        Whether chains must be productive to be indexed (scirpy's default); when false, only
        a junction amino-acid sequence is required.
    """
    import scirpy as ir

    filters = ["productive", "require_junction_aa"] if productive_only else ["require_junction_aa"]
    ir.pp.index_chains(adata, filter=filters)
    if adata.n_obs:
        ir.tl.chain_qc(adata)
    else:
        for key in ("receptor_type", "receptor_subtype", "chain_pairing"):
            adata.obs[key] = pd.Series(dtype=str)
