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
chains of each cell with one fixed type per field (see
:func:`cartrack.airr_fields.field_type`), so samples in different formats concatenate into
one awkward array that :func:`scirpy.pp.index_chains` can slice. The value rules (missing
values, gene calls, loci, junctions, ``mu_freq``) are :mod:`cartrack.airr_fields`, the
workarounds for scirpy's readers :mod:`cartrack.workarounds`. Cleaning, in this order:

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
   :func:`~cartrack.airr_fields.mu_freq`) is computed from ``sequence_alignment`` /
   ``germline_alignment`` where the input has them (IgBLAST, Cell Ranger AIRR files), else
   left missing.
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
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import awkward as ak
import numpy as np
import pandas as pd

from cartrack.airr_fields import (
    CALL_FIELDS,
    CORE_FIELDS,
    IG_LOCI,
    TR_LOCI,
    Format,
    canonical,
    field_type,
    gene_name,
    infer_locus,
    mu_freq,
    record_type,
    to_bool,
    translate,
)
from cartrack.design import InputError
from cartrack.io import cell_names
from cartrack.workarounds import (
    airr_array,
    index_chains_without_numba,
    read_airr_table,
    scirpy_read,
)

log = logging.getLogger(__name__)

_10X_CSV_COLUMNS = ("barcode", "contig_id", "chain", "v_gene", "j_gene", "cdr3", "cdr3_nt")
_SUFFIXES = (
    "a Cell Ranger contig table (.csv[.gz]), all_contig_annotations.json or an AIRR .tsv[.gz]"
)


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
            table = read_airr_table(path)
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
            bad = sorted({v for v in table["productive"].dropna().unique() if to_bool(v) is None})
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
    for barcode, chains in zip(adata.obs_names, ak.to_list(airr_array(adata)), strict=True):
        for chain in chains:
            records.append({**chain, "barcode": str(barcode)})
    return pd.DataFrame.from_records(records)


def _clean_chain(chain: dict) -> dict:
    """Canonical values, gene names, locus and junctions of one chain (see module doc)."""
    out = {}
    for key, value in chain.items():
        out[key] = canonical(value, field_type(key))
    for field in CALL_FIELDS:
        out[f"{field}_raw"] = out.get(field)
        out[field] = gene_name(out.get(field))
    if out.get("locus") not in IG_LOCI + TR_LOCI:
        out["locus"] = infer_locus(out[f] for f in CALL_FIELDS)
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
    arr = ak.enforce_type(ak.Array([[]])[:0], record_type(CORE_FIELDS))
    obs = pd.DataFrame({"sample": pd.Series(dtype=str), "barcode": pd.Series(dtype=str)})
    obs.index = pd.Index([], dtype=str)
    return ad.AnnData(obs=obs, obsm={"airr": arr}, uns={"bcr_ingest": stats})


def build_airr(chains: pd.DataFrame, *, sample: str, uns: dict | None = None) -> ad.AnnData:
    """Scirpy AnnData from a chain table (one row per chain, column ``barcode``).

    Parameters
    ----------
    chains
        Cleaned chains; every column except ``barcode`` becomes a chain field with the type
        of :func:`~cartrack.airr_fields.field_type`, plus the fields of
        :data:`~cartrack.airr_fields.CORE_FIELDS`.
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
                f: (None if columns[f] is None else canonical(columns[f][row], kinds[f]))
                for f in fields
            }
        )
    arr = ak.enforce_type(ak.from_iter(per_cell), record_type(fields))
    obs = pd.DataFrame(
        {"sample": sample, "barcode": [str(b) for b in barcodes]},
        index=cell_names(sample, barcodes),
    )
    return ad.AnnData(obs=obs, obsm={"airr": arr}, uns={"bcr_ingest": dict(uns or {})})


def read_bcr(
    path: str | Path,
    *,
    sample: str,
    cells_only: bool,
    productive_only: bool,
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
        The workflow passes ``bcr.cells_only`` / ``tcr.cells_only`` (default in the config
        schema).
    productive_only
        Drop non-productive contigs (and those whose productivity is unknown). The workflow
        passes ``bcr.productive_only`` / ``tcr.productive_only``.
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
        raw = scirpy_read(path, fmt, table, subset=subset)
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
        [{f: canonical(chain.get(f), kinds[f]) for f in fields} for chain in chains]
        for chains in ak.to_list(arr)
    ]
    if not cells:
        return ak.enforce_type(ak.Array([[]])[:0], record_type(fields))
    return ak.enforce_type(ak.from_iter(cells), record_type(fields))


def harmonise_airr(arrays: Sequence[ak.Array]) -> list[ak.Array]:
    """Give per-sample chain arrays one common record type (union of fields, fixed types).

    Parameters
    ----------
    arrays
        ``obsm["airr"]`` of each sample.

    Returns
    -------
    The arrays with every field of any of them (missing ones filled with None) and the type
    of :func:`~cartrack.airr_fields.field_type` for each field, so that they concatenate
    without union types.
    """
    fields = set(CORE_FIELDS)
    for arr in arrays:
        fields |= set(ak.fields(arr))
    fields = sorted(fields)
    target = record_type(fields)
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
    arrays = harmonise_airr([airr_array(a) for a in adatas])
    arr = ak.concatenate(arrays) if arrays else _canonical_array(ak.Array([[]])[:0], CORE_FIELDS)
    obs.index = obs.index.astype(str)
    for col in obs.columns:  # h5ad gives strings back as categoricals: plain, as read
        if isinstance(obs[col].dtype, pd.CategoricalDtype):
            obs[col] = obs[col].astype(object)
    # one row per sample read; an input merged before brings its rows along
    rows = [_ingest_rows(a.uns.get("bcr_ingest", {})) for a in adatas]
    stats = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    merged = ad.AnnData(obs=obs, obsm={"airr": arr})
    merged.uns["bcr_ingest"] = stats
    return merged


def index_chains(adata: ad.AnnData, *, productive_only: bool) -> None:
    """Run :func:`scirpy.pp.index_chains` and :func:`scirpy.tl.chain_qc` in place.

    Parameters
    ----------
    adata
        Merged BCR AnnData (:func:`merge_bcr`).
    productive_only
        Whether chains must be productive to be indexed (``bcr.productive_only``; the config
        schema's default, true, is scirpy's); when false, only a junction amino-acid
        sequence is required.
    """
    import scirpy as ir

    filters = ["productive", "require_junction_aa"] if productive_only else ["require_junction_aa"]
    index_chains_without_numba(adata, filter=filters)
    if adata.n_obs:
        ir.tl.chain_qc(adata)
    else:
        for key in ("receptor_type", "receptor_subtype", "chain_pairing"):
            adata.obs[key] = pd.Series(dtype=str)
