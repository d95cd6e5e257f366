"""Gene sets: .gmt files, matching a set's genes to the data, the random negative control.

Gene symbols: sets are matched to ``var_names`` by exact symbol, then through :data:`ALIASES`
(HGNC renames such as DDX58 -> RIGI), in either direction, so a set written with the old
symbol finds the new one in the data and the other way round.

Scoring the sets lives in :mod:`cartrack.signatures`, their changes after infusion and the
matched control sets in :mod:`cartrack.signature_stats`, pseudobulk GSEA in
:mod:`cartrack.gsea`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
from scipy import sparse

log = logging.getLogger(__name__)

#: Old symbol -> current HGNC symbol, for genes of the shipped sets that Cell Ranger references
#: of different ages name differently. Matching works both ways.
ALIASES: dict[str, str] = {
    "DDX58": "RIGI",
    "WARS": "WARS1",
    "MARCH1": "MARCHF1",
    "FAM125A": "MVB12A",
    "FAM46A": "TENT5A",
    "FTSJD2": "CMTR1",
    "PRIC285": "HELZ2",
    "DNAPTP6": "SPATS2L",
    "METTL7B": "TMT1B",
}

#: Name of the random negative-control gene set.
RANDOM_CONTROL = "RANDOM_CONTROL"
#: Genes never drawn into the random control: immunoglobulin and T-cell receptor segments,
#: mitochondrial and ribosomal genes. Their levels follow clonal expansions and cell quality,
#: not a shared programme, and a few of them would let composition changes (B-cell aplasia,
#: CAR-T expansion) dominate the control.
CONTROL_EXCLUDE = re.compile(r"^(IG[HKL][VDJC]|TR[ABDG][VDJC]|MT-|RP[SL]\d|JCHAIN$)")

_BOTH_WAYS = {**ALIASES, **{new: old for old, new in ALIASES.items()}}


# --------------------------------------------------------------------------------------------
# Gene sets
# --------------------------------------------------------------------------------------------
def read_gmt(paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """Read gene sets from .gmt files (name, description, genes; tab-separated).

    Parameters
    ----------
    paths
        Files to read, in order. Set names must be unique across all files.

    Returns
    -------
    Set name -> genes, in file order, duplicates within a set removed.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    sets: dict[str, list[str]] = {}
    for path in paths:
        for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in line.split("\t")]
            name, genes = fields[0], [g for g in fields[2:] if g]
            if not name or not genes:
                raise ValueError(f"{path}:{lineno}: a gmt line needs a name and at least one gene")
            if name in sets:
                raise ValueError(f"{path}:{lineno}: gene set {name!r} is defined twice")
            sets[name] = list(dict.fromkeys(genes))
    return sets


def write_gmt(gene_sets: Mapping[str, Sequence[str]], path: str | Path, *, description="") -> None:
    """Write gene sets as a .gmt file (one line per set)."""
    lines = ["\t".join([name, description, *genes]) for name, genes in gene_sets.items()]
    Path(path).write_text("\n".join(lines) + "\n")


def resolve_genes(genes: Iterable[str], var_names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Match a set's genes to the data's symbols, through :data:`ALIASES` when needed.

    Returns
    -------
    ``(present, missing)``: ``present`` holds data symbols (unique, in set order), ``missing``
    the set's genes found under neither name.
    """
    var = set(var_names)
    present, missing = [], []
    for gene in genes:
        if gene in var:
            present.append(gene)
        elif _BOTH_WAYS.get(gene) in var:
            present.append(_BOTH_WAYS[gene])
        else:
            missing.append(gene)
    return list(dict.fromkeys(present)), missing


def usable_gene_sets(
    gene_sets: Mapping[str, Sequence[str]],
    var_names: Iterable[str],
    *,
    min_genes: int,
    on_too_few: str,
) -> dict[str, list[str]]:
    """Resolve every set against the data; warn about missing genes, drop or refuse small sets.

    Parameters
    ----------
    gene_sets
        Set name -> genes (as read by :func:`read_gmt`).
    var_names
        Gene symbols of the data.
    min_genes
        Minimum number of a set's genes present in the data.
    on_too_few
        ``"warn"``: leave such a set out with a warning; ``"error"``: raise ``ValueError``.

    Returns
    -------
    Set name -> genes as named in the data, for the sets that are kept.
    """
    if on_too_few not in ("warn", "error"):
        raise ValueError(f"on_too_few must be 'warn' or 'error', not {on_too_few!r}")
    var_names = list(var_names)
    kept = {}
    for name, genes in gene_sets.items():
        present, missing = resolve_genes(genes, var_names)
        if missing:
            log.warning(
                "signature %s: %d of %d genes not in the data (%s)",
                name,
                len(missing),
                len(genes),
                ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else ""),
            )
        if len(present) < min_genes:
            msg = f"signature {name}: only {len(present)} genes in the data, fewer than {min_genes}"
            if on_too_few == "error":
                raise ValueError(msg)
            log.warning("%s: skipped", msg)
            continue
        kept[name] = present
    return kept


def _cells_detected(x) -> np.ndarray:
    """Cells with a non-zero value, per gene; a sparse matrix block by block (``x != 0``
    whole is a second matrix: 0.9 GB at 225k cells)."""
    if not sparse.issparse(x):
        return np.asarray((x != 0).sum(axis=0)).ravel()
    x = sparse.csr_matrix(x)
    counts = np.zeros(x.shape[1], dtype=np.int64)
    step = max(1, 10_000_000 // max(x.shape[1], 1))
    for i in range(0, x.shape[0], step):
        counts += np.asarray((x[i : i + step] != 0).sum(axis=0)).ravel()
    return counts


def random_gene_set(
    adata: ad.AnnData,
    *,
    size: int,
    exclude: Iterable[str] = (),
    min_frac: float = 0.01,
    seed: int,
) -> list[str]:
    """Draw a random gene set as a negative control.

    Candidates are genes detected (non-zero in ``.X``) in at least ``min_frac`` of cells, not in
    ``exclude`` (the genes of the real signatures) and not matching :data:`CONTROL_EXCLUDE`.
    The draw depends only on the data's gene list, its detection rates and ``seed``.
    """
    detected = _cells_detected(adata.X) / max(adata.n_obs, 1)
    excluded = set(exclude)
    excluded |= {_BOTH_WAYS[g] for g in excluded if g in _BOTH_WAYS}
    candidates = sorted(
        g
        for g, frac in zip(adata.var_names, detected, strict=True)
        if frac >= min_frac and g not in excluded and not CONTROL_EXCLUDE.match(g)
    )
    if len(candidates) < size:
        raise ValueError(f"only {len(candidates)} candidate genes for a random set of {size}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(candidates, size=size, replace=False).tolist())


def add_random_control(
    gene_sets: Mapping[str, Sequence[str]],
    adata: ad.AnnData,
    *,
    size: int,
    seed: int,
) -> dict[str, list[str]]:
    """``gene_sets`` plus :data:`RANDOM_CONTROL`, drawn by :func:`random_gene_set` away from
    every gene of ``gene_sets``; unchanged when ``size`` is 0."""
    out = {name: list(genes) for name, genes in gene_sets.items()}
    if size <= 0:
        return out
    if RANDOM_CONTROL in out:
        raise ValueError(f"gene set name {RANDOM_CONTROL} is reserved for the random control")
    exclude = {g for genes in out.values() for g in genes}
    out[RANDOM_CONTROL] = random_gene_set(adata, size=size, exclude=exclude, seed=seed)
    log.info("random control set: %s", ", ".join(out[RANDOM_CONTROL]))
    return out
