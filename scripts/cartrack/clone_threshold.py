"""Junction distances and the data-driven clone cut-off (SHazaM's approach).

Follows SHazaM (Gupta et al. 2015, Nouri & Kleinstein 2018):

- The distance to nearest (``obs["dist_nearest"]`` of :func:`cartrack.clones.define_clones`,
  from :func:`pairwise_hamming` within each V-J-length partition) is SHazaM's
  ``distToNearest(model="ham", normalize="len", first=FALSE)`` in single-cell mode (heavy
  chains only, one per cell): for every junction, the smallest *non-zero* length-normalised
  Hamming distance to another junction of its partition (identical junctions are the same
  sequence, not a neighbour).
- :func:`find_threshold` is ``findThreshold``: the nearest-neighbour distances of a
  repertoire are bimodal (a mode near 0 from clonal relatives, a mode near 0.3-0.5 from
  unrelated sequences that share V, J and length); ``density`` cuts at the minimum of a
  Gaussian kernel density between the two modes, ``gmm`` fits a two-component normal
  mixture (SHazaM ``model="norm-norm"``, ``cutoff="intersect"``) and cuts where the weighted
  components cross. When the distribution is not bimodal (too few sequences, one mode, a
  valley that is not deeper than the configured share of the lower peak, a "mode" holding
  less than ``min_mode_fraction`` of the distances, or a cut above ``max_threshold``),
  the configured fallback is used and the log says so; SHazaM returns NA there and its
  authors recommend a fixed 0.10-0.15 (shazam issue 161). The kernel bandwidth is
  Silverman's rule (SHazaM selects it by cross-validation, which is slow on large data).
"""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

THRESHOLD_METHODS = ("density", "gmm")
#: Rows per block of the pairwise-distance computation (bounds memory to block x n x length).
_BLOCK = 256


def encode(junctions: pd.Series | list[str]) -> np.ndarray:
    """Equal-length junction strings as a (n, length) uint8 array."""
    values = list(junctions)
    if not values:
        return np.zeros((0, 0), dtype=np.uint8)
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(len(values), -1)


def pairwise_hamming(codes: np.ndarray) -> np.ndarray:
    """Length-normalised Hamming distances between the rows of an equal-length code array."""
    n, length = codes.shape
    out = np.empty((n, n), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        block = codes[start : start + _BLOCK]
        out[start : start + len(block)] = (block[:, None, :] != codes[None, :, :]).sum(-1)
    return out / max(length, 1)


@dataclass(frozen=True)
class Threshold:
    """A patient's clone cut-off and how it was chosen (a row of ``clone_thresholds.tsv``)."""

    threshold: float
    method: str  # density, gmm, fixed or fallback
    n_sequences: int
    note: str = ""


def _density_cut(
    d: np.ndarray, *, valley_ratio: float, min_mode_fraction: float
) -> tuple[float | None, str]:
    from scipy.stats import gaussian_kde

    kde = gaussian_kde(d, bw_method="silverman")
    grid = np.linspace(0, max(d.max(), 1e-3), 512)
    dens = kde(grid)
    inner = np.arange(1, len(grid) - 1)
    peaks = inner[(dens[inner] > dens[inner - 1]) & (dens[inner] >= dens[inner + 1])]
    if dens[0] > dens[1]:
        peaks = np.r_[0, peaks]
    if len(peaks) < 2:
        return None, "density has one mode"
    # the clonal mode is the first peak; the unrelated mode the highest peak beyond it
    first = peaks[0]
    second = peaks[1:][np.argmax(dens[peaks[1:]])]
    valley = first + int(np.argmin(dens[first : second + 1]))
    if dens[valley] > valley_ratio * min(dens[first], dens[second]):
        return None, f"valley not deeper than {valley_ratio:g} of the lower mode"
    below = float(np.mean(d < grid[valley]))
    if min(below, 1 - below) < min_mode_fraction:
        return None, f"a mode holds {min(below, 1 - below):.2%} < {min_mode_fraction:.0%}"
    return float(grid[valley]), ""


def _gmm_cut(d: np.ndarray, *, seed: int, min_mode_fraction: float) -> tuple[float | None, str]:
    from scipy.stats import norm
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(2, random_state=seed).fit(d.reshape(-1, 1))
    order = np.argsort(gmm.means_.ravel())
    mu = gmm.means_.ravel()[order]
    sd = np.sqrt(gmm.covariances_.ravel()[order])
    w = gmm.weights_[order]
    grid = np.linspace(mu[0], mu[1], 512)
    diff = w[0] * norm.pdf(grid, mu[0], sd[0]) - w[1] * norm.pdf(grid, mu[1], sd[1])
    cross = np.nonzero(np.diff(np.sign(diff)) != 0)[0]
    if mu[1] - mu[0] < 1e-6 or len(cross) == 0:
        return None, "mixture components do not cross between their means"
    if w.min() < min_mode_fraction:
        return None, f"a component weighs {w.min():.2%} < {min_mode_fraction:.0%}"
    return float(grid[cross[0]]), ""


def find_threshold(
    distances: pd.Series | np.ndarray,
    *,
    method: str = "density",
    fallback: float = 0.15,
    min_sequences: int = 50,
    valley_ratio: float = 0.8,
    min_mode_fraction: float = 0.01,
    max_threshold: float = 0.3,
    seed: int = 0,
    label: str = "",
) -> Threshold:
    """Clone cut-off from nearest-neighbour distances (module docstring).

    Parameters
    ----------
    distances
        Distances to nearest (NaN ignored).
    method
        ``density`` or ``gmm``.
    fallback
        Cut-off used when the distribution is not bimodal.
    min_sequences
        Fewer finite distances than this: fallback.
    valley_ratio
        ``density``: the minimum between the modes must be at most this share of the lower
        mode's density.
    min_mode_fraction
        Each mode (``density``: the distances on either side of the cut; ``gmm``: each
        component's weight) must hold at least this share: a bump in a tail is no mode.
    max_threshold
        A cut above this is not a clonal/unrelated valley: fallback.
    seed
        ``gmm`` initialisation.
    label
        Named in the log (the patient).
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"method must be one of {THRESHOLD_METHODS}, got {method!r}")
    d = np.asarray(pd.to_numeric(pd.Series(distances), errors="coerce"), dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < min_sequences:
        cut, why = None, f"{n} distances < min_sequences {min_sequences}"
    elif np.ptp(d) == 0:
        cut, why = None, "all distances equal"
    elif method == "density":
        cut, why = _density_cut(d, valley_ratio=valley_ratio, min_mode_fraction=min_mode_fraction)
    else:
        cut, why = _gmm_cut(d, seed=seed, min_mode_fraction=min_mode_fraction)
    if cut is not None and not 0 < cut <= max_threshold:
        cut, why = None, f"{method} cut {cut:.3f} outside (0, {max_threshold:g}]"
    if cut is None:
        log.warning(
            "%s: distance-to-nearest not bimodal (%s): clone threshold falls back to %g",
            label or "clone threshold",
            why,
            fallback,
        )
        return Threshold(float(fallback), "fallback", n, why)
    log.info("%s: %s threshold %.3f from %d distances", label, method, cut, n)
    return Threshold(cut, method, n)
