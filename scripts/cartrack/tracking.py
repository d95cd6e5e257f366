"""Clone tracking through CAR-T therapy: per-clone status, timelines, B-cell recovery, diversity.

Tracking uses only *B-lineage BCR+ cells*: cells with a clone that are also gene-expression
cells whose ``cell_type`` is a B-cell or plasmablast/plasma-cell type. V(D)J barcodes without
a gene-expression cell are counted in the chain-QC table and left out of every count here.

Whether a sample is baseline, early or after infusion is decided once, by
:func:`cartrack.design.phase` (``tracking.post_min_day`` and ``tracking.visit_window_days``),
and stored in the ``phase`` column of :func:`sheet_table`.

Elimination test (CONTRACT.md, README "What eliminated means"): a clone is tested within one
tissue (``tissue_assessed``: the tissue holding most of its baseline cells) and one
compartment (the configured group of cell types holding most of those cells), against the
patient's tracked cells of that tissue and compartment at baseline (N_b) and after infusion
(N_p). Under "the clone persisted at unchanged frequency" and Poisson sampling, its baseline
count given its total n = n_b + n_p is X ~ Binomial(n, pi), pi = N_b / (N_b + N_p) (the
conditional test of the 2x2 table clone / rest x baseline / post, as
:func:`scipy.stats.binomtest` with ``alternative="greater"``). Only clones *seen at baseline*
are tested, so the test conditions on that too: ``p_missed`` = P(X >= n_b | X >= 1) =
P(X >= n_b) / (1 - (1 - pi) ** n); unseen after infusion it is pi ** n_b / (1 - (1 - pi) **
n_b). Without the denominator (CONTRACT.md's formula) a baseline singleton gets p = pi
whichever clone it is, and where post-infusion sampling of a compartment is 20 or more
times deeper (naive B cells return in force) every baseline singleton was called
eliminated under a null; with it a singleton gets p = 1 (one cell cannot show that a clone
went away) and clones of five or more cells keep their p-value within a few per cent.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from cartrack.bcr import index_chains, merge_bcr
from cartrack.clones import (
    B_LINEAGE_TYPES,
    CloneParams,
    cell_annotations,
    chain_qc_table,
    define_clones,
)
from cartrack.design import (
    B_CELLS,
    BASELINE,
    BLOOD,
    CLONE_STATUSES,
    EARLY,
    NAIVE_B,
    POST,
    TISSUES,
    InputError,
    phase,
)
from cartrack.double_positive import clone_double_positive

log = logging.getLogger(__name__)

B_CELL_TYPES = tuple(B_CELLS)
NAIVE_TYPES = tuple(NAIVE_B)
STATUSES = CLONE_STATUSES
# tracking.compartments' default (the config schema holds the same mapping)
COMPARTMENTS = {
    "antigen_experienced": ("B_memory", "B_atypical", "plasmablast", "plasma_cell"),
    "naive": ("B_naive", "B_transitional"),
}
FDR_FAMILIES = ("testable", "all")
UNSWITCHED = ("IgM", "IgD")


def sheet_table(
    sheet: pd.DataFrame, *, post_min_day: int = 28, visit_window_days: int = 3
) -> pd.DataFrame:
    """Sample metadata from the sheet.

    Returns
    -------
    Index sample; ``patient``, ``day`` (int), ``tissue``, ``timepoint`` (default
    ``D<day>``), ``has_bcr`` (the sheet names a V(D)J file) and ``phase``
    (:func:`cartrack.design.phase`).
    """
    for col in ("sample", "patient", "day", "tissue"):
        if col not in sheet.columns and not (col == "sample" and sheet.index.name == "sample"):
            raise InputError(f"sample sheet lacks column `{col}`")
    s = sheet.copy()
    if "sample" in s.columns:
        s.index = s["sample"].astype(str).to_numpy()
    s.index = s.index.astype(str)
    if not s.index.is_unique:
        raise InputError(
            f"sample sheet: duplicated samples {sorted(s.index[s.index.duplicated()])}"
        )
    out = pd.DataFrame(index=s.index)
    out.index.name = "sample"
    out["patient"] = s["patient"].astype(str)
    out["day"] = pd.to_numeric(s["day"]).astype(int)
    out["tissue"] = s["tissue"].astype(str)
    tp = s["timepoint"] if "timepoint" in s.columns else pd.Series(np.nan, index=s.index)
    out["timepoint"] = tp.where(tp.notna() & tp.astype(str).ne(""), "D" + out["day"].astype(str))
    bcr = s["bcr"] if "bcr" in s.columns else pd.Series(np.nan, index=s.index)
    out["has_bcr"] = bcr.notna() & bcr.astype(str).str.strip().ne("")
    out["phase"] = phase(
        out["day"],
        post_min_day=post_min_day,
        visit_window_days=visit_window_days,
        tissue=out["tissue"],
    )
    return out


# --------------------------------------------------------------------------------------
# the elimination test
# --------------------------------------------------------------------------------------
def p_missed(n_baseline, n_post, n_comparable_baseline, n_comparable_post) -> np.ndarray:
    """P-value of "the clone persisted at unchanged frequency" (module docstring).

    Parameters
    ----------
    n_baseline, n_post
        The clone's cells at baseline / after infusion in its tissue and compartment.
    n_comparable_baseline, n_comparable_post
        All tracked cells of that tissue and compartment at baseline / after infusion.

    Returns
    -------
    ``P(X >= n_baseline | X >= 1)``, ``X ~ Binomial(n_baseline + n_post, N_b / (N_b + N_p))``
    (the clone was tested because it was seen at baseline); NaN where the clone has no
    baseline cell. 1 when nothing comparable was sequenced after.
    """
    nb, npost, big_b, big_p = (
        np.asarray(v, dtype=float)
        for v in np.broadcast_arrays(n_baseline, n_post, n_comparable_baseline, n_comparable_post)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share = big_b / (big_b + big_p)
    share = np.where(np.isfinite(share), share, 1.0)
    n = nb + npost
    p = stats.binom.sf(nb - 1, n, share) / _p_seen_at_baseline(n, share)
    return np.where(nb > 0, np.clip(p, 0.0, 1.0), np.nan)


def _p_seen_at_baseline(n, share) -> np.ndarray:
    """P(X >= 1), X ~ Binomial(n, share): the chance that a clone of n cells is tested at all
    (1 where it is 0, i.e. no clone of that size can be seen at baseline)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # share 1: log1p(-1) = -inf
        seen = -np.expm1(np.asarray(n, dtype=float) * np.log1p(-np.minimum(share, 1.0)))
    return np.where(seen > 0, seen, 1.0)


