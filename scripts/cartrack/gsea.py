"""GSEA of pseudobulk differential expression, baseline against after infusion (gsea.tsv).

Per cell type and comparison: PyDESeq2 Wald statistics of post against baseline
(:mod:`cartrack.pseudobulk`, design ``~ patient + condition``), ranked so that genes higher
at baseline come first (a positive NES means the set is higher at baseline), then gseapy's
enrichment score (Subramanian et al. 2005, weight 1) on that ranking. Significance:

- ``sign_flip`` (from ``sign_flip_min_patients`` patients on): the labels baseline / post
  are swapped within random sets of patients, PyDESeq2's coefficients and Wald test are
  refitted (size factors and dispersions kept from the observed fit) and the enrichment
  scores of the relabelled rankings form the null. Keeping the dispersions makes the test
  conservative when there is an effect (the relabelled fits would inflate them) and about
  exact without one; refitting them costs ten times more. With n patients there are
  2^n - 1 relabellings and the nominal p-value cannot go below about 2 / 2^n, hence the
  default of 8 patients (p down to 0.008); because enrichment scores saturate once a set's
  genes top the ranking, relabellings of a strong effect in most patients still score high,
  so power is modest until well beyond that. This is GSEA's phenotype permutation
  (Subramanian 2005) restricted to exchanges within patients, as the paired design allows;
  NES, nominal p and FDR come from gseapy's ``gsea_significance`` exactly as for its own
  phenotype permutations. It keeps the correlation between genes of a set, so co-regulated
  interferon genes do not look more significant than they are.
- ``gene_set`` (fewer patients): gseapy prerank's gene-set permutation, with a warning:
  it treats genes as independent and is anti-conservative for co-regulated sets.

The FDR runs over the whole family tested in a cell type x comparison: the 50 MSigDB
hallmarks plus the workflow's signatures and the random control.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from cartrack import pseudobulk as pbk
from cartrack.design import BASELINE, POST, InputError
from cartrack.genesets import resolve_genes
from cartrack.params import GseaParams, PhaseParams, SignatureCellsParams

log = logging.getLogger(__name__)

#: Columns of gsea.tsv.
GSEA_COLUMNS = [
    "cell_type",
    "comparison",
    "term",
    "nes",
    "p_value",
    "fdr",
    "leading_edge",
    "es",
    "n_genes",
    "n_patients",
    "permutation",
    "n_permutations",
    "testable",
    "note",
]


def merge_gene_sets(*families: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Union of gene-set families; a name in several must name the same genes (any order)."""
    out: dict[str, list[str]] = {}
    for family in families:
        for name, genes in family.items():
            if name in out and set(out[name]) != set(genes):
                raise InputError(f"gene set {name!r} is defined twice with different genes")
            out.setdefault(name, list(genes))
    return out


def _usable_sets(
    genes: Sequence[str], gene_sets: Mapping[str, Sequence[str]], min_size: int, max_size: int
) -> dict[str, list[str]]:
    sets, left_out = {}, []
    for name, members in gene_sets.items():
        present, _ = resolve_genes(members, genes)
        if min_size <= len(present) <= max_size and len(present) < len(genes):
            sets[name] = present
        else:
            left_out.append(f"{name} ({len(present)})")
    if left_out:
        log.warning(
            "GSEA: %d gene sets with genes in the ranking outside %d-%d left out: %s",
            len(left_out),
            min_size,
            max_size,
            ", ".join(left_out),
        )
    return sets


def prerank(
    ranking: pd.Series,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    permutations: int,
    min_size: int,
    max_size: int,
    seed: int,
) -> pd.DataFrame:
    """gseapy prerank (gene-set permutation) on one ranking; sets outside the size limits are
    dropped with a warning.

    Returns
    -------
    Columns `term, nes, es, p_value, fdr, n_genes, leading_edge` (`;`-joined genes), sorted by
    NES (descending). Empty when no set is left. A `p_value` of 0 means below
    1 / ``permutations``.
    """
    import gseapy  # heavy import, only here

    cols = ["term", "nes", "es", "p_value", "fdr", "n_genes", "leading_edge"]
    sets = _usable_sets(list(ranking.index), gene_sets, min_size, max_size)
    if not sets:
        return pd.DataFrame(columns=cols)
    res = gseapy.prerank(
        rnk=ranking,
        gene_sets=sets,
        outdir=None,
        min_size=min_size,
        max_size=max_size,
        permutation_num=permutations,
        seed=seed,
        threads=1,
        no_plot=True,
        verbose=False,
    ).res2d
    out = pd.DataFrame(
        {
            "term": res["Term"].astype(str),
            "nes": pd.to_numeric(res["NES"], errors="coerce"),
            "es": pd.to_numeric(res["ES"], errors="coerce"),
            "p_value": pd.to_numeric(res["NOM p-val"], errors="coerce"),
            "fdr": pd.to_numeric(res["FDR q-val"], errors="coerce"),
            "leading_edge": res["Lead_genes"].astype(str),
        }
    )
    out["n_genes"] = out["term"].map(lambda t: len(sets[t]))
    return out[cols].sort_values("nes", ascending=False, kind="mergesort").reset_index(drop=True)


