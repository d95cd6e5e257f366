"""Checks before any job runs: config files and keys, and every input file's header.

- :func:`check_yaml_syntax`, :func:`check_config` and :func:`check_config_files` run while
  Snakemake parses the workflow (``rules/common.smk``): a YAML syntax error names the file,
  line and column; a config path that names no file is refused with its key; a
  key the schema does not know is refused with the closest valid key (``difflib``, as
  Python's own "did you mean" suggestions); ``.nan``/``.inf`` values are refused because
  every comparison with NaN is false, so a NaN threshold silently turns its filter off.
- :func:`check_sample` is the cheap rule ``check_sample``: it opens one sample's input
  headers (never a whole matrix; about 0.1 s a sample), and refuses unreadable, truncated
  or empty files, non-count matrices, duplicated barcodes, Ensembl-only features, TCR files
  in the ``bcr`` column (and BCR files in ``tcr``) and BCR or TCR files that share
  (almost) no barcode with their sample's GEX; what is odd but usable becomes a warning
  row. :func:`check_cohort` (rule ``check_inputs``) adds the design warnings and refuses
  mixed species: ``design_checks.tsv``.
"""

import csv
import difflib
import gzip
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml

from cartrack.design import InputError
from cartrack.sheet import shown_path

#: Columns of design_checks.tsv.
CHECK_COLUMNS = ["check", "severity", "sample", "patient", "column", "value", "message"]
ENSEMBL_ID = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
MOUSE_SYMBOL = re.compile(r"^[A-Z][a-z0-9]+[a-z][a-z0-9]*$")  # Cd19, Tnfrsf17, Actb
HUMAN_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]+$")  # CD19, TNFRSF17, ACTB
_SAMPLE_VALUES = 100_000  # matrix values read to tell counts from normalised data
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------
def check_yaml_syntax(path: str | Path) -> None:
    """Refuse a config file that is not valid YAML, naming the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"config file '{path}': not UTF-8 text ({err.reason})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(
            f"config file '{path}'{where}: not valid YAML ({problem}); fix the syntax there "
            "(indent with spaces, close every bracket and quote)"
        ) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise InputError(f"config file '{path}': expected `key: value` lines at the top level")


def _config_problems(value: object, schema: dict, key: str) -> Iterable[str]:
    """Unknown keys (with the closest valid one) and non-finite numbers below `key`."""
    if isinstance(value, float) and not math.isfinite(value):
        yield f"config key '{key}' is {value}: give a finite number"
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _config_problems(item, schema.get("items", {}), f"{key}[{i}]")
    if not isinstance(value, dict):
        return
    known = schema.get("properties", {})
    for name in value:
        child = f"{key}.{name}" if key else str(name)
        if name in known:
            yield from _config_problems(value[name], known[name], child)
        elif schema.get("additionalProperties", True) is False:
            close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
            prefix = f"{key}." if key else ""
            hint = (
                f"did you mean '{prefix}{close[0]}'?"
                if close
                else f"valid keys: {', '.join(known)}"
            )
            yield f"config key '{child}' is not known: {hint}"


def check_config(config: dict, schema: dict, *, files: Iterable[str | Path] = ()) -> None:
    """Refuse keys outside the schema and NaN/infinite values, all problems at once.

    Run before ``snakemake.utils.validate``, whose messages for the same problems name
    neither the key's full path nor a suggestion.
    """
    problems = list(_config_problems(config, schema, ""))
    if problems:
        where = ", ".join(f"'{f}'" for f in files) or "the config"
        raise InputError(
            f"config ({where}) has {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        )


#: Config keys that name files: all are inputs, read and never written (the schema has no
#: key for an output path: outputs go to results/ and logs/ of the working folder). The
#: shipped ones are looked up in the working folder, then in the repository (``resource()``
#: in rules/common.smk); ``samples`` is checked by :func:`cartrack.sheet.read_sheet`.
CONFIG_FILE_KEYS = {
    "annotation.markers": True,  # key: shipped (resolved in the repository too)
    "signatures.gmt": True,
    "signatures.extra_gmt": False,
    "signatures.gsea.family_gmt": True,
}


def check_config_files(config: dict, *, repo: str | Path) -> None:
    """Refuse a config file path (:data:`CONFIG_FILE_KEYS`) that names no file, all at once.

    Without this a wrong path surfaces as Snakemake's "Missing input files" for some rule
    deep in the DAG, or not at all when that rule is not needed by the target. The values
    are only ever opened for reading (no rule runs a shell command), so shell syntax in them
    (``$(...)``, backticks, ``;``) is a file name that does not exist.
    """
    problems = []
    for key, shipped in CONFIG_FILE_KEYS.items():
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, ""):
            continue
        values = list(enumerate(node)) if isinstance(node, list) else [(None, node)]
        for i, value in values:
            name = key if i is None else f"{key}[{i}]"
            path = Path(str(value))
            if shipped and not path.is_absolute() and not path.exists():
                path = Path(repo) / path
            if not path.is_file():
                looked = " or in the workflow's folder" if shipped else ""
                problems.append(
                    f"config key '{name}' is '{value}': no such file in the working "
                    f"folder{looked} (looked for '{path}'); give the path of an existing file"
                )
    if problems:
        raise InputError("\n  ".join(problems))


# --------------------------------------------------------------------------------------
# input headers
# --------------------------------------------------------------------------------------
class _Bad(Exception):
    """Internal: what is wrong with a file; check_inputs adds sample, column and path."""


def _open_text(path: Path):
    """Text handle of a plain or gzip file (told apart by magic bytes, not by name)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def _read_lines(path: Path) -> list[str]:
    """All lines of a small text file (barcodes, features); damaged gzip is refused."""
    try:
        with _open_text(path) as fh:
            return fh.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _Bad(
            f"'{path.name}' cannot be read ({type(err).__name__}: {err}); truncated?"
        ) from None