def min_p_missed(n_total, n_comparable_baseline, n_comparable_post) -> np.ndarray:
    """Smallest ``p_missed`` a clone with `n_total` cells can reach: all of them at baseline."""
    share = np.asarray(n_comparable_baseline, dtype=float) / (
        np.asarray(n_comparable_baseline, dtype=float) + np.asarray(n_comparable_post, dtype=float)
    )
    n = np.asarray(n_total, dtype=float)
    return np.minimum(np.power(share, n) / _p_seen_at_baseline(n, share), 1.0)


def q_values(p, *, testable=None) -> np.ndarray:
    """Benjamini-Hochberg q-values of one patient's baseline-seen clones.

    Parameters
    ----------
    p
        ``p_missed`` (NaN: not a baseline-seen clone, left NaN).
    testable
        Booleans: the family the correction runs over. Clones outside it (they could not
        reach alpha even if absent after infusion) get q = 1. This is Tarone's (1990)
        restriction for discrete tests applied to BH (Gilbert 2005, J R Stat Soc C 54:143):
        the selection depends only on the clone's total count, so FDR control holds, and
        the singletons that can never be called no longer dilute the family. None: all.
    """
    p = np.asarray(p, dtype=float)
    seen = ~np.isnan(p)
    family = seen if testable is None else seen & np.asarray(testable, dtype=bool)
    q = np.where(seen, 1.0, np.nan)
    if family.any():
        q[family] = stats.false_discovery_control(p[family], method="bh")
    return q


def clone_status(
    n_baseline,
    n_post,
    n_early,
    q_value,
    *,
    resampled,
    baseline_sampled,
    alpha: float = 0.05,
) -> np.ndarray:
    """Contract status per clone (cells counted over all tissues).

    ``persistent``: seen at baseline and after infusion; ``eliminated``: seen at baseline, not
    after, ``q_value <= alpha`` and its assessed tissue sampled again after infusion;
    ``emergent``: seen after infusion only, the patient's baseline sampled in that tissue;
    ``early_only``: seen only between infusion and the first post-infusion day;
    ``not_assessable``: everything else.
    """
    base = np.asarray(n_baseline) > 0
    post = np.asarray(n_post) > 0
    early = np.asarray(n_early) > 0
    q = np.asarray(q_value, dtype=float)
    status = np.full(base.shape, "not_assessable", dtype=object)
    status[base & post] = "persistent"
    gone = base & ~post & np.asarray(resampled, dtype=bool)
    status[gone & (np.nan_to_num(q, nan=1.0) <= alpha)] = "eliminated"
    status[~base & post & np.asarray(baseline_sampled, dtype=bool)] = "emergent"
    status[~base & ~post & early] = "early_only"
    return status


# --------------------------------------------------------------------------------------
# diversity
# --------------------------------------------------------------------------------------
def shannon_evenness(sizes: Sequence[float] | pd.Series) -> float:
    """Shannon entropy of clone sizes divided by log(number of clones); NaN below 2 clones.

    scirpy's ``tl.alpha_diversity(metric="normalized_shannon_entropy")`` computes the same
    per group; it is written out here to work on a vector of clone sizes.
    """
    s = np.asarray(sizes, dtype=float)
    s = s[s > 0]
    if len(s) < 2:
        return np.nan
    p = s / s.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(s)))


def top_clone_fraction(sizes: Sequence[float] | pd.Series) -> float:
    """Share of the largest clone among all cells with a clone; NaN without clones."""
    s = np.asarray(sizes, dtype=float)
    return float(s.max() / s.sum()) if len(s) and s.sum() > 0 else np.nan


def hill_numbers(sizes: Sequence[float] | pd.Series) -> tuple[float, float, float]:
    """Observed Hill numbers of orders 0, 1, 2: clones, exp(Shannon), inverse Simpson."""
    s = np.asarray(sizes, dtype=float)
    s = s[s > 0]
    if not len(s):
        return np.nan, np.nan, np.nan
    p = s / s.sum()
    return float(len(s)), float(np.exp(-(p * np.log(p)).sum())), float(1 / (p**2).sum())


