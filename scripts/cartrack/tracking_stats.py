"""Statistics of clone tracking: the elimination test and clonal diversity, on counts.

The elimination test (CONTRACT.md, README "What eliminated means"): a clone is tested within one
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

Diversity: Hill numbers of orders 0, 1, 2, observed and rarefied to a common depth (Chao et
al. 2014, as iNEXT), with the sample coverage (Chao & Jost 2012).

The tables built from these live in :mod:`cartrack.tracking` (per clone) and
:mod:`cartrack.b_cell_tables` (per sample and patient).
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

FDR_FAMILIES = ("testable", "all")


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