def _gzip_intact(path: Path) -> None:
    """Stream through a gzip file without parsing it: truncation raises EOFError."""
    with open(path, "rb") as fh:
        if fh.read(2) != _GZIP_MAGIC:
            return
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 22):
                pass
    except (OSError, EOFError) as err:
        raise _Bad(f"'{path.name}' is a damaged gzip file ({err}); copy it again") from None


def _is_counts(values: np.ndarray) -> bool:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return bool(values.size == 0 or values.min() >= 0)
    return bool(np.all(values >= 0) and np.all(np.floor(values) == values))


@dataclass
class GexHeader:
    """What the check needs from a gene-expression file: barcodes and feature names."""

    barcodes: list[str]
    features: list[str]
    counts: bool = True
    problems: list[str] = field(default_factory=list)


def _h5_strings(ds) -> list[str]:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[:].tolist()
    return ds[:].astype(str).tolist()


def _gex_h5(path: Path) -> GexHeader:
    """Cell Ranger HDF5 (>= 3: group ``matrix``; legacy: one genome group)."""
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                group = f["matrix"]
                names = group["features"]["name"]
            else:
                genomes = [k for k in f if isinstance(f[k], h5py.Group)]
                if len(genomes) != 1:
                    raise _Bad("not a Cell Ranger matrix HDF5 (no group 'matrix')")
                group = f[genomes[0]]
                names = group["gene_names"]
            barcodes = _h5_strings(group["barcodes"])
            features = _h5_strings(names)
            data = group["data"]
            head = data[: min(data.shape[0], _SAMPLE_VALUES)]
            tail = data[max(0, data.shape[0] - 1000) :]  # reading the end finds truncation
    except _Bad:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise _Bad(f"cannot be read as a Cell Ranger HDF5 ({type(err).__name__}: {err})") from None
    return GexHeader(barcodes, features, counts=_is_counts(head) and _is_counts(tail))