def rarefied_hill_numbers(
    sizes: Sequence[float] | pd.Series, depth: int
) -> tuple[float, float, float, float]:
    """Expected Hill numbers (q = 0, 1, 2) of `depth` cells drawn without replacement.

    The exact rarefaction of Chao et al. 2014 (Ecol Monogr 84:45, eq. 4) as in iNEXT's
    ``TD.m.est`` (Hsieh, Ma & Chao 2016): the expected number of clones seen k times in the
    subsample is ``f_k(m) = sum_i C(x_i, k) C(n - x_i, m - k) / C(n, m)`` (hypergeometric);
    ``qD(m) = (sum_k (k/m)^q f_k(m))^(1/(1-q))``, q = 1 as the limit exp(-sum_k (k/m)
    log(k/m) f_k(m)). For q = 0 this is Hurlbert's (1971) expected richness, for q = 2
    iNEXT's closed form. Also returns the sample coverage of the subsample (Chao & Jost
    2012): ``1 - sum_i x_i/n C(n - x_i, m)/C(n - 1, m)``, the share of the repertoire's
    cells that belong to clones a subsample of that size would see.

    Returns NaN everywhere when the sample has fewer cells than `depth`.
    """
    x = np.asarray(sizes, dtype=float)
    x = x[x > 0]
    n, m = x.sum(), int(depth)
    if m < 1 or n < m:
        return np.nan, np.nan, np.nan, np.nan
    k = np.arange(1, m + 1, dtype=float)
    fk = stats.hypergeom.pmf(k[None, :], n, x[:, None], m).sum(axis=0)
    share = k / m
    q0 = fk.sum()
    q1 = np.exp(-(share * np.log(share) * fk).sum())
    q2 = 1 / (share**2 * fk).sum()
    if m < n:
        # C(n - x, m) / C(n - 1, m) in logs; zero where n - x < m
        ok = n - x >= m
        ratio = np.zeros_like(x)
        nx = n - x[ok]
        ratio[ok] = np.exp(gammaln(nx + 1) - gammaln(nx - m + 1) - gammaln(n) + gammaln(n - m))
        coverage = 1 - (x / n * ratio).sum()
    else:
        coverage = observed_coverage(x)
    return float(q0), float(q1), float(q2), float(coverage)


def observed_coverage(sizes: Sequence[float] | pd.Series) -> float:
    """Sample coverage of the whole sample (Chao & Jost 2012, from singletons and doubletons)."""
    x = np.asarray(sizes, dtype=float)
    x = x[x > 0]
    n = x.sum()
    if n < 2:
        return np.nan
    f1, f2 = float((x == 1).sum()), float((x == 2).sum())
    if f1 == 0:
        return 1.0
    a = (
        (n - 1) * f1 / ((n - 1) * f1 + 2 * f2)
        if f2 > 0
        else (n - 1) * (f1 - 1) / ((n - 1) * (f1 - 1) + 2)
    )
    return float(1 - f1 / n * a)


def diversity_table(
    tracked: pd.DataFrame, samples: pd.DataFrame, *, min_cells: int = 20
) -> pd.DataFrame:
    """``diversity.tsv``: Hill numbers per sample, raw and rarefied to a depth per patient.

    Parameters
    ----------
    tracked
        :func:`tracked_cells`.
    samples
        :func:`sheet_table`.
    min_cells
        Samples with fewer tracked cells get no rarefied values, and do not set the
        patient's depth (the smallest number of tracked cells among its other samples).

    Returns
    -------
    One row per sheet sample with a V(D)J file: ``sample, patient, day, tissue, timepoint,
    n_bcr_cells`` (tracked cells), ``hill_q0``, ``hill_q1``, ``hill_q2`` (observed),
    ``coverage`` (of the whole sample), ``depth`` (the patient's common depth),
    ``hill_q0_rarefied``, ``hill_q1_rarefied``, ``hill_q2_rarefied`` and
    ``coverage_rarefied`` (at that depth). Raw Hill numbers grow with depth; only the
    rarefied ones compare samples. scirpy's ``tl.alpha_diversity`` gives raw per-group
    indices only, so rarefaction is computed here.
    """
    cols = [
        "sample", "patient", "day", "tissue", "timepoint", "n_bcr_cells",
        "hill_q0", "hill_q1", "hill_q2", "coverage", "depth",
        "hill_q0_rarefied", "hill_q1_rarefied", "hill_q2_rarefied", "coverage_rarefied",
    ]  # fmt: skip
    with_bcr = samples.loc[samples["has_bcr"]]
    sizes = {
        s: g.groupby("clone_id").size().to_numpy()
        for s, g in tracked.groupby(tracked["sample"].astype(str))
    }
    n_cells = pd.Series({s: int(sizes.get(s, np.array([])).sum()) for s in with_bcr.index})
    rows = []
    for sample, meta in with_bcr.iterrows():
        x = sizes.get(sample, np.array([]))
        mine = n_cells[with_bcr.index[with_bcr["patient"] == meta["patient"]]]
        deep = mine[mine >= min_cells]
        depth = int(deep.min()) if len(deep) else np.nan
        rare = (
            rarefied_hill_numbers(x, depth)
            if n_cells[sample] >= min_cells and pd.notna(depth)
            else (np.nan,) * 4
        )
        rows.append(
            [sample, meta["patient"], meta["day"], meta["tissue"], meta["timepoint"],
             n_cells[sample], *hill_numbers(x), observed_coverage(x), depth, *rare]
        )  # fmt: skip
    out = pd.DataFrame(rows, columns=cols)
    out["depth"] = out["depth"].astype("Int64")
    return out