def _gseapy_prerank(rnk, sets: Mapping[str, Sequence[str]], permutations: int, seed: int):
    import gseapy  # heavy import, only here

    return gseapy.prerank(
        rnk=rnk,
        gene_sets=dict(sets),
        outdir=None,
        min_size=1,
        max_size=max(len(m) for m in sets.values()),
        permutation_num=permutations,
        seed=seed,
        threads=1,
        no_plot=True,
        verbose=False,
    ).res2d


def sign_flip_prerank(
    ranking: pd.Series,
    null_rankings: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int,
    max_size: int,
) -> pd.DataFrame:
    """GSEA with a permutation null: gseapy's enrichment scores of ``ranking`` against those
    of each column of ``null_rankings`` (same genes), NES / nominal p / FDR by gseapy's
    ``gsea_significance`` (its phenotype-permutation statistics).

    Returns
    -------
    Same columns as :func:`prerank`.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the module, not this function
        from gseapy.algorithm import gsea_significance

    cols = ["term", "nes", "es", "p_value", "fdr", "n_genes", "leading_edge"]
    ranking = ranking.dropna().sort_values(ascending=False, kind="mergesort")
    sets = _usable_sets(list(ranking.index), gene_sets, min_size, max_size)
    if not sets:
        return pd.DataFrame(columns=cols)
    # observed: one gseapy run (one permutation only, for the leading edge)
    obs = _gseapy_prerank(ranking, sets, permutations=1, seed=0).set_index("Term")
    nulls = null_rankings.reindex(ranking.index).fillna(0.0)
    nulls.columns = [f"flip{k}" for k in range(nulls.shape[1])]
    null_es = (
        _gseapy_prerank(nulls, sets, permutations=0, seed=0)
        .pivot(index="Term", columns="Name", values="ES")
        .astype(float)
    )
    terms = list(sets)
    es = pd.to_numeric(obs.loc[terms, "ES"]).to_numpy(dtype=float)
    esnull = null_es.loc[terms, list(nulls.columns)].to_numpy(dtype=float)
    saved = np.geterr()
    sig = list(gsea_significance(es, esnull))
    np.seterr(**saved)  # gseapy switches floating-point warnings off for the whole process
    # gseapy's nominal p is (nulls at least as extreme) / (nulls of the same sign), 0 when none
    # is; count the observed labelling as one of the permutations (Phipson & Smyth 2010) so a
    # permutation p-value is never 0
    same_sign = np.where(es[:, None] >= 0, esnull >= 0, esnull < 0).sum(axis=1)
    p_perm = (np.array([s[2] for s in sig]) * same_sign + 1) / (same_sign + 1)
    out = pd.DataFrame(
        {
            "term": terms,
            "nes": [s[1] for s in sig],
            "es": es,
            "p_value": p_perm,
            "fdr": [s[3] for s in sig],
            "n_genes": [len(sets[t]) for t in terms],
            "leading_edge": obs.loc[terms, "Lead_genes"].astype(str).to_numpy(),
        }
    )
    return out[cols].sort_values("nes", ascending=False, kind="mergesort").reset_index(drop=True)


def _not_testable(cell_type: str, comparison: str, note: str, n_patients: int = 0) -> dict:
    log.warning("GSEA %s %s: not testable (%s)", cell_type, comparison, note)
    return {
        "cell_type": cell_type,
        "comparison": comparison,
        "term": "",
        "n_patients": n_patients,
        "testable": False,
        "note": note,
    }


def run_gsea(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]],
    params: GseaParams,
    cells: SignatureCellsParams,
    phases: PhaseParams,
    *,
    seed: int,
    layer: str | None = "counts",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pseudobulk DE and GSEA per cell type and comparison (gsea.tsv, pseudobulk_de.tsv).

    Comparisons: `baseline_vs_post` (every post time point of a patient pooled) and, with
    ``per_timepoint``, `baseline_vs_<timepoint>` per post time point label: the contrasts
    of one PyDESeq2 fit over every visit of the cell type
    (:func:`cartrack.pseudobulk.timepoint_counts`), sign flips exchanging baseline and that
    time point only. A cell type or
    comparison without a patient that has both conditions (no cells in the tissue, no cells
    at baseline, nothing after ``post_min_day``) gives one row with `testable` false and the
    reason in `note`, instead of failing; so does one with fewer than two such patients
    (``~ patient + condition`` then has no residual degrees of freedom).

    Parameters
    ----------
    params
        Section ``signatures.gsea`` (:class:`cartrack.params.GseaParams`).
    cells
        Tissue and smallest pseudobulk (:class:`cartrack.params.SignatureCellsParams`).
    phases
        Baseline and after infusion (:class:`cartrack.params.PhaseParams`).
    seed
        The workflow's ``seed``: gene-set permutations and the choice of sign flips.
    layer
        Raw counts (``None``: ``.X``).

    Returns
    -------
    ``(gsea, de)``: columns :data:`GSEA_COLUMNS` and :data:`cartrack.pseudobulk.DE_COLUMNS`.
    """
    p = params
    cell_types, tissue, min_cells = p.cell_types, cells.tissue, cells.min_cells
    pb = pbk.pseudobulk(
        adata,
        cell_types=cell_types,
        layer=layer,
        post_min_day=phases.post_min_day,
        visit_window_days=phases.visit_window_days,
        tissue=tissue,
        min_cells=min_cells,
    )
    post_obs = pb.obs[pb.obs["condition"] != BASELINE]
    timepoints = list(post_obs.groupby("condition")["day"].median().sort_values().index)
    rows, results, de_tables = [], [], []

    def untestable(cell_type: str, comparison: str, n_patients: int) -> None:
        where = f"tissue {tissue}" if tissue else "any tissue"
        rows.append(
            _not_testable(
                cell_type,
                comparison,
                f"{n_patients} patients with >= {min_cells} {cell_type} cells in "
                f"{where} both at baseline and after day {phases.post_min_day}",
                n_patients,
            )
        )

    def test(cell_type, comparison, counts, metadata, *, post=POST, fit=None):
        """DE of one comparison and GSEA on its ranking; returns the fit for more contrasts."""
        patients = metadata.loc[metadata["condition"] == post, "patient"].unique()
        n_patients = len(patients)
        de, fit = pbk.deseq_wald(counts, metadata, post=post, fit=fit)
        de_tables.append(
            de.reset_index().assign(
                cell_type=cell_type, comparison=comparison, n_patients=n_patients
            )[pbk.DE_COLUMNS]
        )
        # positive = higher at baseline; genes without a statistic are not ranked
        ranking = -de["stat"].dropna()
        if n_patients >= p.sign_flip_min_patients:
            flips = pbk.flip_patterns(patients, max_flips=p.max_flips, seed=seed)
            nulls = -pbk.sign_flip_statistics(counts, metadata, flips, fit, post=post)
            res = sign_flip_prerank(
                ranking, nulls, gene_sets, min_size=p.min_size, max_size=p.max_size
            )
            how, n_perm = "sign_flip", len(flips)
        else:
            log.warning(
                "GSEA %s %s: %d patients, fewer than %d for patient-wise sign-flip "
                "permutation; gene-set permutation instead, which ignores the correlation "
                "between genes and is anti-conservative for co-regulated sets",
                cell_type,
                comparison,
                n_patients,
                p.sign_flip_min_patients,
            )
            res = prerank(
                ranking.sort_values(ascending=False, kind="mergesort"),
                gene_sets,
                permutations=p.permutations,
                min_size=p.min_size,
                max_size=p.max_size,
                seed=seed,
            )
            how, n_perm = "gene_set", p.permutations
        log.info(
            "GSEA %s %s: %d patients, %d genes, %d sets, %s permutation (%d)",
            cell_type,
            comparison,
            n_patients,
            len(ranking),
            len(res),
            how,
            n_perm,
        )
        results.append(
            res.assign(
                cell_type=cell_type,
                comparison=comparison,
                n_patients=n_patients,
                permutation=how,
                n_permutations=n_perm,
                testable=True,
                note="",
            )
        )
        return fit

    for cell_type in cell_types:
        counts, metadata = pbk.paired_counts(
            pb, cell_type=cell_type, post=timepoints, min_counts=p.min_counts
        )
        n_patients = metadata["patient"].nunique()
        if n_patients < 2:
            untestable(cell_type, "baseline_vs_post", n_patients)
        else:
            test(cell_type, "baseline_vs_post", counts, metadata)
        if not p.per_timepoint:
            continue
        # one fit over every visit of the cell type; each time point is one of its contrasts
        counts, metadata = pbk.timepoint_counts(
            pb, cell_type=cell_type, timepoints=timepoints, min_counts=p.min_counts
        )
        fit = None
        for t in timepoints:
            at_t = metadata.loc[metadata["condition"] == t, "patient"].nunique()
            if at_t < 2:
                untestable(cell_type, f"baseline_vs_{t}", at_t)
            else:
                fit = test(cell_type, f"baseline_vs_{t}", counts, metadata, post=t, fit=fit)
    frames = [r for r in results if len(r)]
    if rows:
        frames.append(pd.DataFrame(rows))
    gsea = (
        pd.concat(frames, ignore_index=True).reindex(columns=GSEA_COLUMNS)
        if frames
        else pd.DataFrame(columns=GSEA_COLUMNS)
    )
    de = (
        pd.concat(de_tables, ignore_index=True)
        if de_tables
        else pd.DataFrame(columns=pbk.DE_COLUMNS)
    )
    return gsea, de