def _gex_h5ad(path: Path) -> GexHeader:
    """An .h5ad: obs names, var names and a sample of X (or layers/counts)."""

    def values(node) -> np.ndarray:
        ds = node["data"] if isinstance(node, h5py.Group) else node
        per_row = int(np.prod(ds.shape[1:]))  # dense X: whole rows, about _SAMPLE_VALUES
        return np.asarray(ds[: max(1, _SAMPLE_VALUES // max(per_row, 1))]).ravel()

    def index(group) -> list[str]:
        key = group.attrs.get("_index", "_index")
        return _h5_strings(group[key]) if key in group else []

    try:
        with h5py.File(path, "r") as f:
            barcodes, features = index(f["obs"]), index(f["var"])
            counts = "X" in f and _is_counts(values(f["X"]))
            if not counts and "layers" in f and "counts" in f["layers"]:
                counts = _is_counts(values(f["layers"]["counts"]))
    except (OSError, KeyError, ValueError) as err:
        raise _Bad(f"cannot be read as an .h5ad ({type(err).__name__}: {err})") from None
    return GexHeader(barcodes, features, counts=counts)


def _gex_mtx(folder: Path) -> GexHeader:
    """An MTX folder: the matrix header (and gzip integrity), barcodes, features."""
    from cartrack.io import _resolve_mtx_folder

    files, reason = _resolve_mtx_folder(folder)
    if files is None:
        raise _Bad(str(reason))
    _gzip_intact(files.matrix)
    try:
        with _open_text(files.matrix) as fh:
            banner = fh.readline()
            line = fh.readline()
            while line.startswith("%"):
                line = fh.readline()
            dims = line.split()
            entries = [fh.readline().split() for _ in range(1000)]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _Bad(f"'{files.matrix.name}' cannot be read ({type(err).__name__}: {err})") from None
    if not banner.startswith("%%MatrixMarket") or len(dims) != 3:
        raise _Bad(f"'{files.matrix.name}' is not a MatrixMarket file (first line {banner!r})")
    values = np.array([float(e[2]) for e in entries if len(e) == 3])
    barcodes = [b.split("\t")[0] for b in _read_lines(files.barcodes) if b]
    rows = [r.split("\t") for r in _read_lines(files.features) if r]
    features = [r[1] if len(r) > 1 else r[0] for r in rows]
    header = GexHeader(barcodes, features, counts=_is_counts(values))
    n_features, n_cells = int(dims[0]), int(dims[1])
    if n_cells != len(barcodes) or n_features != len(features):
        header.problems.append(
            f"'{files.matrix.name}' is {n_features} x {n_cells} but there are "
            f"{len(features)} features and {len(barcodes)} barcodes: the files do not belong "
            "together (or one is truncated)"
        )
    return header


def gex_header(path: str | Path) -> GexHeader:
    """Barcodes and feature names of a sheet's ``gex`` entry, reading no whole matrix."""
    from cartrack.io import H5AD_SUFFIXES, check_gex_path

    path = Path(path)
    reason = check_gex_path(path)
    if reason:
        raise _Bad(reason)
    if path.is_dir():
        return _gex_mtx(path)
    if path.name.lower().endswith(H5AD_SUFFIXES):
        return _gex_h5ad(path)
    return _gex_h5(path)


@dataclass
class BcrHeader:
    """What the check needs from a V(D)J file."""

    barcodes: set[str]
    loci: dict[str, int]
    n_productive: int | None


def _locus(row: dict) -> str:
    for key in ("locus", "chain"):
        value = str(row.get(key) or "")
        if value[:3] in ("IGH", "IGK", "IGL", "TRA", "TRB", "TRG", "TRD"):
            return value[:3]
    for key in ("v_call", "v_gene", "j_call", "j_gene", "c_call", "c_gene"):
        value = str(row.get(key) or "").strip()
        if value[:3] in ("IGH", "IGK", "IGL", "TRA", "TRB", "TRG", "TRD"):
            return value[:3]
    return "none"


def _csv_rows(path: Path, delimiter: str) -> tuple[list[str], list[dict]]:
    """Header and rows of a delimited file; a row with missing fields means truncation."""
    try:
        with _open_text(path) as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise _Bad(f"cannot be read ({type(err).__name__}: {err}); truncated?") from None
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise _Bad("is empty")
    rows = []
    for n, fields in enumerate(reader, start=2):
        if not fields:  # a blank line
            continue
        if len(fields) != len(header):
            cut = n == text.count("\n") + (0 if text.endswith("\n") else 1)
            what = "the file is cut off there; copy it again" if cut else "fix that row"
            raise _Bad(f"line {n} has {len(fields)} of {len(header)} fields: {what}")
        rows.append(dict(zip(header, fields, strict=True)))
    return header, rows


def bcr_header(path: str | Path) -> BcrHeader:
    """Barcodes, loci and productive chains of a sheet's ``bcr`` or ``tcr`` entry."""
    from cartrack.airr_fields import to_bool
    from cartrack.bcr import _10X_CSV_COLUMNS, detect_format

    path = Path(path)
    if path.stat().st_size == 0:
        raise _Bad("is empty (0 bytes)")
    fmt = detect_format(path)
    if fmt == "10x_json":
        try:
            with open(path) as fh:
                rows = json.load(fh)
        except (OSError, ValueError) as err:
            raise _Bad(f"not readable as JSON ({err})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise _Bad("expected Cell Ranger all_contig_annotations.json (a list of contigs)")
        cell = "barcode"
    else:
        header, rows = _csv_rows(path, "," if fmt == "10x_csv" else "\t")
        if (
            fmt == "airr"
            and len(header) == 1
            and set(_10X_CSV_COLUMNS) <= set(header[0].split(","))
        ):
            raise _Bad(
                "is a comma-separated Cell Ranger contig table named .tsv (AIRR tables are "
                "tab-separated): rename it to .csv"
            )
        cell = "barcode" if fmt == "10x_csv" else "cell_id"
        if fmt == "10x_csv" and "barcode" not in header:
            raise _Bad(f"not a Cell Ranger contig table: no column 'barcode' (found {header[:6]})")
        if fmt == "airr" and "cell_id" not in header:
            raise _Bad(
                "AIRR table without a 'cell_id' column: bulk (not single-cell) rearrangements "
                "cannot be assigned to cells; give single-cell data such as Cell Ranger's "
                "airr_rearrangement.tsv"
            )
    loci: dict[str, int] = {}
    productive = 0
    for row in rows:
        locus = _locus(row)
        loci[locus] = loci.get(locus, 0) + 1
        productive += to_bool(row.get("productive")) is True
    barcodes = {str(r.get(cell)) for r in rows if r.get(cell) not in (None, "")}
    return BcrHeader(barcodes, loci, productive if rows and "productive" in rows[0] else None)


def _species(features: list[str]) -> str:
    """'ensembl', 'mouse', 'human' or 'unknown' from the shape of the feature names."""
    if not features:
        return "unknown"
    names = pd.Series(features[:: max(1, len(features) // 2000)])  # a spread sample is enough
    if names.str.match(ENSEMBL_ID).mean() > 0.95:
        return "ensembl"
    mouse, human = names.str.match(MOUSE_SYMBOL).mean(), names.str.match(HUMAN_SYMBOL).mean()
    if max(mouse, human) < 0.3:
        return "unknown"
    return "mouse" if mouse > human else "human"


def _gmt_genes(paths: Iterable[str | Path]) -> set[str]:
    genes: set[str] = set()
    for p in paths:
        for line in Path(p).read_text().splitlines():
            genes.update(g for g in line.split("\t")[2:] if g)
    return genes


def _row(check: str, severity: str, sample: str, patient: str, column: str, value, message):
    values = [check, severity, sample, patient, column, str(value), message]
    return dict(zip(CHECK_COLUMNS, values, strict=True))


def check_sample(
    sample: str,
    row: pd.Series,
    *,
    genes: dict[str, str],
    gene_sets: Iterable[str | Path] = (),
    min_barcode_overlap: float,
    warn_barcode_overlap: float,
) -> pd.DataFrame:
    """Open one sample's gex, bcr and tcr headers; raise InputError listing its problems.

    Parameters
    ----------
    sample, row
        The sample id and its row of the validated sheet (``patient``, ``gex``, ``bcr``,
        ``tcr``; a missing or empty ``bcr`` / ``tcr`` is not checked).
    genes
        Config key -> gene name that must be a feature (``tracking.cd19_gene`` ...); one
        missing is a warning (the sample's double-positive calls are all false).
    gene_sets
        ``.gmt`` files of the signatures: compared with the feature names' species.
    min_barcode_overlap
        Below this share of the BCR (or TCR) barcodes found in the GEX, an error: files of two
        libraries share barcodes only by chance (well under 1% of the 10x whitelist).
    warn_barcode_overlap
        Below this share, a warning.

    Returns
    -------
    Rows of ``design_checks.tsv`` (columns :data:`CHECK_COLUMNS`): the warnings, and one
    ``species`` row of severity ``info`` that :func:`check_cohort` compares across samples.
    """
    errors: list[str] = []
    rows: list[dict] = []

    def warn(check: str, sample: str, column: str, value: str, message: str) -> None:
        rows.append(_row(check, "warning", sample, row["patient"], column, value, message))

    where = f"sample '{sample}', column 'gex', file '{row['gex']}'"
    try:
        gex = gex_header(row["gex"])
    except _Bad as bad:
        raise InputError(f"{where}: {bad}") from None
    errors.extend(f"{where}: {p}" for p in gex.problems)
    if not gex.barcodes:
        raise InputError(f"{where}: holds zero cells; remove the row or give the filtered matrix")
    dups = pd.Index(gex.barcodes)[pd.Index(gex.barcodes).duplicated()]
    if len(dups):
        errors.append(
            f"{where}: {len(dups)} duplicated barcodes (e.g. '{dups[0]}'); give one "
            "sample's filtered matrix per sheet row"
        )
    if not gex.counts:
        errors.append(
            f"{where}: the matrix holds non-integer or negative values (normalised "
            "data?); give raw counts (Cell Ranger's filtered matrix, or an .h5ad with "
            "layers['counts'])"
        )
    kind = _species(gex.features)
    if kind == "ensembl":
        errors.append(
            f"{where}: feature names are Ensembl ids (e.g. '{gex.features[0]}'), so no "
            "marker or gene set matches; give gene symbols (Cell Ranger features.tsv "
            "column 2, or var_names of symbols in an .h5ad)"
        )
    exact = set(gex.features)
    for key, gene in genes.items():
        if gene and gene not in exact and gene.upper() not in {f.upper() for f in exact}:
            warn(
                "gene_missing", sample, "gex", gene,
                f"config {key} '{gene}' is not a feature of this sample: its "
                "double-positive calls will all be false; set the gene's name as in "
                "the features",
            )  # fmt: skip
    set_genes = _gmt_genes(gene_sets)
    if kind == "mouse" and set_genes and _species(sorted(set_genes)) == "human":
        warn(
            "species_gene_sets", sample, "gex", "mouse symbols",
            "mouse gene symbols, but the signature gene sets are human: they match only "
            "case-insensitively, through orthologues with the same name; give mouse sets "
            "in signatures.gmt / signatures.extra_gmt for a mouse study",
        )  # fmt: skip
    overlap = (min_barcode_overlap, warn_barcode_overlap)
    for column in _VDJ:
        if row.get(column):
            errors.extend(_check_vdj(sample, row, column, gex, warn, overlap))
    if errors:
        raise InputError("\n  ".join(errors))
    rows.append(_row("species", "info", sample, row["patient"], "gex", kind, "feature names"))
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def check_cohort(samples: Iterable[pd.DataFrame], *, design: pd.DataFrame) -> pd.DataFrame:
    """``design_checks.tsv``: the design warnings and every sample's; refuses a cohort
    that mixes human and mouse samples."""
    table = pd.concat([design, *samples], ignore_index=True)
    species = table[table["check"] == "species"].groupby("value")["sample"].agg(list)
    if {"human", "mouse"} <= set(species.index):
        raise InputError(
            "samples of two species in one cohort: human-style symbols in "
            f"{', '.join(species['human'][:5])}, mouse-style in "
            f"{', '.join(species['mouse'][:5])}; analyse each species with its own sheet"
        )
    return table[table["severity"] != "info"].reset_index(drop=True)


def check_inputs(sheet: pd.DataFrame, *, design: pd.DataFrame, **options) -> pd.DataFrame:
    """:func:`check_sample` on every sample, then :func:`check_cohort`, every problem at
    once: what rule ``check_inputs`` does (a few tenths of a second per sample)."""
    errors, tables = [], []
    for sample, row in sheet.iterrows():
        try:
            tables.append(check_sample(str(sample), row, **options))
        except InputError as error:
            errors.append(str(error))
    if errors:
        raise InputError(f"input files have {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    return check_cohort(tables, design=design)


#: Per V(D)J column: receptor named in messages, its loci, the other column's receptor.
_VDJ = {
    "bcr": ("BCR", "IG", "B-cell", "TR", "T-cell receptor chains ({n} TRA/TRB/... contigs, no "
            "IGH/IGK/IGL): is it the TCR file? Put the B-cell V(D)J file in 'bcr'"),
    "tcr": ("TCR", "TR", "T-cell", "IG", "B-cell receptor chains ({n} IGH/IGK/IGL contigs, no "
            "TRA/TRB/...): is it the BCR file? Put the T-cell V(D)J file in 'tcr'"),
}  # fmt: skip


def _check_vdj(
    sample, row, column: str, gex: GexHeader, warn, overlap: tuple[float, float]
) -> list[str]:
    """Problems of one sample's V(D)J file in `column` (``bcr`` or ``tcr``); warnings go
    through `warn`."""
    label, own, cells, other, wrong = _VDJ[column]
    path = row[column]
    where = f"sample '{sample}', column '{column}', file '{path}'"
    try:
        vdj = bcr_header(path)
    except (_Bad, InputError) as bad:
        return [f"{where}: {bad}"]
    n_own = sum(n for locus, n in vdj.loci.items() if locus.startswith(own))
    n_other = sum(n for locus, n in vdj.loci.items() if locus.startswith(other))
    if n_other and not n_own:
        return [f"{where}: holds only " + wrong.format(n=n_other)]
    if not vdj.barcodes:
        aplasia = " (B-cell aplasia?)" if column == "bcr" else ""
        warn(
            f"{column}_empty", sample, column, shown_path(path),
            f"no contigs{aplasia}: the sample gets zero {label} cells",
        )  # fmt: skip
        return []
    if n_own and vdj.n_productive == 0:
        warn(
            f"{column}_non_productive", sample, column, shown_path(path),
            f"no productive contig: with {column}.productive_only the sample gets zero "
            f"{label} cells",
        )  # fmt: skip
    shared = len(vdj.barcodes & set(gex.barcodes))
    share = shared / len(vdj.barcodes)
    if share < overlap[0]:
        example_v, example_g = sorted(vdj.barcodes)[0], gex.barcodes[0]
        return [
            f"{where}: only {shared} of its {len(vdj.barcodes)} barcodes (e.g. '{example_v}') "
            f"are in the sample's GEX file (e.g. '{example_g}'), below "
            f"checks.min_barcode_overlap ({overlap[0]}): are both from the same library? "
            "Check the sheet row and the barcode suffixes ('-1')"
        ]
    if share < overlap[1]:
        warn(
            "barcode_overlap", sample, column, f"{share:.2f}",
            f"only {shared} of {len(vdj.barcodes)} {label} barcodes are GEX cells (below "
            f"checks.warn_barcode_overlap {overlap[1]}): are both from the same library?",
        )  # fmt: skip
    return []