# --------------------------------------------------------------------------------------
# per-clone tables
# --------------------------------------------------------------------------------------
def tracked_cells(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """BCR+ B-lineage cells with a clone: the cells every tracking count is made of.

    Parameters
    ----------
    bcr_cells
        Per BCR cell (index cell name): ``sample``, ``clone_id`` and annotations.
    gex_cells
        Per gene-expression cell: ``cell_type``.
    samples
        :func:`sheet_table`.
    """
    cells = bcr_cells.loc[bcr_cells["clone_id"].notna()].copy()
    cells = cells.loc[cells.index.isin(gex_cells.index)]
    # plain strings: categoricals (as read from h5ad) break arithmetic on mapped values
    cells["sample"] = cells["sample"].astype(str).to_numpy()
    cells["clone_id"] = cells["clone_id"].astype(str).to_numpy()
    cells["cell_type"] = gex_cells.loc[cells.index, "cell_type"].astype(str).to_numpy()
    cells = cells.loc[cells["cell_type"].isin(B_LINEAGE_TYPES)]
    meta = samples.loc[cells["sample"], ["patient", "day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def _group_mode(df: pd.DataFrame, keys: list[str], col: str, order: Sequence = ()) -> pd.Series:
    """Most frequent non-missing `col` per group of `keys`; ties go to the first value in
    `order`, then the alphabetically first. Groups without a value are missing."""
    counts = df.groupby([*keys, col], observed=True).size().rename("_n").reset_index()
    rank = {x: i for i, x in enumerate(order)}
    counts["_rank"] = counts[col].map(rank).fillna(len(rank))
    counts["_str"] = counts[col].astype(str)
    counts = counts.sort_values(
        [*keys, "_n", "_rank", "_str"], ascending=[True] * len(keys) + [False, True, True]
    )
    return counts.drop_duplicates(keys).set_index(keys)[col]


def _compartment_of(cell_types: pd.Series, compartments: Mapping[str, Sequence[str]]):
    lookup = {t: name for name, types in compartments.items() for t in types}
    return cell_types.map(lookup)


def _assessment(
    c: pd.DataFrame, samples: pd.DataFrame, compartments: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Per clone: tissue_assessed, compartment, the clone's and the comparable cell counts,
    and whether the patient's tissue was sampled (with V(D)J) at baseline / after infusion.

    The reference cells are the clone's baseline cells, else its post-infusion cells, else
    its early ones; tissue and compartment are their most frequent (ties: blood first, then
    the sheet's tissue order; compartments in configured order).
    """
    order = {BASELINE: 0, POST: 1, EARLY: 2}
    rank = c["phase"].map(order)
    ref = c.loc[rank == rank.groupby([c["patient"], c["clone_id"]]).transform("min")]
    key = ["patient", "clone_id"]
    out = pd.DataFrame({"tissue_assessed": _group_mode(ref, key, "tissue", TISSUES)})
    ref = ref.join(out["tissue_assessed"], on=key)
    in_tissue = ref.loc[ref["tissue"] == ref["tissue_assessed"]]
    out["compartment"] = _group_mode(in_tissue, key, "compartment", list(compartments))
    comparable = c.groupby(["patient", "tissue", "compartment", "phase"]).size()
    own = c.groupby(["patient", "clone_id", "tissue", "compartment", "phase"]).size()
    sampled = samples.loc[samples["has_bcr"]].groupby(["patient", "tissue", "phase"]).size()
    pats = out.index.get_level_values("patient")
    ids = out.index.get_level_values("clone_id")
    tis, comp = out["tissue_assessed"].to_numpy(), out["compartment"].to_numpy()
    for ph, name in ((BASELINE, "baseline"), (POST, "post")):
        phs = [ph] * len(out)
        key = pd.MultiIndex.from_arrays([pats, tis, comp, phs])
        out[f"n_comparable_{name}"] = comparable.reindex(key, fill_value=0).to_numpy()
        key = pd.MultiIndex.from_arrays([pats, ids, tis, comp, phs])
        out[f"n_assessed_{name}"] = own.reindex(key, fill_value=0).to_numpy()
        key = pd.MultiIndex.from_arrays([pats, tis, phs])
        out[f"{name}_sampled"] = sampled.reindex(key, fill_value=0).to_numpy() > 0
    return out


def check_compartments(compartments: Mapping[str, Sequence[str]]) -> None:
    """Every B-lineage cell type in exactly one compartment, nothing else (ValueError)."""
    listed = [t for types in compartments.values() for t in types]
    missing = sorted(set(B_LINEAGE_TYPES) - set(listed))
    twice = sorted({t for t in listed if listed.count(t) > 1})
    unknown = sorted(set(listed) - set(B_LINEAGE_TYPES))
    if missing or twice or unknown:
        raise ValueError(
            "tracking.compartments must list every B-lineage cell type exactly once "
            f"(missing {missing}, listed twice {twice}, not B lineage {unknown})"
        )


def clone_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    alpha: float = 0.05,
    fdr_family: str = "testable",
    compartments: Mapping[str, Sequence[str]] = COMPARTMENTS,
    double_positive: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``clones.tsv`` and ``clone_timeline.tsv`` from the tracked cells.

    Parameters
    ----------
    cells
        :func:`tracked_cells` (optional ``mu_freq``: per-cell heavy-chain SHM frequency).
    samples
        :func:`sheet_table` (its ``phase`` decides baseline / early / post).
    alpha
        ``eliminated`` needs ``q_value <= alpha``.
    fdr_family
        ``testable``: BH over the patient's baseline-seen clones that could reach `alpha`
        (:func:`q_values`); ``all``: over every baseline-seen clone.
    compartments
        Name -> cell types; a clone is compared with the cells of its own compartment.
    double_positive
        :func:`cartrack.double_positive.clone_double_positive` of the clones' baseline
        cells (``clone_id``, ``cd19_bcma_fraction``, ``double_positive``,
        ``dp_confidence``); None: no clone is double positive.

    Returns
    -------
    clones
        Contract columns (``heavy_cdr3_aa``: the most frequent heavy CDR3 in AIRR's sense,
        without the conserved C and W/F; ``isotype``: the most frequent isotype;
        ``mean_shm``: mean ``mu_freq``, empty without it) plus ``n_cells_early``,
        ``compartment``, ``n_assessed_baseline`` and ``n_assessed_post`` (the clone's cells
        in its tissue and compartment: n_b and n_p of p_missed), ``testable`` (the smallest
        reachable p_missed is <= alpha), ``ighv4_34``, ``isotypes`` (``IgG1:5;IgM:2``) and
        ``heavy_junction_aa`` (the CDR3 with C and W/F, as Cell Ranger's ``cdr3``).
    timeline
        Contract columns plus ``timepoint`` and ``phase``.
    """
    if fdr_family not in FDR_FAMILIES:
        raise ValueError(f"fdr_family must be one of {FDR_FAMILIES}, got {fdr_family!r}")
    cols = [
        "patient", "clone_id", "n_cells", "n_cells_baseline", "n_cells_post", "first_day",
        "last_day", "heavy_v_gene", "heavy_j_gene", "heavy_cdr3_aa", "isotype", "mean_shm",
        "cd19_bcma_fraction", "double_positive", "tissue_assessed", "n_comparable_baseline",
        "n_comparable_post", "p_missed", "q_value", "status", "n_cells_early", "compartment",
        "n_assessed_baseline", "n_assessed_post", "testable", "ighv4_34", "isotypes",
        "heavy_junction_aa", "dp_confidence",
    ]  # fmt: skip
    tcols = [
        "patient", "clone_id", "sample", "day", "tissue", "timepoint", "n_cells",
        "clone_fraction", "phase",
    ]  # fmt: skip
    if cells.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=tcols)
    c = cells.copy()
    for col in (
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "heavy_junction_aa",
        "isotype",
        "mu_freq",
    ):
        if col not in c.columns:
            c[col] = np.nan
    c["mu_freq"] = pd.to_numeric(c["mu_freq"], errors="coerce")
    check_compartments(compartments)
    c["compartment"] = _compartment_of(c["cell_type"], compartments)
    for ph in (BASELINE, EARLY, POST):
        c[ph] = c["phase"] == ph
    g = c.groupby(["patient", "clone_id"], sort=True)
    clones = g.agg(
        n_cells=("sample", "size"),
        n_cells_baseline=(BASELINE, "sum"),
        n_cells_post=(POST, "sum"),
        n_cells_early=(EARLY, "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        mean_shm=("mu_freq", "mean"),
    )
    for col in ("heavy_v_gene", "heavy_j_gene", "heavy_cdr3_aa", "heavy_junction_aa", "isotype"):
        clones[col] = _group_mode(c, ["patient", "clone_id"], col).reindex(clones.index)
    iso = c.groupby(["patient", "clone_id", "isotype"], observed=True).size()
    iso = pd.Series(
        iso.index.get_level_values("isotype").astype(str) + ":" + iso.astype(str).to_numpy(),
        index=iso.index,
    )
    clones["isotypes"] = iso.groupby(level=["patient", "clone_id"]).agg(";".join)
    clones["isotypes"] = clones["isotypes"].reindex(clones.index).fillna("")
    clones["ighv4_34"] = clones["heavy_v_gene"].eq("IGHV4-34")
    dp_cols = ["cd19_bcma_fraction", "double_positive", "dp_confidence"]
    if double_positive is not None and len(double_positive):
        dp = double_positive.set_index("clone_id")[dp_cols]
        dp = dp.reindex(clones.index.get_level_values("clone_id"))
        for col in dp_cols:
            clones[col] = dp[col].to_numpy()
    else:
        clones["cd19_bcma_fraction"], clones["dp_confidence"] = np.nan, np.nan
        clones["double_positive"] = False
    clones["double_positive"] = clones["double_positive"].fillna(False).astype(bool)
    clones = clones.join(_assessment(c, samples, compartments))
    nb, npost = clones["n_assessed_baseline"], clones["n_assessed_post"]
    big_b, big_p = clones["n_comparable_baseline"], clones["n_comparable_post"]
    seen = clones["n_cells_baseline"] > 0
    clones["p_missed"] = np.where(seen, p_missed(nb, npost, big_b, big_p), np.nan)
    clones["testable"] = seen & (min_p_missed(nb + npost, big_b, big_p) <= alpha)
    clones["q_value"] = np.nan
    for _patient, rows in clones.groupby(level="patient").groups.items():
        sub = clones.loc[rows]
        clones.loc[rows, "q_value"] = q_values(
            sub["p_missed"], testable=sub["testable"] if fdr_family == "testable" else None
        )
    clones["status"] = clone_status(
        clones["n_cells_baseline"],
        clones["n_cells_post"],
        clones["n_cells_early"],
        clones["q_value"],
        resampled=clones["post_sampled"],
        baseline_sampled=clones["baseline_sampled"],
        alpha=alpha,
    )
    clones = clones.reset_index()
    clones = clones.sort_values(["patient", "n_cells", "clone_id"], ascending=[True, False, True])
    timeline = c.groupby(["patient", "clone_id", "sample"]).size().rename("n_cells").reset_index()
    per_sample = c.groupby("sample").size()
    timeline["clone_fraction"] = timeline["n_cells"] / timeline["sample"].map(per_sample)
    meta = samples.loc[timeline["sample"], ["day", "tissue", "timepoint", "phase"]]
    for col in meta.columns:
        timeline[col] = meta[col].to_numpy()
    timeline = timeline.sort_values(["patient", "clone_id", "day", "sample"])
    return clones[cols].reset_index(drop=True), timeline[tcols].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# per-sample and per-patient tables
# --------------------------------------------------------------------------------------
def b_cell_table(
    gex_cells: pd.DataFrame,
    bcr_cells: pd.DataFrame,
    tracked: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    unmutated_max_mu_freq: float = 0.02,
) -> pd.DataFrame:
    """``b_cells.tsv``: one row per sheet sample.

    Parameters
    ----------
    gex_cells
        All gene-expression cells (``sample``, ``cell_type``).
    bcr_cells
        All V(D)J cells (index cell name; ``sample``, ``heavy_v_gene``, ``isotype``, optional
        ``mu_freq``).
    tracked
        :func:`tracked_cells` (B-lineage cells with a clone).
    samples
        :func:`sheet_table`.
    unmutated_max_mu_freq
        A heavy chain with ``mu_freq`` at or below this counts as unmutated.

    Returns
    -------
    Contract columns plus ``timepoint``, ``phase``, ``has_bcr``, ``n_bcr_total`` (all V(D)J
    cells of the sample, with or without a gene-expression cell), ``n_bcr_with_clone``,
    ``switched_fraction`` (IgG/IgA/IgE), ``mean_shm`` (mean ``mu_freq``),
    ``unmutated_igm_igd_fraction`` (IgM/IgD with ``mu_freq <= unmutated_max_mu_freq``, among
    heavy chains with isotype and ``mu_freq``), ``n_ighv4_34`` and ``ighv4_34_fraction``.
    ``n_bcr_cells`` counts BCR+ B-lineage cells (V(D)J cells whose gene-expression cell is B
    lineage); ``igm_igd_fraction``, ``switched_fraction``, ``mean_shm`` and
    ``ighv4_34_fraction`` are taken among those with a heavy chain (and a known isotype for
    the isotype shares); ``n_clones``, ``shannon_evenness`` and ``top_clone_fraction`` among
    those with a clone. BCR metrics are empty without such cells (``mean_shm`` and the
    unmutated share also without ``mu_freq``); ``n_clones`` and ``n_ighv4_34`` are empty
    when the sample has no V(D)J file.
    """
    b_lineage = gex_cells.index[gex_cells["cell_type"].astype(str).isin(B_LINEAGE_TYPES)]
    bcr_b = bcr_cells.loc[bcr_cells.index.isin(b_lineage)]
    for col in ("heavy_v_gene", "isotype", "mu_freq"):
        if col not in bcr_b.columns:
            bcr_b = bcr_b.assign(**{col: np.nan})
    bcr_b = bcr_b.assign(mu_freq=pd.to_numeric(bcr_b["mu_freq"], errors="coerce"))

    def by_sample(df: pd.DataFrame) -> dict:
        return dict(tuple(df.groupby(df["sample"].astype(str)))) if len(df) else {}

    gex_by, bcr_by, tr_by = by_sample(gex_cells), by_sample(bcr_b), by_sample(tracked)
    bcr_total = bcr_cells.groupby(bcr_cells["sample"].astype(str)).size()
    empty = pd.DataFrame(columns=["cell_type", "heavy_v_gene", "isotype", "mu_freq", "clone_id"])
    rows = []
    for sample, meta in samples.iterrows():
        types = gex_by.get(sample, empty)["cell_type"].astype(str)
        n_cells, n_b = len(types), int(types.isin(B_CELL_TYPES).sum())
        n_naive = int(types.isin(NAIVE_TYPES).sum())
        b = bcr_by.get(sample, empty)
        heavy = b.loc[b["heavy_v_gene"].notna()]
        iso = heavy["isotype"].dropna()
        shm = pd.to_numeric(heavy["mu_freq"], errors="coerce")
        typed = heavy.loc[heavy["isotype"].notna() & shm.notna()]
        unmutated = typed["isotype"].isin(UNSWITCHED) & (
            pd.to_numeric(typed["mu_freq"]) <= unmutated_max_mu_freq
        )
        sizes = tr_by.get(sample, empty).groupby("clone_id").size()
        rows.append(
            {
                "sample": sample,
                "patient": meta["patient"],
                "day": meta["day"],
                "tissue": meta["tissue"],
                "n_cells": n_cells,
                "n_b_cells": n_b,
                "b_fraction": n_b / n_cells if n_cells else np.nan,
                "naive_fraction": n_naive / n_b if n_b else np.nan,
                "n_bcr_cells": len(b),
                "igm_igd_fraction": iso.isin(UNSWITCHED).mean() if len(iso) else np.nan,
                "n_clones": len(sizes) if meta["has_bcr"] else pd.NA,
                "shannon_evenness": shannon_evenness(sizes),
                "top_clone_fraction": top_clone_fraction(sizes),
                "timepoint": meta["timepoint"],
                "phase": meta["phase"],
                "has_bcr": bool(meta["has_bcr"]),
                "n_bcr_total": int(bcr_total.get(sample, 0)),
                "n_bcr_with_clone": int(sizes.sum()),
                "switched_fraction": iso.str.match(r"Ig[GAE]").mean() if len(iso) else np.nan,
                "mean_shm": shm.mean() if shm.notna().any() else np.nan,
                "unmutated_igm_igd_fraction": unmutated.mean() if len(typed) else np.nan,
                "n_ighv4_34": (
                    int(heavy["heavy_v_gene"].eq("IGHV4-34").sum()) if meta["has_bcr"] else pd.NA
                ),
                "ighv4_34_fraction": (
                    heavy["heavy_v_gene"].eq("IGHV4-34").mean() if len(heavy) else np.nan
                ),
            }
        )
    out = pd.DataFrame(rows)
    for col in ("n_clones", "n_ighv4_34"):
        out[col] = out[col].astype("Int64")
    return out


def isotype_table(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """``isotypes.tsv``: cells per sample and heavy-chain isotype (subclasses pooled: IgG1-4
    as IgG).

    Parameters
    ----------
    bcr_cells
        All V(D)J cells (index cell name; ``isotype``).
    gex_cells
        All gene-expression cells (``sample``).
    samples
        :func:`sheet_table`.

    Returns
    -------
    One row per sample and isotype (IgM, IgD, IgG, IgA, IgE) found there: ``sample, patient,
    day, tissue, timepoint, isotype, n_cells`` (gene-expression cells whose heavy chain has
    that isotype, whatever their cell type) and ``fraction`` (of the sample's cells with an
    isotype).
    """
    cols = ["sample", "patient", "day", "tissue", "timepoint", "isotype", "n_cells", "fraction"]
    if "isotype" not in bcr_cells:
        return pd.DataFrame(columns=cols)
    iso = bcr_cells.loc[bcr_cells.index.isin(gex_cells.index), "isotype"].astype(object)
    iso = iso.where(iso.notna(), "").astype(str).str.extract(r"^(Ig[MDGAE])", expand=False)
    iso = iso.dropna()
    if iso.empty:
        return pd.DataFrame(columns=cols)
    sample = gex_cells.loc[iso.index, "sample"].astype(str)
    cells = samples.loc[sample, ["patient", "day", "tissue", "timepoint"]].reset_index()
    cells["isotype"] = iso.to_numpy()
    n = cells.groupby(cols[:6]).size().rename("n_cells").reset_index()
    n["fraction"] = n["n_cells"] / n.groupby("sample")["n_cells"].transform("sum")
    return n[cols]


def b_recovery(
    b_cells: pd.DataFrame, *, level: float = 0.01, min_b_cells: int = 20
) -> pd.DataFrame:
    """B-cell recovery per patient from blood samples after infusion (day > 0).

    The aplasia starts at the first blood sample whose ``b_fraction`` is below `level`;
    ``b_recovery_day`` is the first later blood sample whose ``b_fraction`` reaches `level`
    again and ``b_recovery_after_day`` the blood sample just before it (recovery happened
    between the two). Both empty when B cells never fell below `level` or never came back.
    ``naive_fraction_at_recovery`` is that of the recovery sample, empty when it holds fewer
    than `min_b_cells` B cells. ``nadir_day`` / ``nadir_b_fraction``: the lowest sample.

    Returns
    -------
    Index patient; ``b_recovery_after_day``, ``b_recovery_day`` (Int64),
    ``naive_fraction_at_recovery``, ``nadir_day`` (Int64), ``nadir_b_fraction``.
    """
    out = {}
    for patient, g in b_cells.groupby("patient", sort=True):
        blood = g.loc[(g["tissue"] == BLOOD) & (g["day"] > 0) & g["b_fraction"].notna()]
        blood = blood.sort_values(["day", "sample"]).reset_index(drop=True)
        rec = {
            "b_recovery_after_day": pd.NA,
            "b_recovery_day": pd.NA,
            "naive_fraction_at_recovery": np.nan,
            "nadir_day": pd.NA,
            "nadir_b_fraction": np.nan,
        }
        if len(blood):
            nadir = blood.loc[blood["b_fraction"].idxmin()]
            rec["nadir_day"], rec["nadir_b_fraction"] = nadir["day"], nadir["b_fraction"]
            below = np.flatnonzero(blood["b_fraction"].to_numpy() < level)
            if len(below):
                later = blood.iloc[below[0] + 1 :]
                back = later.index[later["b_fraction"] >= level]
                if len(back):
                    first = blood.loc[back[0]]
                    rec["b_recovery_day"] = first["day"]
                    rec["b_recovery_after_day"] = blood.loc[back[0] - 1, "day"]
                    n_b = first.get("n_b_cells", np.nan)
                    if pd.notna(n_b) and n_b >= min_b_cells:
                        rec["naive_fraction_at_recovery"] = first["naive_fraction"]
        out[patient] = rec
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index.name = "patient"
    for col in ("b_recovery_after_day", "b_recovery_day", "nadir_day"):
        res[col] = res[col].astype("Int64") if len(res) else pd.Series(dtype="Int64")
    for col in ("naive_fraction_at_recovery", "nadir_b_fraction"):
        res[col] = res[col].astype(float) if len(res) else pd.Series(dtype=float)
    return res


def elimination_table(
    clones: pd.DataFrame,
    b_cells: pd.DataFrame,
    *,
    recovery_level: float = 0.01,
    recovery_min_b_cells: int = 20,
) -> pd.DataFrame:
    """``elimination.tsv``: one row per patient of the sheet (via `b_cells`).

    Returns
    -------
    Contract columns (``expected_false_eliminated``: the sum of ``p_missed`` over the
    patient's eliminated clones, the expected number among them that persisted unseen) plus
    counts of all clones by status (``n_clones``, ``n_eliminated``, ``n_persistent``,
    ``n_emergent``, ``n_early_only``, ``n_not_assessable``), ``nadir_day`` and ``nadir_b_fraction``.
    """
    patients = sorted(b_cells["patient"].astype(str).unique())
    rec = b_recovery(b_cells, level=recovery_level, min_b_cells=recovery_min_b_cells)
    rec = rec.reindex(patients)
    rows = []
    for p in patients:
        cl = clones.loc[clones["patient"] == p]
        dp = cl.loc[cl["double_positive"].astype(bool)]
        gone = cl.loc[cl["status"] == "eliminated"]
        row = {
            "patient": p,
            "n_dp_clones": len(dp),
            "n_dp_eliminated": int((dp["status"] == "eliminated").sum()),
            "n_dp_persistent": int((dp["status"] == "persistent").sum()),
            "n_dp_not_assessable": int((dp["status"] == "not_assessable").sum()),
            "expected_false_eliminated": float(gone["p_missed"].astype(float).sum()),
            "b_recovery_after_day": rec.loc[p, "b_recovery_after_day"],
            "b_recovery_day": rec.loc[p, "b_recovery_day"],
            "naive_fraction_at_recovery": rec.loc[p, "naive_fraction_at_recovery"],
            "n_clones": len(cl),
        }
        for s in STATUSES:
            row[f"n_{s}"] = int((cl["status"] == s).sum())
        row["nadir_day"] = rec.loc[p, "nadir_day"]
        row["nadir_b_fraction"] = rec.loc[p, "nadir_b_fraction"]
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("b_recovery_after_day", "b_recovery_day", "nadir_day"):
        out[col] = out[col].astype("Int64")
    return out


# --------------------------------------------------------------------------------------
# the whole step
# --------------------------------------------------------------------------------------
@dataclass
class CloneResults:
    """Outputs of :func:`track_clones` (tables follow the contract)."""

    airr: ad.AnnData
    cell_clones: pd.DataFrame
    chain_qc: pd.DataFrame
    clones: pd.DataFrame
    clone_timeline: pd.DataFrame
    b_cells: pd.DataFrame
    elimination: pd.DataFrame
    diversity: pd.DataFrame
    isotypes: pd.DataFrame


def track_clones(
    samples: Sequence[ad.AnnData],
    gex_cells: pd.DataFrame,
    sheet: pd.DataFrame,
    *,
    productive_only: bool = True,
    clone: CloneParams | Mapping | None = None,
    post_min_day: int = 28,
    visit_window_days: int = 3,
    alpha: float = 0.05,
    fdr_family: str = "testable",
    compartments: Mapping[str, Sequence[str]] = COMPARTMENTS,
    recovery_b_fraction: float = 0.01,
    recovery_min_b_cells: int = 20,
    unmutated_max_mu_freq: float = 0.02,
    diversity_min_cells: int = 20,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = "CD19",
    bcma_protein: str | None = "CD269",
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
    dp_alpha: float = 0.01,
    dp_min_fold: float = 4.0,
    dp_min_protein_dsb: float = 3.0,
    dp_min_baseline_cells: int = 3,
) -> CloneResults:
    """Merge per-sample BCR data, define clones and build all tracking tables.

    Parameters
    ----------
    samples
        Per-sample outputs of :func:`cartrack.bcr.read_bcr`.
    gex_cells
        :func:`read_gex_cells` of the annotated gene-expression data.
    sheet
        The sample sheet (all samples, with or without BCR).
    productive_only
        As for :func:`cartrack.bcr.index_chains`.
    clone
        Clone definition: :class:`cartrack.clones.CloneParams` or the config section
        ``bcr.clone`` (defaults when None).
    post_min_day, visit_window_days
        As for :func:`cartrack.design.phase`.
    alpha, fdr_family, compartments
        As for :func:`clone_tables`.
    recovery_b_fraction, recovery_min_b_cells
        `level` and `min_b_cells` of :func:`b_recovery`.
    unmutated_max_mu_freq
        As for :func:`b_cell_table`.
    diversity_min_cells
        `min_cells` of :func:`diversity_table`.
    cd19_gene, bcma_gene, cd19_protein, bcma_protein, cd19_min_counts, bcma_min_counts
        As for :func:`cartrack.double_positive.clone_double_positive`.
    dp_alpha, dp_min_fold, dp_min_protein_dsb, dp_min_baseline_cells
        Its `alpha`, `min_fold`, `min_protein_dsb` and `min_cells`.

    Returns
    -------
    :class:`CloneResults`; ``airr`` has obs ``clone_id``, ``isotype``, ``shm``,
    ``ighv4_34``, ``b_lineage`` and the sheet's columns; ``cell_clones`` has one row per BCR
    cell: ``cell, clone_id, isotype, shm, ighv4_34``.
    """
    meta = sheet_table(sheet, post_min_day=post_min_day, visit_window_days=visit_window_days)
    airr = merge_bcr(samples)
    unknown = sorted(set(airr.obs["sample"].astype(str)) - set(meta.index))
    if unknown:
        raise InputError(f"BCR samples not in the sample sheet: {', '.join(unknown)}")
    for col in ("patient", "day", "tissue", "timepoint", "phase"):
        airr.obs[col] = meta.loc[airr.obs["sample"].astype(str), col].to_numpy()
    index_chains(airr, productive_only=productive_only)
    params = clone if isinstance(clone, CloneParams) else CloneParams.from_config(clone)
    define_clones(airr, params)
    ann = cell_annotations(airr, sequence=airr.uns["clone_definition"]["sequence"])
    for col in ann.columns:
        airr.obs[col] = ann[col]
    gex = gex_cells.copy()
    ctype = gex["cell_type"].reindex(airr.obs_names).astype(object)
    airr.obs["has_gex"] = airr.obs_names.isin(gex.index)
    airr.obs["b_lineage"] = ctype.isin(B_LINEAGE_TYPES).to_numpy()
    cells = airr.obs.copy()
    tracked = tracked_cells(cells, gex, meta)
    baseline_gex = gex.loc[gex["sample"].astype(str).map(meta["phase"]).eq(BASELINE).to_numpy()]
    baseline_clone = tracked.loc[tracked["phase"] == BASELINE, "clone_id"]
    double_positive = clone_double_positive(
        baseline_gex,
        baseline_clone,
        cd19_gene=cd19_gene,
        bcma_gene=bcma_gene,
        cd19_protein=cd19_protein,
        bcma_protein=bcma_protein,
        alpha=dp_alpha,
        min_fold=dp_min_fold,
        min_protein_dsb=dp_min_protein_dsb,
        min_cells=dp_min_baseline_cells,
        cd19_min_counts=cd19_min_counts,
        bcma_min_counts=bcma_min_counts,
    )
    clones, timeline = clone_tables(
        tracked,
        meta,
        alpha=alpha,
        fdr_family=fdr_family,
        compartments=compartments,
        double_positive=double_positive,
    )
    b_cells = b_cell_table(gex, cells, tracked, meta, unmutated_max_mu_freq=unmutated_max_mu_freq)
    elimination = elimination_table(
        clones,
        b_cells,
        recovery_level=recovery_b_fraction,
        recovery_min_b_cells=recovery_min_b_cells,
    )
    diversity = diversity_table(tracked, meta, min_cells=diversity_min_cells)
    isotypes = isotype_table(cells, gex, meta)
    qc = chain_qc_table(airr, gex, meta)
    # no `sample` here: the table is joined into gex.obs, which has its own
    cell_clones = cells[["clone_id", "isotype", "mu_freq", "shm", "ighv4_34"]].copy()
    cell_clones.insert(0, "cell", cells.index)
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    for key in [k for k in airr.uns if k.startswith(("ir_dist", "cc_"))]:
        del airr.uns[key]
    airr.uns["tracking"] = {
        "post_min_day": post_min_day,
        "visit_window_days": visit_window_days,
        "alpha": alpha,
        "fdr_family": fdr_family,
        "recovery_b_fraction": recovery_b_fraction,
        "recovery_min_b_cells": recovery_min_b_cells,
        "dp_alpha": dp_alpha,
        "dp_min_fold": dp_min_fold,
        "dp_min_baseline_cells": dp_min_baseline_cells,
    }
    return CloneResults(
        airr,
        cell_clones.reset_index(drop=True),
        qc,
        clones,
        timeline,
        b_cells,
        elimination,
        diversity,
        isotypes,
    )
